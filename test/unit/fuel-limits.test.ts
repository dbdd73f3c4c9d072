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
/** A lower bound of each kernel's fuel per counter bump (at cost table hg-costs/2). */
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

describe('instrument: table cap (limits.tableElements)', () => {
  /** Tables `$t0..` declared with `limits`, and `grow(table, n)` / `size(table)` exports. */
  const tables = (...limits: string[]) => {
    const decls = limits.map((l, i) => `(table $t${i} ${l} funcref)`).join(' ');
    const grows = limits
      .map(
        (_, i) =>
          `(if (i32.eq (local.get 0) (i32.const ${i})) (then (return (table.grow $t${i} (ref.null func) (local.get 1)))))`,
      )
      .join(' ');
    const sizes = limits
      .map(
        (_, i) =>
          `(if (i32.eq (local.get 0) (i32.const ${i})) (then (return (table.size $t${i}))))`,
      )
      .join(' ');
    return wat(`(module ${decls}
      (func (export "grow") (param i32 i32) (result i32) ${grows} (i32.const -2))
      (func (export "size") (param i32) (result i32) ${sizes} (i32.const -2)))`);
  };
  const load = (bytes: Uint8Array, cap: number) => {
    const e = new WebAssembly.Instance(
      new WebAssembly.Module(instrument(bytes, { tableMaxElements: cap }).bytes),
    ).exports;
    const fuel = e.__hg_fuel as WebAssembly.Global;
    fuel.value = 1_000_000_000n;
    return {
      grow: e.grow as (t: number, n: number) => number,
      size: e.size as (t: number) => number,
    };
  };

  test('an undeclared or larger maximum is clamped: growing past the cap returns -1', () => {
    const g = load(tables('10'), 100);
    assert.equal(g.grow(0, 90), 10);
    assert.equal(g.grow(0, 1), -1);
    assert.equal(g.grow(0, 1_000_000), -1, 'a huge grow fails at once');
    assert.equal(g.size(0), 100);
    const low = load(tables('1 5'), 100);
    assert.equal(low.grow(0, 5), -1, 'a lower declared maximum is kept');
    assert.equal(low.grow(0, 4), 1);
  });

  test('the cap is shared by every table: several tables cannot grow past it together', () => {
    const g = load(tables('10', '10', '10', '10', '10', '10', '10', '10'), 1_000);
    let total = 0;
    for (let t = 0; t < 8; t++) {
      while (g.grow(t, 50) !== -1);
      while (g.grow(t, 1) !== -1);
      total += g.size(t);
    }
    assert.equal(total, 1_000);
  });

  test('tables whose initial sizes exceed the cap together are refused (HG_WASM_TABLE_LIMIT)', () => {
    assert.throws(() => instrument(tables('2000000'), { tableMaxElements: 10_000 }), {
      code: 'HG_WASM_TABLE_LIMIT',
    });
    assert.throws(() => instrument(tables('6000', '6000'), { tableMaxElements: 10_000 }), {
      code: 'HG_WASM_TABLE_LIMIT',
    });
    assert.doesNotThrow(() => instrument(tables('6000', '4000'), { tableMaxElements: 10_000 }));
  });

  test('table.grow is priced by the elements requested before it runs, even when it fails', () => {
    const bytes = wat(`(module (table $t 1 funcref)
      (func (export "grow") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0))))`);
    const e = new WebAssembly.Instance(
      new WebAssembly.Module(instrument(bytes, { tableMaxElements: 100 }).bytes),
    ).exports;
    const fuel = e.__hg_fuel as WebAssembly.Global;
    const grow = e.grow as (n: number) => number;
    fuel.value = 1_000_000_000n;
    assert.equal(grow(1_000_000), -1);
    // local.get + ref.null + table.grow = 3, plus 1024 per 8 elements requested.
    assert.equal(1_000_000_000n - (fuel.value as bigint), 3n + 125_000n * 1024n);
    fuel.value = 1_000n;
    assert.throws(() => grow(1_000_000), WebAssembly.RuntimeError, 'out of fuel before growing');
  });
});
