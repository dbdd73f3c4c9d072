/**
 * The instrumenter's helper thread (`parallel`, code-helper.ts): the second half of the bodies
 * planned and emitted on another thread must give the same bytes and statistics as one thread,
 * including when the helper gives the work back (a multi-result wrapper type only the main
 * thread can number), when a body asks for a restart (a `try`: calls end metered blocks), and
 * on a real multi-megabyte guest (Go) with the default threshold.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { FuelError } from '../../src/fuel/errors.ts';
import { instrument } from '../../src/fuel/instrument.ts';
import type { InstrumentOptions, InstrumentResult } from '../../src/fuel/instrument.ts';
import { wat } from '../fuel/harness.ts';

function same(bytes: Uint8Array, opts: InstrumentOptions = {}): InstrumentResult {
  const one = instrument(bytes, { ...opts, parallel: false });
  const two = instrument(bytes, { ...opts, parallel: true });
  assert.deepEqual(Buffer.from(two.bytes), Buffer.from(one.bytes));
  assert.deepEqual({ ...two.stats, durationMs: 0 }, { ...one.stats, durationMs: 0 });
  return two;
}

/** `n` small functions calling each other, one exported, so both halves have work. */
function chain(n: number, extra = ''): string {
  const fns: string[] = [];
  for (let i = 0; i < n; i++) {
    const next =
      i + 1 < n ? `(call $f${i + 1} (i32.add (local.get 0) (i32.const ${i})))` : '(local.get 0)';
    fns.push(`(func $f${i} (param i32) (result i32)
      (if (result i32) (i32.gt_u (local.get 0) (i32.const 1000000))
        (then (local.get 0))
        (else ${next})))`);
  }
  return `(module ${fns.join('\n')} (export "f0" (func $f0)) ${extra})`;
}

describe('instrumenting on a helper thread', () => {
  test('carrying functions and an exported twin: the same bytes', () => {
    same(wat(chain(40)));
  });

  test('a multi-result wrapper in the second half: the main thread does it, the same bytes', () => {
    // A branch to the function's own label with two values: the body gets a wrapper block
    // of type [] -> [i64 i32], which the module does not have yet.
    const multi = `(func $pair (export "pair") (param i32) (result i64 i32)
      i64.const 1
      i32.const 1
      local.get 0
      i32.eqz
      br_if 0
      drop
      drop
      i64.const 2
      i32.const 0)`;
    same(wat(chain(30, multi)));
  });

  test('a try in the second half: the restart happens as with one thread', () => {
    const tried = `(tag $e (param i32))
      (func $t (export "t") (param i32) (result i32)
        (try (result i32) (do (throw $e (local.get 0))) (catch $e)))`;
    const out = same(wat(chain(30, tried)));
    assert.equal(out.stats.catching, true);
  });

  test('the per-instruction placement: the same bytes', () => {
    same(wat(chain(20)), { placement: 'per-instruction' });
  });

  test('a body the planner refuses, in the second half: the same error', () => {
    const waiting = wat(
      chain(
        30,
        `(memory 1 1) (func (export "w") (result i32)
          (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))`,
      ),
    );
    for (const parallel of [false, true]) {
      assert.throws(
        () => instrument(waiting, { parallel }),
        (err: unknown) => err instanceof FuelError && err.code === 'HG_WASM_UNSUPPORTED',
      );
    }
    // The helper is still in step: the next job gets its own answer.
    same(wat(chain(12)));
  });

  const poller = join(PROJECT_ROOT, 'guest-examples/go/poller/build/poller.wasm');
  test('a 3.4 MB Go guest, with the default threshold (auto): the same bytes', () => {
    assert.ok(existsSync(poller), `${poller} is built by npm run build:guests`);
    const bytes = new Uint8Array(readFileSync(poller));
    same(bytes);
    const seq = instrument(bytes);
    // 'auto' boots the helper on its first call and works alone until it is up: same bytes.
    for (let i = 0; i < 2; i++) {
      const auto = instrument(bytes, { parallel: 'auto' });
      assert.deepEqual(Buffer.from(auto.bytes), Buffer.from(seq.bytes));
    }
  });
});
