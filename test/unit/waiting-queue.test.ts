import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WaitingQueue } from '../../src/scheduler/waiting-queue.ts';

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
