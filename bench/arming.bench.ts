/**
 * Arming, restart and runtime creation at scale (issue 10, "Must show" 1; goals: 100k schedules
 * armed from discovery ≤ 1 s, restart to first fire ≤ 1 s, RSS ≤ 300 MB, 40k `schedule_create`
 * in one tenant ≤ 2 s). Not part of CI.
 *
 *   npm run bench -- arming                                  (short: 10 tenants, 4k creates)
 *   TENANTS=100 CREATES=40000 npm run bench -- arming        (the full "Must show" run)
 *   (PER_PLUGIN declarations per plugin, default 1000; BENCH_ROUNDS, default 3; SANDBOX=in-thread
 *   runs the guests on the main thread instead of the pool, for `armCpuMs` without other threads)
 *
 * Each round builds a fresh store and a real host (worker-pool sandbox, real clock): TENANTS
 * tenants with one `proxy` guest each, whose `schedules()` returns PER_PLUGIN declarations from
 * its config (70% intervals of 10-59 min, 30% cron in five time zones over 20 patterns). Measured:
 * - **arm**: for every plugin, from the moment its `schedules()` output reached the host to its
 *   `plugin:loaded` event (declarations parsed and validated, quota checked, schedules in the
 *   due queue, ready to fire; the new rows handed to the store, which writes declared rows after
 *   arming, in chunks between other work: see `Store.insertSchedules`), summed over the plugins.
 *   This work is synchronous on the main thread, so the sum is the arming time of all
 *   schedules. The whole `host.start()` (sandbox loads and the guests' discovery calls included)
 *   is reported beside it as `startMs`; `durableMs`: from the start to every row on disk (the
 *   store's `committed()` after `start()`, which writes what is still deferred), and
 *   `deferredAtStartRows`: the rows still deferred when `start()` resolved. `armCpuMs`: the
 *   process's CPU time over the same spans (the main thread's arming work, less sensitive to a
 *   shared machine's load than wall time; exact with `SANDBOX=in-thread`, where no other thread
 *   works meanwhile; with the pool, the workers' discovery of other plugins may add to it).
 * - **restart**: the host is stopped, one schedule of the last tenant is made due (its stored
 *   `next_at` set to the restart's start), and a new host starts on the same store: the time
 *   from `new Host()` to that schedule's `run:started` (`restartToFirstFireMs`), and to
 *   `start()` resolving with every plugin discovered and armed again (`restartStartMs`), and
 *   the restart's arming alone (`restartArmMs`, measured like `armMs`: declarations unchanged,
 *   so reconciling writes nothing; the rows are read and queued).
 * - **RSS** of the process (the pool's worker threads included) before the first start (Node and
 *   the modules, no host: `rssBeforeStartMb`), after it, after a full GC (`rssAfterGcMb`) and
 *   after the restart; the main thread's JS heap after the first start (`heapAfterStartMb` in
 *   use, `heapTotalAfterStartMb` reserved, `externalAfterStartMb`: the scheduler's and host's
 *   share, without the workers) and in use after a full GC (`heapAfterGcMb`: what the schedules
 *   keep; GC needs `node --expose-gc`, which run-all passes); `workers`: the pool's threads
 *   (slots + spares). `tsxRssMb` (once per process): what tsx's loader thread, which a user's
 *   process does not have, adds to every RSS figure here.
 * - **user RSS** (`user.*`, once per round; USER_RSS=0 skips it): RSS as a user's process has
 *   it, measured by bench/arming-rss-child.js, a child running plain `node` on dist/ (no tsx, no
 *   bench bookkeeping) on a fresh store with the same config: with only the modules loaded
 *   (`rssModulesMb`), with a host started on no plugins (`rssIdleMb`: the pool's idle threads),
 *   after the full start (`rssAfterStartMb`) and a full GC (`rssAfterGcMb`, the figure for the
 *   RSS goal); the main heap then (`heapUsedMb`, `heapTotalMb`, `externalMb`); per idle worker
 *   (`perWorkerIdleMb`: the idle host's growth beyond the main heap's, per thread) and what
 *   remains (`otherMb`: RSS beyond modules, main heap, external and idle workers: the workers'
 *   compiled guests and heaps (their instances are dropped after discovery), SQLite's cache,
 *   allocator slack); then after a restart on that store and a
 *   full GC (`rssAfterRestartGcMb`, `heapAfterRestartGcMb`: records read from the store, as at a
 *   user's every later start).
 * - **creates**: CREATES runtime schedules created in one tenant through the host's
 *   `schedule_create` handler (`host.schedules.create`, what the host function calls after
 *   decoding its request), 70/30 intervals and zoned cron; total ms, per-create rate, and the
 *   process's CPU time over the loop (`createsCpuMs`: the loop is synchronous, so this is the
 *   main thread's work, less sensitive to a shared machine's load than wall time).
 * The host is the compiled dist/ (bench/built.ts; `npm run bench` builds it first), so pool
 * workers boot compiled `worker-boot.js`, and tsx is registered in the main thread only, for this
 * file (bench/tsx-main.js). Run directly: `node --expose-gc --import ./bench/tsx-main.js bench/arming.bench.ts`.
 * Rounds run one after another (each in a fresh store); the medians are reported. A later
 * round's RSS includes the heap earlier rounds grew (V8 keeps it): for RSS, run one round per
 * process (`BENCH_ROUNDS=1`, several times) or read round 1. The load
 * average before and after, the Node version, the machine's cores and the commit are written
 * with the results to bench/results/arming.json (RESULTS_NAME changes the file's name).
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as HostConfigModule from '../src/config/host-config.ts';
import type { HostConfig } from '../src/config/host-config.ts';
import type * as RegistryModule from '../host-functions/registry.ts';
import type { HostCallHandler, Sandbox } from '../src/sandbox/types.ts';
import { fromDist, hourglass, ROOT as PROJECT_ROOT, tsxRssMb } from './built.ts';

// The compiled package (bench/built.ts): pool workers boot compiled, as users run the host.
const { Host, InThreadSandbox, WorkerPoolSandbox } = hourglass;
const { parseHostConfig } = await fromDist<typeof HostConfigModule>('src/config/host-config.js');
const { HOST_CALL_FUEL } = await fromDist<typeof RegistryModule>('host-functions/registry.js');

const TENANTS = Number(process.env.TENANTS ?? 10);
const PER_PLUGIN = Number(process.env.PER_PLUGIN ?? 1000);
const CREATES = Number(process.env.CREATES ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RESULTS_NAME = process.env.RESULTS_NAME ?? 'arming';
const USER_RSS = process.env.USER_RSS !== '0';
const IN_THREAD = process.env.SANDBOX === 'in-thread';
const PROXY = resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm');

const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Sydney', 'UTC'];
const PATTERNS = Array.from({ length: 20 }, (_, i) =>
  i < 10 ? `${i * 5} * * * *` : `${i} ${i - 10} * * 1-5`,
);

/** Declaration `i` of the mix: 70% intervals, 30% cron in a time zone. */
function declaration(i: number, prefix = 's'): Record<string, unknown> {
  const id = `${prefix}${i}`;
  // s0, the restart's probe, catches up a missed tick (a slow restart must still fire it).
  if (i === 0) return { id, every: '10m', misfire: 'run-once' };
  if (i % 10 < 7) return { id, every: `${10 + (i % 50)}m` };
  return {
    id,
    cron: PATTERNS[i % PATTERNS.length] as string,
    timezone: ZONES[i % ZONES.length] as string,
  };
}

