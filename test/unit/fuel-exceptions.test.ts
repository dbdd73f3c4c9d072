/**
 * Exceptions caught by JavaScript through instrumented frames (emscripten's `invoke_*`
 * pattern: no wasm `try` in the module; the JS glue calls back into the module's table inside
 * try/catch, and a wasm function deep below throws through an imported JS function, or traps
 * at `unreachable`). The unwound frames never run their exits, so:
 * - fuel: a completed call must still be billed exactly its executed operators (checked
 *   against the per-instruction reference placement, which charges every operator before it
 *   runs), although code after the unwound calls was never run;
 * - depth: the unwound frames never decrement the call-depth counter; 100,000 caught
 *   exceptions must leave the depth limit exactly where it was.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Placement } from '../../src/fuel/placement.ts';
import { meteredInstance, runWithBudget, wat } from '../fuel/harness.ts';

// $thrower (in the table: uses the globals) → $down (internal: carries fuel in parameters)
// recursing $n frames, then throwing through env.throw (a JS function) or trapping. Every
// frame has code after its call that the exception skips. `run` loops calling
// invoke_vi(table index, n) like emscripten's glue, counting the calls that threw.
const MODULE = wat(`(module
  (import "env" "invoke_vii" (func $invoke_vii (param i32 i32 i32)))
  (import "env" "throw" (func $throw (param i32)))
  (import "env" "caught" (func $caught (result i32)))
  (table (export "table") 2 funcref)
  (elem (i32.const 0) $thrower)
  (global $sink (mut i32) (i32.const 0))
  (func $down (param $n i32) (param $how i32) (local $x i32)
    (local.set $x (i32.mul (local.get $n) (i32.const 3)))
    (if (i32.eqz (local.get $n))
      (then
        (if (i32.eq (local.get $how) (i32.const 1)) (then (call $throw (local.get $x))))
        (if (i32.eq (local.get $how) (i32.const 2)) (then (unreachable)))
        (global.set $sink (i32.add (global.get $sink) (i32.const 1)))
        (return)))
    (call $down (i32.sub (local.get $n) (i32.const 1)) (local.get $how))
    ;; Skipped when the call above unwinds.
    (global.set $sink (i32.xor (global.get $sink) (i32.add (local.get $x) (i32.const 17)))))
  (func $thrower (param $n i32) (param $how i32)
    (call $down (local.get $n) (local.get $how))
    (global.set $sink (i32.add (global.get $sink) (i32.const 5))))
  (func $rec (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $rec (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  ;; Non-carrying recursion (exported): reads the depth global at entry.
  (func $deep (export "deep") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $deep (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "rec") (param $n i32) (result i32) (call $rec (local.get $n)))
  ;; iters calls: i % 3 = 0 completes, 1 throws through JS, 2 traps; depth n = i % 7.
  (func (export "run") (param $iters i32) (result i32) (local $i i32) (local $threw i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $iters)))
        (call $invoke_vii (i32.const 0) (i32.rem_u (local.get $i) (i32.const 7))
          (i32.rem_u (local.get $i) (i32.const 3)))
        (local.set $threw (i32.add (local.get $threw) (call $caught)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.add (local.get $threw) (i32.mul (global.get $sink) (i32.const 0)))))`);

class GuestThrow extends Error {}

function instance(placement: Placement, maxCallDepth = 1000) {
  let table: WebAssembly.Table | null = null;
  let caught = 0;
  const m = meteredInstance(
    MODULE,
    { placement, maxCallDepth },
    {
      env: {
        // emscripten's invoke_*: call the table entry; catch what it throws.
        invoke_vii: (idx: number, a: number, b: number) => {
          try {
            (table?.get(idx) as (a: number, b: number) => void)(a, b);
          } catch (err) {
            if (!(err instanceof GuestThrow) && !(err instanceof WebAssembly.RuntimeError))
              throw err;
            caught++;
          }
        },
        throw: (x: number) => {
          throw new GuestThrow(`guest threw ${x}`);
        },
        caught: () => {
          const c = caught;
          caught = 0;
          return c;
        },
      },
    },
  );
  table = m.instance.exports.table as WebAssembly.Table;
  return m;
}

const PLACEMENTS = ['metered-blocks', 'per-instruction'] as const;

describe('exceptions caught by JavaScript through instrumented frames', () => {
  test('a completed call is billed exactly its executed operators (both placements agree)', () => {
    for (const iters of [1, 2, 3, 10, 100, 1000]) {
      const [metered, reference] = PLACEMENTS.map((p) => {
        const r = runWithBudget(instance(p), 'run', [iters], 1_000_000_000n);
        assert.ok(r.ok, `${p}: ${r.ok ? '' : String(r.error)}`);
        return r;
      });
      assert.ok(metered?.ok && reference?.ok);
      // Calls with i % 3 = 1 or 2 threw (through JS, or a trap).
      assert.equal(metered.value, Math.floor((iters + 1) / 3) + Math.floor(iters / 3));
      assert.equal(metered.value, reference.value);
      assert.equal(metered.used, reference.used, `fuel for ${iters} iterations`);
    }
  });

  test('every budget below the exact cost stops out of fuel, although the glue catches traps', () => {
    const exact = runWithBudget(instance('metered-blocks'), 'run', [6], 1_000_000_000n);
    assert.ok(exact.ok);
    for (let b = 0n; b < exact.used; b++) {
      const r = runWithBudget(instance('metered-blocks'), 'run', [6], b);
      assert.ok(!r.ok && r.kind === 'out_of_fuel', `budget ${b} of ${exact.used}`);
    }
  });

  for (const placement of PLACEMENTS) {
    test(`100,000 caught exceptions leave the depth limit where it was (${placement})`, () => {
      const limit = 1000;
      // The first recursion depth that fails (the depth-limit trap); the probe stops there.
      const firstFailing = (m: ReturnType<typeof instance>, name: string): number => {
        for (let n = limit - 3; ; n++) {
          const r = runWithBudget(m, name, [n], 1_000_000_000n);
          if (!r.ok) {
            assert.equal(r.kind, 'stack_overflow', String(r.error));
            return n;
          }
          assert.equal(r.value, n);
        }
      };
      // 'rec' carries its depth in a parameter; 'deep' is exported and reads the global.
      for (const name of ['rec', 'deep']) {
        const m = instance(placement, limit);
        const r = runWithBudget(m, 'run', [150_000], 2n ** 62n);
        assert.ok(r.ok, r.ok ? '' : String(r.error));
        assert.equal(r.value, 100_000, 'exceptions caught');
        assert.equal((m.instance.exports.__hg_depth as WebAssembly.Global).value, 0);
        assert.equal(firstFailing(m, name), firstFailing(instance(placement, limit), name), name);
      }
    });
  }
});
