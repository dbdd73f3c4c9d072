/**
 * Test helpers for the fuel instrumenter: compile WAT with wabt (every feature Node 20 runs),
 * instrument, instantiate, and run an export under a budget with both placements.
 */
import wabtInit from 'wabt';
import { instrument } from '../../src/fuel/instrument.ts';
import type { InstrumentOptions } from '../../src/fuel/instrument.ts';
import { FuelMeter, classifyTrap } from '../../src/fuel/meter.ts';
import type { TrapKind } from '../../src/fuel/meter.ts';

const wabt = await wabtInit();

export const WAT_FEATURES = {
  exceptions: true,
  mutable_globals: true,
  sat_float_to_int: true,
  sign_extension: true,
  simd: true,
  threads: true,
  multi_value: true,
  tail_call: true,
  bulk_memory: true,
  reference_types: true,
} as const;

export function wat(source: string): Uint8Array<ArrayBuffer> {
  const mod = wabt.parseWat('test.wat', source, WAT_FEATURES);
  try {
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

export type Imports = Record<string, Record<string, WebAssembly.ImportValue>>;

export interface Metered {
  readonly instance: WebAssembly.Instance;
  readonly meter: FuelMeter;
  readonly exports: Record<string, unknown>;
}

export function meteredInstance(
  bytes: Uint8Array,
  opts: InstrumentOptions = {},
  imports: Imports = {},
): Metered {
  const out = instrument(bytes, opts).bytes;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(out), imports);
  return { instance, meter: new FuelMeter(instance), exports: instance.exports };
}

export type RunResult =
  | {
      readonly ok: true;
      readonly value: unknown;
      readonly used: bigint;
      readonly remaining: bigint;
    }
  | {
      readonly ok: false;
      readonly kind: TrapKind;
      readonly remaining: bigint;
      readonly error: unknown;
    };

export function runWithBudget(
  m: Metered,
  name: string,
  args: readonly unknown[],
  budget: bigint | number,
): RunResult {
  m.meter.setBudget(budget);
  const fn = m.exports[name];
  if (typeof fn !== 'function') throw new Error(`no export ${name}`);
  try {
    const value: unknown = (fn as (...a: unknown[]) => unknown)(...args);
    return { ok: true, value, used: m.meter.used(), remaining: m.meter.remaining() };
  } catch (error) {
    return { ok: false, kind: classifyTrap(m.meter, error), remaining: m.meter.remaining(), error };
  }
}

/** Fuel used by a completed call, checked equal under both placements. */
export function fuelOf(
  bytes: Uint8Array,
  name: string,
  args: readonly unknown[] = [],
  imports: Imports = {},
  opts: InstrumentOptions = {},
): bigint {
  const results = (['metered-blocks', 'per-instruction'] as const).map((placement) => {
    const r = runWithBudget(
      meteredInstance(bytes, { ...opts, placement }, imports),
      name,
      args,
      1_000_000_000n,
    );
    if (!r.ok) throw new Error(`${name} (${placement}) did not complete: ${String(r.error)}`);
    return r.used;
  });
  if (results[0] !== results[1]) {
    throw new Error(`placements disagree on ${name}: ${results[0]} vs ${results[1]}`);
  }
  return results[0] as bigint;
}
