/**
 * Metrics (issue 12): after a known sequence of runs on real guests (succeeded, failed, trapped,
 * out of fuel, denied a host call, timed out with its worker replaced, an overlap skipped, a
 * plugin that fails to load, a schedule paused and one deleted), `/metrics`' text is parsed by
 * a Prometheus text-format parser and every value is checked against the store: runs by
 * outcome, tenant and plugin; fuel used and durations (sum and count); fire lateness; skipped
 * ticks; schedules by state; host calls by function and code; plugin loads and failures; the
 * pool; commits. On SQLite and on PostgreSQL. Nothing waits on time: every step awaits the
 * runs it started (`scheduler.settle()`), the manual clock drives the scheduled fires, and the
 * one wall-clock deadline (the timed-out run) only has to pass, however slowly.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import parsePrometheusTextFormat, {
  type PrometheusFamily,
  type PrometheusSample,
} from 'parse-prometheus-text-format';
import { HostMetrics } from '../../src/observability/metrics.ts';
import type { RunRecord, ScheduleState } from '../../src/store/types.ts';
import {
  advance,
  decls,
  GUEST,
  makeConfig,
  ManualClock,
  startHost,
  STORES,
  storeDir,
  T0,
} from './helpers.ts';

/** A parsed scrape: each family by name. */
type Scrape = Map<string, PrometheusFamily>;

/**
 * Parses a scrape. The parser keeps a histogram's `_sum` and `_count` only when it has no
 * labels (it merges labelled ones into one bucket map), so a histogram's TYPE line is read as
 * `untyped`: its `_bucket`, `_sum` and `_count` series then parse as families of their own, each
 * sample with all its labels. Everything else parses as is.
 */
function parse(text: string): Scrape {
  const histograms = [...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1] as string);
  assert.ok(histograms.length > 0);
  const families = parsePrometheusTextFormat(
    text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'),
  );
  // A histogram's series come label set by label set (buckets, sum, count, then the next):
  // the same name starts a family again each time, so families are merged by name.
  const byName: Scrape = new Map();
  for (const f of families) {
    const had = byName.get(f.name);
    byName.set(f.name, had ? { ...had, metrics: [...had.metrics, ...f.metrics] } : f);
  }
  // Each histogram series is whole: its +Inf bucket is its count.
  for (const h of histograms) {
    for (const c of byName.get(`${h}_count`)?.metrics ?? []) {
      const inf = (byName.get(`${h}_bucket`)?.metrics ?? []).find(
        (b) => b.labels?.le === '+Inf' && sameLabels(b, c.labels ?? {}),
      );
      assert.equal(inf?.value, c.value, `${h}: +Inf bucket = count`);
    }
  }
  return byName;
}

function sameLabels(s: PrometheusSample, want: Readonly<Record<string, string>>): boolean {
  const have = { ...s.labels };
  delete have.le;
  const keys = Object.keys(want);
  return Object.keys(have).length === keys.length && keys.every((k) => have[k] === want[k]);
}

/** The samples of `name` as `label values joined by |` → value. */
function series(scrape: Scrape, name: string, labels: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of scrape.get(name)?.metrics ?? []) {
    const v = Number(s.value);
    if (v === 0) continue; // a series made at 0 (e.g. replacements by a reason never seen)
    out.set(labels.map((l) => s.labels?.[l] ?? '').join('|'), v);
  }
  return out;
}

/** One unlabelled value (0 when absent). */
function value(scrape: Scrape, name: string): number {
  return Number(scrape.get(name)?.metrics[0]?.value ?? 0);
}

