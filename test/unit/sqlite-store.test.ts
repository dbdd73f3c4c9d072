/** Unit tests for src/store/sqlite-store.ts on real SQLite files in a temp folder. */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HourglassError } from '../../src/errors.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type {
  JobContractRecord,
  NewRun,
  PluginRecord,
  RunFinish,
  ScheduleRecord,
} from '../../src/store/types.ts';
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

describe('SqliteStore: schedules', () => {
  test('insert and get round-trip every field', (t) => {
    const { store } = openStore(t);
    const a = schedule('a');
    const b = schedule('b', {
      origin: 'runtime',
      spec: { kind: 'every', every: '90s', everyMs: 90_000 },
      jitter: '5s',
      jitterMs: 5_000,
      payload: '{"url":"https://example.com"}',
      overlap: 'buffer-one',
      misfire: 'run-once',
      description: 'desc',
      state: 'paused',
      pauseNote: 'by operator',
      nextAt: null,
      cursor: 'cursor-1',
      bufferedAt: T0 + 1,
      updatedAt: T0 + 2,
    });
    const c = schedule('c', {
      spec: {
        kind: 'at',
        at: '2026-02-01T12:00:00.000Z',
        atMs: Date.parse('2026-02-01T12:00:00Z'),
      },
    });
    for (const s of [a, b, c]) store.insertSchedule(s);
    assert.deepEqual(store.getSchedule(a.key), a);
    assert.deepEqual(store.getSchedule(b.key), b);
    assert.deepEqual(store.getSchedule(c.key), c);
    assert.equal(store.getSchedule('acme/poller/nope'), undefined);
  });

  test('updateSchedule only touches the given fields', (t) => {
    const { store } = openStore(t);
    const s = schedule('a', { payload: '{"n":1}', description: 'keep me', cursor: 'c0' });
    store.insertSchedule(s);
    store.insertSchedule(schedule('other'));
    store.updateSchedule(s.key, { state: 'paused', pauseNote: 'maintenance', updatedAt: T0 + 10 });
    assert.deepEqual(store.getSchedule(s.key), {
      ...s,
      state: 'paused',
      pauseNote: 'maintenance',
      updatedAt: T0 + 10,
    });
    // A different set of columns (a different cached statement).
    store.updateSchedule(s.key, { nextAt: null, cursor: null });
    assert.deepEqual(store.getSchedule(s.key), {
      ...s,
      state: 'paused',
      pauseNote: 'maintenance',
      updatedAt: T0 + 10,
      nextAt: null,
      cursor: null,
    });
    // The spec is stored as JSON and comes back as an object.
    const spec = { kind: 'every', every: '1m', everyMs: 60_000 } as const;
    store.updateSchedule(s.key, { spec, declHash: 'h2', jitterMs: 7 });
    const got = store.getSchedule(s.key);
    assert.deepEqual(got?.spec, spec);
    assert.equal(got?.declHash, 'h2');
    assert.equal(got?.jitterMs, 7);
    assert.equal(got?.description, 'keep me');
    assert.equal(got?.payload, '{"n":1}');
    // The other row is untouched.
    assert.deepEqual(store.getSchedule('acme/poller/other'), schedule('other'));
  });

  test('updateSchedule with an empty patch, or on an unknown key, changes nothing', (t) => {
    const { store } = openStore(t);
    const s = schedule('a');
    store.insertSchedule(s);
    store.updateSchedule(s.key, {});
    store.updateSchedule('acme/poller/nope', { state: 'deleted' });
    assert.deepEqual(store.getSchedule(s.key), s);
    assert.equal(store.getSchedule('acme/poller/nope'), undefined);
  });

  test('listSchedules: default states exclude deleted and retired', (t) => {
    const { store } = openStore(t);
    store.insertSchedule(schedule('a', { state: 'active' }));
    store.insertSchedule(schedule('b', { state: 'paused' }));
    store.insertSchedule(schedule('c', { state: 'completed' }));
    store.insertSchedule(schedule('d', { state: 'deleted' }));
    store.insertSchedule(schedule('e', { state: 'retired' }));
    assert.deepEqual(
      store.listSchedules().map((s) => s.localId),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      store.listSchedules({ states: ['deleted', 'retired'] }).map((s) => s.localId),
      ['d', 'e'],
    );
    assert.deepEqual(
      store.listSchedules({ states: ['paused'] }).map((s) => s.localId),
      ['b'],
    );
  });

  test('listSchedules: filters by plugin and tenant', (t) => {
    const { store } = openStore(t);
    store.insertSchedule(schedule('a'));
    store.insertSchedule(schedule('b', { pluginId: 'acme/other' }));
    store.insertSchedule(schedule('c', { tenant: 'globex', pluginId: 'globex/poller' }));
    assert.deepEqual(
      store.listSchedules({ pluginId: 'acme/poller' }).map((s) => s.key),
      ['acme/poller/a'],
    );
    assert.deepEqual(
      store.listSchedules({ pluginId: 'acme/other' }).map((s) => s.key),
      ['acme/other/b'],
    );
    assert.deepEqual(
      store.listSchedules({ tenant: 'acme' }).map((s) => s.key),
      ['acme/other/b', 'acme/poller/a'],
    );
    assert.deepEqual(
      store.listSchedules({ tenant: 'globex' }).map((s) => s.key),
      ['globex/poller/c'],
    );
    assert.deepEqual(store.listSchedules({ pluginId: 'acme/poller', tenant: 'globex' }), []);
    assert.deepEqual(store.listSchedules({ pluginId: 'nope/nope' }), []);
  });

  test('listSchedules: keyset pagination with after + limit (by local id within a plugin)', (t) => {
    const { store } = openStore(t);
    const ids = ['s07', 's03', 's10', 's01', 's05', 's02', 's09', 's04', 's08', 's06'];
    for (const id of ids) store.insertSchedule(schedule(id));
    store.insertSchedule(schedule('s045', { state: 'deleted' }));
    store.insertSchedule(schedule('s00', { pluginId: 'acme/other' }));
    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const page = store.listSchedules({
        pluginId: 'acme/poller',
        limit: 3,
        ...(after !== undefined ? { after } : {}),
      });
      if (page.length === 0) break;
      assert.ok(page.length <= 3);
      pages.push(page.map((s) => s.localId));
      after = page.at(-1)?.localId;
    }
    assert.deepEqual(pages, [
      ['s01', 's02', 's03'],
      ['s04', 's05', 's06'],
      ['s07', 's08', 's09'],
      ['s10'],
    ]);
  });

  test('listSchedules: pagination across plugins is by key', (t) => {
    const { store } = openStore(t);
    store.insertSchedule(schedule('z', { pluginId: 'acme/a' }));
    store.insertSchedule(schedule('a', { pluginId: 'acme/b' }));
    store.insertSchedule(schedule('m', { pluginId: 'acme/a' }));
    assert.deepEqual(
      store.listSchedules({ limit: 2 }).map((s) => s.key),
      ['acme/a/m', 'acme/a/z'],
    );
    assert.deepEqual(
      store.listSchedules({ after: 'acme/a/z' }).map((s) => s.key),
      ['acme/b/a'],
    );
    assert.deepEqual(
      store.listSchedules({ after: 'acme/a/m', limit: 1 }).map((s) => s.key),
      ['acme/a/z'],
    );
  });

  test('countLiveSchedules counts active, paused and completed of one tenant', (t) => {
    const { store } = openStore(t);
    assert.equal(store.countLiveSchedules('acme'), 0);
    store.insertSchedule(schedule('a', { state: 'active' }));
    store.insertSchedule(schedule('b', { state: 'paused' }));
    store.insertSchedule(schedule('c', { state: 'completed' }));
    store.insertSchedule(schedule('d', { state: 'deleted' }));
    store.insertSchedule(schedule('e', { state: 'retired' }));
    store.insertSchedule(schedule('f', { pluginId: 'acme/other' }));
    store.insertSchedule(schedule('g', { tenant: 'globex', pluginId: 'globex/poller' }));
    assert.equal(store.countLiveSchedules('acme'), 4);
    assert.equal(store.countLiveSchedules('globex'), 1);
    assert.equal(store.countLiveSchedules('nobody'), 0);
    store.updateSchedule('acme/poller/a', { state: 'deleted' });
    assert.equal(store.countLiveSchedules('acme'), 3);
  });
});

