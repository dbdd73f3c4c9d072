/** Unit tests for host-functions/main-thread-share.ts, on an injected clock. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BURST_SECONDS,
  HOST_CALL_OVERHEAD_MS,
  MainThreadShare,
} from '../../host-functions/main-thread-share.ts';

function setup(msPerSecond: Record<string, number>) {
  let now = 0;
  const share = new MainThreadShare(
    (tenant) => msPerSecond[tenant] ?? 100,
    () => now,
  );
  return { share, advance: (ms: number) => (now += ms) };
}

test('a tenant starts with a full bucket and is refused once it is spent', () => {
  const { share } = setup({ a: 100 });
  let admitted = 0;
  while (share.admit('a') === null) {
    share.spend('a', 10);
    admitted++;
  }
  // 100 ms per second × BURST_SECONDS at 10 ms (+ overhead) a call; the last goes into debt.
  assert.equal(admitted, 10 * BURST_SECONDS);
  assert.match(share.admit('a') ?? '', /tenant a used its share .*100 ms per second.*try again/);
});

test('the share refills at its rate, up to BURST_SECONDS of it', () => {
  const { share, advance } = setup({ a: 100 });
  share.spend('a', 100 * BURST_SECONDS + 50); // 50 ms of debt
  assert.notEqual(share.admit('a'), null);
  advance(400); // +40 ms: still in debt
  assert.notEqual(share.admit('a'), null);
  advance(200); // +20 ms: above zero again
  assert.equal(share.admit('a'), null);
  advance(60_000);
  assert.equal(share.balance('a'), 100 * BURST_SECONDS);
});

test('refused calls take their overhead, so a tenant that keeps calling stays refused', () => {
  const { share, advance } = setup({ a: 1 });
  share.spend('a', BURST_SECONDS);
  for (let i = 0; i < 1_000; i++) {
    advance(0.01); // 1,000 calls in 10 ms: refills 0.01 ms, costs 1,000 × overhead
    assert.notEqual(share.admit('a'), null);
  }
  assert.ok(share.balance('a') < -1_000 * HOST_CALL_OVERHEAD_MS + 0.5);
});

test('tenants have separate buckets with their own rates', () => {
  const { share } = setup({ a: 10, b: 1_000 });
  share.spend('a', 10 * BURST_SECONDS);
  assert.notEqual(share.admit('a'), null);
  assert.equal(share.admit('b'), null);
  share.spend('b', 900 * BURST_SECONDS);
  assert.equal(share.admit('b'), null);
});
