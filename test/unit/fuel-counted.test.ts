/**
 * Counted loops (placement.ts, `matchCounted`): a `while (j < n) { …; j += s }` loop runs a
 * copy without its header check when the fuel on entry covers n - j + 1 iterations. Checked
 * here against the per-instruction reference on random induction variables (step 0, steps
 * that wrap around 2^32, bounds at the top of the range, j >= n on entry), on shapes the
 * matcher must refuse (the body writes the bound or the step), in a fuel-carrying function
 * (renumbered locals) and nested in an outer loop: the same results, the same fuel, and no
 * budget below the exact cost completes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import wabtInit from 'wabt';
import { instrument } from '../../src/fuel/instrument.ts';
import { meteredInstance, runWithBudget, wat } from '../fuel/harness.ts';
import type { Metered, RunResult } from '../fuel/harness.ts';

const MODULE = wat(`(module
  (memory 1)
  ;; The counted shape, step in a local: the body stores, accumulates and counts.
  (func (export "byLocal") (param $j i32) (param $n i32) (param $s i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (i32.store8 (i32.and (local.get $j) (i32.const 0xffff)) (local.get $acc))
        (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $j)))
        (local.set $j (i32.add (local.get $j) (local.get $s)))
        (br $l)))
    (i32.xor (local.get $acc) (local.get $j)))
  ;; Constant steps, one of them wrapping (0xfffffff0 = -16).
  (func (export "by1") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $j)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func (export "byBig") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
        (local.set $j (i32.add (local.get $j) (i32.const 0x7ffffff3)))
        (br $l)))
    (local.get $acc))
  (func (export "byNeg") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
        (local.set $j (i32.add (local.get $j) (i32.const -16)))
        (br $l)))
    (local.get $acc))
  ;; Refused shapes: the body moves the bound, or the step.
  (func (export "movesBound") (param $j i32) (param $n i32) (param $s i32) (result i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (local.set $j (i32.add (local.get $j) (local.get $s)))
        (br $l)))
    (local.get $n))
  (func (export "movesStep") (param $j i32) (param $n i32) (param $s i32) (result i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (local.set $j (i32.add (local.get $j) (local.get $s)))
        (br $l)))
    (local.get $s))
  ;; In a fuel-carrying function (reached by a direct call only: its locals are renumbered),
  ;; nested in an outer loop, the exit two labels out.
  (func $inner (param $n i32) (param $s i32) (result i32)
    (local $i i32) (local $j i32) (local $acc i32)
    (block $out
      (loop $outer
        (br_if $out (i32.ge_u (local.get $i) (i32.const 4)))
        (local.set $j (local.get $i))
        (block $x
          (block $done
            (loop $l
              (br_if $x (i32.ge_u (local.get $j) (local.get $n)))
              (local.set $acc (i32.add (local.get $acc) (local.get $j)))
              (local.set $j (i32.add (local.get $j) (local.get $s)))
              (br $l))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $acc))
  (func (export "carried") (param $n i32) (param $s i32) (result i32)
    (call $inner (local.get $n) (local.get $s)))
  ;; Bottom-tested (the body runs once before the test) and count-down forms.
  (func (export "bottom") (param $j i32) (param $n i32) (param $s i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 7)) (local.get $j)))
      (local.set $j (i32.add (local.get $j) (local.get $s)))
      (br_if $l (i32.lt_u (local.get $j) (local.get $n))))
    (i32.xor (local.get $acc) (local.get $j)))
  (func (export "bottomTee") (param $j i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (i32.const 3)))
      (br_if $l (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 5))) (i32.const 300))))
    (i32.add (local.get $acc) (local.get $j)))
  (func (export "down") (param $j i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $j)))
      (br_if $l (local.tee $j (i32.add (local.get $j) (i32.const -1)))))
    (local.get $acc))
  (func (export "downBy2") (param $j i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $j)))
      (br_if $l (local.tee $j (i32.add (local.get $j) (i32.const -2)))))
    (local.get $acc))
  ;; Branches inside the body: counted. A \`continue\` (skipping the update) or a break out of
  ;; a nested block: not counted.
  (func (export "branchy") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (block $skip
          (br_if $skip (i32.and (local.get $j) (i32.const 1)))
          (local.set $acc (i32.add (local.get $acc) (i32.const 100))))
        (if (i32.and (local.get $j) (i32.const 2))
          (then (local.set $acc (i32.mul (local.get $acc) (call $leafy (local.get $j)))))
          (else (local.set $acc (i32.sub (local.get $acc) (i32.const 1)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func $leafy (param $a i32) (result i32)
    (select (i32.const 3) (local.get $a) (i32.lt_u (local.get $a) (i32.const 10))))
  (func (export "continues") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
        (if (i32.eqz (local.get $acc)) (then (br $l)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func (export "breaksOut") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
        (block $b (br_if $done (i32.eq (local.get $acc) (i32.const 50))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  ;; \`j != n\` tests (pointer-walking loops): not counted, still exact.
  (func (export "neAfter") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $j)))
      (br_if $l (i32.ne (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $n))))
    (local.get $acc))
  (func (export "neBefore") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.xor (local.get $acc) (local.get $j)))
      (br_if $l (i32.ne (local.get $n) (local.tee $j (i32.add (local.get $j) (i32.const 1))))))
    (local.get $acc)))`);

/** Counted loops calling functions: only calls to carrying leaves keep the loop counted. */
const CALLS = wat(`(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (func $leaf (export "leaf") (param $a i32) (result i32)
    (i32.add (i32.mul (local.get $a) (i32.const 0x9e3779b1)) (i32.const 7)))
  ;; A leaf with branches of different costs (the bound is the sum of both).
  (func $branchy (param $a i32) (result i32)
    (if (result i32) (i32.and (local.get $a) (i32.const 1))
      (then (i32.mul (i32.add (local.get $a) (i32.const 3)) (i32.const 5)))
      (else (i32.const 1)))
    (br_if 0 (i32.eqz (local.get $a)))
    (drop)
    (local.get $a))
  (func $notLeaf (param $a i32) (result i32) (call $leaf (local.get $a)))
  (func $traps (param $a i32) (result i32)
    (if (i32.eq (local.get $a) (i32.const 123456)) (then (unreachable)))
    (local.get $a))
  (func (export "callsLeaf") (param $j i32) (param $n i32) (param $s i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.xor (local.get $acc)
          (call $leaf (i32.add (local.get $acc) (local.get $j)))))
        (local.set $acc (i32.add (local.get $acc) (call $branchy (local.get $j))))
        (local.set $j (i32.add (local.get $j) (local.get $s)))
        (br $l)))
    (local.get $acc))
  (func (export "callsOther") (param $j i32) (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call $notLeaf (local.get $j))))
        (local.set $acc (i32.add (local.get $acc) (call $traps (local.get $j))))
        (local.set $acc (i32.add (local.get $acc) (call $host (local.get $j))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l)))
    (local.get $acc)))`);