describe('SqliteStore: runs', () => {
  test('insertRun returns increasing ids; getRun round-trips', (t) => {
    const { store } = openStore(t);
    const r1 = newRun('acme/poller/a');
    const id1 = store.insertRun(r1);
    const id2 = store.insertRun(newRun('acme/poller/b'));
    assert.ok(Number.isInteger(id1) && id1 > 0);
    assert.ok(id2 > id1);
    assert.deepEqual(store.getRun(id1), { id: id1, ...r1 });
    assert.equal(store.getRun(id2 + 1000), undefined);
  });

  test('finishRun sets the outcome fields and keeps the rest', (t) => {
    const { store } = openStore(t);
    const r = newRun('acme/poller/a', { trigger: 'manual', attempt: 2 });
    const id = store.insertRun(r);
    const fin: RunFinish = {
      status: 'failed',
      reason: 'nonzero_return',
      finishedAt: T0 + 99,
      error: 'returned 3',
      outputBytes: 12,
      fuelUsed: 1_000,
      fuelBudget: 5_000,
      result: '{"ok":false}',
    };
    store.finishRun(id, fin);
    assert.deepEqual(store.getRun(id), { id, ...r, ...fin });
  });

  test('listRuns: newest first, filters, limit (default 100)', (t) => {
    const { store } = openStore(t);
    const ids: number[] = [];
    for (let i = 0; i < 105; i++) {
      const key = i % 3 === 0 ? 'acme/poller/a' : i % 3 === 1 ? 'acme/poller/b' : 'acme/other/c';
      const id = store.insertRun(newRun(key, { scheduledAt: T0 + i }));
      if (i % 5 === 0)
        store.finishRun(id, {
          status: 'succeeded',
          reason: null,
          finishedAt: T0 + i,
          error: null,
          outputBytes: 0,
          fuelUsed: null,
          fuelBudget: null,
          result: null,
        });
      ids.push(id);
    }
    const all = store.listRuns();
    assert.equal(all.length, 100);
    assert.deepEqual(
      all.map((r) => r.id),
      [...ids].reverse().slice(0, 100),
    );
    const a = store.listRuns({ scheduleKey: 'acme/poller/a', limit: 1000 });
    assert.equal(a.length, 35);
    assert.ok(a.every((r) => r.scheduleKey === 'acme/poller/a'));
    assert.ok(
      a.every((r, i) => i === 0 || r.id < (a[i - 1] as { id: number }).id),
      'newest first',
    );
    const other = store.listRuns({ pluginId: 'acme/other', limit: 1000 });
    assert.equal(other.length, 35);
    assert.ok(other.every((r) => r.pluginId === 'acme/other'));
    const ok = store.listRuns({ status: 'succeeded', limit: 1000 });
    assert.equal(ok.length, 21);
    assert.ok(ok.every((r) => r.status === 'succeeded'));
    const combined = store.listRuns({
      scheduleKey: 'acme/poller/a',
      status: 'succeeded',
      limit: 1000,
    });
    // i ≡ 0 (mod 3) and i ≡ 0 (mod 5) → i ≡ 0 (mod 15): 0, 15, …, 90 → 7 runs.
    assert.equal(combined.length, 7);
    assert.deepEqual(
      store.listRuns({ limit: 2 }).map((r) => r.id),
      [ids[104], ids[103]],
    );
    assert.deepEqual(store.listRuns({ scheduleKey: 'nope' }), []);
  });

  test('abandonRunning marks only running runs, returns them, and is a no-op the second time', (t) => {
    const { store } = openStore(t);
    const running1 = store.insertRun(newRun('acme/poller/a'));
    const done = store.insertRun(newRun('acme/poller/b'));
    store.finishRun(done, {
      status: 'succeeded',
      reason: null,
      finishedAt: T0 + 10,
      error: null,
      outputBytes: 0,
      fuelUsed: null,
      fuelBudget: null,
      result: null,
    });
    const running2 = store.insertRun(newRun('acme/poller/c'));
    const now = T0 + 1_000;
    const abandoned = store.abandonRunning(now, 'host restarted');
    assert.deepEqual(
      abandoned.map((r) => r.id).sort((x, y) => x - y),
      [running1, running2],
    );
    for (const id of [running1, running2]) {
      const r = store.getRun(id);
      assert.equal(r?.status, 'abandoned');
      assert.equal(r?.reason, 'host restarted');
      assert.equal(r?.finishedAt, now);
    }
    const d = store.getRun(done);
    assert.equal(d?.status, 'succeeded');
    assert.equal(d?.finishedAt, T0 + 10);
    assert.equal(d?.reason, null);
    assert.deepEqual(store.abandonRunning(now + 1, 'again'), []);
    assert.equal(store.getRun(running1)?.reason, 'host restarted');
  });
});

