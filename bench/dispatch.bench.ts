/**
 * The worker pool's dispatch cost and its fairness under load.
 *
 *   npx tsx bench/dispatch.bench.ts
 *   (BENCH_TIME_MS, BENCH_ROUNDS, LATENCY_SECONDS to shorten; HOGS=fuel,deadline picks variants)
 *
 * 1. No-op `run()` calls per second through `WorkerPoolSandbox.call` (64 in flight, so every
 *    worker stays busy), beside the bare foreground Extism `call()` of the same guest on the
 *    main thread, in the same process. This is the sandbox boundary alone: no scheduler, no store.
 *    The two alternate over BENCH_ROUNDS rounds (the machine is shared: load comes and goes) and
 *    each row reports its median round.
 * 2. Fire lateness of 1,000 light schedules (one tenant, every 1 s, jittered over the second)
 *    on the real clock, through the whole host, while another tenant keeps its whole in-flight
 *    cap busy with guests that burn their full budget: `fuel`, a CPU loop that ends out_of_fuel
 *    at its budget (`limits.fuel.run`, sized to ~0.5 s); `deadline`, a loop with fuel to spare
 *    that its 500 ms deadline kills (so its worker is terminated and replaced each time).
 *    Lateness = when the run was accepted minus its jittered due time; p50/p99/max reported,
 *    with the main thread's event-loop delay (perf_hooks.monitorEventLoopDelay) and utilization
 *    over the same window.
 */
import createPlugin from '@extism/extism';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Bench } from 'tinybench';
import { parseHostConfig, PROJECT_ROOT } from '../src/config/host-config.ts';
import { Host } from '../src/host/host.ts';
import { WorkerPoolSandbox } from '../src/sandbox/pool/worker-pool-sandbox.ts';
import { prepareGuest } from '../src/sandbox/guest-module.ts';
import { DEFAULT_LIMITS } from '../src/plugin/manifest.ts';
import { jitterFor } from '../src/schedule/spec.ts';
import { report, rows, type Row } from './common.ts';

const NOOP = resolve(PROJECT_ROOT, 'guest-examples/wat/build/noop.wasm');
const PROXY = resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm');
const SPIN = resolve(PROJECT_ROOT, 'guest-examples/wat/build/spin.wasm');
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HOGS = (process.env.HOGS ?? 'fuel,deadline').split(',').filter(Boolean);
/** The fuel hog's budget per run: ~0.5 s of the spin loop on this machine. */
const HOG_FUEL = Number(process.env.HOG_FUEL ?? 8e9);
const LATENCY_SECONDS = Number(process.env.LATENCY_SECONDS ?? 10);
const IN_FLIGHT = 64;

const wasm = new Uint8Array(readFileSync(NOOP));
void prepareGuest; // the pool prepares the guest itself

