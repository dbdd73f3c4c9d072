/**
 * Carrying twins: a function escaping by export only keeps a wrapper at its index (what
 * JavaScript calls) and its body moves to an appended carrying twin, which direct calls reach.
 * Checked: fuel equals the per-instruction reference whether the function is entered from
 * JavaScript or from inside, the module's exports keep their types, no budget below the exact
 * cost completes, and the depth limit trips at the same depth as the reference placement.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { instrument } from '../../src/fuel/instrument.ts';
import { fuelOf, meteredInstance, runWithBudget, wat } from '../fuel/harness.ts';

const MODULE = wat(`(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func $pair (export "pair") (param $a i32) (param $b i64) (result i64 i32) (local $t i64)
    (local.set $t (i64.mul (local.get $b) (i64.extend_i32_u (local.get $a))))
    (block $out
      (br_if $out (i32.eqz (local.get $a)))
      (return (local.get $t) (i32.const 1)))
    (local.get $t) (i32.const 0))
  (func (export "both") (param $n i32) (result i32)
    (call $pair (local.get $n) (i64.const 3))
    (drop)
    (i32.wrap_i64)
    (i32.add (call $fib (local.get $n)))))`);

describe('carrying twins of exported functions', () => {
  const cases: [string, number[], unknown][] = [
    ['fib', [0], 0],
    ['fib', [10], 55],
    ['both', [0], 0],
    ['both', [7], 21 + 13],
  ];
  for (const [name, args, result] of cases) {
    test(`${name}(${args.join(', ')}): the per-instruction fuel; no budget below it completes`, () => {
      const used = fuelOf(MODULE, name, args);
      const m = meteredInstance(MODULE);
      const r = runWithBudget(m, name, args, 1_000_000n);
      assert.ok(r.ok);
      assert.equal(r.value, result);
      assert.equal(r.used, used);
      for (let b = 0n; b < used; b++) {
        const rb = runWithBudget(meteredInstance(MODULE), name, args, b);
        assert.ok(!rb.ok && rb.kind === 'out_of_fuel', `budget ${b} of ${used}`);
      }
    });
  }

  test('multi-value exports keep their types through the wrapper', () => {
    const used = fuelOf(MODULE, 'pair', [2, 5n]);
    const m = meteredInstance(MODULE);
    const r = runWithBudget(m, 'pair', [2, 5n], 1_000_000n);
    assert.ok(r.ok);
    assert.deepEqual(r.value, [10n, 1]);
    assert.equal(r.used, used);
    const out = instrument(MODULE).bytes;
    assert.deepEqual(
      WebAssembly.Module.exports(new WebAssembly.Module(out)).filter(
        (e) => !e.name.startsWith('__hg_'),
      ),
      WebAssembly.Module.exports(new WebAssembly.Module(MODULE)),
    );
  });

  test('the depth limit trips at the same depth as the reference placement', () => {
    const firstFailing = (placement: 'metered-blocks' | 'per-instruction'): number => {
      for (let n = 8; ; n++) {
        // fib(n) nests n frames below the export: the limit trips at n = maxCallDepth.
        const r = runWithBudget(
          meteredInstance(MODULE, { placement, maxCallDepth: 12 }),
          'fib',
          [n],
          1_000_000_000n,
        );
        if (!r.ok) {
          assert.equal(r.kind, 'stack_overflow');
          return n;
        }
      }
    };
    assert.equal(firstFailing('metered-blocks'), firstFailing('per-instruction'));
  });
});

// Refunding br_ifs before and after a call in one metered block: the check after the call must
// cover the exit after it, whose path costs more than the callee leaves (a threshold of 0
// there fails this test).
const EXITS = wat(`(module
  (func $leaf (export "leaf") (param $a i32) (result i32)
    (i32.add (i32.mul (local.get $a) (i32.const 3)) (i32.const 7))
    (i32.add (i32.mul (local.get $a) (i32.const 5)) (i32.const 9))
    (i32.xor (i32.add (i32.mul (local.get $a) (i32.const 11)) (i32.const 13)))
    (i32.xor))
  (func (export "run") (param $n i32) (param $stop i32) (result i32) (local $i i32) (local $acc i32)
    (block $b2
      (block $b1
        (loop $l
          (br_if $b2 (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $acc (i32.xor (local.get $acc) (call $leaf (local.get $i))))
          (br_if $b1 (i32.eq (local.get $i) (local.get $stop)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
      ;; Only the exit after the call runs this.
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 5)) (i32.const 1)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 7)) (i32.const 3))))
    (i32.add (local.get $acc) (i32.mul (local.get $i) (i32.const 1000)))))`);

describe('checks after calls in blocks with refunding exits', () => {
  for (const args of [
    [0, 9],
    [4, 9],
    [6, 2],
    [6, 0],
  ]) {
    test(`run(${args.join(', ')}): the per-instruction fuel; no budget below it completes`, () => {
      const used = fuelOf(EXITS, 'run', args);
      for (let b = 0n; b < used; b++) {
        const r = runWithBudget(meteredInstance(EXITS), 'run', args, b);
        assert.ok(!r.ok && r.kind === 'out_of_fuel', `budget ${b} of ${used}`);
      }
      const r = runWithBudget(meteredInstance(EXITS), 'run', args, 1_000_000n);
      assert.ok(r.ok && r.used === used);
    });
  }
});
