/**
 * Store failures on real SQLite files: every error carries an HG_ code (corruption past the
 * header, a write past the size limit, a closed store, a NUL in the path), a failed write is told
 * to the write-error listener (a failed group commit too, which no caller sees), and nothing is
 * half-written.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HourglassError } from '../../src/errors.ts';
import { classify } from '../../src/store/sqlite-errors.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { ThreadedSqliteStore } from '../../src/store/sqlite-writer/threaded-store.ts';
import type { NewRun } from '../../src/store/types.ts';

function dir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'hg-store-fail-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HourglassError, `not an HourglassError: ${String(err)}`);
    return err.code;
  }
  assert.fail('did not throw');
}

function run(localId: string): NewRun {
  return {
    scheduleKey: `t/p/${localId}`,
    pluginId: 't/p',
    tenant: 't',
    localId,
    trigger: 'schedule',
    scheduledAt: 1,
    startedAt: 2,
    attempt: 1,
    status: 'running',
    reason: null,
    finishedAt: null,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: 'x'.repeat(2_000),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test('classify: SQLite codes map to stable HG_ codes', () => {
  const e = (c: string) => Object.assign(new Error(c), { code: c });
  assert.equal(classify(e('SQLITE_FULL'), true), 'HG_STORE_WRITE');
  assert.equal(classify(e('SQLITE_IOERR_WRITE'), true), 'HG_STORE_WRITE');
  assert.equal(classify(e('SQLITE_READONLY_DBMOVED'), true), 'HG_STORE_WRITE');
  assert.equal(classify(e('SQLITE_BUSY'), true), 'HG_STORE_WRITE');
  assert.equal(classify(e('SQLITE_IOERR_READ'), false), 'HG_STORE');
  assert.equal(classify(e('SQLITE_CORRUPT_INDEX'), false), 'HG_STORE_CORRUPT');
  assert.equal(classify(e('SQLITE_NOTADB'), true), 'HG_STORE_CORRUPT');
  assert.equal(classify(e('SQLITE_CONSTRAINT_PRIMARYKEY'), true), 'HG_STORE');
  assert.equal(classify(new SyntaxError('bad JSON'), false), 'HG_STORE_CORRUPT');
  assert.equal(classify(new TypeError('The database connection is not open'), false), 'HG_STORE');
});

test('corruption past the header: reads fail with HG_STORE_CORRUPT, not a bare SqliteError', (t) => {
  const file = join(dir(t), 'h.db');
  const store = new SqliteStore(file);
  for (let i = 0; i < 200; i++) store.insertRun(run(`r${i}`));
  store.close();
  // Overwrite the middle of the file (table pages), leaving page 1 (the header) intact.
  const raw = new Database(file);
  raw.pragma('wal_checkpoint(TRUNCATE)');
  const pages = raw.pragma('page_count', { simple: true }) as number;
  raw.close();
  const fd = openSync(file, 'r+');
  for (let p = 2; p < pages; p++) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, p * 4096);
  closeSync(fd);
  // Found at open (the migration check reads the schema) or at the first read.
  assert.equal(
    code(() => {
      const again = new SqliteStore(file);
      try {
        again.listRuns({ limit: 1000 });
      } finally {
        again.close();
      }
    }),
    'HG_STORE_CORRUPT',
  );
});

test('a NUL in the path is refused (SQLite would open a shorter path), by either store', (t) => {
  const d = dir(t);
  assert.equal(
    code(() => new SqliteStore(join(d, 'a.db\0.x'))),
    'HG_CONFIG_INVALID',
  );
  // Before a writer thread is spawned.
  assert.equal(
    code(() => new ThreadedSqliteStore(join(d, 'a.db\0.x'))),
    'HG_CONFIG_INVALID',
  );
});

test('a closed store answers with HG_STORE', (t) => {
  const store = new SqliteStore(join(dir(t), 'h.db'));
  store.close();
  assert.equal(
    code(() => store.listRuns()),
    'HG_STORE',
  );
  assert.equal(
    code(() => store.insertRun(run('x'))),
    'HG_STORE',
  );
});

test('maxBytes: a write past the limit fails with HG_STORE_WRITE, is reported, and undoes the whole transaction', (t) => {
  const store = new SqliteStore(join(dir(t), 'h.db'));
  t.after(() => store.close());
  const seen: string[] = [];
  store.setWriteErrorListener((err) => seen.push(err.code));
  store.setMaxBytes(1); // held at its current size
  const before = store.listRuns({ limit: 10_000 }).length;
  assert.equal(
    code(() =>
      store.transaction(() => {
        for (let i = 0; i < 50; i++) store.insertRun(run(`r${i}`));
      }),
    ),
    'HG_STORE_WRITE',
  );
  assert.ok(seen.includes('HG_STORE_WRITE'), seen.join());
  assert.equal(store.listRuns({ limit: 10_000 }).length, before, 'nothing half-written');
  store.setMaxBytes(null);
  store.transaction(() => {
    for (let i = 0; i < 50; i++) store.insertRun(run(`r${i}`));
  });
  assert.equal(store.listRuns({ limit: 10_000 }).length, before + 50);
});

test('group commit: a failed commit is told to the listener and does not poison the next write', async (t) => {
  const d = dir(t);
  const store = new SqliteStore(join(d, 'h.db'), { groupCommit: true });
  t.after(() => store.close());
  const failures: HourglassError[] = [];
  store.setWriteErrorListener((err) => failures.push(err));
  store.setMaxBytes(1);
  // Each statement may fit in the page cache; the commit (or a spill) hits the limit.
  let thrown = 0;
  for (let i = 0; i < 50; i++) {
    try {
      store.insertRun(run(`g${i}`));
    } catch {
      thrown++;
    }
  }
  await tick();
  assert.ok(failures.length > 0, 'the failure was reported');
  assert.ok(failures.every((f) => f.code === 'HG_STORE_WRITE'));
  assert.ok(thrown <= 50);
  store.setMaxBytes(null);
  // The next write succeeds (no stale group error thrown at an innocent caller).
  const id = store.insertRun(run('after'));
  await tick();
  assert.equal(store.getRun(id)?.localId, 'after');
});

test('group commit without a listener: the next write throws the failure (HG_STORE_WRITE)', async (t) => {
  const store = new SqliteStore(join(dir(t), 'h.db'), { groupCommit: true });
  t.after(() => store.close());
  store.setMaxBytes(1);
  let first: string | null = null;
  try {
    for (let i = 0; i < 50; i++) store.insertRun(run(`g${i}`));
    await tick();
    store.insertRun(run('next'));
  } catch (err) {
    first = (err as HourglassError).code;
  }
  assert.equal(first, 'HG_STORE_WRITE');
});

test('a newer version does not migrate a store under a live host of an older one', (t) => {
  const file = join(dir(t), 'h.db');
  const v2 = new SqliteStore(file);
  v2.close();
  // Make it a version-3 store (before the lease's owner columns) whose host (this process)
  // renewed its lease just now.
  const raw = new Database(file);
  for (const c of ['owner', 'host_name', 'epoch'])
    raw.exec(`ALTER TABLE host_lease DROP COLUMN ${c}`);
  raw.exec('ALTER TABLE schedules DROP COLUMN scope'); // migration 7's
  // migration 8's
  raw.exec(`DROP INDEX runs_not_succeeded; CREATE INDEX runs_status ON runs (status);
    CREATE INDEX runs_waiting ON runs (plugin_id, id) WHERE status = 'waiting'`);
  raw.exec('DROP INDEX runs_tenant'); // migration 9's
  raw.exec('ALTER TABLE runs DROP COLUMN plugin_version; ALTER TABLE runs DROP COLUMN wasm_sha256'); // 10's
  raw.exec('DROP TABLE plugin_state'); // 11's
  raw.exec('ALTER TABLE runs DROP COLUMN log_tail'); // 12's
  for (const c of ['retry', 'job', 'breaker_after', 'fail_streak'])
    raw.exec(`ALTER TABLE schedules DROP COLUMN ${c}`); // 13's
  raw.exec('ALTER TABLE schedules DROP COLUMN priority'); // 14's
  raw.pragma('user_version = 3');
  raw
    .prepare('INSERT INTO host_lease (id, pid, started_at, heartbeat_at) VALUES (1, ?, ?, ?)')
    .run(process.pid, Date.now(), Date.now());
  raw.close();
  assert.equal(
    code(() => new SqliteStore(file)),
    'HG_STORE_LEASE',
  );
  // Once that host is gone (no heartbeat for a while), the store migrates.
  const again = new Database(file);
  again.prepare('UPDATE host_lease SET heartbeat_at = ?').run(Date.now() - 60_000);
  again.close();
  const migrated = new SqliteStore(file);
  t.after(() => migrated.close());
  assert.equal(migrated.readLease()?.owner, '');
});
