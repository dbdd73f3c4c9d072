/**
 * Runs per second through the whole path (scheduler → sandbox → guest → store) for a no-op
 * guest, beside the bare Extism `call()` rate of the same guest, measured in the same process.
 *
 *   npx tsx bench/throughput.bench.ts                (or: npm run bench -- throughput)
 *   ROUNDS=5 BENCH_TIME_MS=3000 BURST=20000 npx tsx bench/throughput.bench.ts   (longer)
 *
 * Every rate is SUSTAINED: work done ÷ wall time of the whole measurement (not tinybench's
 * mean of per-iteration rates, which overstates a skewed distribution), with per-operation
 * latency percentiles. Tasks run in ROUNDS (default 3) alternating rounds of BENCH_TIME_MS
 * (default 1500) each; the median round is reported.
 * - `extism call() bare` — the baseline: `plugin.call('run', ctx)` on the noop guest, one at a time.
 * - `<mode>: trigger → run recorded` — one operator trigger: at-most-one gate, run row, context,
 *   guest called through the sandbox, outcome and cursor recorded, awaited; one at a time.
 * - `<mode>: tick with 100 due schedules (per run)` — one (virtual-clock) timer tick firing 100
 *   interval schedules, awaited; runs = 100 per tick.
 * - `<mode>: burst of BURST triggers, 64 in flight (per run)` — on the real clock, BURST
 *   (default 5000) schedules triggered at once under a 64-run tenant cap, until all recorded.
 * Modes: `in-thread` and `pool`. Writes bench/results/throughput.json (load, Node, commit).
 */
import createPlugin from '@extism/extism';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hourglass } from './built.ts';
import { burstHost, NOOP_WASM } from './host-burst.ts';
import { environment, median, percentile, writeResult } from './common.ts';

// The compiled package (bench/built.ts): pool workers boot compiled, as users run the host.
const { Host, ManualClock, parseHostConfig } = hourglass;

const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 1500);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const BURST = Number(process.env.BURST ?? 5000);
const MODES = ['in-thread', 'pool'] as const;

interface Round {
  /** Work units (runs or calls) ÷ wall seconds. */
  readonly perSec: number;
  /** Latency of one operation (µs); an operation may cover several runs. */
  readonly p50Us: number;
  readonly p99Us: number;
}

/** Repeats `op` for TIME_MS; each call does `units` work units. */
async function measure(op: () => Promise<unknown>, units = 1): Promise<Round> {
  const lat: number[] = [];
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < TIME_MS) {
    await op();
    const t1 = performance.now();
    lat.push((t1 - t) * 1000);
    t = t1;
  }
  return {
    perSec: ((lat.length * units) / (t - t0)) * 1000,
    p50Us: percentile(lat, 50),
    p99Us: percentile(lat, 99),
  };
}

const before = environment();
const dir = mkdtempSync(join(tmpdir(), 'hourglass-bench-'));
const ctx = JSON.stringify({
  scheduleId: 'tick',
  runId: '1',
  plugin: 'b/noop',
  scheduledAt: new Date().toISOString(),
  firedAt: new Date().toISOString(),
  attempt: 1,
  catchUp: false,
  trigger: 'schedule',
  payload: null,
  cursor: null,
});
writeFileSync(
  join(dir, 'noop.json'),
  JSON.stringify({ name: 'noop', version: '1', wasm: NOOP_WASM, capabilities: [] }),
);

/** A host on a virtual clock with the guest's `tick` schedule and 100 more (paused). */
async function virtualHost(mode: (typeof MODES)[number]) {
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const config = parseHostConfig(
    {
      store: { path: join(dir, `bench-${mode}.db`) },
      sandbox: { mode },
      tenants: [
        {
          id: 'b',
          quotas: { maxRunsInFlight: 1000, maxSchedules: 10_000 },
          plugins: [{ manifest: 'noop.json' }],
        },
      ],
    },
    'bench',
    dir,
  );
  const host = new Host(config, { clock });
  await host.start();
  const caller = { pluginId: 'b/noop', tenant: 'b', phase: 'run' as const };
  const many = Array.from({ length: 100 }, (_, i) => `b/noop/s${i}`);
  for (let i = 0; i < 100; i++)
    host.schedules.create(caller, { id: `s${i}`, every: '1s', paused: true });
  host.operate('b/noop/tick', 'pause');
  return { host, clock, many };
}

const rounds = new Map<string, Round[]>();
const add = (name: string, r: Round) => rounds.set(name, [...(rounds.get(name) ?? []), r]);
const keepAlive = setInterval(() => undefined, 1000);
try {
  const bare = await createPlugin(
    { wasm: [{ data: readFileSync(NOOP_WASM) }] },
    { useWasi: false },
  );
  const hosts = new Map<string, Awaited<ReturnType<typeof virtualHost>>>();
  const bursts = new Map<string, Awaited<ReturnType<typeof burstHost>>>();
  for (const mode of MODES) {
    hosts.set(mode, await virtualHost(mode));
    const b = await burstHost({ count: BURST, concurrency: 64, mode });
    await b.burst(); // warm-up: workers, JIT
    bursts.set(mode, b);
  }
  for (let r = 0; r < ROUNDS; r++) {
    add('extism call() bare', await measure(() => bare.call('run', ctx)));
    for (const mode of MODES) {
      const { host, clock, many } = hosts.get(mode) as Awaited<ReturnType<typeof virtualHost>>;
      add(
        `${mode}: trigger → run recorded`,
        await measure(async () => {
          host.operate('b/noop/tick', 'trigger');
          await host.scheduler.settle();
        }),
      );
      for (const key of many) host.operate(key, 'resume');
      add(
        `${mode}: tick with 100 due schedules (per run)`,
        await measure(async () => {
          clock.advance(1000);
          await host.scheduler.settle();
        }, 100),
      );
      for (const key of many) host.operate(key, 'pause');
      const b = await (bursts.get(mode) as Awaited<ReturnType<typeof burstHost>>).burst();
      add(`${mode}: burst of ${BURST} triggers, 64 in flight (per run)`, {
        perSec: (b.runs / b.ms) * 1000,
        p50Us: NaN,
        p99Us: NaN,
      });
    }
    console.log(`round ${r + 1}/${ROUNDS} done`);
  }
  await bare.close();
  for (const { host } of hosts.values()) await host.stop();
  for (const b of bursts.values()) await b.close();

  const base = median((rounds.get('extism call() bare') ?? []).map((r) => r.perSec));
  const rows = [...rounds].map(([name, rs]) => ({
    name,
    perSecMedian: Math.round(median(rs.map((r) => r.perSec))),
    perSecRounds: rs.map((r) => Math.round(r.perSec)),
    p50Us: Number(median(rs.map((r) => r.p50Us)).toFixed(1)),
    p99Us: Number(median(rs.map((r) => r.p99Us)).toFixed(1)),
    vsBare: Number((median(rs.map((r) => r.perSec)) / base).toFixed(3)),
  }));
  console.table(rows.map(({ perSecRounds: _, ...r }) => r));
  writeResult('throughput', {
    rounds: ROUNDS,
    timeMsPerTask: TIME_MS,
    burst: BURST,
    loadBefore: before.loadavg,
    baseline: 'extism call() bare',
    rows,
  });
} finally {
  clearInterval(keepAlive);
  rmSync(dir, { recursive: true, force: true });
}
