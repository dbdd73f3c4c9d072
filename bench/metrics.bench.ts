/**
 * The cost of metrics on the run path: runs per second of a burst with and without a
 * `HostMetrics` attached to the host (src/observability/metrics.ts), on the same host.
 *
 *   npx tsx bench/metrics.bench.ts                   (or: npm run bench -- metrics)
 *   ROUNDS=9 BURST=20000 MODE=in-thread npx tsx bench/metrics.bench.ts
 *
 * One host (store on disk, written by its writer thread; the sandbox of MODE, default `pool`;
 * the no-op guest) with BURST (default 5000) schedules under a 64-run tenant cap. Each round
 * runs one burst without metrics and one with (a `HostMetrics` made before it and closed after
 * it, so its listeners, histograms and the store's commit listener are on the path), in
 * alternating order (ABBA) so drift and the store's growth fall on both alike. A burst's rate is
 * SUSTAINED: runs ÷ wall time from the first trigger until the last outcome is durable. The
 * median round of each is reported, and their ratio (with ÷ without). A scrape after each burst
 * with metrics (outside the timing) checks it counted every run. Since a burst's rate moves
 * with the machine's load, the listeners' own CPU per run is also measured apart: a run's two
 * events emitted in a loop with and without metrics (`listenerNsPerRun`). Writes
 * bench/results/metrics.json (load before and after, Node, commit).
 */
import os from 'node:os';
import { fromDist } from './built.ts';
import { burstHost } from './host-burst.ts';
import { environment, median, writeResult } from './common.ts';
import type * as Metrics from '../src/observability/metrics.ts';

const { HostMetrics } = await fromDist<typeof Metrics>('src/observability/metrics.js');

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const BURST = Number(process.env.BURST ?? 5000);
const MODE = process.env.MODE === 'in-thread' ? 'in-thread' : 'pool';

const before = environment();
const b = await burstHost({ count: BURST, concurrency: 64, mode: MODE });
const rates = { without: [] as number[], with: [] as number[] };
const listenerNs = { without: [] as number[], with: [] as number[] };
try {
  // Warm-up: workers, JIT, the metrics' code paths.
  await b.burst();
  const warm = new HostMetrics(b.host);
  await b.burst();
  await warm.text();
  warm.close();

  const run = async (withMetrics: boolean): Promise<void> => {
    const metrics = withMetrics ? new HostMetrics(b.host) : null;
    const { runs, ms } = await b.burst();
    (withMetrics ? rates.with : rates.without).push((runs / ms) * 1000);
    if (metrics) {
      const text = await metrics.text();
      const counted = [...text.matchAll(/^hourglass_runs_finished_total\{[^}]*\} (\d+)$/gm)]
        .map((m) => Number(m[1]))
        .reduce((a, n) => a + n, 0);
      if (counted !== runs) throw new Error(`metrics counted ${counted} runs of ${runs}`);
      metrics.close();
    }
  };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false];
    for (const m of order) await run(m);
    console.log(
      `round ${r + 1}/${ROUNDS}: without ${Math.round(rates.without.at(-1) ?? 0)} runs/s, with ${Math.round(rates.with.at(-1) ?? 0)} runs/s`,
    );
  }
  // The listeners' own CPU per run, apart from the burst's noise: a run's two events
  // (`run:started`, `run:finished`) emitted N times with and without metrics attached.
  const N = 200_000;
  const schedule = b.host.store.getSchedule('b/noop/j0');
  if (!schedule) throw new Error('no schedule b/noop/j0');
  const started = {
    runId: 1,
    schedule,
    scheduledAt: 1,
    firedAt: 2,
    trigger: 'manual' as const,
    attempt: 1,
    payload: null,
  };
  const record = {
    id: 1,
    scheduleKey: schedule.key,
    pluginId: 'b/noop',
    tenant: 'b',
    localId: 'j0',
    trigger: 'manual' as const,
    status: 'succeeded' as const,
    reason: null,
    scheduledAt: 1,
    startedAt: 2,
    finishedAt: 3,
    attempt: 1,
    error: null,
    outputBytes: 0,
    fuelUsed: 12_345,
    fuelBudget: 500_000_000,
    result: null,
    coversUntil: null,
    pluginVersion: '1',
    wasmSha256: null,
    logTail: null,
  };
  const emitNs = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      b.host.events.emit('run:started', started);
      b.host.events.emit('run:finished', record);
    }
    return ((performance.now() - t0) * 1e6) / N;
  };
  for (let r = 0; r < ROUNDS; r++) {
    listenerNs.without.push(emitNs());
    const metrics = new HostMetrics(b.host);
    listenerNs.with.push(emitNs());
    metrics.close();
  }
} finally {
  await b.close();
}

const without = median(rates.without);
const withM = median(rates.with);
const rows = [
  {
    name: `${MODE}: burst of ${BURST} triggers, 64 in flight, no metrics`,
    perSecMedian: Math.round(without),
    perSecRounds: rates.without.map(Math.round),
    ratio: 1,
  },
  {
    name: `${MODE}: burst of ${BURST} triggers, 64 in flight, HostMetrics attached`,
    perSecMedian: Math.round(withM),
    perSecRounds: rates.with.map(Math.round),
    ratio: Number((withM / without).toFixed(3)),
  },
];
console.table(rows.map(({ perSecRounds: _, ...r }) => r));
console.log(`with metrics ÷ without: ${(withM / without).toFixed(3)}×`);
const perRunNs = median(listenerNs.with) - median(listenerNs.without);
console.log(
  `metrics' listeners per run (two events): ${perRunNs.toFixed(0)} ns (events alone ${median(listenerNs.without).toFixed(0)} ns); ${((perRunNs / 1e9) * without * 100).toFixed(2)}% of a run at ${Math.round(without)} runs/s`,
);
writeResult('metrics', {
  rounds: ROUNDS,
  burst: BURST,
  mode: MODE,
  loadBefore: before.loadavg,
  loadAfter: os.loadavg().map((l) => Number(l.toFixed(2))),
  baseline: rows[0]?.name,
  rows,
  listenerNsPerRun: {
    note: 'run:started + run:finished emitted in a loop; median of rounds',
    without: Math.round(median(listenerNs.without)),
    with: Math.round(median(listenerNs.with)),
    metricsCost: Math.round(perRunNs),
  },
});
