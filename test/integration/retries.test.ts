/**
 * Retries with backoff and the breaker (docs/schedules.md, "Retries and the breaker"): a real
 * host, real stores (SQLite and PostgreSQL), the real proxy guest (its payload's `failBefore`
 * fails the attempts before a given one, with the attempt it saw in its error), a fake clock.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.ts';
import { backoffBoundMs, retryDelayMs, retryFromText } from '../../src/schedule/retry.ts';
import type { RetryScheduled } from '../../src/scheduler/scheduler.ts';
import type { RunRecord } from '../../src/store/types.ts';
import {
  T0,
  ManualClock,
  advance,
  proxyConfig,
  runsOf,
  STORES,
  startHost,
  proxyTenantConfig,
  storeDir,
  triggerRun,
} from './helpers.ts';

const HOUR = 3_600_000;

/** Runs that ran (not the records of ticks that did not), oldest first. */
function ran(host: Host, key: string): RunRecord[] {
  return runsOf(host, key).filter(
    (r) => !['skipped_overlap', 'skipped_misfire', 'cancelled', 'waiting'].includes(r.status),
  );
}

function listen(host: Host): { retries: RetryScheduled[]; trips: { key: string; note: string }[] } {
  const out = {
    retries: [] as RetryScheduled[],
    trips: [] as { key: string; note: string }[],
  };
  host.events.on('run:retrying', (r) => out.retries.push(r));
  host.events.on('schedule:tripped', (e) => out.trips.push({ key: e.schedule.key, note: e.note }));
  return out;
}

