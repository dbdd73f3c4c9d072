/**
 * Preparing a guest binary for the sandbox: validate it, check its imports and exports
 * against the ABI (docs/guest-abi.md), instrument it for fuel (src/fuel/, which also clamps
 * its memory and bounds its call depth), rewrite it for return-code capture, and compile it.
 *
 * The rewrites compose: the instrumenter runs first and the return-code wrapper only
 * appends (a wrapper per entry export that calls the metered original), so the wrappers are
 * unmetered glue and every guest operator is metered. Last, src/sandbox/kernel/entry-rewrite.ts
 * renames the WASI import module and the init entries (`_initialize`, `_start`, the start
 * section) so that the sandbox, not Extism, runs init once the instance is bound. Compiled
 * modules are cached by the original's hash, the instrumenter and cost-table versions and every option that changes the
 * output, so reloading a plugin (or another plugin with the same bytes) compiles nothing.
 *
 * In the worker pool (the default sandbox) all of this runs in a pool worker, under a load
 * deadline, never on the main thread (src/sandbox/pool/); the cache is then per worker. A
 * module over the loader's bounds (module-bounds.ts) is refused before anything else runs but
 * hashing its bytes (the cache lookup: bytes found there passed the bounds before).
 */
import { isHostFunction } from '../capabilities.ts';
import { HourglassError } from '../errors.ts';
import { cacheKey, sha256Hex } from '../fuel/cache.ts';
import type * as Instrumenter from '../fuel/instrument.ts';
import type { PluginLimits } from '../plugin/manifest.ts';
import { rewriteEntries, type WasiImport } from './kernel/entry-rewrite.ts';
import { checkWasiImports } from './kernel/wasi-abi.ts';
import { isKernelFunction } from './kernel/extism-kernel.ts';
import {
  ABORT_SIGNATURE,
  HOST_FUNCTION_SIGNATURE,
  KERNEL_SIGNATURES,
  signatureMismatch,
} from './kernel/import-signatures.ts';
import { checkModuleBounds } from './module-bounds.ts';
import { RESERVED_EXPORT_PREFIX, wrapReturnCodes } from './return-code.ts';

export const GUEST_EXPORTS = ['schedules', 'run', 'cleanup'] as const;
export const REQUIRED_EXPORTS = ['schedules', 'run'] as const;
export const EXTISM_KERNEL = 'extism:host/env';
export const HOST_NAMESPACE = 'extism:host/user';
const WASI = 'wasi_snapshot_preview1';

export interface PreparedGuest {
  readonly module: WebAssembly.Module;
  readonly sha256: string;
  readonly exports: readonly string[];
  readonly imports: readonly string[];
  readonly usesWasi: boolean;
  /** The WASI functions it imports (served by Hourglass's WASI under `hourglass:wasi`). */
  readonly wasiImports: readonly WasiImport[];
  /** What the fuel instrumenter did (sizes, metered blocks, time). */
  readonly fuel: Instrumenter.InstrumentStats;
}

/** A prepared guest without its hash (the cache key holds it). */
type Compiled = Omit<PreparedGuest, 'sha256'>;

/** Compiled guests by cache key; small, since each entry holds a compiled module. */
const compiled = new Map<string, Compiled>();
const MAX_CACHED = 64;

function loadError(pluginId: string, problem: string, cause?: unknown): HourglassError {
  return new HourglassError('HG_PLUGIN_LOAD', `plugin ${pluginId}: ${problem}`, { cause });
}

/**
 * The fuel instrumenter, imported at the first module that needs it: a pool worker that only
 * runs modules prepared elsewhere (each replacement after a kill: it gets the compiled module)
 * never loads it: less CPU per boot (bench/worker-boot.bench.ts: 87 -> 79 ms, medians of 50).
 */
let instrumenter: Promise<typeof Instrumenter> | null = null;
const loadInstrumenter = () => (instrumenter ??= import('../fuel/instrument.ts'));

/**
 * `limits.memoryPages` caps the guest's linear memory (the module's declared maximum is clamped
 * to it): the only real memory limit, since Extism's `maxPages` covers Extism's own blocks
 * only. `limits.tableElements` likewise caps the elements of all its tables together.
 * `limits.fuel.discovery` is also the budget of the module's init (its start function, then
 * `_initialize` or `_start`), which the sandbox runs when it creates an instance.
 */