/** The config's raw JSON (also written to `config.json`, for the RSS child) and its parse. */
function makeConfig(dir: string): HostConfig {
  const manifest = join(dir, 'proxy.json');
  writeFileSync(
    manifest,
    JSON.stringify({
      name: 'proxy',
      version: '1.0.0',
      wasm: PROXY,
      capabilities: ['schedule_create'],
      limits: { timeoutMs: 30_000 },
    }),
  );
  const schedules = JSON.stringify(Array.from({ length: PER_PLUGIN }, (_, i) => declaration(i)));
  const raw = {
    // STORE_WRITER=inline: the scheduler's thread writes the file (A/B against the default).
    store: {
      path: join(dir, 'hourglass.db'),
      writer: process.env.STORE_WRITER === 'inline' ? 'inline' : 'thread',
    },
    tenants: Array.from({ length: TENANTS }, (_, t) => ({
      id: `t${t}`,
      quotas: { maxSchedules: PER_PLUGIN + CREATES + 10 },
      plugins: [{ manifest, config: { schedules } }],
    })),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  return parseHostConfig(raw, join(dir, 'config.json'), dir);
}

interface UserRss {
  rssModulesMb: number;
  rssIdleMb: number;
  rssAfterStartMb: number;
  rssAfterGcMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  workers: number;
  perWorkerIdleMb: number;
  otherMb: number;
  queued: number;
  rssAfterRestartGcMb: number;
  heapAfterRestartGcMb: number;
}

/**
 * RSS as a user's process has it: bench/arming-rss-child.js, plain `node` on dist/ (no tsx, no
 * bench bookkeeping), starts a host on a fresh store with this config.
 */
function userRss(dir: string): UserRss {
  const child = join(dir, 'rss');
  mkdirSync(child);
  const config = join(child, 'config.json');
  const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
    store: { path: string };
  };
  // The same store settings (its writer too), on a file of its own.
  writeFileSync(
    config,
    JSON.stringify({ ...raw, store: { ...raw.store, path: join(child, 'hourglass.db') } }),
  );
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', join(PROJECT_ROOT, 'bench', 'arming-rss-child.js'), config, child],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(out.toString()) as UserRss;
}

