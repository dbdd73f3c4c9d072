/**
 * The worker pool's dispatch cost and its fairness under load.
 *
 *   npx tsx bench/dispatch.bench.ts
 *   (knobs: BENCH_TIME_MS per round, default 1000; BENCH_ROUNDS, default 5; IN_FLIGHT, default
 *   256; WORKER_NICE, default the pool's 10; PARTS=1 or PARTS=2 for one part; LATENCY_SECONDS,
 *   default 10; HOGS=fuel,deadline)
 *   The full "Must show" run: BENCH_TIME_MS=3000 BENCH_ROUNDS=7 PARTS=1
 *
 * 1. Sustained no-op `run()` calls per second (calls ÷ wall time) through
 *    `WorkerPoolSandbox.call`, with IN_FLIGHT calls kept outstanding (each outcome issues the
 *    next call, so every worker stays busy), beside the bare foreground Extism `call()` of the
 *    same guest on the main thread, called back to back, in the same process. This is the
 *    sandbox boundary alone: no scheduler, no store. The two alternate over BENCH_ROUNDS rounds
 *    (the machine is shared: load comes and goes); each reports the median of its rounds, and
 *    the ratio is the median of the per-round ratios. Pool latency (call → outcome) p50/p99
 *    comes from the median round. Each round records /proc/loadavg and the process's CPU time
 *    per call (all threads, and the main thread's share), which a shared machine disturbs less
 *    than the rates. Each round ends with `InThreadSandbox.call` back to back on the main
 *    thread (≤ 1 s): what a worker spends per call on Hourglass's metered call path alone.
 *    On 2 cores, 0.5× the bare rate needs the pool's whole CPU per call (main thread + workers)
 *    under ~2 ÷ (0.5 × bare rate): ~5 µs at 770k/s.
 * 2. Fire lateness of 1,000 light schedules (one tenant, every 1 s, jittered over the second)
 *    on the real clock, through the whole host, while another tenant keeps its whole in-flight
 *    cap busy with guests that burn their full budget: `fuel`, a CPU loop that ends out_of_fuel
 *    at its budget (`limits.fuel.run`, sized to ~0.5 s); `deadline`, a loop with fuel to spare
 *    that its 500 ms deadline kills (so its worker is terminated and replaced each time).
 *    Lateness = when the run was accepted minus its jittered due time; p50/p99/max reported,
 *    with the main thread's event-loop delay (perf_hooks.monitorEventLoopDelay) and utilization
 *    over the same window.
 *
 * Results: bench/results/dispatch.json, with loadavg, Node version, commit and cores.
 */
import createPlugin from '@extism/extism';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { jitterFor } from '../src/schedule/spec.ts';
import type { WorkerPoolSandbox as PoolSandbox } from '../src/index.ts';
import { hourglass, ROOT as PROJECT_ROOT } from './built.ts';

// The compiled package (bench/built.ts): pool workers boot compiled, as users run the host.
const { DEFAULT_LIMITS, Host, InThreadSandbox, parseHostConfig, WorkerPoolSandbox } = hourglass;

const NOOP = resolve(PROJECT_ROOT, 'guest-examples/wat/build/noop.wasm');
const PROXY = resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm');
const SPIN = resolve(PROJECT_ROOT, 'guest-examples/wat/build/spin.wasm');
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PARTS = (process.env.PARTS ?? '1,2').split(',');
const HOGS = (process.env.HOGS ?? 'fuel,deadline').split(',').filter(Boolean);
/** The fuel hog's budget per run: ~0.5 s of the spin loop on this machine. */
const HOG_FUEL = Number(process.env.HOG_FUEL ?? 8e9);
const LATENCY_SECONDS = Number(process.env.LATENCY_SECONDS ?? 10);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 256);

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
let commit = '?';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT })
    .toString()
    .trim();
  const dirty = execFileSync(
    'git',
    ['status', '--porcelain', '--', 'src', 'bench', ':!bench/results'],
    {
      cwd: PROJECT_ROOT,
    },
  ).toString();
  if (dirty.trim()) commit += '+dirty';
} catch {
  // not a git checkout
}