export async function prepareGuest(
  pluginId: string,
  wasm: Uint8Array<ArrayBuffer>,
  limits: PluginLimits,
): Promise<PreparedGuest> {
  const sha256 = sha256Hex(wasm);
  const options: Instrumenter.InstrumentOptions = {
    memoryMaxPages: limits.memoryPages,
    tableMaxElements: limits.tableElements,
    initialFuel: limits.fuel.discovery,
  };
  const key = cacheKey(sha256, options);
  // The same bytes under the same limits passed every check below before (the bounds check
  // too: it depends on the bytes only): a worker loading many plugins of one guest checks,
  // validates and compiles it once, not once per plugin (the bounds check alone was ~3 ms of
  // the worker per load of the arming benchmark's guest, beside the main thread's arming).
  const cached = compiled.get(key);
  if (cached) return { ...cached, sha256 };
  const bounds = checkModuleBounds(wasm);
  if (bounds) {
    throw new HourglassError('HG_PLUGIN_TOO_COMPLEX', `plugin ${pluginId}: ${bounds.message}`, {
      pluginId,
    });
  }
  if (wasm.length >= 8 && wasm[4] !== 0x01) {
    throw loadError(
      pluginId,
      'is a component or an unsupported binary version; Hourglass loads core modules',
    );
  }
  if (!WebAssembly.validate(wasm)) throw loadError(pluginId, 'is not a valid WebAssembly module');
  const original = new WebAssembly.Module(wasm);

  const exportNames = WebAssembly.Module.exports(original).map((e) => e.name);
  for (const name of exportNames) {
    if (name.startsWith(RESERVED_EXPORT_PREFIX))
      throw loadError(
        pluginId,
        `export '${name}' uses the reserved prefix '${RESERVED_EXPORT_PREFIX}'`,
      );
  }
  const funcExports = new Set(
    WebAssembly.Module.exports(original)
      .filter((e) => e.kind === 'function')
      .map((e) => e.name),
  );
  const missing = REQUIRED_EXPORTS.filter((e) => !funcExports.has(e));
  if (missing.length > 0)
    throw loadError(
      pluginId,
      `missing required export${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}`,
    );

  const imports = WebAssembly.Module.imports(original);
  let usesWasi = false;
  for (const imp of imports) {
    const name = `${imp.module}.${imp.name}`;
    if (imp.kind !== 'function')
      throw loadError(pluginId, `imports ${imp.kind} '${name}'; only functions can be imported`);
    // Only names Hourglass's kernel implements (none of the SDK's own stays reachable).
    if (imp.module === EXTISM_KERNEL && isKernelFunction(imp.name)) continue;
    if (imp.module === HOST_NAMESPACE && isHostFunction(imp.name)) continue;
    if (imp.module === 'env' && imp.name === 'abort') continue;
    if (imp.module === WASI) {
      usesWasi = true;
      continue;
    }
    throw loadError(pluginId, `imports unknown function '${name}'`);
  }

  // Imports Hourglass implements must have its types (a mismatch would throw at the boundary).
  const mismatch = signatureMismatch(wasm, (module, name) =>
    module === EXTISM_KERNEL && isKernelFunction(name)
      ? KERNEL_SIGNATURES[name]
      : module === HOST_NAMESPACE
        ? HOST_FUNCTION_SIGNATURE
        : module === 'env' && name === 'abort'
          ? ABORT_SIGNATURE
          : null,
  );
  if (mismatch) throw loadError(pluginId, mismatch);

  const { instrument } = await loadInstrumenter();
  let rewritten: Uint8Array<ArrayBuffer>;
  let fuel: Instrumenter.InstrumentStats;
  let wasiImports: readonly WasiImport[];
  try {
    const metered = instrument(wasm, options);
    fuel = metered.stats;
    const entries = rewriteEntries(wrapReturnCodes(metered.bytes, GUEST_EXPORTS).bytes);
    rewritten = entries.bytes;
    wasiImports = entries.wasiImports;
  } catch (err) {
    throw loadError(pluginId, `cannot be prepared: ${(err as Error).message}`, err);
  }
  const wasiProblem = checkWasiImports(wasiImports);
  if (wasiProblem) throw loadError(pluginId, wasiProblem);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(rewritten);
  } catch (err) {
    throw loadError(pluginId, `does not compile: ${(err as Error).message}`, err);
  }
  const entry: Compiled = {
    module,
    exports: [...funcExports],
    imports: imports.map((i) => `${i.module}.${i.name}`),
    usesWasi,
    wasiImports,
    fuel,
  };
  compiled.set(key, entry);
  if (compiled.size > MAX_CACHED) compiled.delete(compiled.keys().next().value as string);
  return { ...entry, sha256 };
}
