/**
 * Fuel as a limit: guests that never finish end out_of_fuel within their budget, at the same
 * point every time (fresh instances, Liftoff and TurboFan); and the memory cap.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { instrument } from '../../src/fuel/instrument.ts';
import { wat } from '../fuel/harness.ts';
import { KERNELS, runHostileKernels } from '../fuel/hostile-kernels.ts';

const BUDGET = 3_000_000n;
/** A lower bound of each kernel's fuel per counter bump (at cost table hg-costs/1). */
const MIN_COST = { loop: 10, tree: 5, grow: 1024, copy: 256 } as const;

describe('out of fuel', () => {
  const first = runHostileKernels(BUDGET);

  for (const kernel of KERNELS) {
    test(`${kernel}: ends out_of_fuel without overspending; a fresh instance stops at the same point`, () => {
      const r = first[kernel];
      assert.equal(r.outcome, 'out_of_fuel');
      // No work past the budget: each iteration (leaf) costs at least MIN_COST, so the
      // iterations done cannot add up to more than the budget. The counter is left at most
      // one metered block below zero when the trap hits (a trap is billed in full anyway).
      assert.ok(r.counter > 0 && BigInt(r.counter * MIN_COST[kernel]) <= BUDGET, `${r.counter}`);
      assert.ok(BigInt(r.remaining) > -2_000n, `remaining ${r.remaining}`);
      assert.deepEqual(runHostileKernels(BUDGET)[kernel], r);
    });
  }

  test('a larger budget gets further (the hash depends on where it stopped)', () => {
    const more = runHostileKernels(BUDGET * 2n);
    for (const kernel of KERNELS)
      assert.notEqual(more[kernel].memoryHash, first[kernel].memoryHash);
  });

  test('the same budget stops at the same point under --liftoff-only and --no-liftoff', () => {
    const child = fileURLToPath(new URL('../fuel/determinism-child.ts', import.meta.url));
    const tiers = ['--liftoff-only', '--no-liftoff'].map((flag) => {
      const r = spawnSync(process.execPath, [flag, '--import', 'tsx', child, String(BUDGET)], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as typeof first;
    });
    assert.deepEqual(tiers[0], first);
    assert.deepEqual(tiers[1], first);
  });
});

describe('instrument: memory cap', () => {
  const grower = (limits: string) =>
    wat(`(module (memory (export "memory") ${limits})
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "run") (result i32) (i32.const 0)))`);

  test('an undeclared maximum becomes the cap; growing past it fails', () => {
    const { bytes } = instrument(grower('1'), { memoryMaxPages: 4 });
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    const grow = exports.grow as (n: number) => number;
    assert.equal(grow(3), 1);
    assert.equal(grow(1), -1);
    assert.equal((exports.memory as WebAssembly.Memory).buffer.byteLength, 4 * 65_536);
  });

  test('a lower declared maximum is kept; a higher one is clamped', () => {
    const low = new WebAssembly.Module(instrument(grower('1 2'), { memoryMaxPages: 8 }).bytes);
    assert.equal((new WebAssembly.Instance(low).exports.grow as (n: number) => number)(2), -1);
    const high = new WebAssembly.Module(instrument(grower('1 1000'), { memoryMaxPages: 8 }).bytes);
    const grow = new WebAssembly.Instance(high).exports.grow as (n: number) => number;
    assert.equal(grow(7), 1);
    assert.equal(grow(1), -1);
  });

  test('a module whose initial memory is over the cap is refused', () => {
    assert.throws(
      () => instrument(grower('16'), { memoryMaxPages: 8 }),
      /exceeds the cap of 8 pages/,
    );
  });
});