// --- 1. dispatch throughput -------------------------------------------------------------------
const bare = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false });
const pool = new WorkerPoolSandbox({ hostCall: () => '{"ok":null}' });
await pool.load({ pluginId: 'b/noop', tenant: 'b', wasm, config: {}, limits: DEFAULT_LIMITS });
const req = {
  fn: 'run' as const,
  input: '{}',
  caller: { pluginId: 'b/noop', tenant: 'b', phase: 'run' as const },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const bareRounds: Row[] = [];
const poolRounds: Row[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const bench = new Bench({ time: TIME_MS, warmupTime: 300 });
  bench.add('bare foreground call()', async () => {
    await bare.call('run', '{}');
  });
  bench.add(`pool call() ×${IN_FLIGHT} in flight (per call)`, async () => {
    await Promise.all(Array.from({ length: IN_FLIGHT }, () => pool.call('b/noop', req)));
  });
  await bench.run();
  const [b, p] = rows(bench);
  if (!b || !p) throw new Error('dispatch bench did not run');
  bareRounds.push(b);
  poolRounds.push({
    ...p,
    opsPerSec: p.opsPerSec * IN_FLIGHT,
    meanUs: p.meanUs / IN_FLIGHT,
    p99Us: p.p99Us / IN_FLIGHT,
  });
  console.log(
    `round ${round + 1}: bare ${Math.round(b.opsPerSec)}/s, pool ${Math.round(p.opsPerSec * IN_FLIGHT)}/s`,
  );
}
await pool.close();
await bare.close();
/** The round with the median rate. */
const pick = (rs: Row[]) => {
  const m = median(rs.map((r) => r.opsPerSec));
  return rs.find((r) => r.opsPerSec === m) as Row;
};
const bareRow = pick(bareRounds);
const poolRow = pick(poolRounds);
const roundRatios = poolRounds.map((p, i) => p.opsPerSec / (bareRounds[i] as Row).opsPerSec);

// --- 2. lateness of a light tenant beside a hog ---------------------------------------------
async function lateness(variant: string) {
  const dir = mkdtempSync(join(os.tmpdir(), 'hourglass-dispatch-'));
  try {
    const light = Array.from({ length: 1000 }, (_, i) => ({
      id: `l${i}`,
      every: '1s',
      jitter: '1s',
    }));
    const hog = Array.from({ length: 8 }, (_, i) => ({
      id: `h${i}`,
      every: '1s',
      payload: { spin: true },
    }));
    writeFileSync(
      join(dir, 'light.json'),
      JSON.stringify({ name: 'light', version: '1', wasm: NOOP, capabilities: [] }),
    );
    writeFileSync(
      join(dir, 'hog.json'),
      JSON.stringify(
        variant === 'fuel'
          ? // A CPU loop that ends out_of_fuel at its budget, well before its deadline.
            {
              name: 'hog',
              version: '1',
              wasm: SPIN,
              capabilities: [],
              limits: { fuel: { run: HOG_FUEL } },
            }
          : // A loop with fuel to spare: its 500 ms deadline kills it (and its worker).
            {
              name: 'hog',
              version: '1',
              wasm: PROXY,
              capabilities: [],
              limits: { timeoutMs: 500, fuel: { run: 1e12 } },
            },
      ),
    );
    const config = parseHostConfig(
      {
        store: { path: join(dir, 'h.db') },
        tenants: [
          {
            id: 'light',
            quotas: { maxSchedules: 2000, maxRunsInFlight: 64 },
            plugins: [{ manifest: 'light.json' }],
          },
          {
            id: 'hog',
            quotas: { maxRunsInFlight: 1 },
            plugins: [
              {
                manifest: 'hog.json',
                config: variant === 'fuel' ? {} : { schedules: JSON.stringify(hog) },
              },
            ],
          },
        ],
      },
      'bench',
      dir,
    );
    const host = new Host(config);
    await host.start();
    const caller = { pluginId: 'light/light', tenant: 'light', phase: 'run' as const };
    for (const d of light) host.schedules.create(caller, d);
    host.operate('light/light/tick', 'pause');
    if (variant === 'fuel') {
      // spin.wasm declares one schedule; the hog tenant's cap (1) keeps one run in flight, and
      // more schedules keep it busy back to back.
      const hogCaller = { pluginId: 'hog/hog', tenant: 'hog', phase: 'run' as const };
      for (const d of hog) host.schedules.create(hogCaller, { id: d.id, every: d.every });
    }
    await new Promise((r) => setTimeout(r, 1500)); // let the first round settle in
    const from = Date.now();
    const eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    const elu0 = performance.eventLoopUtilization();
    await new Promise((r) => setTimeout(r, LATENCY_SECONDS * 1000));
    const elu = performance.eventLoopUtilization(elu0);
    const to = Date.now();
    eld.disable();
    await host.stop(1000);
    const { SqliteStore } = await import('../src/store/sqlite-store.ts');
    const store = new SqliteStore(join(dir, 'h.db'), { mustExist: true });
    const runs = store
      .listRuns({ pluginId: 'light/light', limit: 1_000_000 })
      .filter((r) => r.scheduledAt >= from);
    const hogRuns = store
      .listRuns({ pluginId: 'hog/hog', limit: 1_000_000 })
      .filter((r) => r.finishedAt !== null && r.finishedAt >= from && r.startedAt < to);
    store.close();
    const late = runs
      .map((r) => r.startedAt - (r.scheduledAt + jitterFor(r.scheduleKey, r.scheduledAt, 1000)))
      .sort((a, b) => a - b);
    const q = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))] ?? NaN;
    const hogStatuses: Record<string, number> = {};
    for (const r of hogRuns) hogStatuses[r.status] = (hogStatuses[r.status] ?? 0) + 1;
    const hogBusy = hogRuns.filter((r) => r.status === 'out_of_fuel' || r.status === 'timed_out');
    return {
      hog: variant,
      runs: runs.length,
      failed: runs.filter((r) => r.status !== 'succeeded').length,
      failedAs: [
        ...new Set(
          runs.filter((r) => r.status !== 'succeeded').map((r) => `${r.status}:${r.reason}`),
        ),
      ].join(' '),
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      maxMs: late.at(-1) ?? NaN,
      hogRuns: hogStatuses,
      hogRunMeanMs: Math.round(
        hogBusy.reduce((a, r) => a + ((r.finishedAt as number) - r.startedAt), 0) /
          Math.max(1, hogBusy.length),
      ),
      /** Share of the window during which a hog run was in flight. */
      hogBusyShare: Number(
        (
          hogBusy.reduce(
            (a, r) => a + Math.min(r.finishedAt as number, to) - Math.max(r.startedAt, from),
            0,
          ) /
          (to - from)
        ).toFixed(2),
      ),
      eventLoopDelayMs: {
        p50: eld.percentile(50) / 1e6,
        p99: eld.percentile(99) / 1e6,
        max: eld.max / 1e6,
      },
      eventLoopUtilization: Number(elu.utilization.toFixed(2)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const latenessRows = [];
for (const variant of HOGS) latenessRows.push(await lateness(variant));
console.log('\nlight tenant fire lateness (1,000 schedules every 1 s, beside a hog at its cap):');
console.table(
  latenessRows.map(({ eventLoopDelayMs: d, hogRuns, ...r }) => ({
    ...r,
    hogRuns: JSON.stringify(hogRuns),
    'ELD p99/max ms': `${d.p99.toFixed(1)}/${d.max.toFixed(1)}`,
  })),
);
report('dispatch', [bareRow, poolRow], 'bare foreground call()', {
  inFlight: IN_FLIGHT,
  workers: os.availableParallelism(),
  rounds: ROUNDS,
  roundRatios,
  lateness: latenessRows,
});