// --- 1. dispatch throughput -------------------------------------------------------------------
interface Round {
  readonly calls: number;
  readonly wallMs: number;
  readonly perSec: number;
  readonly p50Us?: number;
  readonly p99Us?: number;
  /** CPU time of the whole process (every thread) per call: less sensitive to load than rates. */
  readonly cpuUsPerCall: number;
  /** Of which the main thread's (from /proc/self/task; 10 ms ticks, so rounded over a round). */
  readonly mainCpuUsPerCall: number;
  readonly loadavg: string;
}

const cpuUs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return u.user + u.system;
};
/** The main thread's CPU time in µs (Linux; NaN elsewhere). */
const mainCpuUs = (): number => {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
};

const wasm = new Uint8Array(readFileSync(NOOP));
const req = {
  fn: 'run' as const,
  input: '{}',
  caller: { pluginId: 'b/noop', tenant: 'b', phase: 'run' as const },
};

/** Bare Extism calls back to back for `ms`. */
async function bareRound(call: () => Promise<unknown>, ms: number): Promise<Round> {
  const c0 = process.cpuUsage();
  const m0 = mainCpuUs();
  const t0 = performance.now();
  let calls = 0;
  let now = t0;
  while (now - t0 < ms) {
    for (let i = 0; i < 256; i++) await call();
    calls += 256;
    now = performance.now();
  }
  const wallMs = now - t0;
  const cpuUsPerCall = cpuUs(c0) / calls;
  const mainCpuUsPerCall = (mainCpuUs() - m0) / calls;
  return {
    calls,
    wallMs,
    perSec: (calls / wallMs) * 1000,
    cpuUsPerCall,
    mainCpuUsPerCall,
    loadavg: loadavg(),
  };
}

/** Pool calls with `inFlight` outstanding for `ms`: each outcome issues the next call. */
function poolRound(pool: PoolSandbox, ms: number, inFlight: number): Promise<Round> {
  return new Promise((done, fail) => {
    const c0 = process.cpuUsage();
    const m0 = mainCpuUs();
    const t0 = performance.now();
    const lat: number[] = [];
    let calls = 0;
    let open = 0;
    let stop = false;
    const issue = () => {
      const at = performance.now();
      open++;
      pool.call('b/noop', req).then((o) => {
        open--;
        if (!o.ok) return fail(new Error(`pool call failed: ${o.message}`));
        const now = performance.now();
        calls++;
        if ((calls & 7) === 0) lat.push(now - at);
        if (!stop && now - t0 >= ms) stop = true;
        if (!stop) issue();
        else if (open === 0) {
          const wallMs = now - t0;
          lat.sort((a, b) => a - b);
          const q = (p: number) => (lat[Math.floor(p * (lat.length - 1))] ?? NaN) * 1000;
          done({
            calls,
            wallMs,
            perSec: (calls / wallMs) * 1000,
            p50Us: q(0.5),
            p99Us: q(0.99),
            cpuUsPerCall: cpuUs(c0) / calls,
            mainCpuUsPerCall: (mainCpuUs() - m0) / calls,
            loadavg: loadavg(),
          });
        }
      }, fail);
    };
    for (let i = 0; i < inFlight; i++) issue();
  });
}

