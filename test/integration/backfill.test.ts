/**
 * Costed backfill (docs/schedules.md, "Backfill"): a real host, real stores (SQLite and
 * PostgreSQL), the real proxy guest, a fake clock. The plan (ticks and cost) is read through the
 * operator's store access, as `hourglass backfill` reads it; the ticks are queued through the
 * host's operator action, as the command the CLI sends is applied.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.ts';
import { planBackfill } from '../../src/cli/backfill.ts';
import { openOperatorStore } from '../../src/operator/store-access.ts';
import type { HostConfig } from '../../src/config/host-config.ts';
import type { RunRecord } from '../../src/store/types.ts';
import { GatedSandbox, quiesce } from './gated-sandbox.ts';
import {
  T0,
  ManualClock,
  advance,
  proxyTenantConfig,
  runsOf,
  STORES,
  startHost,
  storeDir,
  turns,
} from './helpers.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;

const config = (
  dir: string,
  quotas: Record<string, unknown>,
  ...declarations: Record<string, unknown>[]
): HostConfig =>
  proxyTenantConfig(dir, { quotas, extra: { backfill: { intervalMs: MIN } } }, ...declarations);

const backfillRuns = (host: Host, key: string): RunRecord[] =>
  runsOf(host, key).filter((r) => r.trigger === 'backfill');

/** The `hourglass backfill` plan, read from the store as the CLI reads it. */
async function plan(
  host: Host,
  cfg: HostConfig,
  key: string,
  from: number,
  to: number,
  all = false,
) {
  await host.store.committed();
  const store = await openOperatorStore(cfg);
  try {
    return await planBackfill(store, key, { from, to, all }, 10_000, Date.now());
  } finally {
    await store.close();
  }
}

function queue(host: Host, key: string, ticks: readonly number[]): string {
  const r = host.operate(key, 'backfill', JSON.stringify({ ticks }));
  if (!r.ok) throw new Error(`backfill refused: ${r.message}`);
  return 'backfill' in r ? r.backfill : '?';
}