/** The last pool a host made (its worker threads are counted; only one kept: no leak). */
let lastPool: InstanceType<typeof WorkerPoolSandbox> | null = null;

/**
 * The default pool sandbox (or the in-thread one, SANDBOX=in-thread), noting when each plugin's
 * `schedules()` output arrives, and the process's CPU time then (`cpuAt`, µs).
 */
function timedSandbox(
  discovered: Map<string, number>,
  cpuAt: Map<string, number> = new Map(),
): (hostCall: HostCallHandler) => Sandbox {
  return (hostCall) => {
    let inner: Sandbox;
    if (IN_THREAD) inner = new InThreadSandbox({ hostCall, hostCallFuel: HOST_CALL_FUEL });
    else {
      const pool = new WorkerPoolSandbox({ hostCall, hostCallFuel: HOST_CALL_FUEL });
      lastPool = pool;
      inner = pool;
    }
    return {
      load: (spec) => inner.load(spec),
      call: async (pluginId, req) => {
        const out = await inner.call(pluginId, req);
        if (req.fn === 'schedules') {
          discovered.set(req.caller.pluginId, performance.now());
          cpuAt.set(req.caller.pluginId, cpuMicros());
        }
        return out;
      },
      unload: (id) => inner.unload(id),
      close: () => inner.close(),
    };
  };
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const cpuMicros = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

interface Round {
  armMs: number;
  armCpuMs: number;
  startMs: number;
  durableMs: number;
  deferredAtStartRows: number;
  rssAfterStartMb: number;
  heapAfterStartMb: number;
  heapAfterGcMb: number;
  rssAfterGcMb: number;
  heapTotalAfterStartMb: number;
  externalAfterStartMb: number;
  rssBeforeStartMb: number;
  workers: number;
  restartToFirstFireMs: number;
  restartStartMs: number;
  restartArmMs: number;
  rssAfterRestartMb: number;
  createsMs: number;
  createsCpuMs: number;
  createsPerSec: number;
  queued: number;
  /** The user's-process figures (`userRss`); absent with USER_RSS=0. */
  user?: UserRss;
}

async function startTimed(config: HostConfig) {
  const discovered = new Map<string, number>();
  const cpuAt = new Map<string, number>();
  const loaded = new Map<string, number>();
  let armCpuUs = 0;
  const host = new Host(config, { sandbox: timedSandbox(discovered, cpuAt) });
  host.events.on('plugin:loaded', (e) => {
    loaded.set(e.pluginId, performance.now());
    armCpuUs += cpuMicros() - (cpuAt.get(e.pluginId) ?? cpuMicros());
  });
  const t0 = performance.now();
  const r = await host.start();
  const startMs = performance.now() - t0;
  const store = host.store as { readonly deferredRows?: number };
  const deferredAtStartRows = store.deferredRows ?? 0;
  await host.store.committed();
  const durableMs = performance.now() - t0;
  if (r.failed.length > 0) throw new Error(`plugins failed: ${JSON.stringify(r.failed[0])}`);
  let armMs = 0;
  for (const [id, at] of loaded) armMs += at - (discovered.get(id) ?? at);
  return { host, startMs, armMs, armCpuMs: armCpuUs / 1000, durableMs, deferredAtStartRows };
}

async function round(): Promise<Round> {
  // The host's timers do not hold the process open; this does, for the whole round.
  const keepAlive = setInterval(() => undefined, 1000);
  const dir = mkdtempSync(join(os.tmpdir(), 'hourglass-arming-'));
  try {
    const config = makeConfig(dir);
    global.gc?.();
    const rssBeforeStartMb = rssMb();
    const first = await startTimed(config);
    const queued = first.host.scheduler.queued;
    if (queued !== TENANTS * PER_PLUGIN) throw new Error(`queued ${queued}, not all schedules`);
    const rssAfterStartMb = rssMb();
    const mem = process.memoryUsage();
    const heapAfterStartMb = mem.heapUsed / 2 ** 20;
    global.gc?.();
    const heapAfterGcMb = process.memoryUsage().heapUsed / 2 ** 20;
    const rssAfterGcMb = rssMb();
    const workers = IN_THREAD ? 0 : (lastPool?.threads ?? NaN);
    await first.host.stop(0);
    global.gc?.();

    // Restart: one schedule of the last tenant is due the moment the restart begins.
    const probe = `t${TENANTS - 1}/proxy/s0`;
    const restartAt = Date.now();
    const db = new Database(config.store.path);
    db.prepare('UPDATE schedules SET next_at = ? WHERE key = ?').run(restartAt, probe);
    db.close();
    const discovered = new Map<string, number>();
    const loaded = new Map<string, number>();
    const t0 = performance.now();
    const host = new Host(config, { sandbox: timedSandbox(discovered) });
    host.events.on('plugin:loaded', (e) => loaded.set(e.pluginId, performance.now()));
    const fired = new Promise<number>((res) =>
      host.events.on('run:started', (run) => {
        if (run.schedule.key === probe) res(performance.now());
      }),
    );
    await host.start();
    const restartStartMs = performance.now() - t0;
    const restartToFirstFireMs = (await fired) - t0;
    const rssAfterRestartMb = rssMb();
    let restartArmMs = 0;
    for (const [id, at] of loaded) restartArmMs += at - (discovered.get(id) ?? at);

    const caller = { pluginId: 't0/proxy', tenant: 't0', phase: 'run' as const };
    const cpu0 = process.cpuUsage();
    const c0 = performance.now();
    for (let i = 0; i < CREATES; i++) {
      const r = host.schedules.create(caller, declaration(i, 'r'));
      if (!('ok' in r)) throw new Error(`create ${i} failed: ${JSON.stringify(r)}`);
    }
    const createsMs = performance.now() - c0;
    const cpu = process.cpuUsage(cpu0);
    const createsCpuMs = (cpu.user + cpu.system) / 1000;
    await host.stop(0);
    const user = USER_RSS ? userRss(dir) : undefined;
    return {
      user,
      armMs: first.armMs,
      armCpuMs: first.armCpuMs,
      startMs: first.startMs,
      durableMs: first.durableMs,
      deferredAtStartRows: first.deferredAtStartRows,
      rssAfterStartMb,
      heapAfterStartMb,
      heapAfterGcMb,
      rssAfterGcMb,
      heapTotalAfterStartMb: mem.heapTotal / 2 ** 20,
      externalAfterStartMb: mem.external / 2 ** 20,
      rssBeforeStartMb,
      workers,
      restartToFirstFireMs,
      restartStartMs,
      restartArmMs,
      rssAfterRestartMb,
      createsMs,
      createsCpuMs,
      createsPerSec: (CREATES / createsMs) * 1000,
      queued,
    };
  } finally {
    clearInterval(keepAlive);
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

const loadBefore = os.loadavg();
const rounds: Round[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const r = await round();
  rounds.push(r);
  console.log(
    `round ${i + 1}/${ROUNDS}: ${JSON.stringify(r, (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`,
  );
}
type Figure = Exclude<keyof Round, 'user'>;
const keys = (Object.keys(rounds[0] as Round) as (keyof Round)[]).filter(
  (k): k is Figure => k !== 'user',
);
const medians: Record<string, number> = Object.fromEntries(
  keys.map((k) => [k, median(rounds.map((r) => r[k]))]),
);
if (USER_RSS) {
  for (const k of Object.keys(rounds[0]?.user ?? {}) as (keyof UserRss)[])
    medians[`user.${k}`] = median(rounds.map((r) => (r.user as UserRss)[k]));
}
console.table(medians);
const dirOut = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dirOut, { recursive: true });
writeFileSync(
  join(dirOut, `${RESULTS_NAME}.json`),
  `${JSON.stringify(
    {
      name: 'arming',
      date: new Date().toISOString(),
      commit: commit(),
      machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?' },
      loadavg: { before: loadBefore, after: os.loadavg() },
      params: {
        tenants: TENANTS,
        perPlugin: PER_PLUGIN,
        schedules: TENANTS * PER_PLUGIN,
        creates: CREATES,
        rounds: ROUNDS,
        sandbox: IN_THREAD ? 'in-thread' : 'pool',
      },
      goals: { armMs: 1000, restartToFirstFireMs: 1000, rssMb: 300, createsMs: 2000 },
      // RSS that tsx's loader thread adds to this process (bench/tsx-main.js), which a user's
      // process does not have: subtract it from the RSS figures for a user's host.
      tsxRssMb: tsxRssMb(),
      medians,
      rounds,
    },
    null,
    2,
  )}\n`,
);
console.log(`results written to bench/results/${RESULTS_NAME}.json`);
