/**
 * Differential fuzzing: random modules from binaryen's `wasm-opt -ttf` (Debian's binaryen,
 * /usr/bin/wasm-opt) run plain, instrumented with metered blocks, and instrumented per
 * instruction. Every export is called in order with zero arguments; the trace (each call's
 * result or normalised trap, and every value the module logs through its imports) must be
 * identical across the three, and the fuel each completed call used must be identical
 * between the two placements.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { instrument } from '../../src/fuel/instrument.ts';
import type { Placement } from '../../src/fuel/placement.ts';
import { FuelMeter, classifyTrap } from '../../src/fuel/meter.ts';
import { WasmException } from './tools.ts';

export const WASM_OPT = '/usr/bin/wasm-opt';

/** Features binaryen 108 generates that Node 20 runs (its reference types do not validate there). */
export const TTF_FEATURES = [
  '--enable-sign-ext',
  '--enable-mutable-globals',
  '--enable-nontrapping-float-to-int',
  '--enable-bulk-memory',
  '--enable-simd',
  '--enable-multivalue',
  '--enable-tail-call',
  '--enable-exception-handling',
];

/** A deterministic byte stream (xorshift32) so that every run fuzzes the same modules. */
export function seededBytes(seed: number, length: number): Uint8Array {
  let x = (seed * 2654435761) >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function generateModule(seed: number, dir: string): Uint8Array<ArrayBuffer> {
  const input = join(dir, `seed-${seed}.dat`);
  const output = join(dir, `seed-${seed}.wasm`);
  writeFileSync(input, seededBytes(seed, 1000 + ((seed * 7919) % 15000)));
  const r = spawnSync(WASM_OPT, [input, '-ttf', '-o', output, ...TTF_FEATURES], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`wasm-opt -ttf failed for seed ${seed}: ${r.stderr}`);
  return new Uint8Array(readFileSync(output));
}

function show(v: unknown): string {
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return `[${v.map(show).join(',')}]`;
  return v === null || v === undefined ? String(v) : typeof v;
}

export interface FuzzRun {
  readonly trace: string[];
  /** Fuel per completed call, by call index (metered variants). */
  readonly fuel: Map<number, bigint>;
}

export function runVariant(bytes: Uint8Array<ArrayBuffer>, placement: Placement | null): FuzzRun {
  const trace: string[] = [];
  const log =
    (tag: string) =>
    (...args: unknown[]): void => {
      trace.push(`${tag}(${args.map(show).join(',')})`);
    };
  const imports = {
    'fuzzing-support': {
      'log-i32': log('i32'),
      'log-i64': log('i64'),
      'log-f32': log('f32'),
      'log-f64': log('f64'),
      'log-v128': log('v128'),
    },
  };
  const code = placement ? instrument(bytes, { placement, initialFuel: 1n << 50n }).bytes : bytes;
  const fuel = new Map<number, bigint>();
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(code), imports);
  } catch (err) {
    return { trace: [`instantiate: ${(err as Error).message}`], fuel };
  }
  const meter = placement ? new FuelMeter(instance) : null;
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).filter(
    (e) => e.kind === 'function',
  );
  exports.forEach(({ name }, i) => {
    const fn = instance.exports[name] as (...a: unknown[]) => unknown;
    meter?.setBudget(1n << 40n);
    try {
      const args = new Array(fn.length).fill(0);
      trace.push(`${name} -> ${show(fn(...args))}`);
      if (meter) fuel.set(i, meter.used());
    } catch (err) {
      let kind: string;
      if (meter && (meter.exhausted() || meter.depthExceeded())) kind = classifyTrap(meter, err);
      else if (err instanceof RangeError && /call stack/i.test(err.message))
        kind = 'stack_overflow';
      else if (err instanceof WasmException) kind = 'exception';
      else kind = `${(err as Error).constructor.name}: ${(err as Error).message}`;
      trace.push(`${name} !! ${kind}`);
      meter?.reset();
    }
  });
  return { trace, fuel };
}
