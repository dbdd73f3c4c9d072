/**
 * Deferred schedule rows (`insertSchedules(…, { deferred: true })`, issue 10): the store
 * behaves as if they were written at once (every read and write that could see them writes them
 * first), writes them by itself in chunks, and at `committed()` and `close()`; a rolled-back
 * transaction drops the rows it deferred and keeps pending the ones it wrote. Another connection
 * (a stand-in for the CLI or a crash: what is on disk) sees them only once written. The threaded
 * store defers them in its mirror the same way, and they reach its file as the mirror writes them.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { ThreadedSqliteStore } from '../../src/store/sqlite-writer/threaded-store.ts';
import type { ScheduleRecord } from '../../src/store/types.ts';
import { scheduleRow } from './schedule-row.ts';

function tempFile(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-deferred-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'hourglass.db');
}

function rows(tenant: string, plugin: string, n: number): ScheduleRecord[] {
  return Array.from({ length: n }, (_, i) => scheduleRow(tenant, `s${i}`, { plugin }));
}

/** What is on disk: rows per plugin, read by another connection. */
function onDisk(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const r of db
      .prepare('SELECT plugin_id, COUNT(*) AS n FROM schedules GROUP BY plugin_id')
      .all() as { plugin_id: string; n: number }[])
      out[r.plugin_id] = r.n;
    return out;
  } finally {
    db.close();
  }
}

function open(file: string): SqliteStore {
  // No group commit: each write is on disk when it returns, so `onDisk` sees exactly the
  // written rows.
  return new SqliteStore(file, { groupCommit: false });
}

