/**
 * Runs recorded per second on PostgreSQL with 1, 2 and 3 host processes beside SQLite with one
 * (issue 11), in one run, and where the time goes. Not part of CI.
 *
 *   npm run bench -- cluster                                      (short: ~3 min)
 *   ROUNDS=5 WINDOW_S=20 WARMUP_S=5 npm run bench -- cluster      (longer)
 *   or: node --expose-gc --import ./bench/tsx-main.js bench/cluster.bench.ts   (after npm run build)
 *
 * PostgreSQL: the bench re-runs itself under scripts/postgres-for-tests.mjs (a throwaway
 * cluster in a temp dir, as the tests use), then turns durability back ON for it (`ALTER
 * SYSTEM` fsync, synchronous_commit, full_page_writes, then a reload; the test wrapper starts
 * it with them off): a real database, printed with the results. With HOURGLASS_TEST_PG_URL set,
 * that server is used as it is (its settings are printed, not changed). Each round gets a fresh
 * database (and SQLite a fresh file in a temp dir on the same disk).
 *
 * Workload: TENANTS (12, so 1, 2 and 3 hosts divide it) tenants, each one `proxy` guest
 * (guest-examples/assemblyscript/proxy, payload-less runs: it reads its context and writes a
 * small JSON output) declaring SCHEDULES (1000) schedules `every: 1s`, at most IN_FLIGHT (32)
 * runs in flight per tenant: 12,000 ticks/s offered, more than 2 cores record, so the rate is
 * the system's. Ticks the host cannot start in time are recorded `skipped_overlap` (the
 * schedule's previous tick still waits) or `skipped_misfire`; they are counted apart.
 *
 * Configurations `sqlite-1`, `pg-1`, `pg-2`, `pg-3` (CONFIGS to choose), each host a separate
 * process (bench/cluster-host.ts: `openHost` on the compiled dist/, as `hourglass start`), in
 * ROUNDS (3) alternating rounds. A round: fresh store, start the hosts, wait until the tenants
 * are balanced (each host holds TENANTS / hosts), WARMUP_S (4) s, then a window of WINDOW_S (6)
 * s, then stop the hosts and count from the database: runs executed (guest called, outcome
 * recorded) whose `finished_at` is in the window, ÷ the window = runs/s; fire lateness
 * (started_at − scheduled_at) p50/p99 of those runs; skipped records apart. Medians over the
 * rounds, ratios against sqlite-1 of the same run. CPU over the window from /proc: each host's
 * main thread, the threads the host started (its pool's workers), Node's own threads (GC and
 * compiler helpers), and the PostgreSQL server's processes; per run in µs.
 *
 * Then (PROFILE=0 skips it) one more pg-1 round, not in the medians, with the main thread's
 * CPU profile over the window (split by part: bench/cluster-profile.ts) and the store's flushes
 * timed from outside (statement wall times, rows per flush: bench/cluster-host.ts).
 * Writes bench/results/cluster.json (load, Node, commit, cores, every round, medians).
 */
import Database from 'better-sqlite3';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { environment, median, percentile, writeResult } from './common.ts';
import {
  diffHostCpu,
  hostCpu,
  postgresCpu,
  postmasterPid,
  splitProfile,
  type HostCpu,
} from './cluster-profile.ts';
import type { FlushTiming } from './cluster-host.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '..');
const INNER = 'HG_CLUSTER_BENCH_INNER';

