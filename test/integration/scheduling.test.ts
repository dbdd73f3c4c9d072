import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.ts';
import { jitterFor } from '../../src/schedule/spec.ts';
import {
  GUEST,
  POLLER_MANIFEST,
  T0,
  ManualClock,
  advance,
  decls,
  makeConfig,
  proxyConfig,
  runsOf,
  STORES,
  startHost,
  storeDir,
  triggerRun,
} from './helpers.ts';

const HOUR = 3_600_000;

for (const store of STORES)
  describe(store, () => {
    test('cron in a time zone fires at local wall-clock times, across a DST change', async (t) => {
      const dir = await storeDir(t, store);
      // 2026-03-28 09:00 Berlin = 08:00Z (CET); 2026-03-29 09:00 Berlin = 07:00Z (CEST).
      const clock = new ManualClock(Date.parse('2026-03-28T00:00:00Z'));
      const config = proxyConfig(dir, { id: 'nine', cron: '0 9 * * *', timezone: 'Europe/Berlin' });
      const { host, stop } = await startHost(config, clock);
      try {
        await advance(host, clock, 48 * HOUR, 15 * 60_000);
        const runs = runsOf(host, 't/p/nine');
        assert.deepEqual(
          runs.map((r) => [new Date(r.scheduledAt).toISOString(), r.status]),
          [
            ['2026-03-28T08:00:00.000Z', 'succeeded'],
            ['2026-03-29T07:00:00.000Z', 'succeeded'],
          ],
        );
      } finally {
        await stop();
      }
    });

    test('intervals fire on an anchored grid; jitter delays each tick deterministically within its bound', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(
        dir,
        { id: 'every', every: '5m' },
        { id: 'jittery', every: '10m', jitter: '2m' },
      );
      const { host, stop } = await startHost(config, clock);
      try {
        await advance(host, clock, HOUR, 5_000);
        const every = runsOf(host, 't/p/every');
        assert.equal(every.length, 12);
        every.forEach((r, i) => {
          assert.equal(r.scheduledAt, T0 + (i + 1) * 300_000);
          assert.ok(r.startedAt - r.scheduledAt < 5_000, 'fired within one step of its time');
        });
        const jittery = runsOf(host, 't/p/jittery');
        assert.ok(jittery.length >= 5 && jittery.length <= 6, `${jittery.length} jittered runs`);
        for (const r of jittery) {
          const j = jitterFor('t/p/jittery', r.scheduledAt, 120_000);
          assert.ok(r.startedAt >= r.scheduledAt + j, 'not before its jittered time');
          assert.ok(
            r.startedAt < r.scheduledAt + j + 5_000,
            'within one step after its jittered time',
          );
        }
        assert.ok(
          new Set(jittery.map((r) => r.startedAt - r.scheduledAt)).size > 1,
          'jitter varies between ticks',
        );
      } finally {
        await stop();
      }
    });

    test('a one-shot schedule fires once and completes', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const at = new Date(T0 + 90_000).toISOString();
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            { name: 'p', wasm: GUEST.proxy, config: { schedules: decls({ id: 'once', at }) } },
          ],
        },
      ]);
      const { host, stop } = await startHost(config, clock);
      try {
        await advance(host, clock, 10 * 60_000, 10_000);
        const runs = runsOf(host, 't/p/once');
        assert.equal(runs.length, 1);
        assert.equal(runs[0]?.scheduledAt, T0 + 90_000);
        assert.equal(host.store.getSchedule('t/p/once')?.state, 'completed');
      } finally {
        await stop();
      }
    });

    test('a cursor returned by one run reaches the next; an empty output keeps it; null clears it', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(
        dir,
        { id: 'set', every: '1h', payload: { setCursor: { page: 7, token: 'ü' } } },
        { id: 'clear', every: '1h', payload: { setCursor: null } },
      );
      const { host, stop } = await startHost(config, clock);
      try {
        const first = await triggerRun(host, 't/p/set');
        assert.equal(first.result.seenCursor, null);
        const second = await triggerRun(host, 't/p/set');
        assert.deepEqual(second.result.seenCursor, { page: 7, token: 'ü' });
        assert.equal(host.store.getSchedule('t/p/set')?.cursor, '{"page":7,"token":"ü"}');
        await triggerRun(host, 't/p/clear');
        assert.equal(host.store.getSchedule('t/p/clear')?.cursor, null);
      } finally {
        await stop();
      }
    });

    test('the seed story: runtime schedule_create / pause / resume / delete persist and survive a restart', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = makeConfig(dir, [{ id: 'acme', plugins: [{ manifest: POLLER_MANIFEST }] }]);
      const a = await startHost(config, clock);
      // housekeeping fires every 10 s, creates poll-feed-1 (every 10 s), which pauses itself after 3 polls.
      await advance(a.host, clock, 60_000);
      const poller = a.host.store.getSchedule('acme/poller/poll-feed-1');
      assert.equal(poller?.origin, 'runtime');
      assert.equal(poller?.state, 'paused');
      assert.equal(poller?.pauseNote, 'caught up');
      assert.equal(poller?.cursor, '{"seen":3}');
      const polls = runsOf(a.host, 'acme/poller/poll-feed-1');
      assert.deepEqual(
        polls.map((r) => JSON.parse(r.result ?? 'null').seen),
        [1, 2, 3],
      );
      await a.stop();

      // After a restart the runtime schedule is still there, still paused, with its cursor.
      clock.advance(5_000);
      const b = await startHost(config, clock);
      try {
        const again = b.host.store.getSchedule('acme/poller/poll-feed-1');
        assert.equal(again?.state, 'paused');
        assert.equal(again?.cursor, '{"seen":3}');
        // The guest resumes and later deletes it through its own host functions (payload actions).
        const key = 'acme/poller/housekeeping';
        const resume = await runAction(b.host, { action: 'resume', id: 'poll-feed-1' });
        assert.equal(resume.ok?.state, 'active');
        await advance(b.host, clock, 10_000);
        assert.equal(runsOf(b.host, 'acme/poller/poll-feed-1').at(-1)?.status, 'succeeded');
        const del = await runAction(b.host, { action: 'delete', id: 'poll-feed-1' });
        assert.deepEqual(del.ok, { id: 'poll-feed-1', deleted: true });
        assert.equal(b.host.store.getSchedule('acme/poller/poll-feed-1')?.state, 'deleted');
        assert.ok(runsOf(b.host, key).length > 0);
      } finally {
        await b.stop();
      }
      const c = await startHost(config, clock);
      try {
        assert.equal(c.host.store.getSchedule('acme/poller/poll-feed-1')?.state, 'deleted');
        assert.equal(c.host.store.listSchedules({ pluginId: 'acme/poller' }).length, 1);
      } finally {
        await c.stop();
      }
    });
  });

/** Runs the poller's housekeeping schedule once with an action payload, via a runtime schedule. */
async function runAction(host: Host, payload: Record<string, unknown>) {
  const caller = { pluginId: 'acme/poller', tenant: 'acme', phase: 'run' as const };
  const id = `action-${Math.random().toString(36).slice(2, 8)}`;
  const created = host.schedules.create(caller, { id, every: '1h', payload });
  assert.ok('ok' in created, JSON.stringify(created));
  const { run } = await triggerRun(host, `acme/poller/${id}`);
  assert.equal(run.status, 'succeeded', run.error ?? '');
  host.schedules.deleteKey(`acme/poller/${id}`);
  return JSON.parse(run.result ?? '{}').response as {
    ok?: { state?: string; id?: string; deleted?: boolean };
  };
}
