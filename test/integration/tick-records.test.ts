/**
 * Every tick leaves a record (issue 9 items 7, 9, 10, 11): jitter never swallows a tick, a
 * fire happens only when the store says it is due, ticks waiting for a tenant slot or buffered
 * survive crashes, stops and pauses as records, and a run of a deleted schedule cannot write
 * its cursor into the schedule re-created under the same id.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock, TimerHandle } from '../../src/clock.ts';
import type { Host } from '../../src/host/host.ts';
import { GatedSandbox } from './gated-sandbox.ts';
import {
  T0,
  ManualClock,
  advance,
  crash,
  decls,
  makeConfig,
  GUEST,
  proxyConfig,
  runsOf,
  STORES,
  startHost,
  storeDir,
  storedRunStatus,
  turns,
  triggerRun,
} from './helpers.ts';
import { unaccounted } from './tick-accounting.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;

function accountFor(host: Host, key: string, from: number, until: number): number[] {
  const s = host.store.getSchedule(key);
  assert.ok(s);
  return unaccounted(s, runsOf(host, key), [[from, until]]);
}

/** A clock whose timers can be made late: `jump` moves time, then runs what became due. */
class LateClock implements Clock {
  #now: number;
  #timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  constructor(now: number) {
    this.#now = now;
  }
  now(): number {
    return this.#now;
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.#now + Math.max(0, ms), fn, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }
  jump(ms: number): void {
    this.#now += ms;
    for (;;) {
      const due = this.#timers.find((x) => !x.cancelled && x.at <= this.#now);
      if (!due) return;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      due.fn();
    }
  }
}

function cappedConfig(dir: string, extra: Record<string, unknown> = {}) {
  return makeConfig(dir, [
    {
      id: 't',
      quotas: { maxRunsInFlight: 1 },
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: {
            schedules: decls({ id: 'a', every: '1m' }, { id: 'b', every: '1m', ...extra }),
          },
        },
      ],
    },
  ]);
}

async function gatedHost(config: ReturnType<typeof makeConfig>, clock: ManualClock) {
  let gated: GatedSandbox | undefined;
  const started = await startHost(config, clock, {
    sandbox: (hc) => (gated = new GatedSandbox(hc)),
  });
  return { ...started, g: gated as GatedSandbox };
}