describe('SqliteStore: operator commands', () => {
  test('enqueue, pending in order, complete', (t) => {
    const { store } = openStore(t);
    assert.deepEqual(store.pendingCommands(), []);
    const c1 = store.enqueueCommand('acme/poller/a', 'pause', 'maintenance', T0);
    const c2 = store.enqueueCommand('acme/poller/b', 'trigger', null, T0 + 1);
    const c3 = store.enqueueCommand('acme/poller/a', 'resume', null, T0 + 2);
    assert.ok(c2 > c1 && c3 > c2);
    assert.deepEqual(store.pendingCommands(), [
      {
        id: c1,
        scheduleKey: 'acme/poller/a',
        action: 'pause',
        note: 'maintenance',
        createdAt: T0,
        appliedAt: null,
        result: null,
      },
      {
        id: c2,
        scheduleKey: 'acme/poller/b',
        action: 'trigger',
        note: null,
        createdAt: T0 + 1,
        appliedAt: null,
        result: null,
      },
      {
        id: c3,
        scheduleKey: 'acme/poller/a',
        action: 'resume',
        note: null,
        createdAt: T0 + 2,
        appliedAt: null,
        result: null,
      },
    ]);
    store.completeCommand(c2, 'ok', T0 + 50);
    assert.deepEqual(
      store.pendingCommands().map((c) => c.id),
      [c1, c3],
    );
    assert.deepEqual(store.getCommand(c2), {
      id: c2,
      scheduleKey: 'acme/poller/b',
      action: 'trigger',
      note: null,
      createdAt: T0 + 1,
      appliedAt: T0 + 50,
      result: 'ok',
    });
    assert.equal(store.getCommand(c3 + 100), undefined);
  });

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

describe('SqliteStore: plugins and job contracts', () => {
  test('upsertPlugin inserts then updates', (t) => {
    const { store } = openStore(t);
    const p: PluginRecord = {
      id: 'acme/poller',
      tenant: 'acme',
      name: 'poller',
      version: '1.0.0',
      manifestPath: '/x/hourglass.json',
      wasmSha256: 'abc',
      status: 'loaded',
      error: null,
      updatedAt: T0,
    };
    store.upsertPlugin(p);
    assert.deepEqual(store.getPlugin(p.id), p);
    const failed: PluginRecord = {
      ...p,
      version: '1.0.1',
      wasmSha256: null,
      status: 'failed',
      error: 'boom',
      updatedAt: T0 + 1,
    };
    store.upsertPlugin(failed);
    assert.deepEqual(store.getPlugin(p.id), failed);
    store.upsertPlugin({ ...p, id: 'acme/another', name: 'another' });
    assert.deepEqual(
      store.listPlugins().map((x) => x.id),
      ['acme/another', 'acme/poller'],
    );
    assert.equal(store.getPlugin('nope'), undefined);
  });

  test('replaceJobContracts replaces one plugin’s contracts and leaves others', (t) => {
    const { store } = openStore(t);
    const c = (pluginId: string, name: string, updatedAt = T0): JobContractRecord => ({
      pluginId,
      name,
      contract: `{"name":"${name}"}`,
      updatedAt,
    });
    store.replaceJobContracts('acme/p1', [c('acme/p1', 'b'), c('acme/p1', 'a')]);
    store.replaceJobContracts('acme/p2', [c('acme/p2', 'x')]);
    assert.deepEqual(store.listJobContracts('acme/p1'), [c('acme/p1', 'a'), c('acme/p1', 'b')]);
    store.replaceJobContracts('acme/p1', [c('acme/p1', 'd', T0 + 5)]);
    assert.deepEqual(store.listJobContracts('acme/p1'), [c('acme/p1', 'd', T0 + 5)]);
    assert.deepEqual(store.listJobContracts('acme/p2'), [c('acme/p2', 'x')]);
    assert.deepEqual(store.listJobContracts(), [c('acme/p1', 'd', T0 + 5), c('acme/p2', 'x')]);
    store.replaceJobContracts('acme/p1', []);
    assert.deepEqual(store.listJobContracts('acme/p1'), []);
    assert.deepEqual(store.listJobContracts(), [c('acme/p2', 'x')]);
  });

  test('replaceJobContracts is atomic: a failing replacement keeps the old contracts', (t) => {
    const { store } = openStore(t);
    const c = (name: string): JobContractRecord => ({
      pluginId: 'acme/p1',
      name,
      contract: '{}',
      updatedAt: T0,
    });
    store.replaceJobContracts('acme/p1', [c('a')]);
    // Duplicate names violate the primary key part-way through.
    assert.throws(() => store.replaceJobContracts('acme/p1', [c('x'), c('x')]));
    assert.deepEqual(store.listJobContracts('acme/p1'), [c('a')]);
  });
});

describe('SqliteStore: transactions', () => {
  test('a throwing transaction rolls back; nested calls join the outer one', (t) => {
    const { store } = openStore(t);
    assert.throws(() =>
      store.transaction(() => {
        store.insertSchedule(schedule('a'));
        store.transaction(() => store.insertSchedule(schedule('b')));
        throw new Error('abort');
      }),
    );
    assert.deepEqual(store.listSchedules(), []);
    const n = store.transaction(() => {
      store.insertSchedule(schedule('a'));
      return store.transaction(() => {
        store.insertSchedule(schedule('b'));
        return 2;
      });
    });
    assert.equal(n, 2);
    assert.equal(store.listSchedules().length, 2);
  });
});
