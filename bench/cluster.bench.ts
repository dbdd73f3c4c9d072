/**
 * Runs recorded per second on PostgreSQL with 1, 2 and 3 host processes beside SQLite with one
 * (issue 11), in one run, and where the time goes. Not part of CI.
 *
 *   npm run bench -- cluster                                          (short: ~3-4 min)
 *   WORKLOADS=loop,fires ROUNDS=5 WARMUP_S=5 WINDOW_S=15 npm run bench -- cluster   (full, ~20 min)
 *   or, after `npm run build`: node --expose-gc --import ./bench/tsx-main.js bench/cluster.bench.ts
 *
 * PostgreSQL: the bench re-runs itself under scripts/postgres-for-tests.mjs (a throwaway
 * server in a temp dir, started as for the tests, stopped at the end), then switches durability
 * back ON (the wrapper starts it with fsync, synchronous_commit and full_page_writes off):
 * `ALTER SYSTEM` + reload, so every COMMIT waits for its WAL fsync: a real database. The output
 * prints the settings in force. PG_SYNCHRONOUS_COMMIT=off compares at SQLite's durability
 * (WAL, synchronous=NORMAL: no fsync per commit). With HOURGLASS_TEST_PG_URL set, that server
 * is used as it is (settings printed, not changed; its CPU is counted only on this machine).
 * Every round gets a fresh database (SQLite: a fresh file in a temp dir on the same disk).
 *
 * Workloads (WORKLOADS, default `loop`): TENANTS (12, divisible by 1, 2 and 3 hosts) tenants,
 * each with one `proxy` guest (guest-examples/assemblyscript/proxy; no payload: it reads its
 * context and writes a small JSON output).
 * - `loop`, the rate: IN_FLIGHT (16) schedules per tenant (hourly, no tick falls in a round),
 *   each triggered (the operator path: the at-most-one gate, run row, durable start, guest,
 *   outcome) and triggered again as soon as its outcome is recorded: IN_FLIGHT runs per tenant
 *   always in flight, so the rate is the system's. Schedules firing every second cannot measure
 *   that: at-most-one turns every tick beyond the system's rate into a `skipped_overlap`
 *   record, and writing those crowds out the runs (12,000 ticks/s offered gave 483 runs and
 *   13,700 skip records per second on SQLite).
 *   A run waits for two commits (its start is durable before the guest is called; then its
 *   outcome), so with a fixed number in flight the rate is also in-flight ÷ latency: where a
 *   store's commit is slow (PostgreSQL: one flush at a time, each a transaction of several
 *   round trips and a WAL fsync), more in flight (IN_FLIGHT) raises it, until the CPU is full.
 * - `fires`, the fire path at an offered rate: FIRES (200) schedules per tenant `every: 1s`
 *   (2,400 ticks/s, below every configuration's rate), runs/s and fire lateness, CPU per run.
 *
 * Configurations `sqlite-1`, `pg-1`, `pg-2`, `pg-3` (CONFIGS), each host its own process
 * (bench/cluster-host.ts: `openHost` on the compiled dist/, what `hourglass start` does; pool
 * sandbox with one worker per core), in ROUNDS (3) alternating rounds. A round: fresh store,
 * start the hosts, wait until the tenants are balanced (each host holds TENANTS / hosts),
 * WARMUP_S (3) s, a window of WINDOW_S (5) s, stop the hosts, then count from the database:
 * runs that called the guest with `finished_at` in the window ÷ the window = runs/s (ticks not
 * run, `skipped_*`, apart); latency p50/p99 (loop: trigger → outcome recorded; fires: due →
 * started). Medians over the rounds; ratios against sqlite-1 of the same run. CPU over the
 * window from /proc: the hosts' main threads, the threads a host started (its pool's workers),
 * Node's own threads (GC, compiler), the PostgreSQL server's processes; µs per run, cores busy.
 *
 * Then (PROFILE=0 skips them) one more `loop` round of sqlite-1 and of pg-1, outside the
 * medians: the main thread's CPU profile over the window split by part (bench/cluster-profile.ts)
 * and, on PostgreSQL, the store's flushes timed from outside (statements' wall time, rows per
 * flush: bench/cluster-host.ts).
 * Writes bench/results/cluster.json: load before and after, Node, commit, cores, the PostgreSQL
 * settings, every round, the medians and the profiled rounds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { environment, median, writeResult } from './common.ts';
import { postmasterPid, printProfile } from './cluster-profile.ts';
import {
  admin,
  round,
  sleep,
  type RoundResult,
  type Setup,
  type Workload,
} from './cluster-round.ts';

const here = dirname(fileURLToPath(import.meta.url));
const INNER = 'HG_CLUSTER_BENCH_INNER';

if (process.env[INNER] !== '1') {
  // Re-run under the tests' PostgreSQL wrapper (it starts, and always stops, the server).
  const own = process.env.HOURGLASS_TEST_PG_URL ? '0' : '1';
  const r = spawnSync(
    process.execPath,
    [
      resolve(here, '../scripts/postgres-for-tests.mjs'),
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
const FIRES = Number(process.env.FIRES ?? 200);
const WORKLOADS = (process.env.WORKLOADS ?? 'loop').split(',') as Workload[];
const CONFIGS = (process.env.CONFIGS ?? 'sqlite-1,pg-1,pg-2,pg-3').split(',');
const PROFILE = process.env.PROFILE !== '0';
const SYNC_COMMIT = process.env.PG_SYNCHRONOUS_COMMIT ?? 'on';
const OWN_PG = process.env.HG_CLUSTER_BENCH_OWN_PG === '1';
const before = environment();
const setup: Setup = {
  dir: mkdtempSync(join(tmpdir(), 'hourglass-cluster-bench-')),
  adminUrl: process.env.HOURGLASS_TEST_PG_URL as string,
  tenants: TENANTS,
  warmupMs: Number(process.env.WARMUP_S ?? 3) * 1000,
  windowMs: Number(process.env.WINDOW_S ?? 5) * 1000,
  postmasterPid: null,
};
const perTenant = (w: Workload) => (w === 'loop' ? IN_FLIGHT : FIRES);

/** Durability on (our own throwaway server only); returns the settings in force. */
async function preparePostgres(): Promise<Record<string, string>> {
  return admin(setup.adminUrl, async (c) => {
    if (OWN_PG) {
      for (const [k, v] of [
        ['fsync', 'on'],
        ['full_page_writes', 'on'],
        ['synchronous_commit', SYNC_COMMIT],
      ])
        await c.query(`ALTER SYSTEM SET ${k} = '${v}'`);
      await c.query('SELECT pg_reload_conf()');
      await sleep(500); // the reload is asynchronous
    }
    // pg_settings, not current_setting(): a role that may not see a setting gets no row.
    const names = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes'];
    names.push('wal_sync_method', 'shared_buffers', 'data_directory');
    const rows = await c.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)',
      [names],
    );
    const settings: Record<string, string> = {};
    for (const r of rows.rows) settings[r.name] = r.unit ? `${r.setting} × ${r.unit}` : r.setting;
    return settings;
  });
}

