/**
 * Unit tests for what only src/store/sqlite-store.ts has, on real SQLite files in a temp folder:
 * files, pragmas, migrations, several handles on one file, the host lease. The `Store` contract
 * every store keeps is in the conformance suite (test/unit/store-conformance-sqlite.test.ts).
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HourglassError } from '../../src/errors.ts';
import { NOT_SUCCEEDED, RUN_QUERIES, SqliteStore } from '../../src/store/sqlite-store.ts';
import type { NewRun, ScheduleRecord } from '../../src/store/types.ts';
import { scheduleRow } from './schedule-row.ts';

const MIGRATIONS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'src',
  'store',
  'migrations',
);
const LATEST_VERSION = Math.max(
  ...readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .map((f) => Number(f.slice(0, 4))),
);

const T0 = Date.parse('2026-01-15T10:00:00Z');

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-store-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store on a fresh temp file, closed after the test. */
function openStore(t: { after(fn: () => void): void }): { store: SqliteStore; file: string } {
  const file = join(tempDir(t), 'hourglass.db');
  const store = new SqliteStore(file);
  t.after(() => store.close());
  return { store, file };
}

function expectCode(fn: () => unknown, code: string): HourglassError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof HourglassError,
    `expected HourglassError ${code}, got ${String(caught)}`,
  );
  assert.equal(caught.code, code);
  return caught;
}

function schedule(localId: string, over: Partial<ScheduleRecord> = {}): ScheduleRecord {
  const tenant = over.tenant ?? 'acme';
  const pluginId = over.pluginId ?? `${tenant}/poller`;
  return scheduleRow(tenant, localId, {
    key: `${pluginId}/${localId}`,
    pluginId,
    at: T0,
    spec: { kind: 'cron', cron: '0 9 * * *', timezone: 'Europe/Berlin' },
    declHash: `hash-${localId}`,
    nextAt: T0 + 60_000,
    generation: 1,
    ...over,
  });
}

function newRun(scheduleKey: string, over: Partial<NewRun> = {}): NewRun {
  const [tenant, plugin, localId] = scheduleKey.split('/') as [string, string, string];
  return {
    scheduleKey,
    pluginId: `${tenant}/${plugin}`,
    tenant,
    localId,
    trigger: 'schedule',
    status: 'running',
    reason: null,
    scheduledAt: T0,
    startedAt: T0 + 5,
    finishedAt: null,
    attempt: 1,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
    coversUntil: null,
    ...over,
  };
}

function readPragma(file: string, name: string): unknown {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.pragma(name, { simple: true });
  } finally {
    db.close();
  }
}

