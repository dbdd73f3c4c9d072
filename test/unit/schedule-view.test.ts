/**
 * The guest's view of a schedule (`toView`): issue 14's fields (own retry policy, job, breaker,
 * the breaker's count) null or default when unset, and the size bound `schedule_list` pages by.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toView, VIEW_FIXED_BYTES, viewBytesBound } from '../../src/host/schedule-ops.ts';
import { scheduleRow } from './schedule-row.ts';

test('a schedule without retry, job or breaker: null, priority 5, failStreak 0', () => {
  const v = toView(scheduleRow('t', 'plain'));
  assert.equal(v.retry, null);
  assert.equal(v.job, null);
  assert.equal(v.breaker, null);
  assert.equal(v.failStreak, 0);
  assert.equal(v.priority, 5);
  assert.equal(v.dst, null);
});

test("the schedule's own settings and the breaker's count", () => {
  const v = toView(
    scheduleRow('t', 'own', {
      retry: '{"maxAttempts":4,"backoff":{"baseMs":500,"capMs":8000},"on":["failed","timed_out"]}',
      job: 'nightly',
      breakerAfter: 0,
      failStreak: 2,
      priority: 8,
    }),
  );
  assert.deepEqual(v.retry, {
    maxAttempts: 4,
    backoff: { baseMs: 500, capMs: 8000 },
    on: ['failed', 'timed_out'],
  });
  assert.equal(v.job, 'nightly');
  assert.deepEqual(v.breaker, { afterFailures: 0 });
  assert.equal(v.failStreak, 2);
  assert.equal(v.priority, 8);
  // Each view has its own copy (the parsed policy is cached and shared by the scheduler).
  const again = toView(scheduleRow('t', 'own', { retry: v.retry && JSON.stringify(v.retry) }));
  assert.deepEqual(again.retry, v.retry);
  assert.notEqual(again.retry, v.retry);
  assert.notEqual(again.retry?.backoff, v.retry?.backoff);
  assert.notEqual(again.retry?.on, v.retry?.on);
});

test('a stored policy no policy can be read from shows as the one attempt the scheduler gives it', () => {
  const v = toView(scheduleRow('t', 'odd', { retry: '{"maxAttempts":' }));
  assert.equal(v.retry?.maxAttempts, 1);
});

test('viewBytesBound covers the largest view of bounded fields', () => {
  const row = scheduleRow('t', 'a'.repeat(128), {
    spec: {
      kind: 'cron',
      cron: '1'.repeat(200),
      timezone: 'z'.repeat(64),
      dst: { skipped: 'run-once', repeated: 'twice' },
    },
    jitter: '9'.repeat(64),
    overlap: 'buffer-one',
    misfire: 'run-once',
    priority: 9,
    state: 'active',
    nextAt: -8.64e15,
    retry:
      '{"maxAttempts":10,"backoff":{"baseMs":3600000,"capMs":3600000},' +
      '"on":["failed","trapped","timed_out","stack_overflow","worker_crashed"]}',
    job: 'j'.repeat(128),
    breakerAfter: 1000,
    failStreak: Number.MAX_SAFE_INTEGER,
    description: '"'.repeat(500),
    pauseNote: '\u0001'.repeat(300),
    payload: '{"k":"\\u0000"}',
  });
  const withTexts = Buffer.byteLength(JSON.stringify(toView(row)));
  assert.ok(withTexts <= viewBytesBound(row), `${withTexts} > ${viewBytesBound(row)}`);
  const bare = { ...row, description: null, pauseNote: null, payload: null };
  const fixed = Buffer.byteLength(JSON.stringify(toView(bare)));
  assert.ok(fixed <= VIEW_FIXED_BYTES, `${fixed} > ${VIEW_FIXED_BYTES}`);
  assert.ok(fixed > VIEW_FIXED_BYTES / 2, `${fixed}: the bound is not loose by far`);
});