for (const store of STORES)
  describe(store, () => {
    test('a failing tick is retried with exponential backoff and full jitter, attempts 1..n as the guest sees them', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const policy = { maxAttempts: 4, backoff: { baseMs: 10_000, capMs: 25_000 } };
      const config = proxyConfig(
        dir,
        { id: 'always', every: '1h', payload: { failBefore: 99 }, retry: policy },
        { id: 'third', every: '1h', payload: { failBefore: 3 }, retry: policy },
        { id: 'traps', every: '1h', payload: { trap: true }, retry: { maxAttempts: 2 } },
        {
          // host_call_denied is never retried (a grant decides it, not luck).
          id: 'denied',
          every: '1h',
          payload: { calls: [{ fn: 'jobs_register', args: { name: 'late' } }] },
          retry: { maxAttempts: 3, on: ['failed', 'trapped'] },
        },
        { id: 'once', every: '1h', payload: { failBefore: 99 } },
      );
      let seen!: ReturnType<typeof listen>;
      const { host, stop } = await startHost(config, clock, {}, (h) => (seen = listen(h)));
      try {
        await advance(host, clock, HOUR + 2 * 60_000, 500);
        const tick = T0 + HOUR;

        const always = ran(host, 't/p/always');
        assert.deepEqual(
          always.map((r) => [r.attempt, r.trigger, r.status, r.error, r.scheduledAt]),
          [1, 2, 3, 4].map((n) => [
            n,
            n === 1 ? 'schedule' : 'retry',
            'failed',
            `attempt ${n}`,
            tick,
          ]),
        );
        const stored = retryFromText(
          (host.store.getSchedule('t/p/always')?.retry as string | null) ?? '',
        );
        assert.equal(stored.maxAttempts, 4);
        const retries = seen.retries.filter((r) => r.schedule.key === 't/p/always');
        assert.equal(retries.length, 3);
        const bounds = [10_000, 20_000, 25_000];
        for (let i = 0; i < 3; i++) {
          const failed = always[i] as RunRecord;
          const next = always[i + 1] as RunRecord;
          const r = retries[i] as RetryScheduled;
          const delay = r.dueAt - (failed.finishedAt as number);
          // Within the policy's full-jitter bound: [0, min(cap, base·2^(n-1))].
          assert.ok(delay >= 0 && delay <= (bounds[i] as number), `delay ${i}: ${delay}`);
          assert.equal(backoffBoundMs(stored, i + 1), bounds[i]);
          // The deterministic draw (key, tick, attempt) is the one the host made.
          assert.equal(delay, retryDelayMs(stored, 't/p/always', tick, i + 1));
          // The retry ran when it was due, as its row said (the row is the run's own).
          assert.equal(next.startedAt, r.dueAt);
          assert.equal(next.id, r.retryRunId);
          assert.equal(r.attempt, i + 2);
        }

        const third = ran(host, 't/p/third');
        assert.deepEqual(
          third.map((r) => [r.attempt, r.status]),
          [
            [1, 'failed'],
            [2, 'failed'],
            [3, 'succeeded'],
          ],
        );
        assert.equal((JSON.parse(third[2]?.result ?? '{}') as { attempt: number }).attempt, 3);

        assert.deepEqual(
          ran(host, 't/p/traps').map((r) => [r.attempt, r.status]),
          [
            [1, 'trapped'],
            [2, 'trapped'],
          ],
        );
        assert.deepEqual(
          ran(host, 't/p/denied').map((r) => [r.attempt, r.status]),
          [[1, 'host_call_denied']],
        );
        assert.deepEqual(
          ran(host, 't/p/once').map((r) => [r.attempt, r.status]),
          [[1, 'failed']],
        );
        assert.equal(host.store.listWaitingRuns('t/p').length, 0);
      } finally {
        await stop();
      }
    });

    test("a job contract's retry policy is the default of the schedules that name it", async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyTenantConfig(
        dir,
        {
          calls: [
            {
              fn: 'jobs_register',
              args: { name: 'nightly', retry: { maxAttempts: 3, backoff: { baseMs: 1000 } } },
            },
          ],
        },
        { id: 'byjob', every: '1h', job: 'nightly', payload: { failBefore: 99 } },
        {
          id: 'own',
          every: '1h',
          job: 'nightly',
          retry: { maxAttempts: 2 },
          payload: { failBefore: 99 },
        },
      );
      const { host, stop } = await startHost(config, clock);
      try {
        await advance(host, clock, HOUR + 60_000, 500);
        assert.deepEqual(
          ran(host, 't/p/byjob').map((r) => r.attempt),
          [1, 2, 3],
        );
        assert.deepEqual(
          ran(host, 't/p/own').map((r) => r.attempt),
          [1, 2],
        );
      } finally {
        await stop();
      }
    });

    test('schedule_create may name any registered job contract, with or without a retry policy', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const create = (id: string, job: string) => ({
        fn: 'schedule_create',
        args: { id, every: '1h', job },
      });
      const config = proxyTenantConfig(
        dir,
        {
          calls: [
            { fn: 'jobs_register', args: { name: 'plain' } },
            { fn: 'jobs_register', args: { name: 'nightly', retry: { maxAttempts: 3 } } },
          ],
        },
        {
          id: 'maker',
          every: '1h',
          payload: { calls: [create('a', 'plain'), create('b', 'nightly'), create('c', 'nope')] },
        },
      );
      const { host, stop } = await startHost(config, clock);
      try {
        const { result } = await triggerRun(host, 't/p/maker');
        assert.deepEqual(
          result.responses.map((r) => (r.ok ? 'ok' : r.error?.code)),
          ['ok', 'ok', 'invalid_argument'],
        );
        assert.equal(host.store.getSchedule('t/p/a')?.job, 'plain');
        assert.equal(host.store.getSchedule('t/p/b')?.job, 'nightly');
      } finally {
        await stop();
      }
    });

    for (const overlap of ['skip', 'buffer-one'] as const)
      test(`a tick due while the previous one waits for its retry follows the overlap policy (${overlap})`, async (t) => {
        const dir = await storeDir(t, store);
        const clock = new ManualClock(T0);
        const config = proxyConfig(dir, {
          id: 'r',
          every: '10s',
          overlap,
          payload: { failBefore: 99 },
          retry: { maxAttempts: 3, backoff: { baseMs: 40_000, capMs: 40_000 } },
        });
        const { host, stop } = await startHost(config, clock);
        try {
          await advance(host, clock, 200_000, 500);
          const all = runsOf(host, 't/p/r');
          const runs = all.filter((r) => r.status === 'failed');
          // At most one run at a time, and a tick's attempts back to back: 1, 2, 3, then the
          // next tick (buffered or scheduled) only after the last attempt ended.
          for (let i = 1; i < runs.length; i++) {
            const prev = runs[i - 1] as RunRecord;
            const cur = runs[i] as RunRecord;
            assert.ok(cur.startedAt >= (prev.finishedAt as number));
            if (prev.attempt < 3) {
              assert.equal(cur.attempt, prev.attempt + 1);
              assert.equal(cur.scheduledAt, prev.scheduledAt);
              assert.equal(cur.trigger, 'retry');
            } else {
              assert.equal(cur.attempt, 1);
              assert.ok(cur.scheduledAt > prev.scheduledAt);
            }
          }
          const first = runs.slice(0, 3);
          assert.deepEqual(
            first.map((r) => r.attempt),
            [1, 2, 3],
          );
          const busyFrom = first[0]?.startedAt as number;
          const busyUntil = first[2]?.finishedAt as number;
          // Ticks that came due while the first tick was retrying (none of them ran then).
          const during = all
            .filter((r) => r.attempt === 1 && r.scheduledAt > busyFrom && r.scheduledAt < busyUntil)
            .sort((a, b) => a.scheduledAt - b.scheduledAt);
          assert.ok(during.length >= 2, `ticks during the retries: ${during.length}`);
          if (overlap === 'skip') {
            for (const r of during) assert.equal(r.status, 'skipped_overlap');
            assert.equal(runs[3]?.trigger, 'schedule');
          } else {
            // The first is buffered (and runs once the tick's last attempt ended); the rest are
            // skipped.
            const [buffered, ...rest] = during;
            assert.equal(buffered?.trigger, 'buffered');
            assert.equal(buffered?.status, 'failed');
            assert.equal(buffered?.startedAt, busyUntil);
            for (const r of rest) assert.equal(r.status, 'skipped_overlap');
          }
          // A manual trigger during a retry's backoff is refused too (the schedule is busy).
          const pending = host.store.listWaitingRuns('t/p');
          if (pending.length === 1) {
            const r = host.operate('t/p/r', 'trigger');
            assert.deepEqual(r, { ok: true, trigger: 'skipped' });
          }
        } finally {
          await stop();
        }
      });

    test('a pending retry survives a restart: the next host runs it once, when it is due', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(dir, {
        id: 'r',
        every: '1h',
        payload: { failBefore: 2 },
        retry: { maxAttempts: 3, backoff: { baseMs: 600_000, capMs: 600_000 } },
      });
      let seen!: ReturnType<typeof listen>;
      const first = await startHost(config, clock, {}, (h) => (seen = listen(h)));
      let retry: RetryScheduled;
      try {
        await advance(first.host, clock, HOUR, 1000);
        assert.equal(seen.retries.length, 1);
        retry = seen.retries[0] as RetryScheduled;
        assert.ok(retry.dueAt > clock.now(), 'the retry is still pending');
      } finally {
        await first.stop();
      }
      const second = await startHost(config, clock);
      try {
        const [waiting] = second.host.store.listWaitingRuns('t/p');
        assert.equal(waiting?.id, retry.retryRunId);
        assert.equal(waiting?.trigger, 'retry');
        assert.equal(waiting?.attempt, 2);
        assert.equal(second.host.scheduler.isBusy('t/p/r'), true);
        await advance(second.host, clock, retry.dueAt - clock.now() + 30 * 60_000, 1000);
        const runs = ran(second.host, 't/p/r');
        assert.deepEqual(
          runs.map((r) => [r.id, r.attempt, r.status, r.scheduledAt, r.startedAt]),
          [
            [runs[0]?.id, 1, 'failed', T0 + HOUR, T0 + HOUR],
            [retry.retryRunId, 2, 'succeeded', T0 + HOUR, retry.dueAt],
          ],
        );
        assert.equal(second.host.scheduler.isBusy('t/p/r'), false);
      } finally {
        await second.stop();
      }
    });

    test('the breaker pauses a schedule after N failed ticks in a row; resume clears the count, a success resets it', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyTenantConfig(
        dir,
        { quotas: { breakerAfterFailures: 2 } },
        {
          id: 'b',
          every: '1m',
          payload: { failBefore: 99 },
          breaker: { afterFailures: 3 },
          retry: { maxAttempts: 2, backoff: { baseMs: 1000, capMs: 1000 } },
        },
        // The tenant's default (2) applies.
        { id: 'dflt', every: '1m', payload: { failBefore: 99 } },
        // Never paused.
        { id: 'off', every: '1m', payload: { failBefore: 99 }, breaker: { afterFailures: 0 } },
      );
      let seen!: ReturnType<typeof listen>;
      const { host, stop } = await startHost(config, clock, {}, (h) => (seen = listen(h)));
      try {
        await advance(host, clock, 10 * 60_000, 500);
        const b = host.store.getSchedule('t/p/b');
        assert.equal(b?.state, 'paused');
        assert.equal(b?.failStreak, 3);
        assert.match(b?.pauseNote ?? '', /^breaker: 3 failed ticks in a row \(limit 3/);
        // Three ticks of two attempts each, then nothing.
        assert.deepEqual(
          ran(host, 't/p/b').map((r) => [r.scheduledAt - T0, r.attempt]),
          [
            [60_000, 1],
            [60_000, 2],
            [120_000, 1],
            [120_000, 2],
            [180_000, 1],
            [180_000, 2],
          ],
        );
        const dflt = host.store.getSchedule('t/p/dflt');
        assert.equal(dflt?.state, 'paused');
        assert.equal(ran(host, 't/p/dflt').length, 2);
        assert.equal(host.store.getSchedule('t/p/off')?.state, 'active');
        assert.equal(host.store.getSchedule('t/p/off')?.failStreak, 10);
        assert.deepEqual(
          seen.trips.map((e) => e.key),
          ['t/p/dflt', 't/p/b'],
        );
        assert.equal(seen.trips[1]?.note, b?.pauseNote);

        // The operator resumes it: the count is cleared, and failures count from 0 again.
        assert.equal(host.operate('t/p/b', 'resume').ok, true);
        assert.equal(host.store.getSchedule('t/p/b')?.failStreak, 0);
        // Its next tick (and that tick's retry, at most a second later) fails.
        await advance(host, clock, 62_000, 500);
        assert.equal(host.store.getSchedule('t/p/b')?.failStreak, 1);
        assert.equal(host.store.getSchedule('t/p/b')?.state, 'active');
        // A tick that succeeds (a trigger with a payload that does) resets it.
        assert.deepEqual(host.operate('t/p/b', 'trigger', '{}'), {
          ok: true,
          trigger: 'started',
        });
        await host.scheduler.settle();
        assert.equal(host.store.getSchedule('t/p/b')?.failStreak, 0);
        assert.equal(seen.trips.length, 2);
      } finally {
        await stop();
      }
    });
  });
