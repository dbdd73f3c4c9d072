/**
 * The emscripten C++ kernel: binaryen.js (node_modules/binaryen, ~10 MB of wasm compiled by
 * emscripten from C++), loaded with plain or instrumented bytes through emscripten's
 * `instantiateWasm` hook; a call parses a text module, optimizes it and emits the binary.
 * No emcc on the machine, and this is the real thing: C++ exceptions through JS `invoke_*`
 * glue where binaryen uses them, a large function table, thousands of functions.
 *
 * binaryen's index.js instantiates itself at import time (`var X=await F(), Y=X; export
 * {Y as default}`); a temporary copy exports the factory instead. The wasm
 * bytes are the ones its loader passes to `WebAssembly.instantiate`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface BinaryenModule {
  setFeatures(features: number): void;
  optimize(): void;
  emitBinary(): Uint8Array;
  dispose(): void;
  validate(): number;
}
interface Binaryen {
  parseText(text: string): BinaryenModule;
  setOptimizeLevel(level: number): void;
  setShrinkLevel(level: number): void;
  readonly Features: { readonly All: number };
}
type Factory = (moduleArg?: Record<string, unknown>) => Promise<Binaryen>;

let factoryPromise: Promise<Factory> | null = null;

function loadFactory(root: string): Promise<Factory> {
  factoryPromise ??= (async () => {
    const src = readFileSync(join(root, 'node_modules', 'binaryen', 'index.js'), 'utf8');
    const m = /var (\w+)=await (\w+)\(\),(\w+)=\1;export\{\3 as default\};\s*$/.exec(src);
    if (!m) throw new Error('binaryen kernel: unrecognised node_modules/binaryen/index.js tail');
    // Outside the repository (linters would parse 13 MB of generated JS); deleted once loaded.
    const dir = mkdtempSync(join(os.tmpdir(), 'hg-bench-binaryen-'));
    try {
      const file = join(dir, 'binaryen-factory.mjs');
      writeFileSync(file, `${src.slice(0, m.index)}export default ${m[2]};\n`);
      return ((await import(pathToFileURL(file).href)) as { default: Factory }).default;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return factoryPromise;
}

/** The wasm binary binaryen.js ships (captured from its own loader). */
export async function binaryenBytes(root: string): Promise<Uint8Array<ArrayBuffer>> {
  const factory = await loadFactory(root);
  const orig = WebAssembly.instantiate;
  let bytes: Uint8Array<ArrayBuffer> | null = null;
  WebAssembly.instantiate = ((b: unknown, i?: WebAssembly.Imports) => {
    if (b instanceof Uint8Array) bytes = new Uint8Array(b);
    return orig(b as BufferSource, i);
  }) as typeof WebAssembly.instantiate;
  try {
    await factory();
  } finally {
    WebAssembly.instantiate = orig;
  }
  if (!bytes) throw new Error('binaryen kernel: the loader passed no bytes');
  return bytes;
}

/** A binaryen.js instance on `bytes` (plain or instrumented) and its per-call workload. */
export async function binaryenInstance(
  root: string,
  bytes: Uint8Array,
  watText: string,
): Promise<{ instance: WebAssembly.Instance; run: () => number }> {
  const factory = await loadFactory(root);
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  let instance: WebAssembly.Instance | null = null;
  const binaryen = await factory({
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return {};
    },
  });
  if (!instance) throw new Error('binaryen kernel: instantiateWasm was not called');
  binaryen.setOptimizeLevel(2);
  binaryen.setShrinkLevel(0);
  const run = (): number => {
    const mod = binaryen.parseText(watText);
    try {
      mod.setFeatures(binaryen.Features.All);
      mod.optimize();
      return mod.emitBinary().length;
    } finally {
      mod.dispose();
    }
  };
  return { instance, run };
}