describe('deferred schedule rows', () => {
  test('are not written at once, yet every read through the store sees them', (t) => {
    const file = tempFile(t);
    const store = open(file);
    try {
      store.insertSchedules(rows('a', 'p', 30), { deferred: true });
      store.insertSchedules(rows('b', 'p', 20), { deferred: true });
      assert.equal(store.deferredRows, 50);
      assert.deepEqual(onDisk(file), {});

      // A read of one plugin writes that plugin's rows only.
      assert.equal(store.listSchedules({ pluginId: 'a/p' }).length, 30);
      assert.deepEqual(onDisk(file), { 'a/p': 30 });
      assert.equal(store.deferredRows, 20);
      // Counts (the quota check) write the tenant's rows.
      assert.equal(store.countLiveSchedules('b'), 20);
      assert.deepEqual(onDisk(file), { 'a/p': 30, 'b/p': 20 });
      assert.equal(store.deferredRows, 0);

      // A key's read, a fire's conditional write and a run's insert write the rows of its plugin.
      store.insertSchedules(rows('c', 'p', 3), { deferred: true });
      store.insertSchedules(rows('d', 'p', 3), { deferred: true });
      assert.equal(store.getSchedule('c/p/s1')?.localId, 's1');
      assert.deepEqual(onDisk(file), { 'a/p': 30, 'b/p': 20, 'c/p': 3 });
      store.updateSchedule('d/p/s0', { nextAt: 1 });
      assert.equal(store.deferredRows, 0);
      store.insertSchedules(rows('e', 'p', 2), { deferred: true });
      assert.equal(store.advanceSchedule('e/p/s0', 0, 5, 1), false); // next_at is null: no tick
      assert.equal(store.deferredRows, 0);
      store.insertSchedules(rows('f', 'p', 2), { deferred: true });
      store.insertRun({
        scheduleKey: 'f/p/s0',
        pluginId: 'f/p',
        tenant: 'f',
        localId: 's0',
        trigger: 'manual',
        status: 'running',
        reason: null,
        scheduledAt: 1,
        startedAt: 1,
        finishedAt: null,
        attempt: 1,
        error: null,
        outputBytes: null,
        fuelUsed: null,
        fuelBudget: null,
        result: null,
      });
      assert.equal(store.deferredRows, 0);
      // A listing of everything writes everything.
      store.insertSchedules(rows('g', 'p', 2), { deferred: true });
      assert.equal(store.listSchedules().length, 30 + 20 + 3 + 3 + 2 + 2 + 2);
      assert.equal(store.deferredRows, 0);
      assert.equal(store.countLiveSchedules('g', 'g/p'), 2);
    } finally {
      store.close();
    }
  });

  test('reads of other plugins, plugin records and runs leave them deferred', (t) => {
    const file = tempFile(t);
    const store = open(file);
    try {
      store.insertSchedules(rows('a', 'p', 10), { deferred: true });
      assert.equal(store.listSchedules({ pluginId: 'a/q' }).length, 0);
      assert.equal(store.countLiveSchedules('b'), 0);
      assert.equal(store.getSchedule('b/p/s0'), undefined);
      assert.equal(store.listPlugins().length, 0);
      assert.equal(store.listRuns().length, 0);
      assert.equal(store.listWaitingRuns('a/p').length, 0);
      assert.equal(store.deferredRows, 10);
      assert.deepEqual(onDisk(file), {});
    } finally {
      store.close();
    }
  });

  test('are written in chunks by the store itself, between turns of the event loop', async (t) => {
    const file = tempFile(t);
    const store = open(file);
    try {
      store.insertSchedules(rows('a', 'p', 2_500), { deferred: true });
      store.insertSchedules(rows('b', 'p', 10), { deferred: true });
      // No timing: each turn of the loop may write one chunk; wait for the last one.
      let turns = 0;
      while (store.deferredRows > 0 && turns++ < 1_000)
        await new Promise((resolve) => setImmediate(resolve));
      assert.equal(store.deferredRows, 0);
      assert.ok(turns >= 3, `2,510 rows written in ${turns} turns (chunks of 1,000)`);
      assert.deepEqual(onDisk(file), { 'a/p': 2_500, 'b/p': 10 });
      assert.equal(store.countLiveSchedules('a'), 2_500);
    } finally {
      store.close();
    }
  });

  test('committed() and close() write them', async (t) => {
    const file = tempFile(t);
    const store = open(file);
    store.insertSchedules(rows('a', 'p', 5), { deferred: true });
    await store.committed();
    assert.deepEqual(onDisk(file), { 'a/p': 5 });
    store.insertSchedules(rows('b', 'p', 5), { deferred: true });
    store.close();
    assert.deepEqual(onDisk(file), { 'a/p': 5, 'b/p': 5 });
    const again = open(file);
    try {
      assert.equal(again.countLiveSchedules('b', 'b/p'), 5);
    } finally {
      again.close();
    }
  });

  test('a rolled-back transaction drops what it deferred and keeps pending what it wrote', (t) => {
    const file = tempFile(t);
    const store = open(file);
    try {
      store.insertSchedules(rows('a', 'p', 4), { deferred: true });
      assert.throws(() =>
        store.transaction(() => {
          store.insertSchedules(rows('b', 'p', 3), { deferred: true });
          // Writes a's rows inside the transaction, which then fails.
          assert.equal(store.countLiveSchedules('a'), 4);
          throw new Error('refused');
        }),
      );
      assert.equal(store.deferredRows, 4);
      assert.deepEqual(onDisk(file), {});
      assert.equal(store.countLiveSchedules('b'), 0);
      assert.equal(store.listSchedules().length, 4);
      assert.deepEqual(onDisk(file), { 'a/p': 4 });
    } finally {
      store.close();
    }
  });

  test('a row inserted at once after deferred rows of the same key fails as a duplicate', (t) => {
    // The deferred rows are written first, so the store's answers do not depend on deferral.
    const file = tempFile(t);
    const store = open(file);
    try {
      store.insertSchedules(rows('a', 'p', 2), { deferred: true });
      assert.throws(() => store.insertSchedule(scheduleRow('a', 's1')), { code: 'HG_STORE' });
      assert.deepEqual(onDisk(file), { 'a/p': 2 });
    } finally {
      store.close();
    }
  });

  test('the threaded store defers them in its mirror; the file gets them as the mirror writes them', async (t) => {
    const file = tempFile(t);
    const store = new ThreadedSqliteStore(file);
    t.after(() => store.close());
    store.insertSchedules(rows('a', 'p', 2_500), { deferred: true });
    store.insertSchedules(rows('b', 'p', 10), { deferred: true });
    assert.equal(store.deferredRows, 2_510);
    assert.equal(store.getSchedule('b/p/s3')?.key, 'b/p/s3', 'a read sees them');
    assert.equal(store.deferredRows, 2_500, 'that plugin only');
    // Written by the mirror in chunks between turns, each then flushed to the file: no
    // committed() needed.
    const end = Date.now() + 20_000;
    while (onDisk(file)['a/p'] !== 2_500) {
      if (Date.now() > end) assert.fail(`on disk: ${JSON.stringify(onDisk(file))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(store.deferredRows, 0);
    store.insertSchedules(rows('c', 'p', 5), { deferred: true });
    await store.committed();
    assert.deepEqual(onDisk(file), { 'a/p': 2_500, 'b/p': 10, 'c/p': 5 });
    assert.equal(store.countLiveSchedules('c'), 5);
  });
});
