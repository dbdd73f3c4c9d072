/**
 * How fast an operator command reaches the host on a PostgreSQL store: the CLI's way (queued
 * with `NOTIFY hg_commands`, src/operator/pg-access.ts) against the same row queued without the
 * notification, which the host then finds only at its cluster tick's poll (every 1 s by default).
 *
 *   npm run bench -- pg-command
 *   ROUNDS=7 COMMANDS=20 npm run bench -- pg-command        (longer)
 *
 * Needs PostgreSQL: it uses HOURGLASS_TEST_PG_URL's server (a fresh database, dropped after), and
 * without that variable re-runs itself under scripts/postgres-for-tests.mjs (a throwaway server).
 * One host (`openHost`, compiled dist/, proxy guest) owns tenant `t`; the commands pause and
 * resume `t/p/daily` in turn, one at a time, in ROUNDS (default 5) alternating rounds of COMMANDS
 * (default 10) per way (a command without NOTIFY is queued at a random point of the 1 s tick).
 * Per command:
 * - `reachMs`: the row's `applied_at − created_at` (both this machine's clock): queued → applied
 *   by the host (woken, fetched, applied in its mirror);
 * - `roundTripMs`: what the CLI waits: queue → the host's outcome read back from PostgreSQL
 *   (the host's flush of the outcome and the CLI's polling of the row included; a CLI process's
 *   own start, ~0.3-1 s through Node, is not).
 * Reports the median over rounds of each round's median and p90, and writes
 * bench/results/pg-command.json (load, Node, commit).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type * as PgAccess from '../src/operator/pg-access.ts';
import type * as OpenHost from '../src/cluster/open-host.ts';
import type * as PgStoreModule from '../src/store/postgres/pg-store.ts';
import { fromDist, hourglass, ROOT } from './built.ts';
import { median, percentile, writeResult } from './common.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const COMMANDS = Number(process.env.COMMANDS ?? 10);
const URL_VAR = 'HOURGLASS_TEST_PG_URL';

if (!process.env[URL_VAR]) {
  const r = spawnSync(
    process.execPath,
    [
      join(ROOT, 'scripts', 'postgres-for-tests.mjs'),
      '--',
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}

const { openHost } = await fromDist<typeof OpenHost>('src/cluster/open-host.js');
const { sendPgCommand } = await fromDist<typeof PgAccess>('src/operator/pg-access.js');
const { PG_TYPES } = await fromDist<typeof PgStoreModule>('src/store/postgres/pg-store.js');
const { parseHostConfig } = hourglass;

interface Sample {
  readonly reachMs: number;
  readonly roundTripMs: number;
}

const admin = new URL(process.env[URL_VAR] as string);
const dbName = `hg_bench_${randomBytes(6).toString('hex')}`;
const adminClient = async (sql: string) => {
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
};
await adminClient(`CREATE DATABASE ${dbName}`);
const url = new URL(admin);
url.pathname = `/${dbName}`;
const dir = mkdtempSync(join(tmpdir(), 'hg-pg-command-'));

try {
  writeFileSync(
    join(dir, 'p.json'),
    JSON.stringify({
      name: 'p',
      version: '1',
      wasm: join(ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm'),
      capabilities: [],
    }),
  );
  const config = parseHostConfig(
    {
      store: { postgres: url.toString() },
      tenants: [
        {
          id: 't',
          plugins: [
            {
              manifest: 'p.json',
              config: { schedules: JSON.stringify([{ id: 'daily', cron: '0 3 * * *' }]) },
            },
          ],
        },
      ],
    },
    join(dir, 'config.json'),
    dir,
  );
  const opened = await openHost(config);
  await opened.start();
  const pool = new pg.Pool({ connectionString: url.toString(), max: 1, types: PG_TYPES });
  let paused = false;
  const nextAction = () => {
    paused = !paused;
    return paused ? 'pause' : 'resume';
  };

  /** The CLI's way: queue + NOTIFY, wait for the outcome. */
  const viaNotify = async (): Promise<Sample> => {
    const t0 = performance.now();
    const r = await sendPgCommand(pool, 't/p/daily', nextAction(), null);
    const roundTripMs = performance.now() - t0;
    const cmd = r.command;
    if (!r.ok || !cmd || cmd.appliedAt === null) throw new Error(`not applied: ${r.message}`);
    return { reachMs: cmd.appliedAt - cmd.createdAt, roundTripMs };
  };
  /** The same row without NOTIFY: only the cluster's tick finds it; polled as the CLI polls. */
  const TICK_MS = 1_000; // the cluster's default tick
  const viaPoll = async (): Promise<Sample> => {
    // At a random point of the tick (one command right after another would wait a whole one).
    await sleep(Math.random() * TICK_MS);
    const t0 = performance.now();
    const ins = await pool.query<{ id: number }>(
      `INSERT INTO operator_commands (schedule_key, action, note, created_at)
       VALUES ('t/p/daily', $1, NULL, $2) RETURNING id`,
      [nextAction(), Date.now()],
    );
    const id = (ins.rows[0] as { id: number }).id;
    for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
      const row = (
        await pool.query<{ created_at: number; applied_at: number | null; result: string | null }>(
          'SELECT created_at, applied_at, result FROM operator_commands WHERE id = $1',
          [id],
        )
      ).rows[0];
      if (row?.applied_at != null && row.result !== null)
        return { reachMs: row.applied_at - row.created_at, roundTripMs: performance.now() - t0 };
      if (performance.now() - t0 > 10_000) throw new Error('not applied within 10 s');
      await sleep(pause);
    }
  };

  const ways = { notify: viaNotify, 'poll only (no NOTIFY)': viaPoll } as const;
  const rounds: Record<string, { reach: number[]; roundTrip: number[] }[]> = {
    notify: [],
    'poll only (no NOTIFY)': [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? Object.keys(ways) : Object.keys(ways).reverse();
    for (const name of order) {
      const samples: Sample[] = [];
      for (let i = 0; i < COMMANDS; i++) samples.push(await ways[name as keyof typeof ways]());
      rounds[name]?.push({
        reach: samples.map((s) => s.reachMs),
        roundTrip: samples.map((s) => s.roundTripMs),
      });
    }
  }
  const summary = Object.fromEntries(
    Object.entries(rounds).map(([name, rs]) => [
      name,
      {
        reachMsP50: median(rs.map((r) => median(r.reach))),
        reachMsP90: median(rs.map((r) => percentile(r.reach, 90))),
        reachMsMax: Math.max(...rs.flatMap((r) => r.reach)),
        roundTripMsP50: median(rs.map((r) => median(r.roundTrip))),
        roundTripMsP90: median(rs.map((r) => percentile(r.roundTrip, 90))),
        roundMedians: rs.map((r) => Number(median(r.reach).toFixed(1))),
      },
    ]),
  );
  console.table(
    Object.entries(summary).map(([way, s]) => ({
      way,
      'reach p50 ms': s.reachMsP50.toFixed(1),
      'reach p90 ms': s.reachMsP90.toFixed(1),
      'reach max ms': s.reachMsMax.toFixed(1),
      'round trip p50 ms': s.roundTripMsP50.toFixed(1),
      'round trip p90 ms': s.roundTripMsP90.toFixed(1),
    })),
  );
  writeResult('pg-command', { rounds: ROUNDS, commandsPerRound: COMMANDS, ways: summary });
  await pool.end();
  await opened.stop(0);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await adminClient(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
}