if (process.env[INNER] !== '1') {
  // Re-run under the tests' PostgreSQL wrapper (it starts, and always stops, the server).
  const own = process.env.HOURGLASS_TEST_PG_URL ? '0' : '1';
  const r = spawnSync(
    process.execPath,
    [
      join(ROOT, 'scripts', 'postgres-for-tests.mjs'),
      '--',
      process.execPath,
      ...process.execArgv,
      fileURLToPath(import.meta.url),
    ],
    { stdio: 'inherit', env: { ...process.env, [INNER]: '1', HG_CLUSTER_BENCH_OWN_PG: own } },
  );
  process.exit(r.status ?? 1);
}

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const TENANTS = Number(process.env.TENANTS ?? 12);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 16);
const WARMUP_S = Number(process.env.WARMUP_S ?? 4);
const WINDOW_S = Number(process.env.WINDOW_S ?? 6);
const PROFILE = process.env.PROFILE !== '0';
const CONFIGS = (process.env.CONFIGS ?? 'sqlite-1,pg-1,pg-2,pg-3').split(',');
const ADMIN_URL = process.env.HOURGLASS_TEST_PG_URL as string;
const OWN_PG = process.env.HG_CLUSTER_BENCH_OWN_PG === '1';
const PROXY = join(ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm');
const HOST_SCRIPT = join(here, 'cluster-host.ts');
const TSX_MAIN = pathToFileURL(join(here, 'tsx-main.js')).href;
/** Runs that called the guest; the other final statuses are ticks that did not run. */
const NOT_RUN = ['skipped_overlap', 'skipped_misfire', 'cancelled', 'abandoned'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const before = environment();
const dir = mkdtempSync(join(tmpdir(), 'hourglass-cluster-bench-'));

async function admin<T>(fn: (c: pg.Client) => Promise<T>, url = ADMIN_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Durability on (our own throwaway server only); returns the settings in force. */
async function preparePostgres(): Promise<{
  settings: Record<string, string>;
  pid: number | null;
}> {
  return admin(async (c) => {
    if (OWN_PG) {
      for (const s of ['fsync', 'synchronous_commit', 'full_page_writes'])
        await c.query(`ALTER SYSTEM SET ${s} = on`);
      await c.query('SELECT pg_reload_conf()');
      await sleep(500); // the reload is asynchronous
    }
    const settings: Record<string, string> = {};
    for (const s of [
      'server_version',
      'fsync',
      'synchronous_commit',
      'full_page_writes',
      'wal_sync_method',
      'shared_buffers',
    ]) {
      settings[s] =
        (await c.query<{ v: string }>(`SELECT current_setting('${s}') AS v`)).rows[0]?.v ?? '?';
    }
    const data = (await c.query<{ v: string }>("SELECT current_setting('data_directory') AS v"))
      .rows[0]?.v;
    return { settings, pid: data ? postmasterPid(data) : null };
  });
}

function writeConfig(path: string, store: Record<string, unknown>): void {
  const manifest = join(dir, 'proxy.json');
  writeFileSync(
    manifest,
    JSON.stringify({ name: 'proxy', version: '1.0.0', wasm: PROXY, capabilities: [] }),
  );
  // Hourly: no tick falls in a round; the closed loop of triggers makes the runs.
  const schedules = JSON.stringify(
    Array.from({ length: IN_FLIGHT }, (_, i) => ({ id: `s${i}`, every: '1h' })),
  );
  const config = {
    store,
    shutdownGraceMs: 5_000,
    tenants: Array.from({ length: TENANTS }, (_, t) => ({
      id: `t${t}`,
      quotas: { maxSchedules: IN_FLIGHT + 10, maxRunsInFlight: IN_FLIGHT },
      plugins: [{ manifest, config: { schedules } }],
    })),
  };
  writeFileSync(path, JSON.stringify(config));
}

interface Child {
  proc: ChildProcess;
  pid: number;
  nodeThreads: number[];
  next(type: string): Promise<Record<string, unknown>>;
  /** Resolves when the process has exited (listened from the fork on: it may exit early). */
  exited: Promise<void>;
}

/** Forks a host process on `configPath`; resolves once it started. */
async function startHost(configPath: string): Promise<Child> {
  const env = { ...process.env };
  delete env.HOURGLASS_POSTGRES_URL; // it would win over the config's store
  const proc = fork(HOST_SCRIPT, [configPath], {
    execArgv: ['--expose-gc', '--import', TSX_MAIN],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  const early: Record<string, unknown>[] = [];
  proc.on('message', (m: Record<string, unknown>) => {
    const w = waiting.get(m.type as string);
    if (w) {
      waiting.delete(m.type as string);
      w(m);
    } else early.push(m);
  });
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((res, rej) => {
      const i = early.findIndex((m) => m.type === type);
      if (i >= 0) return res(early.splice(i, 1)[0] as Record<string, unknown>);
      waiting.set(type, res);
      proc.once('exit', (code) => rej(new Error(`host process exited (${code}) before '${type}'`)));
    });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const started = await next('started');
  return {
    proc,
    pid: started.pid as number,
    nodeThreads: started.nodeThreads as number[],
    next,
    exited,
  };
}

/** Waits until every tenant is held and each of `hosts` hosts holds TENANTS / hosts. */
async function balanced(url: string, hosts: number): Promise<number> {
  const t0 = performance.now();
  const share = TENANTS / hosts;
  let stable = 0;
  for (;;) {
    const owners = await admin(
      (c) =>
        c.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM hg_shards WHERE owner IS NOT NULL GROUP BY owner',
        ),
      url,
    );
    const ok = owners.rows.length === hosts && owners.rows.every((r) => r.n === share);
    stable = ok ? stable + 1 : 0;
    if (stable >= 2) return performance.now() - t0;
    if (performance.now() - t0 > 120_000)
      throw new Error(`tenants not balanced over ${hosts} hosts in 120 s`);
    await sleep(250);
  }
}

interface Counted {
  byStatus: Record<string, number>;
  lateness: number[];
}

const COUNT_SQL = (ph: (i: number) => string) =>
  `SELECT status, count(*) AS n FROM runs WHERE finished_at >= ${ph(1)} AND finished_at < ${ph(2)} GROUP BY status`;
/** Trigger → outcome recorded (a manual run's scheduled_at is its trigger's time). */
const LATE_SQL = (ph: (i: number) => string) =>
  `SELECT finished_at - scheduled_at AS l FROM runs WHERE finished_at >= ${ph(1)} AND finished_at < ${ph(2)}
     AND status NOT IN (${NOT_RUN.map((s) => `'${s}'`).join(', ')})`;

async function countPg(url: string, t0: number, t1: number): Promise<Counted> {
  return admin(async (c) => {
    const byStatus: Record<string, number> = {};
    for (const r of (
      await c.query<{ status: string; n: string }>(
        COUNT_SQL((i) => `$${i}`),
        [t0, t1],
      )
    ).rows)
      byStatus[r.status] = Number(r.n);
    const late = await c.query<{ l: string }>(
      LATE_SQL((i) => `$${i}`),
      [t0, t1],
    );
    return { byStatus, lateness: late.rows.map((r) => Number(r.l)) };
  }, url);
}

function countSqlite(file: string, t0: number, t1: number): Counted {
  const db = new Database(file, { readonly: true });
  try {
    const byStatus: Record<string, number> = {};
    for (const r of db.prepare(COUNT_SQL(() => '?')).all(t0, t1) as { status: string; n: number }[])
      byStatus[r.status] = r.n;
    const lateness = db
      .prepare(LATE_SQL(() => '?'))
      .pluck()
      .all(t0, t1) as number[];
    return { byStatus, lateness };
  } finally {
    db.close();
  }
}

interface RoundResult {
  config: string;
  round: number;
  hosts: number;
  balanceMs: number;
  runs: number;
  runsPerSec: number;
  skippedPerSec: number;
  byStatus: Record<string, number>;
  latencyMs: { p50: number; p99: number };
  cpuMs: { hostMain: number; hostThreads: number; nodeThreads: number; postgres: number };
  cpuUsPerRun: {
    hostMain: number;
    hostThreads: number;
    nodeThreads: number;
    postgres: number;
    total: number;
  };
  flush?: FlushTiming[];
  profileMs?: Record<string, number>;
}

let pgPid: number | null = null;

async function round(config: string, r: number, profile = false): Promise<RoundResult> {
  const hosts = Number(config.split('-')[1]);
  const onPg = config.startsWith('pg');
  const roundDir = join(dir, `${config}-${r}`);
  mkdirSync(roundDir);
  const configPath = join(roundDir, 'config.json');
  const dbName = `hg_bench_${randomBytes(6).toString('hex')}`;
  let url = '';
  if (onPg) {
    await admin((c) => c.query(`CREATE DATABASE ${dbName}`));
    const u = new URL(ADMIN_URL);
    u.pathname = `/${dbName}`;
    url = u.toString();
    writeConfig(configPath, { postgres: { url } });
  } else writeConfig(configPath, { path: join(roundDir, 'hourglass.db') });
  if (profile) process.env.CLUSTER_HOST_FLUSH_TIMING = '1';
  const children: Child[] = [];
  try {
    // One after another: the first takes every tenant, the next ones their share from it.
    for (let h = 0; h < hosts; h++) children.push(await startHost(configPath));
    delete process.env.CLUSTER_HOST_FLUSH_TIMING;
    const balanceMs = onPg ? await balanced(url, hosts) : 0;
    for (const c of children) c.proc.send({ cmd: 'drive', perTenant: IN_FLIGHT });
    await sleep(WARMUP_S * 1000);
    const cpu0 = children.map((c) => hostCpu(c.pid, c.nodeThreads));
    const pg0 = postgresCpu(onPg ? pgPid : null);
    if (profile) {
      for (const c of children) c.proc.send({ cmd: 'profile-start' });
      await Promise.all(children.map((c) => c.next('profiling')));
    }
    const t0 = Date.now();
    await sleep(WINDOW_S * 1000);
    const t1 = Date.now();
    const cpu1 = children.map((c) => hostCpu(c.pid, c.nodeThreads));
    const pgMs = postgresCpu(onPg ? pgPid : null) - pg0;
    const profilePath = join(dir, `${config}-${r}.cpuprofile`);
    const flush: FlushTiming[] = [];
    if (profile) {
      for (const c of children)
        c.proc.send({ cmd: 'profile-stop', path: `${profilePath}.${c.pid}` });
      for (const c of children) flush.push((await c.next('profiled')).flush as FlushTiming);
    }
    const stopped = children.map((c) => c.next('stopped'));
    for (const c of children) c.proc.send({ cmd: 'stop' });
    await Promise.all(stopped);
    await Promise.all(children.map((c) => c.exited));
    const children0 = [...children];
    children.length = 0;
    const counted = onPg
      ? await countPg(url, t0, t1)
      : countSqlite(join(roundDir, 'hourglass.db'), t0, t1);
    const secs = (t1 - t0) / 1000;
    let runs = 0;
    let skipped = 0;
    for (const [s, n] of Object.entries(counted.byStatus)) {
      if (NOT_RUN.includes(s)) skipped += n;
      else if (s !== 'running' && s !== 'waiting') runs += n;
    }
    const cpu = cpu0.map((c, i) => diffHostCpu(c, cpu1[i] as HostCpu));
    const sum = (f: (c: HostCpu) => number) => cpu.reduce((a, c) => a + f(c), 0);
    const cpuMs = {
      hostMain: sum((c) => c.main),
      hostThreads: sum((c) => c.hostThreads),
      nodeThreads: sum((c) => c.nodeThreads),
      postgres: pgMs,
    };
    const perRun = (ms: number) => Number(((ms * 1000) / Math.max(1, runs)).toFixed(1));
    const result: RoundResult = {
      config,
      round: r,
      hosts,
      balanceMs: Math.round(balanceMs),
      runs,
      runsPerSec: Math.round(runs / secs),
      skippedPerSec: Math.round(skipped / secs),
      byStatus: counted.byStatus,
      latencyMs: { p50: percentile(counted.lateness, 50), p99: percentile(counted.lateness, 99) },
      cpuMs,
      cpuUsPerRun: {
        hostMain: perRun(cpuMs.hostMain),
        hostThreads: perRun(cpuMs.hostThreads),
        nodeThreads: perRun(cpuMs.nodeThreads),
        postgres: perRun(cpuMs.postgres),
        total: perRun(cpuMs.hostMain + cpuMs.hostThreads + cpuMs.nodeThreads + cpuMs.postgres),
      },
    };
    if (profile) {
      result.flush = flush;
      result.profileMs = splitProfile(`${profilePath}.${(children0[0] as Child).pid}`);
    }
    return result;
  } finally {
    for (const c of children) c.proc.kill('SIGKILL');
    if (onPg) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    rmSync(roundDir, { recursive: true, force: true });
  }
}

function printRound(x: RoundResult): void {
  const c = x.cpuUsPerRun;
  console.log(
    `${x.config} round ${x.round}: ${x.runsPerSec} runs/s (${x.skippedPerSec} skipped/s), trigger → recorded p50 ${x.latencyMs.p50} ms p99 ${x.latencyMs.p99} ms; ` +
      `CPU µs/run: host main ${c.hostMain}, pool workers ${c.hostThreads}, node threads ${c.nodeThreads}, postgres ${c.postgres}` +
      (x.hosts > 1 ? `; balanced in ${x.balanceMs} ms` : ''),
  );
}

try {
  const pgInfo = await preparePostgres();
  pgPid = pgInfo.pid;
  const s = pgInfo.settings;
  console.log(
    `PostgreSQL ${s.server_version}: fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, full_page_writes=${s.full_page_writes}, wal_sync_method=${s.wal_sync_method}` +
      (OWN_PG
        ? ' (a throwaway server, durability switched on for the bench)'
        : ' (HOURGLASS_TEST_PG_URL, as found)'),
  );
  console.log(
    `${TENANTS} tenants × ${IN_FLIGHT} runs always in flight (closed loop of triggers, ${TENANTS * IN_FLIGHT} in all); warm-up ${WARMUP_S} s, window ${WINDOW_S} s; load ${before.loadavg}`,
  );
  const rounds: RoundResult[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const config of CONFIGS) {
      const x = await round(config, r);
      rounds.push(x);
      printRound(x);
    }
  }
  const medians: Record<string, Record<string, number>> = {};
  const base = median(rounds.filter((x) => x.config === 'sqlite-1').map((x) => x.runsPerSec));
  for (const config of CONFIGS) {
    const mine = rounds.filter((x) => x.config === config);
    const m = (f: (x: RoundResult) => number) => Number(median(mine.map(f)).toFixed(1));
    medians[config] = {
      runsPerSec: m((x) => x.runsPerSec),
      vsSqlite1: Number((m((x) => x.runsPerSec) / base).toFixed(3)),
      skippedPerSec: m((x) => x.skippedPerSec),
      latencyP50Ms: m((x) => x.latencyMs.p50),
      latencyP99Ms: m((x) => x.latencyMs.p99),
      cpuUsPerRunHostMain: m((x) => x.cpuUsPerRun.hostMain),
      cpuUsPerRunPoolWorkers: m((x) => x.cpuUsPerRun.hostThreads),
      cpuUsPerRunNodeThreads: m((x) => x.cpuUsPerRun.nodeThreads),
      cpuUsPerRunPostgres: m((x) => x.cpuUsPerRun.postgres),
      cpuUsPerRunTotal: m((x) => x.cpuUsPerRun.total),
      cpuCoresBusy: m(
        (x) =>
          (x.cpuMs.hostMain + x.cpuMs.hostThreads + x.cpuMs.nodeThreads + x.cpuMs.postgres) /
          (WINDOW_S * 1000),
      ),
    };
  }
  console.table(medians);
  let profiled: RoundResult | null = null;
  if (PROFILE && CONFIGS.includes('pg-1')) {
    profiled = await round('pg-1', 0, true);
    printRound(profiled);
    reportProfile(profiled);
  }
  writeResult('cluster', {
    loadBefore: before.loadavg,
    loadAfter: environment().loadavg,
    postgres: { ...pgInfo.settings, ownServer: OWN_PG },
    workload: {
      tenants: TENANTS,
      inFlightPerTenant: IN_FLIGHT,
      driver: 'closed loop: each schedule re-triggered once its outcome is recorded',
      guest: 'proxy (no payload)',
      warmupS: WARMUP_S,
      windowS: WINDOW_S,
    },
    rounds: ROUNDS,
    baseline: 'sqlite-1',
    medians,
    perRound: rounds,
    profiled,
    cores: os.cpus().length,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function reportProfile(x: RoundResult): void {
  const f = x.flush?.[0];
  const win = WINDOW_S * 1000;
  console.log(
    `\nwhere the time goes (pg-1, ${x.runs} runs in ${WINDOW_S} s; CPU as share of one core over the window):`,
  );
  const cores = (ms: number) => `${((ms / win) * 100).toFixed(0)}%`;
  console.log(
    `  host main thread ${cores(x.cpuMs.hostMain)}, pool workers ${cores(x.cpuMs.hostThreads)}, Node's threads ${cores(x.cpuMs.nodeThreads)}, PostgreSQL ${cores(x.cpuMs.postgres)}`,
  );
  if (x.profileMs) {
    const total = Object.values(x.profileMs).reduce((a, b) => a + b, 0);
    console.table(
      Object.entries(x.profileMs)
        .sort((a, b) => b[1] - a[1])
        .map(([part, ms]) => ({
          'main thread': part,
          ms: Math.round(ms),
          share: `${((ms / total) * 100).toFixed(1)}%`,
        })),
    );
  }
  if (f && f.flushes > 0) {
    console.log(
      `  flushes: ${f.flushes} (${(f.flushes / (win / 1000)).toFixed(1)}/s), ${(f.rows / f.flushes).toFixed(0)} rows each, ${(f.flushMs / f.flushes).toFixed(2)} ms each (BEGIN → COMMIT answered, wall; one flush at a time)`,
    );
    console.table(
      Object.entries(f.byKind).map(([kind, k]) => ({
        statement: kind,
        n: k.n,
        'ms avg': (k.ms / k.n).toFixed(3),
        'ms total': Math.round(k.ms),
      })),
    );
  }
}
