/**
 * The CLI on a PostgreSQL store: a real host (`openHost`, in this process, with the proxy guest)
 * on a fresh database, and the real `hourglass` command in child processes.
 *
 * The host's cluster ticks once a minute here (leases of 10 minutes), so between ticks a queued
 * command reaches it only by `NOTIFY hg_commands`: a command applied within the CLI's wait was
 * woken by the notification, not by the tick's poll.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { openHost, type OpenedHost } from '../../src/cluster/open-host.ts';
import { loadHostConfig, PROJECT_ROOT } from '../../src/config/host-config.ts';
import type { PgStore } from '../../src/store/postgres/pg-store.ts';
import type { PluginRecord, RunRecord, ScheduleRecord } from '../../src/store/types.ts';
import { freshDatabase } from '../support/postgres.ts';
import { GUEST, decls, tempDir } from './helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'hourglass.js');

/** Runs `hourglass …` without blocking this process (the host in it must keep serving). */
function cli(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOURGLASS_POSTGRES_URL: '' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** A config file for tenant `t` with the proxy guest declaring `t/p/daily` and `t/p/weekly`. */
function writeConfig(dir: string, url: string): string[] {
  writeFileSync(
    join(dir, 'p.json'),
    JSON.stringify({ name: 'p', version: '1', wasm: GUEST.proxy, capabilities: [] }),
  );
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      store: { postgres: { url, leaseTtlMs: 600_000 } },
      tenants: [
        {
          id: 't',
          plugins: [
            {
              manifest: 'p.json',
              config: {
                schedules: decls(
                  { id: 'daily', cron: '0 3 * * *' },
                  { id: 'weekly', cron: '0 4 * * 1' },
                ),
              },
            },
          ],
        },
      ],
    }),
  );
  return ['--config', join(dir, 'config.json')];
}

/** A fresh database, dropped after the hosts `startHost` started on it have stopped. */
async function database(t: { after(fn: () => Promise<void>): void }) {
  const db = await freshDatabase();
  const hosts: OpenedHost[] = [];
  t.after(async () => {
    for (const h of hosts) await h.stop(0).catch(() => undefined);
    await db.drop();
  });
  return { url: db.url, hosts };
}

async function startHost(
  dir: string,
  hosts: OpenedHost[],
): Promise<OpenedHost & { store: PgStore }> {
  const opened = await openHost(loadHostConfig(join(dir, 'config.json')), {
    cluster: { tickMs: 60_000 },
  });
  hosts.push(opened);
  await opened.start();
  const store = opened.host.store as PgStore;
  await store.committed();
  return Object.assign(opened, { store });
}

/** The command rows in PostgreSQL, oldest first. */
async function commandRows(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{
      action: string;
      created_at: string;
      applied_at: string | null;
      result: string | null;
    }>('SELECT action, created_at, applied_at, result FROM operator_commands ORDER BY id');
    return r.rows.map((x) => ({
      action: x.action,
      appliedAt: x.applied_at === null ? null : Number(x.applied_at),
      latencyMs: x.applied_at === null ? null : Number(x.applied_at) - Number(x.created_at),
      result: x.result,
    }));
  } finally {
    await c.end();
  }
}

test('CLI on PostgreSQL: schedules and runs read what the host wrote; pause, resume and trigger reach the owning host', async (t) => {
  const db = await database(t);
  const dir = tempDir(t);
  const args = writeConfig(dir, db.url);
  const opened = await startHost(dir, db.hosts);
  const { host, store } = opened;
  assert.deepEqual(opened.cluster?.owned, ['t']);
  assert.equal(host.scheduler.queued, 2);

  // Reads: the same records the host holds, as the SQLite CLI prints them.
  const table = await cli(['schedules', ...args], dir);
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /^SCHEDULE\s+ORIGIN\s+STATE\s+NEXT RUN\s+WHEN\s+NOTE$/m);
  assert.match(table.out, /^t\/p\/daily\s+declared\s+active\s+\S+Z\s+cron 0 3 \* \* \* UTC$/m);
  const json = await cli(['schedules', '--json', ...args], dir);
  assert.equal(json.code, 0, json.err);
  assert.deepEqual(JSON.parse(json.out) as ScheduleRecord[], store.listSchedules());
  const plugins = await cli(['plugins', '--json', ...args], dir);
  assert.equal(plugins.code, 0, plugins.err);
  assert.deepEqual(JSON.parse(plugins.out) as PluginRecord[], store.listPlugins());
  assert.deepEqual(
    store.listPlugins().map((p) => [p.id, p.status]),
    [['t/p', 'loaded']],
  );

  // trigger: the host starts a run, which `hourglass runs` then lists.
  const finished = new Promise<void>((resolve) =>
    host.events.on('run:finished', (r) => r.scheduleKey === 't/p/daily' && resolve()),
  );
  const trig = await cli(['trigger', 't/p/daily', ...args], dir);
  assert.equal(trig.code, 0, trig.err);
  assert.match(trig.out, /^trigger t\/p\/daily: started$/m);
  await finished;
  await store.committed();
  const runs = await cli(['runs', '--json', ...args], dir);
  assert.equal(runs.code, 0, runs.err);
  const listed = JSON.parse(runs.out) as RunRecord[];
  assert.deepEqual(
    listed.map((r) => [r.scheduleKey, r.trigger, r.status]),
    [['t/p/daily', 'manual', 'succeeded']],
  );
  assert.deepEqual(listed, store.listRuns());
  const runTable = await cli(
    ['runs', '--schedule', 't/p/daily', '--status', 'succeeded', ...args],
    dir,
  );
  assert.match(runTable.out, /^\d+\s+t\/p\/daily\s+manual\s+succeeded\s/m);
  const none = await cli(['runs', '--plugin', 't/other', '--json', ...args], dir);
  assert.deepEqual(JSON.parse(none.out), []);

  // pause: the host's schedule stops (no longer queued), and the CLI reads it paused.
  const pause = await cli(['pause', 't/p/daily', '--note', 'maintenance', ...args], dir);
  assert.equal(pause.code, 0, pause.err);
  assert.match(pause.out, /^pause t\/p\/daily: paused$/m);
  assert.equal(store.getSchedule('t/p/daily')?.state, 'paused');
  assert.equal(host.scheduler.queued, 1);
  await store.committed();
  const paused = await cli(['schedules', ...args], dir);
  assert.match(
    paused.out,
    /^t\/p\/daily\s+declared\s+paused\s+-\s+cron 0 3 \* \* \* UTC\s+maintenance$/m,
  );

  // resume: queued again.
  const resume = await cli(['resume', 't/p/daily', ...args], dir);
  assert.equal(resume.code, 0, resume.err);
  assert.match(resume.out, /^resume t\/p\/daily: active$/m);
  assert.equal(host.scheduler.queued, 2);

  // An unknown schedule: the host's answer, as on SQLite.
  const missing = await cli(['delete', 't/p/nope', ...args], dir);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^hourglass: HG_SCHEDULE_NOT_FOUND: not_found/);

  // Every command was applied, and (the cluster's tick being a minute) woken by NOTIFY.
  await store.committed();
  const rows = await commandRows(db.url);
  assert.deepEqual(
    rows.map((r) => r.action),
    ['trigger', 'pause', 'resume', 'delete'],
  );
  for (const r of rows) assert.notEqual(r.appliedAt, null);
  t.diagnostic(
    `command latency (created → applied), ms: ${rows.map((r) => r.latencyMs).join(', ')}`,
  );
});