function printRound(x: RoundResult): void {
  const c = x.cpuUsPerRun;
  const what = x.workload === 'loop' ? 'trigger → recorded' : 'fire lateness';
  console.log(
    `${x.workload} ${x.config} round ${x.round}: ${x.runsPerSec} runs/s (${x.skippedPerSec} skipped/s), ` +
      `${what} p50 ${x.latencyMs.p50} ms p99 ${x.latencyMs.p99} ms; CPU µs/run: host main ${c.hostMain}, ` +
      `pool workers ${c.hostThreads}, Node threads ${c.nodeThreads}, PostgreSQL ${c.postgres}; ` +
      `${x.coresBusy} cores busy` +
      (x.checkpoints ? `; ${x.checkpoints} PostgreSQL checkpoint(s) began` : '') +
      (x.hosts > 1 ? `; balanced in ${x.balanceMs} ms` : ''),
  );
}

function medians(rounds: RoundResult[], w: Workload): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const mine = rounds.filter((x) => x.workload === w);
  const base = median(mine.filter((x) => x.config === 'sqlite-1').map((x) => x.runsPerSec));
  for (const config of CONFIGS) {
    const xs = mine.filter((x) => x.config === config);
    const m = (f: (x: RoundResult) => number) => Number(median(xs.map(f)).toFixed(1));
    out[config] = {
      runsPerSec: m((x) => x.runsPerSec),
      vsSqlite1: Number((m((x) => x.runsPerSec) / base).toFixed(3)),
      skippedPerSec: m((x) => x.skippedPerSec),
      p50Ms: m((x) => x.latencyMs.p50),
      p99Ms: m((x) => x.latencyMs.p99),
      usPerRunHostMain: m((x) => x.cpuUsPerRun.hostMain),
      usPerRunPoolWorkers: m((x) => x.cpuUsPerRun.hostThreads),
      usPerRunNodeThreads: m((x) => x.cpuUsPerRun.nodeThreads),
      usPerRunPostgres: m((x) => x.cpuUsPerRun.postgres),
      usPerRunTotal: m((x) => x.cpuUsPerRun.total),
      coresBusy: m((x) => x.coresBusy),
    };
  }
  return out;
}

