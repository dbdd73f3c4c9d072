/**
 * Run-history retention (src/host/retention.ts, docs/store.md "Retention") on a real host, real
 * store (SQLite with its writer thread, and PostgreSQL), real compiled guest, fake clock: runs
 * older than `maxAgeMs` pruned, a tenant's count cap, a schedule's newest N kept however old,
 * unfinished runs never pruned, other tenants untouched, pruning after a restart; checked in
 * the host's store and in the durable copy (`storedCopy`).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.ts';
import { HostMetrics } from '../../src/observability/metrics.ts';
import type { NewRun, RunStatus } from '../../src/store/types.ts';
import {
  GUEST,
  T0,
  ManualClock,
  advance,
  decls,
  makeConfig,
  STORES,
  startHost,
  storeDir,
  storedCopy,
} from './helpers.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A run record of `key` (`<tenant>/p/<id>`) started at `at`, finished unless `status` says not. */
function runAt(key: string, at: number, status: RunStatus = 'succeeded'): NewRun {
  const [tenant, plugin, localId] = key.split('/') as [string, string, string];
  const open = status === 'running' || status === 'waiting';
  return {
    scheduleKey: key,
    pluginId: `${tenant}/${plugin}`,
    tenant,
    localId,
    trigger: 'schedule',
    status,
    reason: null,
    scheduledAt: at,
    startedAt: at,
    finishedAt: open ? null : at + 10,
    attempt: 1,
    error: null,
    outputBytes: open ? null : 0,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
  };
}

/** Waits (bounded) for the next `runs:pruned` of `tenant`; resolves with its count. */
function nextPruned(host: Host, tenant: string, ms = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      host.events.off('runs:pruned', on);
      reject(new Error(`no runs:pruned for ${tenant} in ${ms} ms`));
    }, ms);
    const on = (e: { tenant: string; count: number }): void => {
      if (e.tenant !== tenant) return;
      clearTimeout(timer);
      host.events.off('runs:pruned', on);
      resolve(e.count);
    };
    host.events.on('runs:pruned', on);
  });
}

const idsOf = (runs: readonly { id: number }[]): number[] =>
  runs.map((r) => r.id).sort((a, b) => a - b);