for (const store of STORES)
  describe(store, () => {
    test('a dry run lists the ticks without the ones that succeeded, with the cost of its runs; then they run oldest first at the bounded rate', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const cfg = config(dir, {}, { id: 'c', cron: '0 * * * *' });
      const { host, stop } = await startHost(cfg, clock);
      try {
        // Live ticks at 11:00, 12:00, 13:00 succeed: the history the estimate comes from.
        await advance(host, clock, 3 * HOUR + MIN, 1000);
        const live = runsOf(host, 't/p/c');
        assert.deepEqual(
          live.map((r) => [r.scheduledAt, r.status]),
          [1, 2, 3].map((h) => [T0 + h * HOUR, 'succeeded']),
        );

        const p = await plan(host, cfg, 't/p/c', T0 - 2 * HOUR, T0 + 3 * HOUR);
        // 08:00 .. 13:00: the three that succeeded are left out.
        assert.deepEqual(p.ticks, [T0 - 2 * HOUR, T0 - HOUR, T0]);
        assert.equal(p.succeeded, 3);
        const fuel = live.map((r) => r.fuelUsed as number).sort((a, b) => a - b);
        assert.ok(fuel.every((f) => f > 0));
        assert.deepEqual(p.estimate, {
          runs: 3,
          // Nearest rank: the 2nd of 3 is the median, the 3rd the p95.
          fuel: { median: fuel[1], p95: fuel[2] },
          durationMs: { median: 0, p95: 0 },
        });
        const all = await plan(host, cfg, 't/p/c', T0 - 2 * HOUR, T0 + 3 * HOUR, true);
        assert.equal(all.ticks.length, 6);
        assert.equal(all.succeeded, 0);

        const queuedAt = clock.now();
        assert.equal(queue(host, 't/p/c', p.ticks), 'queued 3 ticks');
        // Persisted from the moment they are queued.
        await turns(host);
        assert.deepEqual(
          backfillRuns(host, 't/p/c').map((r) => r.status),
          ['waiting', 'waiting', 'waiting'],
        );
        await advance(host, clock, 3 * MIN, 1000);
        const done = backfillRuns(host, 't/p/c').sort((a, b) => a.startedAt - b.startedAt);
        assert.deepEqual(
          done.map((r) => [r.scheduledAt, r.status, r.attempt, r.startedAt - queuedAt]),
          [
            [T0 - 2 * HOUR, 'succeeded', 1, 0],
            [T0 - HOUR, 'succeeded', 1, MIN],
            [T0, 'succeeded', 1, 2 * MIN],
          ],
        );
        // The guest saw the trigger.
        for (const r of done) assert.equal(JSON.parse(r.result as string).trigger, 'backfill');
        // The live schedule went on unchanged.
        assert.equal(host.store.getSchedule('t/p/c')?.nextAt, T0 + 4 * HOUR);
      } finally {
        await stop();
      }
    });

    test('the host refuses ticks that are not the schedule’s, future ticks and a second backfill; cancel records what was left', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const cfg = config(dir, {}, { id: 'c', cron: '*/15 * * * *' });
      const { host, stop } = await startHost(cfg, clock);
      try {
        const refused = (ticks: unknown) => {
          const r = host.operate('t/p/c', 'backfill', JSON.stringify({ ticks }));
          assert.equal(r.ok, false);
          return r.ok ? '' : `${r.code}: ${r.message}`;
        };
        assert.match(refused([T0 - 7 * MIN]), /^invalid: .* is not a tick of the schedule/);
        assert.match(refused([T0 + 15 * MIN]), /^invalid: .* is in the future/);
        assert.match(refused([]), /^invalid: no ticks/);
        assert.match(refused(['x']), /^invalid: ticks must be times/);
        const r = host.operate('t/p/nope', 'backfill', JSON.stringify({ ticks: [T0] }));
        assert.equal(r.ok ? '' : r.code, 'not_found');

        const ticks = [0, 1, 2, 3, 4].map((i) => T0 - (5 - i) * 15 * MIN);
        assert.equal(queue(host, 't/p/c', ticks), 'queued 5 ticks');
        assert.match(refused([T0]), /^invalid: .* has a backfill going \(\d ticks left\)/);
        await advance(host, clock, MIN + 1000, 1000);
        assert.equal(host.scheduler.backfillPending('t/p/c'), 3);
        const c = host.operate('t/p/c', 'backfill', '{"cancel":true}');
        assert.deepEqual(c, { ok: true, backfill: 'cancelled 3 ticks' });
        await advance(host, clock, 5 * MIN, 1000);
        const rows = backfillRuns(host, 't/p/c').sort((a, b) => a.scheduledAt - b.scheduledAt);
        assert.deepEqual(
          rows.map((x) => [x.scheduledAt, x.status, x.reason]),
          [
            [ticks[0], 'succeeded', null],
            [ticks[1], 'succeeded', null],
            [ticks[2], 'cancelled', 'backfill cancelled by the operator'],
            [ticks[3], 'cancelled', 'backfill cancelled by the operator'],
            [ticks[4], 'cancelled', 'backfill cancelled by the operator'],
          ],
        );
      } finally {
        await stop();
      }
    });

    test('never beside a live run: a backfill waits for a tenant slot and for a live run; a live tick due during a backfill run is buffered behind it (overlap skip)', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const cfg = config(
        dir,
        { maxRunsInFlight: 1 },
        { id: 'c', cron: '*/10 * * * *', overlap: 'skip' },
        { id: 'o', cron: '5 10 * * *' },
      );
      let gated!: GatedSandbox;
      const { host, stop } = await startHost(cfg, clock, {
        sandbox: (hc) => (gated = new GatedSandbox(hc)),
      });
      const started: [string, string, number][] = [];
      host.events.on('run:started', (r) =>
        started.push([r.schedule.localId, r.trigger, r.scheduledAt]),
      );
      const step = async (ms: number) => {
        clock.advance(ms);
        await turns(host);
      };
      const release = async () => {
        assert.equal(gated.held.length, 1);
        gated.held[0]?.release();
        await quiesce(gated, host.store);
      };
      try {
        // 10:05: 'o' holds the tenant's only slot; the backfill queued then waits for it.
        await step(5 * MIN);
        assert.deepEqual(started, [['o', 'schedule', T0 + 5 * MIN]]);
        queue(host, 't/p/c', [T0 - 20 * MIN, T0 - 10 * MIN]);
        await step(1000);
        await step(MIN);
        assert.equal(started.length, 1, 'no backfill run while the tenant is at its cap');
        await release();
        await step(MIN); // 10:07:01
        assert.deepEqual(started.at(-1), ['c', 'backfill', T0 - 20 * MIN]);
        // 10:10: the live tick finds the backfill run: buffered behind it, not skipped.
        await step(3 * MIN);
        assert.equal(host.store.getSchedule('t/p/c')?.bufferedAt, T0 + 10 * MIN);
        assert.equal(started.length, 2);
        await release();
        assert.deepEqual(started.at(-1), ['c', 'buffered', T0 + 10 * MIN]);
        // The next backfill tick is due, but the live run holds the key.
        await step(2 * MIN);
        assert.equal(started.length, 3);
        await release();
        await step(MIN);
        assert.deepEqual(started.at(-1), ['c', 'backfill', T0 - 10 * MIN]);
        await release();
        gated.open();
        await advance(host, clock, 30 * MIN, 1000);
        assert.equal(gated.maxConcurrent, 1, 'never two runs of a schedule at once');
        const c = runsOf(host, 't/p/c');
        assert.deepEqual(
          c.filter((r) => r.status === 'skipped_overlap'),
          [],
          'the live schedule lost no tick to the backfill',
        );
        assert.deepEqual(
          c.filter((r) => r.trigger !== 'backfill').map((r) => r.scheduledAt),
          [1, 2, 3, 4].map((k) => T0 + k * 10 * MIN),
        );
      } finally {
        gated.open();
        await stop();
      }
    });

    test('queued backfill ticks survive a restart: the next host runs each once', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const cfg = config(dir, {}, { id: 'c', cron: '0 * * * *' });
      const ticks = [3, 2, 1].map((h) => T0 - h * HOUR);
      const first = await startHost(cfg, clock);
      try {
        queue(first.host, 't/p/c', ticks);
        await advance(first.host, clock, 1000, 1000);
        assert.equal(first.host.scheduler.backfillPending('t/p/c'), 2);
      } finally {
        await first.stop();
      }
      const second = await startHost(cfg, clock);
      try {
        assert.deepEqual(
          second.host.store
            .listWaitingRuns('t/p')
            .map((r) => [r.trigger, r.scheduledAt])
            .sort(),
          [
            ['backfill', ticks[1]],
            ['backfill', ticks[2]],
          ],
        );
        assert.equal(second.host.scheduler.backfillPending('t/p/c'), 2);
        await advance(second.host, clock, 3 * MIN, 1000);
        const runs = backfillRuns(second.host, 't/p/c');
        assert.deepEqual(
          runs.map((r) => [r.scheduledAt, r.status]).sort(),
          ticks.map((x) => [x, 'succeeded']),
        );
      } finally {
        await second.stop();
      }
    });
  });