for (const store of STORES)
  describe(store, () => {
    test('jitter at least the gap never swallows a tick: every 1m + jitter 90s, */15 + jitter 20m over 6 h', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(
        dir,
        { id: 'minute', every: '1m', jitter: '90s' },
        { id: 'quarter', cron: '*/15 * * * *', jitter: '20m' },
      );
      const { host, stop } = await startHost(config, clock);
      try {
        await advance(host, clock, 6 * HOUR, 10_000);
        const minute = runsOf(host, 't/p/minute');
        // 360 ticks; the last one may still wait for its jitter (then it is the pending `nextAt`).
        assert.ok(new Set(minute.map((r) => r.scheduledAt)).size >= 359, 'one record per tick');
        assert.deepEqual(accountFor(host, 't/p/minute', T0, T0 + 6 * HOUR), []);
        const quarter = runsOf(host, 't/p/quarter');
        assert.ok(new Set(quarter.map((r) => r.scheduledAt)).size >= 23);
        assert.deepEqual(accountFor(host, 't/p/quarter', T0, T0 + 6 * HOUR), []);
        // Jitter only delays: no tick starts before its nominal time, none is skipped by jitter
        // (a tick meeting its predecessor's run is recorded by the overlap policy).
        for (const r of [...minute, ...quarter]) assert.ok(r.startedAt >= r.scheduledAt);
        assert.ok(
          minute.every((r) => ['succeeded', 'skipped_overlap'].includes(r.status)),
          JSON.stringify(minute.filter((r) => r.status !== 'succeeded').slice(0, 3)),
        );
      } finally {
        await stop();
      }
    });

    test('a tick fires only when the store says it is due (another writer moved next_at)', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const { host, stop } = await startHost(proxyConfig(dir, { id: 's', every: '1m' }), clock);
      try {
        // Behind the host's back, the schedule's next time moves 30 s later.
        host.store.updateSchedule('t/p/s', { nextAt: T0 + MIN + 30_000 });
        await advance(host, clock, MIN, 1000);
        assert.equal(runsOf(host, 't/p/s').length, 0, 'not fired at the old time');
        await advance(host, clock, 30_000, 1000);
        const runs = runsOf(host, 't/p/s');
        assert.equal(runs.length, 1);
        assert.equal(runs[0]?.scheduledAt, T0 + MIN + 30_000);
        assert.ok((runs[0]?.startedAt ?? 0) >= T0 + MIN + 30_000);
      } finally {
        await stop();
      }
    });

    test('a host that fires late coalesces the overrun ticks into one record covering them', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new LateClock(T0);
      const { host, stop } = await startHost(proxyConfig(dir, { id: 's', every: '10s' }), clock);
      try {
        clock.jump(10_000);
        await host.scheduler.settle();
        // The event loop was blocked for 95 s: the timer callback runs 95 s late.
        clock.jump(95_000);
        await host.scheduler.settle();
        const runs = runsOf(host, 't/p/s');
        const late = runs.find((r) => r.status === 'skipped_misfire');
        assert.ok(late, JSON.stringify(runs.map((r) => r.status)));
        assert.equal(late.scheduledAt, T0 + 30_000);
        assert.ok(late.coversUntil !== null && late.coversUntil >= T0 + 90_000);
        assert.deepEqual(accountFor(host, 't/p/s', T0, clock.now()), []);
      } finally {
        await stop();
      }
    });

    test('a tick waiting for a tenant slot is a `waiting` record; after a crash it runs (within the grace) or is recorded by the misfire policy', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const a = await gatedHost(cappedConfig(dir), clock);
      clock.advance(MIN);
      await turns(a.host);
      const waiting = a.host.store.listRuns({ status: 'waiting' });
      assert.equal(waiting.length, 1, 'the second tick waits, with a record');
      assert.equal(a.g.waiting, 1);
      await crash(a);

      // Back within the grace: the waiting tick runs, on its own record.
      const b = await startHost(cappedConfig(dir), clock);
      try {
        await b.host.scheduler.settle();
        const row = b.host.store.getRun(waiting[0]?.id ?? -1);
        assert.equal(row?.status, 'succeeded');
        assert.equal(row?.scheduledAt, T0 + MIN);
      } finally {
        await b.stop();
      }
    });

    test('a waiting tick past the grace: `skipped_misfire` (misfire skip) or run as catch-up (run-once)', async (t) => {
      for (const misfire of ['skip', 'run-once'] as const) {
        const dir = await storeDir(t, store);
        const clock = new ManualClock(T0);
        const config = cappedConfig(dir, { misfire });
        const a = await gatedHost(config, clock);
        clock.advance(MIN);
        await turns(a.host);
        const [w] = a.host.store.listRuns({ status: 'waiting' });
        assert.ok(w);
        await crash(a);
        clock.advance(10 * MIN);
        const b = await startHost(config, clock);
        try {
          await b.host.scheduler.settle();
          const row = b.host.store.getRun(w.id);
          assert.equal(row?.status, misfire === 'skip' ? 'skipped_misfire' : 'succeeded', misfire);
          assert.equal(b.host.store.listRuns({ status: 'waiting' }).length, 0);
          assert.deepEqual(accountFor(b.host, w.scheduleKey, T0, clock.now()), [], misfire);
        } finally {
          await b.stop();
        }
      }
    });

    test('a graceful stop keeps waiting ticks as `waiting` records; the next start takes them up', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const a = await gatedHost(cappedConfig(dir), clock);
      clock.advance(MIN);
      await turns(a.host);
      const [w] = a.host.store.listRuns({ status: 'waiting' });
      assert.ok(w);
      await a.stop(0);
      assert.equal(await storedRunStatus(a.host.config, w.id), 'waiting');
      const b = await startHost(cappedConfig(dir), clock);
      try {
        await b.host.scheduler.settle();
        assert.equal(b.host.store.getRun(w.id)?.status, 'succeeded');
      } finally {
        await b.stop();
      }
    });

    test('pause or delete during the wait: the waiting tick never starts and is recorded `cancelled`', async (t) => {
      for (const action of ['pause', 'delete'] as const) {
        const dir = await storeDir(t, store);
        const clock = new ManualClock(T0);
        const { host, g, stop } = await gatedHost(cappedConfig(dir), clock);
        try {
          clock.advance(MIN);
          await turns(host);
          const [w] = host.store.listRuns({ status: 'waiting' });
          assert.ok(w);
          assert.ok(host.operate(w.scheduleKey, action).ok);
          assert.equal(host.store.getRun(w.id)?.status, 'cancelled');
          assert.equal(host.store.getRun(w.id)?.reason, action === 'pause' ? 'paused' : 'deleted');
          g.open();
          await host.scheduler.settle();
          assert.equal(runsOf(host, w.scheduleKey).length, 1, `${action}: never started`);
        } finally {
          g.open();
          await stop();
        }
      }
    });

    test('a buffered tick: cancelled with a record on pause; taken up after a restart; buffered_at never stale', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(dir, { id: 'buf', every: '10s', overlap: 'buffer-one' });
      const a = await gatedHost(config, clock);
      for (let i = 0; i < 2; i++) {
        clock.advance(10_000);
        await turns(a.host);
      }
      assert.equal(a.host.store.getSchedule('t/p/buf')?.bufferedAt, T0 + 20_000);
      assert.ok(a.host.operate('t/p/buf', 'pause').ok);
      assert.equal(a.host.store.getSchedule('t/p/buf')?.bufferedAt, null);
      const cancelled = runsOf(a.host, 't/p/buf').find((r) => r.status === 'cancelled');
      assert.equal(cancelled?.scheduledAt, T0 + 20_000);
      assert.equal(cancelled?.trigger, 'buffered');
      assert.ok(a.host.operate('t/p/buf', 'resume').ok);
      // Buffer again, then stop gracefully with the tick buffered.
      for (let i = 0; i < 2; i++) {
        clock.advance(10_000);
        await turns(a.host);
      }
      const buffered = a.host.store.getSchedule('t/p/buf')?.bufferedAt;
      assert.ok(buffered);
      await a.stop(0);
      const b = await startHost(config, clock);
      try {
        await b.host.scheduler.settle();
        // Taken up by the misfire policy (skip): more than the grace old at the restart.
        const taken = runsOf(b.host, 't/p/buf').find(
          (r) => r.scheduledAt === buffered && r.trigger === 'buffered',
        );
        assert.equal(taken?.status, 'skipped_misfire');
        assert.equal(b.host.store.getSchedule('t/p/buf')?.bufferedAt, null);
      } finally {
        await b.stop();
      }
    });

    test('a run of a deleted schedule does not write its cursor into the schedule re-created with its id', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const payload = {
        calls: [
          { fn: 'schedule_delete', args: { id: 'self' } },
          { fn: 'schedule_create', args: { id: 'self', every: '1h' } },
        ],
        setCursor: 'from-the-old-incarnation',
      };
      const { host, stop } = await startHost(
        proxyConfig(dir, { id: 'self', every: '1h', payload }),
        clock,
      );
      try {
        const before = host.store.getSchedule('t/p/self');
        const { run, result } = await triggerRun(host, 't/p/self');
        assert.equal(run.status, 'succeeded', run.error ?? '');
        assert.ok(
          result.responses.every((r) => 'ok' in r),
          JSON.stringify(result.responses),
        );
        const after = host.store.getSchedule('t/p/self');
        assert.equal(after?.state, 'active');
        assert.equal(after?.origin, 'runtime');
        assert.equal(after?.generation, (before?.generation ?? 0) + 1);
        assert.equal(after?.cursor, null, 'the new incarnation keeps its fresh cursor');
      } finally {
        await stop();
      }
    });
  });