for (const store of STORES)
  describe(store, () => {
    test('age: old finished runs go, a schedule keeps its newest N, open runs and other tenants stay', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const plugin = {
        name: 'p',
        wasm: GUEST.proxy,
        config: { schedules: decls({ id: 'often', every: '5m' }) },
      };
      const config = makeConfig(
        dir,
        [
          { id: 't', retention: { maxAgeMs: HOUR, keepPerSchedule: 3 }, plugins: [plugin] },
          { id: 'u', plugins: [plugin] }, // the defaults: 30 days, so nothing of it goes
        ],
        { retention: { intervalMs: 30 * MIN, batchRows: 4 } },
      );
      const pruned = new Map<string, number>();
      let metrics: HostMetrics | null = null;
      const { host, stop } = await startHost(config, clock, {}, (h) => {
        metrics = new HostMetrics(h);
        h.events.on('runs:pruned', (e) =>
          pruned.set(e.tenant, (pruned.get(e.tenant) ?? 0) + e.count),
        );
      });
      try {
        // History from before: 5 runs of a schedule that no longer fires, 10 days old, an
        // unfinished one as old, and the other tenant's.
        const old: number[] = [];
        for (let i = 0; i < 5; i++)
          old.push(host.store.insertRun(runAt('t/p/gone', T0 - 10 * DAY + i)));
        const stuck = host.store.insertRun(runAt('t/p/stuck', T0 - 10 * DAY, 'running'));
        const other: number[] = [];
        for (let i = 0; i < 5; i++)
          other.push(host.store.insertRun(runAt('u/p/gone', T0 - 10 * DAY + i)));
        await host.store.committed();

        await advance(host, clock, 2 * HOUR, 5 * MIN);
        // The round in progress, if a timer started one during the advance (its cutoff is from
        // when it started), then one at this clock: all done.
        await host.retention.runRound();
        await host.retention.runRound();
        const cutoff = clock.now() - HOUR;

        const check = (
          runs: readonly { id: number; scheduleKey: string; tenant: string; startedAt: number }[],
        ): void => {
          const of = (key: string) => runs.filter((r) => r.scheduleKey === key);
          const often = of('t/p/often');
          assert.ok(often.length >= 12, `${often.length} recent runs of t/p/often kept`);
          assert.ok(
            often.every((r) => r.startedAt >= cutoff),
            'no run of t older than an hour',
          );
          assert.deepEqual(idsOf(of('t/p/gone')), old.slice(2), "a schedule's newest 3 kept");
          assert.deepEqual(idsOf(of('t/p/stuck')), [stuck], 'an unfinished run stays');
          assert.deepEqual(idsOf(of('u/p/gone')), other, 'another tenant untouched');
          assert.equal(of('u/p/often').length, 24, "the other tenant's runs all stay");
        };
        check(host.store.listRuns({ limit: 10_000 }));
        const durable = await storedCopy(config);
        try {
          check(durable.listRuns({ limit: 10_000 }));
        } finally {
          durable.close();
        }
        // 2 of t/p/gone, and t/p/often's runs older than an hour (24 fired, 12 or 13 left).
        const deleted = pruned.get('t') ?? 0;
        assert.ok(deleted >= 2 + 11 && deleted <= 2 + 12, `${deleted} pruned`);
        assert.equal(pruned.get('u'), undefined);
        const text = await (metrics as unknown as HostMetrics).text();
        assert.match(text, new RegExp(`hourglass_runs_pruned_total\\{tenant="t"\\} ${deleted}\\n`));
      } finally {
        (metrics as HostMetrics | null)?.close();
        await stop();
      }
    });

    test('count cap: the oldest runs beyond maxRuns go, on a host restarted over that history', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const plugin = {
        name: 'p',
        wasm: GUEST.proxy,
        config: { schedules: decls({ id: 'daily', every: '1d' }) },
      };
      const config = makeConfig(
        dir,
        [
          {
            id: 't',
            retention: { maxAgeDays: null, maxRuns: 10, keepPerSchedule: 2 },
            plugins: [plugin],
          },
        ],
        { retention: { intervalMs: 10 * MIN, batchRows: 5 } },
      );
      const first = await startHost(config, clock);
      const b: number[] = [];
      const a: number[] = [];
      try {
        for (let i = 0; i < 3; i++)
          b.push(first.host.store.insertRun(runAt('t/p/b', T0 - DAY + i)));
        for (let i = 0; i < 30; i++)
          a.push(first.host.store.insertRun(runAt('t/p/a', T0 - HOUR + i)));
        await first.host.store.committed();
      } finally {
        await first.stop();
      }
      const { host, stop } = await startHost(config, clock);
      try {
        const pruned = nextPruned(host, 't');
        clock.advance(10 * MIN);
        // 33 runs, 10 kept: the oldest first, but t/p/b's newest 2 stay.
        assert.equal(await pruned, 23);
        const expected = [...b.slice(1), ...a.slice(22)];
        assert.deepEqual(idsOf(host.store.listRuns({ tenant: 't', limit: 100 })), expected);
        const durable = await storedCopy(config);
        try {
          assert.deepEqual(idsOf(durable.listRuns({ tenant: 't', limit: 100 })), expected);
        } finally {
          durable.close();
        }
      } finally {
        await stop();
      }
    });
    test('maxRowsPerSec paces a round on the real clock, and stop() ends its wait', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const plugin = { name: 'p', wasm: GUEST.proxy, config: { schedules: decls() } };
      const tenants = [
        {
          id: 't',
          retention: { maxAgeMs: HOUR, keepPerSchedule: 0 },
          plugins: [plugin],
        },
      ];
      // 40 old runs in steps of 5 at 100 a second: the round takes at least 0.4 s.
      const paced = makeConfig(dir, tenants, {
        retention: { intervalMs: DAY, batchRows: 5, maxRowsPerSec: 100 },
      });
      let h = await startHost(paced, clock);
      try {
        for (let i = 0; i < 40; i++) h.host.store.insertRun(runAt('t/p/old', T0 - DAY + i));
        await h.host.store.committed();
        const pruned = nextPruned(h.host, 't');
        const t0 = performance.now();
        await h.host.retention.runRound();
        const ms = performance.now() - t0;
        assert.equal(await pruned, 40);
        // Node's timers may fire up to a millisecond early: a margin, not a timing bound.
        assert.ok(ms >= 390, `a round of 40 runs at 100/s took ${ms.toFixed(0)} ms`);
        assert.deepEqual(h.host.store.listRuns({ tenant: 't', limit: 100 }), []);
      } finally {
        await h.stop();
      }

      // One run a second in steps of 600: after its first step the round would wait 10 min.
      const slow = makeConfig(dir, tenants, {
        retention: { intervalMs: DAY, batchRows: 600, maxRowsPerSec: 1 },
      });
      h = await startHost(slow, clock);
      try {
        for (let i = 0; i < 700; i++) h.host.store.insertRun(runAt('t/p/old', T0 - DAY + i));
        await h.host.store.committed();
        const round = h.host.retention.runRound();
        while (h.host.store.listRuns({ tenant: 't', limit: 1000 }).length > 100)
          await new Promise((r) => setTimeout(r, 10));
        // In its wait now: stop() ends it (a hang here is the failure) and no step follows.
        await h.host.retention.stop();
        await round;
        assert.equal(h.host.store.listRuns({ tenant: 't', limit: 1000 }).length, 100);
      } finally {
        await h.stop();
      }
    });
  });
