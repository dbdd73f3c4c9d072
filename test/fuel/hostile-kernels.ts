/**
 * Four guests that never finish on their own — an infinite loop, a loop-free exponential call
 * tree, a `memory.grow` loop and a bulk-copy loop — each run on a fresh instance under a
 * budget. Each reports how it ended, the fuel left and a hash of its memory, so a test can
 * check that the same budget stops at the same point in every run and in every V8 tier
 * (test/fuel/determinism-child.ts runs this under `--liftoff-only` and `--no-liftoff`).
 */
import { createHash } from 'node:crypto';
import { instrument } from '../../src/fuel/instrument.ts';
import { FuelMeter } from '../../src/fuel/meter.ts';
import { wat } from './harness.ts';

export const KERNELS = ['loop', 'tree', 'grow', 'copy'] as const;
export type Kernel = (typeof KERNELS)[number];

// Every kernel bumps a counter in memory as it goes, so where it stopped shows in the hash.
const SOURCE = `(module
  (memory (export "memory") 1)
  (func $bump (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))
  (func (export "loop") (local $x i64)
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005)) (i64.const 1)))
      (i64.store (i32.const 8) (local.get $x))
      (call $bump)
      (br $l)))
  (func $tree (param $d i32)
    (if (i32.eqz (local.get $d)) (then (call $bump) (return)))
    (call $tree (i32.sub (local.get $d) (i32.const 1)))
    (call $tree (i32.sub (local.get $d) (i32.const 1))))
  (func (export "tree") (call $tree (i32.const 60)))
  (func (export "grow")
    (loop $l
      (drop (memory.grow (i32.const 1)))
      (call $bump)
      (br $l)))
  (func (export "copy")
    (loop $l
      (memory.copy (i32.const 32768) (i32.const 16) (i32.const 16384))
      (call $bump)
      (br $l))))`;

export interface KernelResult {
  readonly outcome: string;
  readonly remaining: string;
  readonly memoryHash: string;
  readonly pages: number;
  /** How many times the kernel bumped its counter (iterations, leaves). */
  readonly counter: number;
}

export function runHostileKernels(budget: bigint): Record<Kernel, KernelResult> {
  const { bytes } = instrument(wat(SOURCE), { memoryMaxPages: 16 });
  const module = new WebAssembly.Module(bytes);
  const out = {} as Record<Kernel, KernelResult>;
  for (const name of KERNELS) {
    const instance = new WebAssembly.Instance(module);
    const meter = new FuelMeter(instance);
    meter.setBudget(budget);
    let error: unknown;
    try {
      (instance.exports[name] as () => void)();
    } catch (err) {
      error = err;
    }
    const memory = instance.exports.memory as WebAssembly.Memory;
    out[name] = {
      outcome: meter.settle(error ?? undefined).outcome,
      remaining: String(meter.remaining()),
      memoryHash: createHash('sha256').update(new Uint8Array(memory.buffer)).digest('hex'),
      pages: memory.buffer.byteLength / 65_536,
      counter: new Int32Array(memory.buffer, 0, 1)[0] as number,
    };
  }
  return out;
}