const callImports = { env: { host: (x: number) => (x * 3) | 0 } };

const U32 = 0x1_0000_0000;
/** Iterations of `while (j < n) j += s` (mod 2^32), or -1 past `cap`. */
function trips(j: number, n: number, s: number, cap: number): number {
  let k = 0;
  while (j < n) {
    if (++k > cap) return -1;
    j = (j + s) % U32;
  }
  return k;
}

/** Iterations of `do j += s while (j != n)`, or -1 past `cap`. */
function tripsNe(j: number, n: number, s: number, cap: number): number {
  let k = 0;
  do {
    if (++k > cap) return -1;
    j = (j + s) % U32;
  } while (j !== n);
  return k;
}

/** Iterations of `do j += s while (j < n)`, or (n < 0) `do j += n while (j != 0)`, or -1. */
function tripsBottom(j: number, n: number, s: number, cap: number): number {
  let k = 0;
  do {
    if (++k > cap) return -1;
    j = (j + s) % U32;
  } while (n < 0 ? j !== 0 : j < n);
  return k;
}

/** A small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Random u32 values biased towards the edges the analysis cares about. */
function pick(next: () => number): number {
  switch (next() % 6) {
    case 0:
      return next() % 8;
    case 1:
      return next() % 300;
    case 2:
      return U32 - 1 - (next() % 300);
    case 3:
      return 0x8000_0000 + (next() % 300) - 150;
    default:
      return next();
  }
}

const CAP = 600;
const blocks = meteredInstance(MODULE);
const reference = meteredInstance(MODULE, { placement: 'per-instruction' });

const call = (m: Metered, name: string, args: number[], budget: bigint): RunResult =>
  runWithBudget(m, name, args, budget);

/** The call completes with the reference's value and fuel, and every lower budget stops. */
function checkExact(name: string, args: number[], budgets: bigint[]): void {
  const ref = call(reference, name, args, 1n << 40n);
  const got = call(blocks, name, args, 1n << 40n);
  assert.ok(ref.ok && got.ok, `${name}(${args.join(', ')}) did not complete`);
  assert.equal(got.value, ref.value, `${name}(${args.join(', ')})`);
  assert.equal(got.used, ref.used, `${name}(${args.join(', ')}): fuel`);
  for (const b of budgets) {
    if (b >= ref.used) continue;
    const r = call(blocks, name, args, b);
    assert.ok(!r.ok, `${name}(${args.join(', ')}) completed on ${b} < ${ref.used}`);
    assert.equal(r.kind, 'out_of_fuel', `${name}(${args.join(', ')}) on ${b}: ${r.kind}`);
  }
}