test('CLI on PostgreSQL with no host: a command is reported queued, and applied when a host takes the tenant', async (t) => {
  const db = await database(t);
  const dir = tempDir(t);
  const args = writeConfig(dir, db.url);
  const first = await startHost(dir, db.hosts);
  await first.stop(0);

  const pause = await cli(['pause', 't/p/daily', '--note', 'later', ...args], dir);
  assert.equal(pause.code, 0, pause.err);
  assert.match(
    pause.out,
    /^no host owns tenant t now; the pause of t\/p\/daily is queued \(command \d+\) until a host takes the tenant$/m,
  );
  const trig = await cli(['trigger', 't/p/weekly', ...args], dir);
  assert.equal(trig.code, 0, trig.err);
  assert.match(trig.out, /the trigger of t\/p\/weekly is queued/);
  const missing = await cli(['pause', 't/p/nope', ...args], dir);
  assert.equal(missing.code, 1);
  assert.match(
    missing.err,
    /^hourglass: HG_SCHEDULE_NOT_FOUND: not_found: schedule 't\/p\/nope' does not exist/,
  );
  // Nothing was written to the schedule itself: only the owner writes it.
  const still = await cli(['schedules', '--json', ...args], dir);
  assert.deepEqual(
    (JSON.parse(still.out) as ScheduleRecord[]).map((s) => [s.localId, s.state]),
    [
      ['daily', 'active'],
      ['weekly', 'active'],
    ],
  );

  const second = await startHost(dir, db.hosts);
  // The host applies what it found pending once it has loaded the tenant.
  for (let i = 0; ; i++) {
    const rows = await commandRows(db.url);
    if (rows.every((r) => r.appliedAt !== null)) {
      assert.deepEqual(
        rows.map((r) => [r.action, JSON.parse(r.result ?? 'null')]),
        [
          ['pause', { ok: 'paused' }],
          ['trigger', { ok: 'started' }],
        ],
      );
      break;
    }
    assert.ok(i < 600, `commands not applied within 60 s: ${JSON.stringify(rows)}`);
    await sleep(100);
  }
  await second.host.scheduler.settle();
  await second.store.committed();
  assert.equal(second.store.getSchedule('t/p/daily')?.state, 'paused');
  assert.equal(second.host.scheduler.queued, 1);
  const schedules = await cli(['schedules', ...args], dir);
  assert.match(schedules.out, /^t\/p\/daily\s+declared\s+paused\s+-\s+.*later$/m);
  const runs = await cli(['runs', '--json', ...args], dir);
  assert.deepEqual(
    (JSON.parse(runs.out) as RunRecord[]).map((r) => [r.scheduleKey, r.trigger, r.status]),
    [['t/p/weekly', 'manual', 'succeeded']],
  );
});

test('CLI on a PostgreSQL database without the schema: one line, HG_STORE, nothing created; --store means SQLite', async (t) => {
  const db = await database(t);
  const dir = tempDir(t);
  const args = writeConfig(dir, db.url);
  for (const cmd of [['schedules'], ['runs'], ['pause', 't/p/daily']]) {
    const r = await cli([...cmd, ...args], dir);
    assert.equal(r.code, 1, cmd[0]);
    assert.match(
      r.err,
      /^hourglass: HG_STORE: no Hourglass store in postgres:\/\/.*start a host on it first/,
    );
    assert.equal(r.err.trim().split('\n').length, 1);
  }
  // `--store PATH` still names a SQLite file, whatever the config says.
  const sqlite = await cli(['runs', '--store', join(dir, 'none.db'), ...args], dir);
  assert.equal(sqlite.code, 1);
  assert.match(sqlite.err, /^hourglass: HG_STORE: no store at .*none\.db/);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const tables = await c.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'");
  await c.end();
  assert.equal(tables.rowCount, 0);
});
