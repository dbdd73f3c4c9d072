/** Unit tests for src/scheduler/due-queue.ts. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DueQueue } from '../../src/scheduler/due-queue.ts';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('DueQueue', () => {
  test('an empty queue', () => {
    const q = new DueQueue();
    assert.equal(q.size, 0);
    assert.equal(q.peekTime(), null);
    assert.deepEqual(q.popDue(Number.MAX_SAFE_INTEGER), []);
    assert.equal(q.has('a'), false);
  });

  test('popDue returns due entries earliest first and leaves the rest', () => {
    const q = new DueQueue();
    q.set('c', 30);
    q.set('a', 10);
    q.set('d', 40);
    q.set('b', 20);
    assert.equal(q.size, 4);
    assert.equal(q.peekTime(), 10);
    assert.deepEqual(q.popDue(25), [
      { key: 'a', dueAt: 10 },
      { key: 'b', dueAt: 20 },
    ]);
    assert.equal(q.size, 2);
    assert.equal(q.has('a'), false);
    assert.equal(q.has('c'), true);
    assert.equal(q.peekTime(), 30);
    assert.deepEqual(q.popDue(29), []);
  });

  test('an entry due exactly at now is due', () => {
    const q = new DueQueue();
    q.set('a', 100);
    assert.deepEqual(q.popDue(99), []);
    assert.deepEqual(q.popDue(100), [{ key: 'a', dueAt: 100 }]);
    assert.equal(q.size, 0);
  });

  test('equal due times are all returned', () => {
    const q = new DueQueue();
    for (const k of ['x', 'y', 'z']) q.set(k, 5);
    const out = q.popDue(5);
    assert.deepEqual(out.map((e) => e.key).sort(), ['x', 'y', 'z']);
    assert.ok(out.every((e) => e.dueAt === 5));
  });

  test('set replaces a later entry with an earlier one; the old entry is ignored', () => {
    const q = new DueQueue();
    q.set('a', 50);
    q.set('a', 10);
    assert.equal(q.size, 1);
    assert.equal(q.peekTime(), 10);
    assert.deepEqual(q.popDue(100), [{ key: 'a', dueAt: 10 }]);
    assert.deepEqual(q.popDue(1_000), []);
    assert.equal(q.peekTime(), null);
    assert.equal(q.size, 0);
  });

  test('set replaces an earlier entry with a later one; the old entry is ignored', () => {
    const q = new DueQueue();
    q.set('a', 10);
    q.set('b', 20);
    q.set('a', 50);
    assert.equal(q.size, 2);
    assert.deepEqual(q.popDue(30), [{ key: 'b', dueAt: 20 }]);
    assert.equal(q.peekTime(), 50);
    assert.deepEqual(q.popDue(50), [{ key: 'a', dueAt: 50 }]);
  });

  test('many replacements of one key count once', () => {
    const q = new DueQueue();
    for (let i = 0; i < 100; i++) q.set('a', 1_000 - i);
    assert.equal(q.size, 1);
    assert.deepEqual(q.popDue(10_000), [{ key: 'a', dueAt: 901 }]);
    assert.equal(q.size, 0);
  });

  test('delete removes a key; its entry is never returned', () => {
    const q = new DueQueue();
    q.set('a', 10);
    q.set('b', 20);
    q.delete('a');
    assert.equal(q.size, 1);
    assert.equal(q.has('a'), false);
    assert.equal(q.peekTime(), 20);
    assert.deepEqual(q.popDue(100), [{ key: 'b', dueAt: 20 }]);
    q.delete('nope'); // unknown keys are fine
    assert.equal(q.size, 0);
  });

  test('peekTime skips stale entries at the top', () => {
    const q = new DueQueue();
    q.set('a', 10);
    q.set('b', 20);
    q.set('c', 30);
    q.set('a', 40);
    assert.equal(q.peekTime(), 20);
    q.delete('b');
    assert.equal(q.peekTime(), 30);
    q.delete('c');
    assert.equal(q.peekTime(), 40);
    q.delete('a');
    assert.equal(q.peekTime(), null);
  });

  test('a key set again after delete fires only at its new time', () => {
    const q = new DueQueue();
    q.set('a', 100);
    q.delete('a');
    q.set('a', 500);
    assert.equal(q.peekTime(), 500);
    assert.deepEqual(q.popDue(200), []);
    assert.deepEqual(q.popDue(500), [{ key: 'a', dueAt: 500 }]);
  });

  test('a key set again after it was popped ignores its older buried entry', () => {
    const q = new DueQueue();
    q.set('a', 100);
    q.set('b', 70);
    q.set('a', 50); // the entry at 100 is now stale and stays buried under b
    assert.deepEqual(q.popDue(60), [{ key: 'a', dueAt: 50 }]);
    q.set('a', 500);
    assert.deepEqual(q.popDue(200), [{ key: 'b', dueAt: 70 }]);
    assert.equal(q.size, 1);
    assert.deepEqual(q.popDue(500), [{ key: 'a', dueAt: 500 }]);
  });

  test('100,000 random entries pop in non-decreasing order, each once at its latest time', () => {
    const rnd = mulberry32(1234);
    const q = new DueQueue();
    const N = 100_000;
    const expected = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const t = Math.floor(rnd() * 1e9);
      q.set(`k${i}`, t);
      expected.set(`k${i}`, t);
    }
    // Re-set a tenth of them (before any pop) to new times.
    for (let i = 0; i < N; i += 10) {
      const t = Math.floor(rnd() * 1e9);
      q.set(`k${i}`, t);
      expected.set(`k${i}`, t);
    }
    assert.equal(q.size, N);
    let last = -Infinity;
    let popped = 0;
    const seen = new Set<string>();
    for (const now of [1e8, 2.5e8, 2.5e8, 6e8, 1e9]) {
      const peek = q.peekTime();
      const batch = q.popDue(now);
      if (batch.length > 0) assert.equal(batch[0]?.dueAt, peek);
      for (const e of batch) {
        assert.ok(e.dueAt >= last, `out of order: ${e.dueAt} after ${last}`);
        assert.ok(e.dueAt <= now);
        assert.equal(e.dueAt, expected.get(e.key), `stale time for ${e.key}`);
        assert.ok(!seen.has(e.key), `${e.key} popped twice`);
        seen.add(e.key);
        last = e.dueAt;
      }
      popped += batch.length;
      const next = q.peekTime();
      if (next !== null) assert.ok(next > now);
    }
    assert.equal(popped, N);
    assert.equal(q.size, 0);
    assert.equal(q.peekTime(), null);
  });

  test('random set/delete/popDue on distinct keys matches a simple model', () => {
    const rnd = mulberry32(99);
    const q = new DueQueue();
    const model = new Map<string, number>();
    let nextKey = 0;
    let now = 0;
    for (let step = 0; step < 20_000; step++) {
      const r = rnd();
      if (r < 0.5) {
        const key = `k${nextKey++}`;
        const t = now + Math.floor(rnd() * 10_000);
        q.set(key, t);
        model.set(key, t);
      } else if (r < 0.65 && model.size > 0) {
        // Replace a live key's time (never one that was popped or deleted).
        const keys = [...model.keys()];
        const key = keys[Math.floor(rnd() * keys.length)] as string;
        const t = now + Math.floor(rnd() * 10_000);
        q.set(key, t);
        model.set(key, t);
      } else if (r < 0.75 && model.size > 0) {
        const keys = [...model.keys()];
        const key = keys[Math.floor(rnd() * keys.length)] as string;
        q.delete(key);
        model.delete(key);
      } else {
        now += Math.floor(rnd() * 500);
        const got = q.popDue(now);
        const want = [...model.entries()].filter(([, t]) => t <= now);
        assert.equal(got.length, want.length, `step ${step}`);
        for (let i = 1; i < got.length; i++)
          assert.ok((got[i] as { dueAt: number }).dueAt >= (got[i - 1] as { dueAt: number }).dueAt);
        for (const e of got) {
          assert.equal(model.get(e.key), e.dueAt);
          model.delete(e.key);
        }
      }
      assert.equal(q.size, model.size);
    }
    const min = model.size === 0 ? null : Math.min(...model.values());
    assert.equal(q.peekTime(), min);
  });
});
