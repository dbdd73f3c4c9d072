/**
 * Private tables (`ModuleFacts.privateTable`, placement.ts): when no table is imported or
 * exported, no imported function or global can reach an element segment and no body mutates
 * a table (`table.set`, `table.grow`, `table.fill`), an indirect call reaches only the
 * module's own functions, so it skips the host checks (depth restore, exhausted flag) that an
 * indirect call which may reach JavaScript needs. Checked here:
 * - fuel: both placements agree, with and without the private table, on every budget below
 *   the exact cost (out of fuel) and on completed calls, including exceptions thrown through
 *   the indirect call and caught by JavaScript glue reached by an import;
 * - the analysis: a private table gives smaller output than the same module with its table
 *   exported; `table.set` (a function from outside may enter the table) and an imported
 *   function in an element segment keep the host checks: a JavaScript function reached
 *   through the table that catches an exception thrown through instrumented frames leaves the
 *   depth counter where it was.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { instrument } from '../../src/fuel/instrument.ts';
import type { Placement } from '../../src/fuel/placement.ts';
import { fuelOf, meteredInstance, runWithBudget, wat } from '../fuel/harness.ts';

const PLACEMENTS = ['metered-blocks', 'per-instruction'] as const;

// `run` calls table entries in a loop (through `dispatch`, recursing through carrying and
// non-carrying frames); `invoke` (JS) calls `dispatch` back inside try/catch, like emscripten's
// glue, and $down throws through env.throw at the bottom on every third call.
const privateModule = (table: string, extra = ''): Uint8Array<ArrayBuffer> =>
  wat(`(module
  (import "env" "invoke" (func $invoke (param i32 i32 i32)))
  (import "env" "throw" (func $throw (param i32)))
  (type $vii (func (param i32 i32)))
  (type $ii (func (param i32) (result i32)))
  ${table}
  (elem (i32.const 0) $thrower $twice $sq)
  (global $sink (mut i32) (i32.const 0))
  (func $down (param $n i32) (param $how i32) (local $x i32)
    (local.set $x (i32.mul (local.get $n) (i32.const 3)))
    (if (i32.eqz (local.get $n))
      (then
        (if (i32.eq (local.get $how) (i32.const 1)) (then (call $throw (local.get $x))))
        (global.set $sink (i32.add (global.get $sink) (i32.const 1)))
        (return)))
    (call $down (i32.sub (local.get $n) (i32.const 1)) (local.get $how))
    (global.set $sink (i32.xor (global.get $sink) (i32.add (local.get $x) (i32.const 17)))))
  (func $thrower (param $n i32) (param $how i32)
    (call $down (local.get $n) (local.get $how))
    (global.set $sink (i32.add (global.get $sink) (i32.const 5))))
  (func $twice (param $x i32) (result i32)
    (i32.add (call_indirect (type $ii) (local.get $x) (i32.const 2)) (i32.const 1)))
  (func $sq (param $x i32) (result i32) (i32.mul (local.get $x) (local.get $x)))
  (func (export "dispatch") (param $n i32) (param $how i32)
    (call_indirect (type $vii) (local.get $n) (local.get $how) (i32.const 0))
    (global.set $sink (i32.add (global.get $sink) (i32.const 2))))
  ;; Indirect calls in a loop, and through JS (invoke) on every fourth iteration.
  (func (export "run") (param $iters i32) (result i32) (local $i i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $iters)))
        (local.set $acc (i32.add (local.get $acc)
          (call_indirect (type $ii) (local.get $i) (i32.const 1))))
        (if (i32.eqz (i32.and (local.get $i) (i32.const 3)))
          (then (call $invoke (i32.rem_u (local.get $i) (i32.const 5))
            (i32.rem_u (local.get $i) (i32.const 3)) (i32.const 0))))
        (call_indirect (type $vii) (i32.rem_u (local.get $i) (i32.const 4)) (i32.const 0)
          (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.add (local.get $acc) (global.get $sink)))
  ${extra})`);

class GuestThrow extends Error {}

function imports(self: () => WebAssembly.Instance) {
  return {
    env: {
      invoke: (n: number, how: number) => {
        try {
          (self().exports.dispatch as (n: number, how: number) => void)(n, how);
        } catch (err) {
          if (!(err instanceof GuestThrow)) throw err;
        }
      },
      throw: (x: number) => {
        throw new GuestThrow(`guest threw ${x}`);
      },
    },
  };
}

function instance(bytes: Uint8Array, placement: Placement) {
  let inst: WebAssembly.Instance | null = null;
  const m = meteredInstance(
    bytes,
    { placement },
    imports(() => inst as WebAssembly.Instance),
  );
  inst = m.instance;
  return m;
}

const PRIVATE = privateModule('(table 3 funcref)');
const EXPORTED = privateModule('(table (export "table") 3 funcref)');

describe('indirect calls through a private table', () => {
  test('the host checks after indirect calls go only where the table is private', () => {
    // What instrumenting adds (the export of the table itself is in both sides' input).
    const growth = (b: Uint8Array): number => instrument(b).bytes.length - b.length;
    const priv = growth(PRIVATE);
    const exported = growth(EXPORTED);
    // Four call_indirect sites lose their depth restore and flag check each.
    assert.ok(priv < exported, `private ${priv} bytes, exported ${exported}`);
    // table.set anywhere, or an imported function in a segment: the checks stay.
    const withSet = privateModule(
      '(table 3 funcref)',
      '(func (export "put") (param funcref) (table.set (i32.const 2) (local.get 0)))',
    );
    const withSetExported = privateModule(
      '(table (export "table") 3 funcref)',
      '(func (export "put") (param funcref) (table.set (i32.const 2) (local.get 0)))',
    );
    assert.equal(growth(withSet), growth(withSetExported));
    const importInSegment = privateModule('(table 4 funcref)', '(elem (i32.const 3) $throw)');
    const importInSegmentExported = privateModule(
      '(table (export "table") 4 funcref)',
      '(elem (i32.const 3) $throw)',
    );
    assert.equal(growth(importInSegment), growth(importInSegmentExported));
  });

  test('completed calls: the same fuel in both placements, private or not', () => {
    for (const bytes of [PRIVATE, EXPORTED]) {
      for (const iters of [1, 2, 5, 17, 100]) {
        const [metered, reference] = PLACEMENTS.map((p) => {
          const r = runWithBudget(instance(bytes, p), 'run', [iters], 1_000_000_000n);
          assert.ok(r.ok, `${p}: ${r.ok ? '' : String(r.error)}`);
          return r;
        });
        assert.ok(metered?.ok && reference?.ok);
        assert.equal(metered.value, reference.value);
        assert.equal(metered.used, reference.used, `fuel for ${iters} iterations`);
      }
    }
  });

  test('every budget below the exact cost stops out of fuel', () => {
    const exact = runWithBudget(instance(PRIVATE, 'metered-blocks'), 'run', [9], 1_000_000_000n);
    assert.ok(exact.ok);
    for (let b = 0n; b < exact.used; b++) {
      const r = runWithBudget(instance(PRIVATE, 'metered-blocks'), 'run', [9], b);
      assert.ok(!r.ok && r.kind === 'out_of_fuel', `budget ${b} of ${exact.used}`);
    }
  });

  test('caught exceptions leave the depth counter at 0 (private table)', () => {
    const m = instance(PRIVATE, 'metered-blocks');
    const r = runWithBudget(m, 'run', [20_000], 2n ** 62n);
    assert.ok(r.ok, r.ok ? '' : String(r.error));
    assert.equal((m.instance.exports.__hg_depth as WebAssembly.Global).value, 0);
  });

  test('table.set keeps the host checks: JavaScript reached through the table may catch', () => {
    // `put` stores a function from outside (another module's export, which calls JavaScript)
    // in the table; that JavaScript calls back into `deep`, which throws at the bottom, and
    // catches. Without the depth restore after the indirect call, the depth counter would stay
    // where the unwound frames left it.
    const bytes = wat(`(module
      (import "env" "throw" (func $throw))
      (type $v (func))
      (table 2 funcref)
      ;; In the table, so $run keeps the global counters (it does not carry).
      (elem (i32.const 1) $run)
      (func (export "put") (param funcref) (table.set (i32.const 0) (local.get 0)))
      (func $deep (export "deep") (param $n i32)
        (if (i32.eqz (local.get $n)) (then (call $throw) (return)))
        (call $deep (i32.sub (local.get $n) (i32.const 1))))
      (func $run (export "run") (param $k i32) (result i32) (local $i i32)
        (block $done
          (loop $l
            (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
            (call_indirect (type $v) (i32.const 0))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))
        (local.get $i)))`);
    const bridge = wat(`(module
      (import "env" "cb" (func $cb))
      (func (export "f") (call $cb)))`);
    for (const placement of PLACEMENTS) {
      let m: ReturnType<typeof meteredInstance> | null = null;
      m = meteredInstance(
        bytes,
        { placement, maxCallDepth: 100 },
        {
          env: {
            throw: () => {
              throw new GuestThrow('deep');
            },
          },
        },
      );
      const mm = m;
      const other = new WebAssembly.Instance(new WebAssembly.Module(bridge), {
        env: {
          cb: () => {
            try {
              (mm.exports.deep as (n: number) => void)(20);
            } catch (err) {
              if (!(err instanceof GuestThrow)) throw err;
            }
          },
        },
      });
      (m.exports.put as (f: unknown) => void)(other.exports.f);
      // 50 iterations × 21 unwound frames: far past the limit of 100 if nothing restored it.
      const r = runWithBudget(m, 'run', [50], 1_000_000_000n);
      assert.ok(r.ok, `${placement}: ${r.ok ? '' : String(r.error)}`);
      assert.equal(r.value, 50);
      assert.equal((m.instance.exports.__hg_depth as WebAssembly.Global).value, 0, placement);
    }
  });

  test('fuel of a module with table.grow and table.fill agrees between placements', () => {
    const bytes = wat(`(module
      (type $ii (func (param i32) (result i32)))
      (table 2 funcref)
      (elem (i32.const 0) $inc $dbl)
      (elem declare func $inc)
      (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func $dbl (param i32) (result i32) (i32.shl (local.get 0) (i32.const 1)))
      (func (export "run") (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (drop (table.grow (ref.func $inc) (i32.const 6)))
        (table.fill (i32.const 4) (ref.func $inc) (i32.const 2))
        (block $done
          (loop $l
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $acc (call_indirect (type $ii) (local.get $acc)
              (i32.rem_u (local.get $i) (table.size))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))
        (local.get $acc)))`);
    assert.ok(fuelOf(bytes, 'run', [40]) > 0n);
  });
});
