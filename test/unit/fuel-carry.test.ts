/**
 * Fuel carried in parameters: functions reached by direct calls only get their fuel (i64) and
 * call depth (i32) as two extra parameters and return their remaining fuel as an extra result.
 * Checked here: the exact fuel equals the per-instruction reference on the shapes that touch
 * the rewrite (renumbered locals, multi-value results, `return`, branches to the function
 * label, host calls and indirect calls from a carrying function), exported and table functions
 * keep their types, and the depth limit trips at the same depth whether or not the recursive
 * function carries, including through a host callback.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { instrument } from '../../src/fuel/instrument.ts';
import { fuelOf, meteredInstance, runWithBudget, wat } from '../fuel/harness.ts';
import type { Imports } from '../fuel/harness.ts';
import { readTypes, SectionId, splitSections } from '../../src/wasm/sections.ts';

function typeCount(bytes: Uint8Array): number {
  const sec = splitSections(bytes).find((x) => x.id === SectionId.type);
  return sec ? readTypes(bytes, sec).length : 0;
}

const SHAPES = wat(`(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (type $ii (func (param i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $in_table)
  (func $in_table (type $ii) (i32.mul (local.get 0) (i32.const 3)))
  (func $locals (param $a i32) (param $b i32) (result i32) (local $x i32) (local $y i64)
    (local.set $x (i32.add (local.get $a) (local.get $b)))
    (local.set $y (i64.extend_i32_u (local.get $x)))
    (i32.wrap_i64 (i64.add (local.get $y) (i64.const 5))))
  (func $pair (param $n i32) (result i32 i32) (local $t i32)
    (local.tee $t (i32.add (local.get $n) (i32.const 1)))
    (i32.mul (local.get $t) (i32.const 2)))
  (func $early (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 10)) (then (return (i32.const 99))))
    (block $b (drop (br_if 1 (i32.const 7) (i32.eqz (local.get $n)))))
    (i32.add (local.get $n) (i32.const 1)))
  (func $calls_out (param $n i32) (result i32) (local $k i32)
    (local.set $k (call $host (local.get $n)))
    (i32.add (local.get $k) (call_indirect (type $ii) (local.get $n) (i32.const 0))))
  (func $leaf2 (param $a i32) (result i32)
    (if (result i32) (local.get $a)
      (then (i32.add (local.get $a) (i32.const 1)))
      (else (i32.const 7) (i32.const 8) (i32.mul))))
  (func $mid (param $n i32) (result i32)
    (i32.add (call $leaf2 (local.get $n)) (call $early (local.get $n)))
    (call $leaf2 (i32.const 0))
    (i32.add))
  (func $loop (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (i32.add (local.get $s) (call $locals (local.get $i) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $s))
  (func (export "locals") (param i32) (result i32) (call $locals (local.get 0) (i32.const 4)))
  (func (export "pair") (param i32) (result i32) (i32.sub (call $pair (local.get 0))))
  (func (export "early") (param i32) (result i32) (call $early (local.get 0)))
  (func (export "calls_out") (param i32) (result i32) (call $calls_out (local.get 0)))
  (func (export "loop") (param i32) (result i32) (call $loop (local.get 0)))
  (func (export "mid") (param i32) (result i32) (call $mid (local.get 0))))`);

const hostImports: Imports = { env: { host: (n: number) => n + 100 } };

describe('fuel carried in parameters', () => {
  const cases: [string, number[], number][] = [
    ['locals', [3], 12],
    ['pair', [4], -5],
    ['early', [0], 7],
    ['early', [5], 6],
    ['early', [50], 99],
    ['calls_out', [2], 108],
    ['loop', [10], 105],
    ['mid', [0], 119],
    ['mid', [3], 64],
  ];
  for (const [name, args, result] of cases) {
    test(`${name}(${args.join(', ')}) = ${result}, with the per-instruction fuel`, () => {
      const used = fuelOf(SHAPES, name, args, hostImports);
      assert.ok(used > 0n);
      const m = meteredInstance(SHAPES, {}, hostImports);
      const r = runWithBudget(m, name, args, 1_000_000n);
      assert.ok(r.ok);
      assert.equal(r.value, result);
      assert.equal(r.used, used);
    });
  }

  test('no budget below the exact cost completes (leaf callers check for their callees)', () => {
    const module = new WebAssembly.Module(instrument(SHAPES).bytes);
    for (const [name, args] of cases) {
      const used = fuelOf(SHAPES, name, args, hostImports);
      let completedBelow = -1;
      for (let budget = 0n; budget < used; budget++) {
        const inst = new WebAssembly.Instance(module, hostImports);
        (inst.exports.__hg_fuel as WebAssembly.Global).value = budget;
        try {
          (inst.exports[name] as (...a: number[]) => number)(...args);
          completedBelow = Number(budget);
          break;
        } catch {
          assert.equal((inst.exports.__hg_fuel_exhausted as WebAssembly.Global).value, 1);
        }
      }
      assert.equal(
        completedBelow,
        -1,
        `${name}(${args.join(', ')}) completed on ${completedBelow} < ${used}`,
      );
    }
  });

  test('exported and table functions keep their types; internal ones carry', () => {
    const out = instrument(SHAPES).bytes;
    const before = new WebAssembly.Module(SHAPES);
    const after = new WebAssembly.Module(out);
    assert.deepEqual(
      WebAssembly.Module.exports(after).filter((e) => !e.name.startsWith('__hg_')),
      WebAssembly.Module.exports(before),
    );
    assert.deepEqual(WebAssembly.Module.imports(after), WebAssembly.Module.imports(before));
    const inst = new WebAssembly.Instance(after, hostImports);
    assert.equal((inst.exports.locals as (n: number) => number).length, 1);
    // Internal functions carry: one appended type per distinct signature.
    assert.ok(typeCount(out) > typeCount(SHAPES));
  });

  test('a host function called from a carrying function sees the synced fuel global', () => {
    let seen = -1n;
    const m = meteredInstance(
      SHAPES,
      {},
      {
        env: {
          host: (n: number) => {
            seen = m.meter.remaining();
            return n;
          },
        },
      },
    );
    m.meter.setBudget(1000);
    (m.exports.calls_out as (n: number) => number)(1);
    assert.ok(seen > 0n && seen < 1000n, `fuel seen by the host: ${seen}`);
  });
});

describe('escaping functions carry through a twin', () => {
  test('an exported function called directly and from JS uses the exact fuel both ways', () => {
    const bytes = wat(`(module
      (func $sq (export "sq") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
      (func (export "twice") (param i32) (result i32)
        (call $sq (call $sq (local.get 0)))))`);
    assert.equal(fuelOf(bytes, 'sq', [3]), 3n);
    assert.equal(fuelOf(bytes, 'twice', [3]), 3n + 2n * 3n);
    const r = runWithBudget(meteredInstance(bytes), 'twice', [3], 100n);
    assert.ok(r.ok);
    assert.equal(r.value, 81);
  });
});

describe('modules where no function carries', () => {
  test('tail calls: instrumented without carrying, exact fuel', () => {
    const bytes = wat(`(module
      (func $count (param $n i32) (param $acc i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (local.get $acc))
          (else (return_call $count (i32.sub (local.get $n) (i32.const 1))
                                    (i32.add (local.get $acc) (i32.const 2))))))
      (func $helper (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func (export "run") (param i32) (result i32)
        (call $helper (call $count (local.get 0) (i32.const 0)))))`);
    assert.equal(fuelOf(bytes, 'run', [50]), fuelOf(bytes, 'run', [50]));
    const m = meteredInstance(bytes);
    const r = runWithBudget(m, 'run', [50], 1_000_000n);
    assert.ok(r.ok);
    assert.equal(r.value, 101);
    assert.equal(r.used, fuelOf(bytes, 'run', [50]));
    // No appended function type: nothing carries.
    assert.equal(typeCount(instrument(bytes).bytes), typeCount(bytes));
  });

  test('functions in an element segment expression, or the start function, do not carry', () => {
    const bytes = wat(`(module
      (table 2 funcref)
      (global $g funcref (ref.func $in_global))
      (elem (table 0) (i32.const 0) funcref (ref.func $in_expr))
      (func $in_expr (result i32) (i32.const 3))
      (func $in_global (result i32) (i32.const 4))
      (func $start)
      (start $start)
      (func (export "run") (result i32)
        (i32.add (call $in_expr) (call $in_global))))`);
    const r = runWithBudget(meteredInstance(bytes), 'run', [], 1000n);
    assert.ok(r.ok);
    assert.equal(r.value, 7);
    assert.equal(r.used, fuelOf(bytes, 'run'));
  });
});

describe('the depth limit does not depend on carrying', () => {
  const rec = (exported: boolean) =>
    wat(`(module
      (import "env" "cb" (func $cb (param i32) (result i32)))
      (func $rec ${exported ? '(export "rec")' : ''} (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 0))
          (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get $n) (i32.const 1)))))))
      (func $via_host (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 0))
          (else (call $cb (i32.sub (local.get $n) (i32.const 1))))))
      (func (export "run") (param i32) (result i32) (call $rec (local.get 0)))
      (func (export "host_rec") (param i32) (result i32) (call $via_host (local.get 0))))`);

  /**
   * The largest n for which `name(n)` completes under maxCallDepth 50. The per-instruction
   * reference placement keeps the depth in the global only (nothing carries).
   */
  function deepest(
    bytes: Uint8Array,
    name: string,
    placement: 'metered-blocks' | 'per-instruction' = 'metered-blocks',
  ): number {
    for (let n = 0; n < 200; n++) {
      let inner: ((k: number) => number) | null = null;
      const m = meteredInstance(
        bytes,
        { maxCallDepth: 50, placement },
        { env: { cb: (k: number) => (inner as (k: number) => number)(k) } },
      );
      inner = m.exports.host_rec as (k: number) => number;
      const r = runWithBudget(m, name, [n], 1_000_000n);
      if (!r.ok) {
        assert.equal(r.kind, 'stack_overflow', `${name}(${n}): ${String(r.error)}`);
        return n - 1;
      }
    }
    throw new Error('no depth trap');
  }

  test('direct recursion: carried in place, through a twin, and in the global alone agree', () => {
    const inPlace = deepest(rec(false), 'run');
    assert.equal(deepest(rec(true), 'run'), inPlace);
    assert.equal(deepest(rec(false), 'run', 'per-instruction'), inPlace);
    assert.ok(inPlace > 10 && inPlace < 50, `deepest ${inPlace}`);
  });

  test('recursion through a host callback counts every frame', () => {
    const inPlace = deepest(rec(false), 'host_rec');
    assert.equal(deepest(rec(true), 'host_rec'), inPlace);
    assert.equal(deepest(rec(false), 'host_rec', 'per-instruction'), inPlace);
  });

  test('an exported recursive function called from JS directly', () => {
    assert.equal(deepest(rec(true), 'rec'), deepest(rec(true), 'rec', 'per-instruction'));
  });
});