try {
  const settings = await preparePostgres();
  setup.postmasterPid = settings.data_directory ? postmasterPid(settings.data_directory) : null;
  console.log(
    `PostgreSQL ${settings.server_version}: fsync=${settings.fsync}, synchronous_commit=${settings.synchronous_commit}, ` +
      `full_page_writes=${settings.full_page_writes}, wal_sync_method=${settings.wal_sync_method}` +
      (OWN_PG
        ? ` (a throwaway server; fsync and full_page_writes switched on for the bench, synchronous_commit=${SYNC_COMMIT}: PG_SYNCHRONOUS_COMMIT)`
        : ' (HOURGLASS_TEST_PG_URL, as found)') +
      `; SQLite: WAL, synchronous=NORMAL (the store's default). ${os.cpus().length} cores, load ${before.loadavg}`,
  );
  console.log(
    `${TENANTS} tenants, proxy guest; loop: ${IN_FLIGHT} runs per tenant always in flight (closed loop of triggers); ` +
      `fires: ${FIRES} schedules per tenant every 1 s (${TENANTS * FIRES} ticks/s offered); ` +
      `warm-up ${setup.warmupMs / 1000} s, window ${setup.windowMs / 1000} s, ${ROUNDS} alternating rounds`,
  );
  const rounds: RoundResult[] = [];
  for (let r = 1; r <= ROUNDS; r++)
    for (const w of WORKLOADS)
      for (const config of CONFIGS) {
        const x = await round(setup, w, perTenant(w), config, r);
        rounds.push(x);
        printRound(x);
      }
  const results: Record<string, unknown> = {};
  for (const w of WORKLOADS) {
    const m = medians(rounds, w);
    console.log(`\n${w}: medians of ${ROUNDS} rounds (baseline sqlite-1)`);
    console.table(m);
    results[w] = m;
    const one = m['pg-1']?.runsPerSec;
    const more = CONFIGS.filter((c) => c.startsWith('pg-') && c !== 'pg-1');
    if (one && more.length > 0) {
      console.log(
        `${w}: hosts on PostgreSQL vs pg-1: ` +
          more
            .map(
              (c) =>
                `${c} ×${((m[c]?.runsPerSec ?? 0) / one).toFixed(2)} (${m[c]?.coresBusy} cores busy, ${m[c]?.usPerRunTotal} µs CPU/run)`,
            )
            .join(', ') +
          `; pg-1: ${m['pg-1']?.coresBusy} cores busy, ${m['pg-1']?.usPerRunTotal} µs CPU/run. ` +
          `The machine has ${os.cpus().length} cores, shared by every host process and PostgreSQL.`,
      );
    }
  }
  // The profiled rounds: pg-1, and sqlite-1 beside it for comparison.
  const profiled: RoundResult[] = [];
  if (PROFILE && WORKLOADS.includes('loop'))
    for (const config of ['sqlite-1', 'pg-1'].filter((c) => CONFIGS.includes(c))) {
      const x = await round(setup, 'loop', IN_FLIGHT, config, 0, true);
      profiled.push(x);
      printRound(x);
      printProfile(x, setup.windowMs);
    }
  writeResult('cluster', {
    loadBefore: before.loadavg,
    loadAfter: environment().loadavg,
    cores: os.cpus().length,
    postgres: { ...settings, ownServer: OWN_PG },
    workload: {
      tenants: TENANTS,
      guest: 'guest-examples/assemblyscript/proxy (no payload)',
      loop: {
        inFlightPerTenant: IN_FLIGHT,
        driver: 'each schedule re-triggered once its outcome is recorded',
      },
      fires: { schedulesPerTenant: FIRES, every: '1s', ticksPerSecOffered: TENANTS * FIRES },
      warmupS: setup.warmupMs / 1000,
      windowS: setup.windowMs / 1000,
    },
    rounds: ROUNDS,
    baseline: 'sqlite-1',
    medians: results,
    perRound: rounds,
    profiled,
  });
} finally {
  rmSync(setup.dir, { recursive: true, force: true });
}