function countBy<T>(items: readonly T[], key: (t: T) => string | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const it of items) {
    const k = key(it);
    if (k !== null) out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

function sorted(m: Map<string, number>): [string, number][] {
  return [...m].sort(([a], [b]) => a.localeCompare(b));
}

/** Floating sums as Prometheus prints them. */
function near(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} ≠ ${expected}`,
  );
}

const NOT_RUN = new Set(['skipped_overlap', 'skipped_misfire', 'cancelled', 'waiting', 'running']);

for (const store of STORES)
  describe(store, () => {
    test('the metrics agree with the store after a known sequence of runs', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      // A manifest with a short deadline and fuel to spin past it: its run times out.
      const slowManifest = join(dir, 'slow.json');
      writeFileSync(
        slowManifest,
        JSON.stringify({
          name: 'slow',
          version: '1.0.0',
          wasm: GUEST.proxy,
          limits: { timeoutMs: 300, fuel: { run: 1e15 } },
        }),
      );
      const config = makeConfig(dir, [
        {
          id: 't',
          quotas: { maxFuelPerCall: 20_000_000 },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                schedules: decls(
                  {
                    id: 'ok',
                    every: '1h',
                    payload: { calls: [{ fn: 'schedule_list', args: {} }] },
                  },
                  { id: 'fail', every: '1h', payload: { fail: 'boom' } },
                  { id: 'trap', every: '1h', payload: { trap: true } },
                  { id: 'spin', every: '1h', payload: { spin: true } },
                  {
                    id: 'denied',
                    every: '1h',
                    payload: { calls: [{ fn: 'jobs_register', args: { name: 'x' } }] },
                  },
                  { id: 'paused', every: '1h' },
                  { id: 'gone', every: '1h' },
                ),
              },
            },
            // Fails to load (an import no host provides).
            { name: 'bad', wasm: GUEST.wat('check-unknown-import') },
          ],
        },
        {
          id: 'u',
          quotas: { maxFuelPerCall: Number.MAX_SAFE_INTEGER },
          plugins: [
            {
              name: 'q',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 'q1', every: '1h' }) },
            },
            {
              manifest: slowManifest,
              config: { schedules: decls({ id: 'hang', every: '1d', payload: { spin: true } }) },
            },
          ],
        },
      ]);
      let metrics: HostMetrics | undefined;
      const { host, stop, loaded, failed } = await startHost(config, clock, {}, (h) => {
        metrics = new HostMetrics(h);
      });
      const m = metrics as HostMetrics;
      try {
        assert.deepEqual(loaded.sort(), ['t/p', 'u/q', 'u/slow']);
        assert.deepEqual(
          failed.map((f) => f.pluginId),
          ['t/bad'],
        );
        const trigger = (key: string) => assert.ok(host.operate(key, 'trigger').ok, key);
        // Triggered: `ok` twice (a third trigger in the same turn finds its run in flight:
        // skipped), `fail` twice in one turn (the second skipped), one of each other.
        trigger('t/p/ok');
        await host.scheduler.settle();
        trigger('t/p/ok');
        const again = host.operate('t/p/ok', 'trigger'); // same turn: its run is in flight
        assert.deepEqual(again, { ok: true, trigger: 'skipped' });
        await host.scheduler.settle();
        for (const key of ['t/p/fail', 't/p/fail', 't/p/trap', 't/p/spin', 't/p/denied', 'u/q/q1'])
          trigger(key);
        await host.scheduler.settle();
        trigger('u/slow/hang'); // times out after 300 ms: its worker is replaced
        await host.scheduler.settle();
        assert.ok(host.operate('t/p/paused', 'pause', 'maintenance').ok);
        assert.ok(host.operate('t/p/gone', 'delete').ok);
        // The scheduled fires of the hour (the clock jumps 250 ms past them: a fire may be late).
        await advance(host, clock, 3_599_000, 600_000);
        clock.advance(1_250);
        await host.scheduler.settle();
        await host.store.committed();

        const scrape = parse(await m.text());
        const runs: RunRecord[] = host.store.listRuns({ limit: 10_000 });
        const finished = runs.filter((r) => !NOT_RUN.has(r.status));
        // 8 triggered runs, 6 scheduled ones (`hang` fires daily); 2 overlaps skipped.
        assert.equal(
          finished.length,
          14,
          JSON.stringify(runs.map((r) => [r.scheduleKey, r.status])),
        );
        // The sequence produced every outcome it meant to.
        const statuses = new Set(finished.map((r) => r.status));
        for (const s of [
          'succeeded',
          'failed',
          'trapped',
          'out_of_fuel',
          'host_call_denied',
          'timed_out',
        ])
          assert.ok(statuses.has(s as RunRecord['status']), s);

        // Runs by outcome, tenant and plugin.
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_runs_finished_total', ['tenant', 'plugin', 'status'])),
          sorted(countBy(finished, (r) => `${r.tenant}|${r.pluginId}|${r.status}`)),
        );
        // Ticks not run.
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_ticks_skipped_total', ['tenant', 'plugin', 'status'])),
          sorted(
            countBy(runs, (r) =>
              r.status === 'skipped_overlap' ||
              r.status === 'skipped_misfire' ||
              r.status === 'cancelled'
                ? `${r.tenant}|${r.pluginId}|${r.status}`
                : null,
            ),
          ),
        );
        assert.equal(
          series(scrape, 'hourglass_ticks_skipped_total', ['status']).get('skipped_overlap'),
          2,
        );

        // Fuel used and durations, per plugin: count and sum.
        for (const plugin of ['t/p', 'u/q', 'u/slow']) {
          const mine = finished.filter((r) => r.pluginId === plugin);
          const labels = { tenant: plugin.slice(0, 1), plugin };
          const pick = (name: string) =>
            Number(scrape.get(name)?.metrics.find((s) => sameLabels(s, labels))?.value ?? 0);
          const fueled = mine.filter((r) => r.fuelUsed !== null);
          assert.equal(
            pick('hourglass_run_fuel_used_count'),
            fueled.length,
            `${plugin} fuel count`,
          );
          near(
            pick('hourglass_run_fuel_used_sum'),
            fueled.reduce((a, r) => a + (r.fuelUsed ?? 0), 0),
            `${plugin} fuel sum`,
          );
          assert.equal(pick('hourglass_run_duration_seconds_count'), mine.length);
          near(
            pick('hourglass_run_duration_seconds_sum'),
            mine.reduce((a, r) => a + ((r.finishedAt ?? r.startedAt) - r.startedAt) / 1000, 0),
            `${plugin} duration sum`,
          );
        }
        // Fuel was used (the budget-burning run alone used the tenant's 20M).
        assert.ok((finished.find((r) => r.status === 'out_of_fuel')?.fuelUsed ?? 0) >= 20_000_000);

        // Fire lateness: one observation per run started, by tenant and trigger.
        const lateCount = series(scrape, 'hourglass_fire_lateness_seconds_count', [
          'tenant',
          'trigger',
        ]);
        assert.deepEqual(
          sorted(lateCount),
          sorted(countBy(finished, (r) => `${r.tenant}|${r.trigger}`)),
        );
        const lateSum = [
          ...(scrape.get('hourglass_fire_lateness_seconds_sum')?.metrics ?? []),
        ].reduce((a, s) => a + Number(s.value), 0);
        near(
          lateSum,
          finished.reduce((a, r) => a + (r.startedAt - r.scheduledAt) / 1000, 0),
          'lateness sum',
        );

        // Schedules by state.
        const allStates: ScheduleState[] = ['active', 'paused', 'completed', 'deleted', 'retired'];
        const schedules = host.store.listSchedules({ states: allStates, limit: 10_000 });
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_schedules', ['tenant', 'state'])),
          sorted(countBy(schedules, (s) => `${s.tenant}|${s.state}`)),
        );
        assert.equal(series(scrape, 'hourglass_schedules', ['tenant', 'state']).get('t|paused'), 1);

        // Host calls by function and code: each `ok` run listed, each `denied` run was refused.
        const runsOf = (key: string) => finished.filter((r) => r.scheduleKey === key).length;
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_host_calls_total', ['tenant', 'function', 'code'])),
          sorted(
            new Map([
              ['t|schedule_list|ok', runsOf('t/p/ok')],
              ['t|jobs_register|phase', runsOf('t/p/denied')],
            ]),
          ),
        );

        // Plugin loads and failures (the store's plugin records).
        const plugins = host.store.listPlugins();
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_plugin_loads_total', ['plugin'])),
          sorted(countBy(plugins, (p) => (p.status === 'loaded' ? p.id : null))),
        );
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_plugin_load_failures_total', ['tenant', 'plugin'])),
          sorted(countBy(plugins, (p) => (p.status === 'failed' ? `${p.tenant}|${p.id}` : null))),
        );

        // The pool: idle now; one worker replaced, for the run that timed out.
        assert.equal(value(scrape, 'hourglass_pool_queue_depth'), 0);
        assert.equal(value(scrape, 'hourglass_pool_workers_busy'), 0);
        assert.equal(
          value(scrape, 'hourglass_pool_workers'),
          config.sandbox.workers ?? Math.max(1, os.availableParallelism()),
        );
        assert.deepEqual(
          sorted(series(scrape, 'hourglass_pool_worker_replacements_total', ['reason'])),
          sorted(countBy(finished, (r) => (r.status === 'timed_out' ? 'timed_out' : null))),
        );

        // Commits were timed (at least one per step above).
        assert.ok(value(scrape, 'hourglass_store_commit_seconds_count') > 0);

        // No run or schedule id is a label anywhere.
        for (const f of scrape.values())
          for (const s of f.metrics)
            for (const v of Object.values(s.labels ?? {}))
              assert.ok(!/^t\/p\/|^u\/(q|slow)\//.test(v), `${f.name} labelled ${v}`);

        // close() removes every listener it added.
        const before = host.events.listenerCount('run:finished');
        m.close();
        assert.equal(host.events.listenerCount('run:finished'), before - 1);
        for (const e of ['run:started', 'schedule:skipped', 'host:call', 'plugin:loaded'] as const)
          assert.equal(host.events.listenerCount(e), 0, e);
      } finally {
        m.close();
        await stop();
      }
    });
  });