/** A loop that never ends (step 0, or a cycle through the wrap-around) runs out of fuel. */
function checkEndless(name: string, args: number[]): void {
  for (const m of [blocks, reference]) {
    const r = call(m, name, args, 20_000n);
    assert.ok(!r.ok && r.kind === 'out_of_fuel', `${name}(${args.join(', ')}) should run out`);
  }
}

function budgetsFor(used: bigint, next: () => number): bigint[] {
  const out = [0n, used - 1n, used - 2n, used / 2n];
  for (let i = 0; i < 6; i++) out.push(BigInt(next() % Number(used > 0n ? used : 1n)));
  return out;
}

describe('counted loops', () => {
  test('the fast copy is emitted for the counted shapes only', async () => {
    const wabt = await wabtInit();
    const mod = wabt.readWasm(instrument(MODULE).bytes, { readDebugNames: false });
    try {
      const text = mod.toText({});
      const funcs = text.split(/\n {2}\(func /).slice(1);
      const loops = funcs.map((f) => f.match(/\bloop\b/g)?.length ?? 0);
      // Exported functions' bodies moved to carrying twins (18-33, in export order); the
      // originals (0-5, 7-12, 14-17) are wrappers. $inner (6): the outer loop + two copies
      // of the inner one; byLocal, by1, byBig, byNeg: two copies; movesBound, movesStep: one;
      // carried: none; bottom, bottomTee, down: two; downBy2 (a step of -2): one; branchy:
      // two; continues, breaksOut: one; $leafy (13): none; neAfter, neBefore (`j != n`, not
      // counted: measured slower on binaryen.js): one.
      const twins = [2, 2, 2, 2, 1, 1, 0, 2, 2, 2, 1, 2, 1, 1, 1, 1];
      const originals = [0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
      assert.deepEqual(loops, [...originals, ...twins]);
    } finally {
      mod.destroy();
    }
  });

  test('random induction variables: same value and fuel, no lower budget completes', () => {
    const next = rng(0x15c0);
    let exact = 0;
    let endless = 0;
    for (let i = 0; i < 400; i++) {
      const j = pick(next);
      const n = pick(next);
      const s = i % 5 === 0 ? 0 : pick(next);
      for (const [name, args, step] of [
        ['byLocal', [j, n, s], s],
        ['by1', [j, n], 1],
        ['byBig', [j, n], 0x7ffffff3],
        ['byNeg', [j, n], U32 - 16],
      ] as const) {
        const k = trips(j, n, step, CAP);
        if (k < 0) {
          checkEndless(name, [...args]);
          endless++;
          continue;
        }
        const used = call(reference, name, [...args], 1n << 40n);
        assert.ok(used.ok);
        checkExact(name, [...args], budgetsFor(used.used, next));
        exact++;
      }
    }
    assert.ok(exact > 800 && endless > 50, `${exact} exact, ${endless} endless`);
  });

  test('bottom-tested and count-down loops: same value and fuel, no lower budget completes', () => {
    const next = rng(0xb0);
    let exact = 0;
    for (let i = 0; i < 300; i++) {
      const j = i % 3 === 0 ? next() % 400 : pick(next);
      const n = i % 3 === 0 ? next() % 400 : pick(next);
      const s = i % 5 === 0 ? 0 : i % 3 === 0 ? 1 + (next() % 9) : pick(next);
      for (const [name, args, k] of [
        ['bottom', [j, n, s], tripsBottom(j, n, s, CAP)],
        ['bottomTee', [j], tripsBottom(j, 300, 5, CAP)],
        ['down', [j % 500], tripsBottom(j % 500, -1, U32 - 1, CAP)],
        ['downBy2', [j % 500], tripsBottom(j % 500, -1, U32 - 2, CAP)],
        ['neAfter', [j % 300, n % 300], tripsNe(j % 300, n % 300, 8, CAP)],
        ['neBefore', [j % 300, n % 300], tripsNe(j % 300, n % 300, 1, CAP)],
        ['branchy', [j, n], trips(j, n, 1, CAP)],
        ['continues', [j, n], trips(j, n, 1, CAP)],
        ['breaksOut', [j, n], trips(j, n, 1, 50) < 0 ? 50 : trips(j, n, 1, 50)],
      ] as const) {
        if (k < 0) {
          checkEndless(name, [...args]);
          continue;
        }
        const used = call(reference, name, [...args], 1n << 40n);
        assert.ok(used.ok, `${name}(${args.join(', ')})`);
        checkExact(name, [...args], budgetsFor(used.used, next));
        exact++;
      }
    }
    assert.ok(exact > 500, `${exact} exact`);
    for (const [name, args] of [
      ['branchy', [1, 20]],
      ['neAfter', [8, 96]],
      ['neBefore', [250, 270]],
      ['bottom', [3, 40, 3]],
      ['bottomTee', [250]],
      ['down', [12]],
    ] as const) {
      const ref = call(reference, name, [...args], 1_000_000n);
      assert.ok(ref.ok);
      const all: bigint[] = [];
      for (let b = 0n; b < ref.used; b++) all.push(b);
      checkExact(name, [...args], all);
    }
  });

  test('every budget below the exact cost stops, on a sweep', () => {
    for (const [name, args] of [
      ['byLocal', [3, 40, 3]],
      ['by1', [0, 25]],
      ['byBig', [36, 0xfffffff0]], // 4 trips, through the wrap-around
      ['byNeg', [0x38, 0xfffffff0]], // 4 trips, the last one wraps
      ['carried', [30, 2]],
    ] as const) {
      const ref = call(reference, name, [...args], 1_000_000n);
      assert.ok(ref.ok, `${name}(${args.join(', ')})`);
      const all: bigint[] = [];
      for (let b = 0n; b < ref.used; b++) all.push(b);
      checkExact(name, [...args], all);
    }
  });

  test('loops calling leaves: the same fuel, no lower budget completes', async () => {
    const m = meteredInstance(CALLS, {}, callImports);
    const ref = meteredInstance(CALLS, { placement: 'per-instruction' }, callImports);
    const wabt = await wabtInit();
    const mod = wabt.readWasm(instrument(CALLS).bytes, { readDebugNames: false });
    try {
      const text = mod.toText({});
      const loops = text
        .split(/\n {2}\(func /)
        .slice(1)
        .map((f) => f.match(/\bloop\b/g)?.length ?? 0);
      // The twins of callsLeaf (counted: two copies) and callsOther (not: one).
      assert.deepEqual(
        loops.filter((x) => x > 0),
        [2, 1],
      );
    } finally {
      mod.destroy();
    }
    const next = rng(99);
    for (let i = 0; i < 60; i++) {
      const j = i < 30 ? next() % 40 : pick(next);
      const n = i < 30 ? next() % 120 : pick(next);
      const s = i % 7 === 0 ? 0 : i < 30 ? 1 + (next() % 5) : pick(next);
      for (const [name, args, step] of [
        ['callsLeaf', [j, n, s], s],
        ['callsOther', [j, n], 1],
      ] as const) {
        const k = trips(j, n, step, 300);
        if (k < 0) {
          for (const x of [m, ref]) {
            const r = runWithBudget(x, name, [...args], 50_000n);
            assert.ok(!r.ok && r.kind === 'out_of_fuel', `${name}(${args.join(', ')})`);
          }
          continue;
        }
        const want = runWithBudget(ref, name, [...args], 1n << 40n);
        const got = runWithBudget(m, name, [...args], 1n << 40n);
        assert.ok(want.ok && got.ok, `${name}(${args.join(', ')})`);
        assert.equal(got.value, want.value);
        assert.equal(got.used, want.used, `${name}(${args.join(', ')}): fuel`);
        for (const b of budgetsFor(want.used, next)) {
          if (b >= want.used) continue;
          const r = runWithBudget(m, name, [...args], b);
          assert.ok(!r.ok && r.kind === 'out_of_fuel', `${name}(${args.join(', ')}) on ${b}`);
        }
      }
    }
    // A sweep of every budget below the exact cost.
    const full = runWithBudget(ref, 'callsLeaf', [2, 9, 2], 1n << 40n);
    assert.ok(full.ok);
    for (let b = 0n; b < full.used; b++) {
      const r = runWithBudget(m, 'callsLeaf', [2, 9, 2], b);
      assert.ok(!r.ok && r.kind === 'out_of_fuel', `callsLeaf on ${b} < ${full.used}`);
    }
  });

  test('refused shapes and the carrying, nested loop agree with the reference', () => {
    const next = rng(7);
    for (let i = 0; i < 100; i++) {
      const j = next() % 50;
      const n = next() % 200;
      const s = 1 + (next() % 7);
      for (const [name, args] of [
        ['movesBound', [j, n, s]],
        ['movesStep', [j, n, s]],
        ['carried', [n, s]],
      ] as const) {
        if (name === 'movesBound' && s === 1 && j < n) continue; // never ends: n moves too
        const used = call(reference, name, [...args], 1n << 40n);
        assert.ok(used.ok, `${name}(${args.join(', ')})`);
        checkExact(name, [...args], budgetsFor(used.used, next));
      }
    }
  });
});