describe('SqliteStore: opening and migrations', () => {
  test('a new file is migrated to the latest PRAGMA user_version, with the tables', (t) => {
    const { store, file } = openStore(t);
    store.close();
    assert.ok(LATEST_VERSION >= 1);
    assert.equal(readPragma(file, 'user_version'), LATEST_VERSION);
    const db = new Database(file, { readonly: true });
    try {
      const tables = (
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
          name: string;
        }[]
      ).map((r) => r.name);
      for (const name of [
        'plugins',
        'job_contracts',
        'schedules',
        'runs',
        'operator_commands',
        'host_lease',
      ]) {
        assert.ok(tables.includes(name), `table ${name}`);
      }
    } finally {
      db.close();
    }
  });

  test('queries of runs by status use the partial status index (succeeded runs are not in it)', (t) => {
    const { store, file } = openStore(t);
    const s = schedule('a');
    store.insertSchedule(s);
    const done = store.insertRun(newRun(s.key));
    store.finishRun(done, {
      status: 'succeeded',
      reason: null,
      finishedAt: T0 + 1,
      error: null,
      outputBytes: 0,
      fuelUsed: null,
      fuelBudget: null,
      result: null,
    });
    store.insertRun(newRun(s.key));
    store.close();
    const db = new Database(file, { readonly: true });
    t.after(() => db.close());
    // Parameters to plan with (the abandon statement has named ones).
    const args = (sql: string) =>
      sql.includes('@') ? [{ reason: 'x', now: 1 }] : Array(sql.split('?').length - 1).fill('x');
    const indexed = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args(sql)) as { detail: string }[]).some(
        (r) => r.detail.includes('runs_not_succeeded'),
      );
    const names = (
      db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'")
        .all() as {
        name: string;
      }[]
    ).map((r) => r.name);
    assert.ok(names.includes('runs_not_succeeded'));
    assert.ok(!names.includes('runs_status') && !names.includes('runs_waiting'));
    assert.equal(
      (
        db
          .prepare(
            `SELECT COUNT(*) AS n FROM runs INDEXED BY runs_not_succeeded WHERE ${NOT_SUCCEEDED}`,
          )
          .get() as { n: number }
      ).n,
      1,
      'only the run that did not succeed is in the index',
    );
    for (const sql of Object.values(RUN_QUERIES)) assert.ok(indexed(sql), sql);
    // listRuns builds its WHERE the same way (a status other than 'succeeded' names the condition).
    assert.ok(
      indexed(`SELECT * FROM runs WHERE status = ? AND ${NOT_SUCCEEDED} ORDER BY id DESC LIMIT ?`),
    );
    // …and must: without it SQLite would not use the index.
    assert.ok(!indexed("SELECT * FROM runs WHERE status = 'running' ORDER BY id"));
  });

  test('journal_mode is wal', (t) => {
    const { store, file } = openStore(t);
    store.close();
    assert.equal(readPragma(file, 'journal_mode'), 'wal');
  });

  test('creates missing parent folders', (t) => {
    const file = join(tempDir(t), 'a', 'b', 'hg.db');
    const store = new SqliteStore(file);
    store.close();
    assert.equal(readPragma(file, 'user_version'), LATEST_VERSION);
  });

  test('reopening keeps data and does not re-run migrations', (t) => {
    const { store, file } = openStore(t);
    const s = schedule('a', { payload: '{"x":1}', cursor: 'c1' });
    store.insertSchedule(s);
    const runId = store.insertRun(newRun(s.key));
    store.close();
    const again = new SqliteStore(file);
    t.after(() => again.close());
    assert.deepEqual(again.getSchedule(s.key), s);
    assert.equal(again.getRun(runId)?.scheduleKey, s.key);
    assert.equal(readPragma(file, 'user_version'), LATEST_VERSION);
  });

  test('a store with a newer user_version → HG_STORE_VERSION, and the file is left alone', (t) => {
    const file = join(tempDir(t), 'future.db');
    const db = new Database(file);
    db.pragma(`user_version = ${LATEST_VERSION + 1}`);
    db.exec('CREATE TABLE from_the_future (x INTEGER)');
    db.close();
    expectCode(() => new SqliteStore(file), 'HG_STORE_VERSION');
    assert.equal(readPragma(file, 'user_version'), LATEST_VERSION + 1);
  });

  test('a file that is not a database → HG_STORE_CORRUPT', (t) => {
    const file = join(tempDir(t), 'junk.db');
    writeFileSync(
      file,
      'this is not an SQLite database, just text that is long enough to matter'.repeat(20),
    );
    expectCode(() => new SqliteStore(file), 'HG_STORE_CORRUPT');
  });

  test('a path whose parent is a file → HG_STORE', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'plain'), 'x');
    expectCode(() => new SqliteStore(join(dir, 'plain', 'hg.db')), 'HG_STORE');
  });

  test('mustExist with a missing file → HG_STORE', (t) => {
    expectCode(
      () => new SqliteStore(join(tempDir(t), 'missing.db'), { mustExist: true }),
      'HG_STORE',
    );
  });

  test(':memory: works', () => {
    const store = new SqliteStore(':memory:');
    try {
      store.insertSchedule(schedule('a'));
      assert.equal(store.getSchedule('acme/poller/a')?.localId, 'a');
    } finally {
      store.close();
    }
  });

  test('close is idempotent', (t) => {
    const { store } = openStore(t);
    store.close();
    store.close();
  });
});

