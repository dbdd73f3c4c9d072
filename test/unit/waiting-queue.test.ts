import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PriorityWaiting,
  WaitingQueue,
  type WaitingSlot,
} from '../../src/scheduler/waiting-queue.ts';

test('waiting queue: FIFO takes from the front, removal and re-insertion anywhere', () => {
  const q = new WaitingQueue<number>();
  for (let i = 0; i < 5; i++) q.push(i);
  assert.equal(q.removeAt(0), 0);
  assert.equal(q.removeAt(2), 3, 'from the middle');
  assert.deepEqual([...q], [1, 2, 4]);
  q.insertAt(0, 0);
  q.insertAt(3, 3);
  assert.deepEqual([...q], [0, 1, 2, 3, 4]);
  assert.equal(
    q.indexWhere((n) => n === 3),
    3,
  );
  assert.equal(
    q.indexWhere((n) => n === 9),
    -1,
  );
  assert.equal(q.at(1), 1);
  assert.equal(q.removeAt(7), undefined);
  assert.equal(q.length, 5);
});

test('waiting queue: a long burst drains in order through compaction', () => {
  const q = new WaitingQueue<number>();
  const n = 50_000;
  for (let i = 0; i < n; i++) q.push(i);
  const out: number[] = [];
  for (let i = 0; i < n / 2; i++) out.push(q.removeAt(0) as number);
  for (let i = n; i < n + 10; i++) q.push(i);
  while (q.length > 0) out.push(q.removeAt(0) as number);
  assert.equal(out.length, n + 10);
  assert.ok(out.every((v, i) => v === i));
  q.push(7);
  assert.deepEqual([...q], [7]);
});

test('priority waiting: highest level first, FIFO within a level, ties to the oldest', () => {
  const q = new PriorityWaiting<{ name: string; priority: number; since: number }>(10, 60_000);
  q.push({ name: 'low', priority: 0, since: 0 });
  q.push({ name: 'mid', priority: 5, since: 10 });
  q.push({ name: 'hi-a', priority: 9, since: 20 });
  q.push({ name: 'hi-b', priority: 9, since: 30 });
  const order: string[] = [];
  while (q.length > 0) order.push(q.removeAt(q.next(100) as WaitingSlot)?.name ?? '?');
  assert.deepEqual(order, ['hi-a', 'hi-b', 'mid', 'low']);
  assert.equal(q.next(100), null);
});

test('priority waiting: aging raises a waiting item one level per agingMs, so it cannot starve', () => {
  const q = new PriorityWaiting<{ name: string; priority: number; since: number }>(10, 1_000);
  q.push({ name: 'low', priority: 0, since: 0 });
  // A fresh priority-9 item arrives at each take: low waits until it has aged 9 levels (9 s),
  // then wins the tie by age.
  const taken: string[] = [];
  for (let now = 0; now <= 12_000; now += 1_000) {
    q.push({ name: `hi@${now}`, priority: 9, since: now });
    taken.push(q.removeAt(q.next(now) as WaitingSlot)?.name ?? '?');
    if (taken.at(-1) === 'low') break;
  }
  assert.equal(taken.at(-1), 'low');
  assert.equal(taken.length, 10, taken.join(' '));
});

test('priority waiting: an item older than the level tail is placed by age; find, skip, put back', () => {
  const q = new PriorityWaiting<{ name: string; priority: number; since: number }>(10, 1_000);
  q.push({ name: 'b', priority: 3, since: 20 });
  q.push({ name: 'a', priority: 3, since: 10 });
  q.push({ name: 'c', priority: 7, since: 5 });
  assert.deepEqual(
    [...q].map((x) => x.name),
    ['a', 'b', 'c'],
  );
  const held = (x: { name: string }) => x.name === 'c';
  const slot = q.next(30, held) as WaitingSlot;
  assert.equal(q.at(slot)?.name, 'a');
  const item = q.removeAt(slot);
  assert.equal(q.length, 2);
  q.insertAt(slot, item as { name: string; priority: number; since: number });
  assert.equal(q.length, 3);
  const found = q.find((x) => x.name === 'b') as WaitingSlot;
  assert.deepEqual(found, { level: 3, index: 1 });
  assert.equal(
    q.next(30, () => true),
    null,
  );
});
