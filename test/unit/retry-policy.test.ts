/** Retry policies and breaker settings: parsing, bounds, refused outcomes, backoff draws. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDeclaration } from '../../src/schedule/declaration.ts';
import {
  backoffBoundMs,
  MAX_ATTEMPTS,
  MAX_BACKOFF_MS,
  NO_RETRY,
  retries,
  retryDelayMs,
  retryFromText,
  type RetryPolicy,
} from '../../src/schedule/retry.ts';

const LIMITS = { minIntervalMs: 1000, maxPayloadBytes: 65_536 };
const NOW = Date.parse('2026-01-15T10:00:00Z');

function parse(extra: Record<string, unknown>) {
  return parseDeclaration({ id: 'a', every: '1m', ...extra }, LIMITS, NOW);
}

function issue(extra: Record<string, unknown>): string {
  const r = parse(extra);
  assert.equal(r.ok, false, JSON.stringify(extra));
  return r.ok ? '' : `${r.issue.field} ${r.issue.message}`;
}

test('a declaration without retry, job or breaker has none (and its hash is the one it had)', () => {
  const r = parse({});
  assert.ok(r.ok);
  assert.equal(r.value.retry, null);
  assert.equal(r.value.job, null);
  assert.equal(r.value.breakerAfter, null);
  // The canonical text of a declaration without the new fields is unchanged (no reload churn).
  const again = parse({ retry: { maxAttempts: 2 } });
  assert.ok(again.ok);
  assert.notEqual(again.value.hash, r.value.hash);
});

test('retry: defaults filled in, stored as canonical text', () => {
  const r = parse({ retry: { maxAttempts: 3 }, job: 'nightly', breaker: { afterFailures: 5 } });
  assert.ok(r.ok);
  assert.equal(
    r.value.retry,
    '{"maxAttempts":3,"backoff":{"baseMs":1000,"capMs":60000},"on":["failed","trapped","timed_out"]}',
  );
  assert.equal(r.value.job, 'nightly');
  assert.equal(r.value.breakerAfter, 5);
  const p = retryFromText(r.value.retry as string);
  assert.deepEqual(p, {
    maxAttempts: 3,
    backoff: { baseMs: 1000, capMs: 60_000 },
    on: ['failed', 'trapped', 'timed_out'],
  });
  // A base above the default cap raises the default cap to it.
  const big = parse({ retry: { maxAttempts: 2, backoff: { baseMs: 120_000 } } });
  assert.ok(big.ok);
  assert.deepEqual(retryFromText(big.value.retry as string).backoff, {
    baseMs: 120_000,
    capMs: 120_000,
  });
});

test('retry: bounds and refused outcomes, with messages that say why', () => {
  assert.match(issue({ retry: { maxAttempts: MAX_ATTEMPTS + 1 } }), /maxAttempts/);
  assert.match(issue({ retry: { maxAttempts: 0 } }), /maxAttempts/);
  assert.match(issue({ retry: {} }), /maxAttempts/);
  assert.match(
    issue({ retry: { maxAttempts: 2, backoff: { capMs: MAX_BACKOFF_MS + 1 } } }),
    /capMs/,
  );
  assert.match(
    issue({ retry: { maxAttempts: 2, backoff: { baseMs: 5000, capMs: 1000 } } }),
    /^\/retry\/backoff\/capMs is 1000, less than baseMs \(5000\)/,
  );
  for (const never of ['out_of_fuel', 'memory_limit', 'host_call_denied'])
    assert.equal(
      issue({ retry: { maxAttempts: 2, on: ['failed', never] } }),
      `/retry/on/1 '${never}' is never retried (it would fail again the same way)`,
    );
  assert.match(issue({ retry: { maxAttempts: 2, on: ['succeeded'] } }), /not a retryable outcome/);
  assert.match(issue({ retry: { maxAttempts: 2, on: [] } }), /on/);
  assert.match(issue({ breaker: { afterFailures: -1 } }), /afterFailures/);
  assert.match(issue({ breaker: { afterFailures: 1001 } }), /afterFailures/);
  assert.match(issue({ job: 'no spaces' }), /job/);
});

test('which outcomes retry, and until which attempt', () => {
  const p = retryFromText(
    '{"maxAttempts":3,"backoff":{"baseMs":1000,"capMs":5000},"on":["failed"]}',
  );
  assert.equal(retries(p, 'failed', 1), true);
  assert.equal(retries(p, 'failed', 2), true);
  assert.equal(retries(p, 'failed', 3), false);
  assert.equal(retries(p, 'trapped', 1), false);
  assert.equal(retries(p, 'out_of_fuel', 1), false);
  assert.equal(retries(NO_RETRY, 'failed', 1), false);
  // A stored text that is not a policy is no retry (never a throw).
  assert.equal(retryFromText('{"maxAttempts":"x"}'), NO_RETRY);
  assert.equal(retryFromText('not json'), NO_RETRY);
});

test('backoff: exponential bound capped, full jitter within [0, bound], deterministic', () => {
  const p: RetryPolicy = {
    maxAttempts: 10,
    backoff: { baseMs: 1000, capMs: 10_000 },
    on: ['failed'],
  };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => backoffBoundMs(p, n)),
    [1000, 2000, 4000, 8000, 10_000, 10_000],
  );
  const draws: number[] = [];
  for (let tick = 0; tick < 200; tick++)
    for (let n = 1; n <= 6; n++) {
      const d = retryDelayMs(p, 't/p/s', NOW + tick * 60_000, n);
      assert.ok(Number.isInteger(d) && d >= 0 && d <= backoffBoundMs(p, n), `${tick}/${n}: ${d}`);
      assert.equal(retryDelayMs(p, 't/p/s', NOW + tick * 60_000, n), d);
      if (n === 6) draws.push(d);
    }
  // Spread over the whole range (full jitter), not bunched at one end.
  assert.ok(Math.min(...draws) < 2000 && Math.max(...draws) > 8000);
});
