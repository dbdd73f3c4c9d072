/**
 * One round of bench/cluster.bench.ts: a fresh store (a new PostgreSQL database, or a SQLite
 * file), `hosts` host processes (bench/cluster-host.ts) on it, the measured window, and the
 * count from the database afterwards (never from events).
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { forkBench, percentile, type BenchChild } from './common.ts';
import type { FlushTiming } from './cluster-host.ts';
import {
  diffHostCpu,
  hostCpu,
  postgresCpu,
  splitProfile,
  type HostCpu,
  type ProfileSplit,
} from './cluster-profile.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PROXY = resolve(here, '../guest-examples/assemblyscript/proxy/build/proxy.wasm');
const HOST_SCRIPT = join(here, 'cluster-host.ts');
/** Final statuses of ticks that did not call the guest; every other final status is a run. */
const NOT_RUN = ['skipped_overlap', 'skipped_misfire', 'cancelled', 'abandoned'];
const OPEN = ['running', 'waiting'];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `loop`: a closed loop of triggers, `perTenant` runs of each tenant always in flight (the
 * system's rate). `fires`: `perTenant` schedules per tenant `every: 1s`, all starting at once
 * (an offered rate, the real fire path: the schedule's next time is written with each tick).
 */
export type Workload = 'loop' | 'fires';

export interface Setup {
  readonly dir: string;
  readonly adminUrl: string;
  readonly tenants: number;
  readonly warmupMs: number;
  readonly windowMs: number;
  /** The PostgreSQL server's postmaster, for its processes' CPU (null: not readable). */
  postmasterPid: number | null;
}

export interface RoundResult {
  workload: Workload;
  config: string;
  round: number;
  hosts: number;
  perTenant: number;
  balanceMs: number;
  runs: number;
  runsPerSec: number;
  skippedPerSec: number;
  byStatus: Record<string, number>;
  /** loop: trigger → outcome recorded; fires: due time → run started (fire lateness). */
  latencyMs: { p50: number; p99: number; max: number };
  cpuMs: { hostMain: number; hostThreads: number; nodeThreads: number; postgres: number };
  cpuUsPerRun: Record<'hostMain' | 'hostThreads' | 'nodeThreads' | 'postgres' | 'total', number>;
  /** Of all processes over the window, in cores (the machine has os.cpus().length). */
  coresBusy: number;
  /** PostgreSQL checkpoints that began in the window (pg_stat_bgwriter; all databases). */
  checkpoints?: number;
  flush?: FlushTiming[];
  profile?: ProfileSplit;
}

export async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function writeConfig(
  s: Setup,
  path: string,
  store: Record<string, unknown>,
  workload: Workload,
  perTenant: number,
): void {
  const manifest = join(s.dir, 'proxy.json');
  writeFileSync(
    manifest,
    JSON.stringify({ name: 'proxy', version: '1.0.0', wasm: PROXY, capabilities: [] }),
  );
  // loop: hourly, so no tick falls in a round (the triggers make the runs).
  const every = workload === 'loop' ? '1h' : '1s';
  const schedules = JSON.stringify(
    Array.from({ length: perTenant }, (_, i) => ({ id: `s${i}`, every })),
  );
  const config = {
    store,
    shutdownGraceMs: 5_000,
    tenants: Array.from({ length: s.tenants }, (_, t) => ({
      id: `t${t}`,
      quotas: { maxSchedules: perTenant + 10, maxRunsInFlight: perTenant },
      plugins: [{ manifest, config: { schedules } }],
    })),
  };
  writeFileSync(path, JSON.stringify(config));
}

interface Child extends BenchChild {
  pid: number;
  nodeThreads: number[];
}

/** Forks a host process on `configPath`; resolves once it started. */
async function startHost(configPath: string, env: NodeJS.ProcessEnv): Promise<Child> {
  const child = forkBench(HOST_SCRIPT, [configPath], { env, execArgv: ['--expose-gc'] });
  const started = await child.next('started');
  const nodeThreads = started.nodeThreads as number[];
  return { ...child, pid: started.pid as number, nodeThreads };
}

/** Waits until every tenant is held and each of `hosts` hosts holds tenants / hosts. */
async function balanced(s: Setup, url: string, hosts: number): Promise<number> {
  const t0 = performance.now();
  const sql = 'SELECT count(*)::int AS n FROM hg_shards WHERE owner IS NOT NULL GROUP BY owner';
  let stable = 0;
  for (;;) {
    const owners = await admin(url, (c) => c.query<{ n: number }>(sql));
    const ok = owners.rows.length === hosts && owners.rows.every((r) => r.n === s.tenants / hosts);
    stable = ok ? stable + 1 : 0;
    if (stable >= 2) return performance.now() - t0;
    if (performance.now() - t0 > 120_000)
      throw new Error(`tenants not balanced over ${hosts} hosts in 120 s`);
    await sleep(250);
  }
}

/** Checkpoints the server has begun so far (timed and requested). */
async function checkpoints(s: Setup): Promise<number> {
  const sql = 'SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter';
  return Number((await admin(s.adminUrl, (c) => c.query<{ n: string }>(sql))).rows[0]?.n ?? 0);
}

interface Counted {
  byStatus: Record<string, number>;
  latency: number[];
}

const inWindow = (ph: (i: number) => string) =>
  `FROM runs WHERE finished_at >= ${ph(1)} AND finished_at < ${ph(2)}`;
const countSql = (ph: (i: number) => string) =>
  `SELECT status, count(*) AS n ${inWindow(ph)} GROUP BY status`;
const latencySql = (ph: (i: number) => string, w: Workload) =>
  `SELECT ${w === 'loop' ? 'finished_at' : 'started_at'} - scheduled_at AS l ${inWindow(ph)}
     AND status NOT IN (${[...NOT_RUN, ...OPEN].map((x) => `'${x}'`).join(', ')})`;

async function countPg(url: string, w: Workload, t0: number, t1: number): Promise<Counted> {
  return admin(url, async (c) => {
    const byStatus: Record<string, number> = {};
    const n = await c.query<{ status: string; n: string }>(
      countSql((i) => `$${i}`),
      [t0, t1],
    );
    for (const r of n.rows) byStatus[r.status] = Number(r.n);
    const late = await c.query<{ l: string }>(
      latencySql((i) => `$${i}`, w),
      [t0, t1],
    );
    return { byStatus, latency: late.rows.map((r) => Number(r.l)) };
  });
}

function countSqlite(file: string, w: Workload, t0: number, t1: number): Counted {
  const db = new Database(file, { readonly: true });
  try {
    const byStatus: Record<string, number> = {};
    const rows = db.prepare(countSql(() => '?')).all(t0, t1) as { status: string; n: number }[];
    for (const r of rows) byStatus[r.status] = r.n;
    const latency = db
      .prepare(latencySql(() => '?', w))
      .pluck()
      .all(t0, t1) as number[];
    return { byStatus, latency };
  } finally {
    db.close();
  }
}

/**
 * One round of `config` (`sqlite-1`, `pg-<hosts>`). `profile`: the first host's main thread is
 * profiled over the window and its store's flushes timed (bench/cluster-host.ts).
 */
export async function round(
  s: Setup,
  workload: Workload,
  perTenant: number,
  config: string,
  r: number,
  profile = false,
): Promise<RoundResult> {
  const hosts = Number(config.split('-')[1]);
  const onPg = config.startsWith('pg');
  const roundDir = join(s.dir, `${workload}-${config}-${r}`);
  mkdirSync(roundDir);
  const configPath = join(roundDir, 'config.json');
  const dbName = `hg_bench_${randomBytes(6).toString('hex')}`;
  const u = new URL(s.adminUrl);
  u.pathname = `/${dbName}`;
  const url = u.toString();
  if (onPg) {
    await admin(s.adminUrl, (c) => c.query(`CREATE DATABASE ${dbName}`));
    writeConfig(s, configPath, { postgres: { url } }, workload, perTenant);
  } else writeConfig(s, configPath, { path: join(roundDir, 'hourglass.db') }, workload, perTenant);
  const env: NodeJS.ProcessEnv = { ...process.env, CLUSTER_HOST_FLUSH_TIMING: profile ? '1' : '0' };
  delete env.HOURGLASS_POSTGRES_URL; // it would win over the config's store
  const children: Child[] = [];
  try {
    // All at once (those that join later take their share from the first, one tenant a tick).
    const starting = Array.from({ length: hosts }, () => startHost(configPath, env));
    for (const c of await Promise.allSettled(starting))
      if (c.status === 'fulfilled') children.push(c.value);
      else throw c.reason;
    const balanceMs = onPg ? await balanced(s, url, hosts) : 0;
    if (workload === 'loop') for (const c of children) c.proc.send({ cmd: 'drive', perTenant });
    await sleep(s.warmupMs);
    const profilePath = join(roundDir, 'main.cpuprofile');
    const profiled = children[0] as Child;
    if (profile) {
      profiled.proc.send({ cmd: 'profile-start' });
      await profiled.next('profiling');
    }
    const cpu0 = children.map((c) => hostCpu(c.pid, c.nodeThreads));
    const pg0 = onPg ? postgresCpu(s.postmasterPid) : 0;
    const ckpt0 = onPg ? await checkpoints(s) : 0;
    const t0 = Date.now();
    await sleep(s.windowMs);
    const t1 = Date.now();
    const cpu1 = children.map((c) => hostCpu(c.pid, c.nodeThreads));
    const pgMs = onPg ? postgresCpu(s.postmasterPid) - pg0 : 0;
    const ckpt = onPg ? (await checkpoints(s)) - ckpt0 : undefined;
    const flush: FlushTiming[] = [];
    if (profile) {
      profiled.proc.send({ cmd: 'profile-stop', path: profilePath });
      flush.push((await profiled.next('profiled')).flush as FlushTiming);
    }
    const stopped = children.map((c) => c.next('stopped'));
    for (const c of children) c.proc.send({ cmd: 'stop' });
    await Promise.all(stopped);
    await Promise.all(children.map((c) => c.exited));
    const counted = onPg
      ? await countPg(url, workload, t0, t1)
      : countSqlite(join(roundDir, 'hourglass.db'), workload, t0, t1);
    const secs = (t1 - t0) / 1000;
    let runs = 0;
    let skipped = 0;
    for (const [status, n] of Object.entries(counted.byStatus)) {
      if (NOT_RUN.includes(status)) skipped += n;
      else if (!OPEN.includes(status)) runs += n;
    }
    const cpu = cpu0.map((c, i) => diffHostCpu(c, cpu1[i] as HostCpu));
    const sum = (f: (c: HostCpu) => number) => cpu.reduce((a, c) => a + f(c), 0);
    const cpuMs = {
      hostMain: sum((c) => c.main),
      hostThreads: sum((c) => c.hostThreads),
      nodeThreads: sum((c) => c.nodeThreads),
      postgres: pgMs,
    };
    const totalMs = cpuMs.hostMain + cpuMs.hostThreads + cpuMs.nodeThreads + cpuMs.postgres;
    const perRun = (ms: number) => Number(((ms * 1000) / Math.max(1, runs)).toFixed(1));
    const result: RoundResult = {
      workload,
      config,
      round: r,
      hosts,
      perTenant,
      balanceMs: Math.round(balanceMs),
      runs,
      runsPerSec: Math.round(runs / secs),
      skippedPerSec: Math.round(skipped / secs),
      byStatus: counted.byStatus,
      latencyMs: {
        p50: percentile(counted.latency, 50),
        p99: percentile(counted.latency, 99),
        max: percentile(counted.latency, 100),
      },
      cpuMs,
      cpuUsPerRun: {
        hostMain: perRun(cpuMs.hostMain),
        hostThreads: perRun(cpuMs.hostThreads),
        nodeThreads: perRun(cpuMs.nodeThreads),
        postgres: perRun(cpuMs.postgres),
        total: perRun(totalMs),
      },
      coresBusy: Number((totalMs / (t1 - t0)).toFixed(2)),
      ...(ckpt === undefined ? {} : { checkpoints: ckpt }),
    };
    if (profile) {
      result.flush = flush;
      result.profile = splitProfile(profilePath);
    }
    return result;
  } finally {
    for (const c of children)
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    if (onPg)
      await admin(s.adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    rmSync(roundDir, { recursive: true, force: true });
  }
}