let part1: Record<string, unknown> | null = null;
if (PARTS.includes('1')) {
  const bare = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false });
  const pool = new WorkerPoolSandbox({
    hostCall: () => '{"ok":null}',
    ...(process.env.WORKER_NICE ? { workerNice: Number(process.env.WORKER_NICE) } : {}),
  });
  await pool.load({ pluginId: 'b/noop', tenant: 'b', wasm, config: {}, limits: DEFAULT_LIMITS });
  // What one worker does per call, on this thread: Hourglass's metered call path alone.
  const inThread = new InThreadSandbox({ hostCall: () => '{"ok":null}' });
  await inThread.load({
    pluginId: 'b/noop',
    tenant: 'b',
    wasm,
    config: {},
    limits: DEFAULT_LIMITS,
  });
  const inThreadCall = () => inThread.call('b/noop', req);
  // Warm-up: JIT every path.
  await bareRound(() => bare.call('run', '{}'), 300);
  await bareRound(inThreadCall, 300);
  await poolRound(pool, 300, IN_FLIGHT);
  const bareRounds: Round[] = [];
  const poolRounds: Round[] = [];
  const inThreadRounds: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so that neither always meets the same moment of load.
    const pair: Round[] = [];
    for (const which of round % 2 === 0 ? ['bare', 'pool'] : ['pool', 'bare']) {
      if (which === 'bare') pair[0] = await bareRound(() => bare.call('run', '{}'), TIME_MS);
      else pair[1] = await poolRound(pool, TIME_MS, IN_FLIGHT);
    }
    const [b, p] = pair as [Round, Round];
    bareRounds.push(b);
    poolRounds.push(p);
    const t = await bareRound(inThreadCall, Math.min(TIME_MS, 1000));
    inThreadRounds.push(t);
    console.log(
      `round ${round + 1}: bare ${Math.round(b.perSec)}/s, pool ${Math.round(p.perSec)}/s ` +
        `(${(p.perSec / b.perSec).toFixed(3)}×), CPU µs/call bare ${b.cpuUsPerCall.toFixed(2)} pool ${p.cpuUsPerCall.toFixed(2)} (main thread ${p.mainCpuUsPerCall.toFixed(2)}), in-thread ${t.cpuUsPerCall.toFixed(2)}, pool p50/p99 ${p.p50Us?.toFixed(0)}/${p.p99Us?.toFixed(0)} µs, load ${p.loadavg}`,
    );
  }
  await pool.close();
  await bare.close();
  await inThread.close();
  const ratios = poolRounds.map((p, i) => p.perSec / (bareRounds[i] as Round).perSec);
  const mid = poolRounds.find((r) => r.perSec === median(poolRounds.map((x) => x.perSec)));
  part1 = {
    bareCallsPerSec: Math.round(median(bareRounds.map((r) => r.perSec))),
    poolCallsPerSec: Math.round(median(poolRounds.map((r) => r.perSec))),
    ratio: Number(median(ratios).toFixed(3)),
    poolLatencyUs: { p50: mid?.p50Us, p99: mid?.p99Us },
    cpuUsPerCall: {
      bare: Number(median(bareRounds.map((r) => r.cpuUsPerCall)).toFixed(2)),
      pool: Number(median(poolRounds.map((r) => r.cpuUsPerCall)).toFixed(2)),
      poolMainThread: Number(median(poolRounds.map((r) => r.mainCpuUsPerCall)).toFixed(2)),
      inThread: Number(median(inThreadRounds.map((r) => r.cpuUsPerCall)).toFixed(2)),
    },
    inThreadCallsPerSec: Math.round(median(inThreadRounds.map((r) => r.perSec))),
    inFlight: IN_FLIGHT,
    workers: os.availableParallelism(),
    roundMs: TIME_MS,
    rounds: ROUNDS,
    roundRatios: ratios.map((r) => Number(r.toFixed(3))),
    bareRounds,
    poolRounds,
    inThreadRounds,
  };
  console.log(
    `\nsustained: bare ${part1.bareCallsPerSec}/s, pool ${part1.poolCallsPerSec}/s, ` +
      `median ratio ${part1.ratio}× (rounds ${ratios.map((r) => r.toFixed(3)).join(' ')})`,
  );
}

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
if (PARTS.includes('2')) for (const variant of HOGS) latenessRows.push(await lateness(variant));
if (latenessRows.length > 0) {
  console.log('\nlight tenant fire lateness (1,000 schedules every 1 s, beside a hog at its cap):');
  console.table(
    latenessRows.map(({ eventLoopDelayMs: d, hogRuns, ...r }) => ({
      ...r,
      hogRuns: JSON.stringify(hogRuns),
      'ELD p99/max ms': `${d.p99.toFixed(1)}/${d.max.toFixed(1)}`,
    })),
  );
}

const dir = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, 'dispatch.json');
writeFileSync(
  file,
  `${JSON.stringify(
    {
      name: 'dispatch',
      date: new Date().toISOString(),
      commit,
      loadavg: loadavg(),
      machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?' },
      dispatch: part1,
      lateness: latenessRows.length > 0 ? latenessRows : null,
    },
    null,
    2,
  )}\n`,
);
console.log(`results written to ${file}`);
