/**
 * The worker pool's dispatch cost and its fairness under load.
 *
 *   npx tsx bench/dispatch.bench.ts      (BENCH_TIME_MS, LATENCY_SECONDS to shorten)
 *
 * 1. No-op `run()` calls per second through `WorkerPoolSandbox.call` (64 in flight, so every
 *    worker stays busy), beside the bare foreground Extism `call()` of the same guest on the
 *    main thread, in the same process. This is the sandbox boundary alone: no scheduler, no store.
 * 2. Fire lateness of 1,000 light schedules (one tenant, every 1 s, jittered over the second)
 *    on the real clock, through the whole host, while another tenant keeps its whole in-flight
 *    cap busy with guests that never return (each burns its full wall-clock budget until its
 *    deadline; fuel budgets replace this once metering is wired in). Lateness = when the run was
 *    accepted minus its jittered due time; p50/p99/max reported.
 */
import createPlugin from '@extism/extism';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Bench } from 'tinybench';
import { parseHostConfig, PROJECT_ROOT } from '../src/config/host-config.ts';
import { Host } from '../src/host/host.ts';
import { WorkerPoolSandbox } from '../src/sandbox/pool/worker-pool-sandbox.ts';
import { prepareGuest } from '../src/sandbox/guest-module.ts';
import { DEFAULT_LIMITS } from '../src/plugin/manifest.ts';
import { jitterFor } from '../src/schedule/spec.ts';
import { report, rows } from './common.ts';

const NOOP = resolve(PROJECT_ROOT, 'guest-examples/wat/build/noop.wasm');
const PROXY = resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm');
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 2000);
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

const bench = new Bench({ time: TIME_MS, warmupTime: 500 });
bench.add('bare foreground call()', async () => {
  await bare.call('run', '{}');
});
bench.add(`pool call() ×${IN_FLIGHT} in flight (per call)`, async () => {
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => pool.call('b/noop', req)));
});
await bench.run();
await pool.close();
await bare.close();
const [bareRow, poolBatch] = rows(bench);
if (!bareRow || !poolBatch) throw new Error('dispatch bench did not run');
const poolRow = {
  ...poolBatch,
  opsPerSec: poolBatch.opsPerSec * IN_FLIGHT,
  meanUs: poolBatch.meanUs / IN_FLIGHT,
  p99Us: poolBatch.p99Us / IN_FLIGHT,
};

// --- 2. lateness of a light tenant beside a hog ---------------------------------------------
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
    JSON.stringify({
      name: 'hog',
      version: '1',
      wasm: PROXY,
      capabilities: [],
      limits: { timeoutMs: 500 },
    }),
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
          plugins: [{ manifest: 'hog.json', config: { schedules: JSON.stringify(hog) } }],
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
  const from = Date.now() + 1500; // let the first round settle in
  await new Promise((r) => setTimeout(r, 1500 + LATENCY_SECONDS * 1000));
  await host.stop(1000);
  const { SqliteStore } = await import('../src/store/sqlite-store.ts');
  const store = new SqliteStore(join(dir, 'h.db'), { mustExist: true });
  const runs = store
    .listRuns({ pluginId: 'light/light', limit: 1_000_000 })
    .filter((r) => r.scheduledAt >= from);
  const hogRuns = store.listRuns({ pluginId: 'hog/hog', limit: 1_000_000 });
  store.close();
  const late = runs
    .map((r) => r.startedAt - (r.scheduledAt + jitterFor(r.scheduleKey, r.scheduledAt, 1000)))
    .sort((a, b) => a - b);
  const q = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))] ?? NaN;
  const lateness = {
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
    hogTimedOut: hogRuns.filter((r) => r.status === 'timed_out').length,
  };
  console.log('\nlight tenant fire lateness (1,000 schedules every 1 s, beside a hog at its cap):');
  console.table([lateness]);
  report('dispatch', [bareRow, poolRow], 'bare foreground call()', {
    inFlight: IN_FLIGHT,
    workers: os.availableParallelism(),
    lateness,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