describe('SqliteStore: operator commands', () => {
  test('commands written by one handle are seen by another (CLI and host on one file)', (t) => {
    const { store, file } = openStore(t);
    const cli = new SqliteStore(file, { mustExist: true });
    t.after(() => cli.close());
    const id = cli.enqueueCommand('acme/poller/a', 'delete', null, T0);
    assert.deepEqual(
      store.pendingCommands().map((c) => c.id),
      [id],
    );
    store.completeCommand(id, 'deleted', T0 + 1);
    assert.deepEqual(cli.pendingCommands(), []);
  });
});

describe('SqliteStore: lease', () => {
  const claim = (owner: string, now: number, extra: { replaceOwner?: string } = {}) => ({
    owner,
    pid: 100,
    hostName: 'h1',
    now,
    staleMs: 3_000,
    ...extra,
  });

  test('acquire is a compare-and-set: free, own, stale, or a named dead holder', (t) => {
    const { store } = openStore(t);
    assert.equal(store.readLease(), undefined);
    const a = store.acquireLease(claim('a', T0));
    assert.ok(a.ok);
    assert.deepEqual(store.readLease(), {
      owner: 'a',
      pid: 100,
      hostName: 'h1',
      startedAt: T0,
      heartbeatAt: T0,
      epoch: 1,
    });
    // Live (heartbeat 2.9 s ago): refused, the holder named.
    const b = store.acquireLease({ ...claim('b', T0 + 2_900), pid: 200, hostName: 'h2' });
    assert.equal(b.ok, false);
    assert.equal(!b.ok && b.holder.owner, 'a');
    // The owner itself re-acquires (keeps started_at and epoch).
    assert.ok(store.acquireLease(claim('a', T0 + 1_000)).ok);
    assert.equal(store.readLease()?.startedAt, T0);
    assert.equal(store.readLease()?.epoch, 1);
    // Naming another owner than the holder as dead does not help.
    assert.equal(store.acquireLease(claim('b', T0 + 1_500, { replaceOwner: 'zzz' })).ok, false);
    // Naming the holder as dead takes it.
    const c = store.acquireLease(claim('c', T0 + 1_500, { replaceOwner: 'a' }));
    assert.ok(c.ok);
    assert.equal(c.ok && c.lease.epoch, 2);
    // Stale after staleMs without renewal.
    assert.equal(store.acquireLease(claim('d', T0 + 4_500)).ok, false);
    const d = store.acquireLease(claim('d', T0 + 4_501));
    assert.ok(d.ok);
    assert.deepEqual(d.ok && [d.lease.owner, d.lease.startedAt, d.lease.epoch], [
      'd',
      T0 + 4_501,
      3,
    ]);
  });

  test('renew only by the holder; release only by the holder', (t) => {
    const { store } = openStore(t);
    assert.equal(store.renewLease('a', T0), false, 'no lease: nothing to renew');
    assert.ok(store.acquireLease(claim('a', T0)).ok);
    assert.equal(store.renewLease('a', T0 + 1_000), true);
    assert.equal(store.readLease()?.heartbeatAt, T0 + 1_000);
    assert.equal(store.renewLease('b', T0 + 1_000), false);
    store.releaseLease('b');
    assert.equal(store.readLease()?.owner, 'a');
    store.releaseLease('a');
    assert.equal(store.readLease(), undefined);
    store.releaseLease('a');
  });

  test('lease writes commit at once, even inside a group commit', (t) => {
    const { file } = openStore(t);
    const host = new SqliteStore(file, { groupCommit: true });
    const cli = new SqliteStore(file, { mustExist: true });
    t.after(() => {
      host.close();
      cli.close();
    });
    host.insertSchedule(schedule('a'));
    assert.ok(host.acquireLease(claim('a', T0)).ok);
    // Visible to another connection before any microtask ran, and so is the group before it.
    assert.equal(cli.readLease()?.owner, 'a');
    assert.equal(cli.listSchedules().length, 1);
    assert.equal(cli.acquireLease(claim('b', T0 + 10)).ok, false);
  });
});
