/**
 * Dispatch loops (src/fuel/dispatch-loops.ts, docs/fuel.md placement item 7): Go's shape, one
 * `loop` dispatching on a resume index through a `br_table` into nested blocks, every jump
 * `i32.const K; local.set $pc; br $loop`. Planned as a dispatch, only jumps to the same or an
 * earlier case check. Random dispatch functions (forward, backward and conditional jumps,
 * fall-through between cases, jumps out through the table's default, calls inside cases,
 * every entry index) are compared against the per-instruction reference placement, and every
 * budget below a call's exact cost must stop out of fuel.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { instrument } from '../../src/fuel/instrument.ts';
import { matchDispatch } from '../../src/fuel/dispatch-loops.ts';
import { FuelMeter } from '../../src/fuel/meter.ts';
import { meteredInstance, runWithBudget, wat } from '../fuel/harness.ts';

/** A small deterministic generator (xorshift32). */
function rng(seed: number): (n: number) => number {
  let s = seed * 2654435761 || 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/**
 * A dispatch function with n cases. `gap` inserts a `nop` between `local.set $pc` and `br`
 * in every jump, which breaks the pattern (the loop is planned as an ordinary loop).
 */
function dispatchModule(seed: number, gap = false): { bytes: Uint8Array; entries: number } {
  const rand = rng(seed);
  const n = 2 + rand(7);
  // Resume index → case (non-decreasing, like Go's), then the default: out of the loop.
  const map: number[] = [];
  for (let c = 0; c < n; c++) for (let k = rand(2); k >= 0; k--) map.push(c);
  const entries = map.length; // index `entries` is the default
  const labels = [...map.map((c) => String(c)), String(n + 1)].join(' ');
  const indexOf = (c: number): number => map.indexOf(c);
  const jump = (k: number): string => `i32.const ${k} local.set $pc ${gap ? 'nop ' : ''}br $L`;
  const cases: string[] = [];
  for (let c = 0; c < n; c++) {
    const lines: string[] = [];
    const ops = 1 + rand(6);
    for (let i = 0; i < ops; i++) {
      lines.push(
        `local.get $acc i32.const ${31 + rand(5)} i32.mul i32.const ${c} i32.add local.set $acc`,
      );
    }
    if (rand(3) === 0) lines.push('local.get $acc call $mix local.set $acc');
    if (c + 1 < n && rand(3) === 0) {
      // A branch to the next case's block end, not through the dispatch.
      lines.push(
        `local.get $acc i32.const 1 i32.and br_if 0 local.get $acc i32.const 5 i32.add local.set $acc`,
      );
    }
    // A backward (or same-case) jump while the iteration budget lasts.
    if (rand(2) === 0) {
      lines.push(
        `local.get $iters if local.get $iters i32.const 1 i32.sub local.set $iters ${jump(indexOf(rand(c + 1)))} end`,
      );
    }
    // A conditional forward jump, or out through the default index.
    if (c + 1 < n && rand(2) === 0) {
      const to = c + 1 + rand(n - c - 1);
      lines.push(`local.get $acc i32.const 3 i32.and if ${jump(indexOf(to))} end`);
    }
    if (rand(5) === 0)
      lines.push(`local.get $acc i32.const 7 i32.and i32.eqz if ${jump(entries)} end`);
    if (c === n - 1) lines.push('br $out');
    else if (rand(3) === 0) lines.push(jump(indexOf(c + 1 + rand(n - c - 1))));
    cases.push(lines.join('\n'));
  }
  let body = `local.get $pc br_table ${labels}\n`;
  for (let c = 0; c < n; c++) body = `block\n${body}end\n${cases[c]}\n`;
  const text = `(module
  (func $mix (param i32) (result i32)
    (i32.xor (local.get 0) (i32.shr_u (local.get 0) (i32.const 7))))
  (func (export "disp") (param $pc i32) (param $iters i32) (result i32) (local $acc i32)
    (local.set $acc (i32.const 1))
    block $out
      loop $L
        ${body}
      end
    end
    local.get $acc))`;
  return { bytes: wat(text), entries };
}

describe('dispatch loops (Go)', () => {
  test('the shape is recognised, and a jump that is not `i32.const; local.set; br` undoes it', () => {
    // The only `loop` of these modules, followed by its first dispatch `block`.
    const match = (b: Uint8Array) => {
      for (let i = 0; i + 3 < b.length; i++)
        if (b[i] === 0x03 && b[i + 1] === 0x40 && b[i + 2] === 0x02 && b[i + 3] === 0x40)
          return matchDispatch(b, i + 1, b.length);
      throw new Error('no loop');
    };
    let recognised = 0;
    for (let seed = 1; seed <= 50; seed++) {
      if (match(dispatchModule(seed).bytes) !== null) recognised++;
      assert.equal(match(dispatchModule(seed, true).bytes), null, `seed ${seed} with nop`);
    }
    // Only a module without any jump through the dispatch is left as a plain loop.
    assert.ok(recognised >= 45, `${recognised} of 50 recognised`);
  });

  test('fuel equals the per-instruction reference for every entry index (300 modules)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const { bytes, entries } = dispatchModule(seed);
      const metered = meteredInstance(bytes, { placement: 'metered-blocks' });
      const reference = meteredInstance(bytes, { placement: 'per-instruction' });
      for (let pc = 0; pc <= entries; pc++) {
        for (const iters of [0, 1, 7]) {
          const a = runWithBudget(metered, 'disp', [pc, iters], 1_000_000_000n);
          const b = runWithBudget(reference, 'disp', [pc, iters], 1_000_000_000n);
          assert.ok(a.ok && b.ok, `seed ${seed} pc ${pc}: ${a.ok ? '' : String(a.error)}`);
          assert.equal(a.value, b.value, `seed ${seed} pc ${pc} iters ${iters}: result`);
          assert.equal(a.used, b.used, `seed ${seed} pc ${pc} iters ${iters}: fuel`);
        }
      }
    }
  });

  test('every budget below the exact cost stops out of fuel (40 modules)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const { bytes, entries } = dispatchModule(seed);
      const mod = new WebAssembly.Module(instrument(bytes).bytes);
      const fresh = () => {
        const instance = new WebAssembly.Instance(mod, {});
        return { instance, meter: new FuelMeter(instance), exports: instance.exports };
      };
      for (const pc of [0, entries >> 1]) {
        const exact = runWithBudget(fresh(), 'disp', [pc, 5], 1_000_000_000n);
        assert.ok(exact.ok);
        for (let budget = 0n; budget < exact.used; budget++) {
          const r = runWithBudget(fresh(), 'disp', [pc, 5], budget);
          assert.ok(
            !r.ok && r.kind === 'out_of_fuel',
            `seed ${seed}: budget ${budget} of ${exact.used}`,
          );
        }
      }
    }
  });
});
