/**
 * The live-schedule counts the store keeps per tenant and plugin (migration 0005, triggers; the
 * store counts its own inserts since 0006): after every kind of change, multi-row inserts, inside rolled-back transactions, and for a store migrated from
 * version 4 with rows in it, they equal a real count of the rows.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { ScheduleRecord, ScheduleState } from '../../src/store/types.ts';
import { scheduleRow } from './schedule-row.ts';

const T0 = Date.parse('2026-01-15T10:00:00Z');
const STATES: readonly ScheduleState[] = ['active', 'paused', 'completed', 'deleted', 'retired'];
const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), '../../src/store/migrations');

function tempFile(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-counts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'hourglass.db');
}

function schedule(
  tenant: string,
  plugin: string,
  id: string,
  state: ScheduleState,
): ScheduleRecord {
  return scheduleRow(tenant, id, { plugin, state, origin: 'runtime', at: T0 });
}

/** Every tenant's and plugin's kept count against a COUNT(*) of the rows. */
function assertCountsTrue(store: SqliteStore, file: string): void {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT tenant, plugin_id AS pluginId,
           SUM(state IN ('active', 'paused', 'completed')) AS n
         FROM schedules GROUP BY tenant, plugin_id`,
      )
      .all() as { tenant: string; pluginId: string; n: number }[];
    const byTenant = new Map<string, number>();
    for (const r of rows) {
      assert.equal(store.countLiveSchedules(r.tenant, r.pluginId), r.n, r.pluginId);
      byTenant.set(r.tenant, (byTenant.get(r.tenant) ?? 0) + r.n);
    }
    for (const [tenant, n] of byTenant) assert.equal(store.countLiveSchedules(tenant), n, tenant);
  } finally {
    db.close();
  }
}

describe('kept live-schedule counts', () => {
  test('equal a real count after random inserts and state changes', (t) => {
    const file = tempFile(t);
    const store = new SqliteStore(file);
    t.after(() => store.close());
    // A deterministic pseudo-random walk (LCG) over 2 tenants × 2 plugins × 40 ids.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const exists = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const tenant = `t${rand(2)}`;
      const plugin = `p${rand(2)}`;
      const rec = schedule(tenant, plugin, `s${rand(40)}`, STATES[rand(5)] as ScheduleState);
      if (!exists.has(rec.key)) {
        store.insertSchedule(rec);
        exists.add(rec.key);
      } else if (rand(3) === 0) {
        store.updateSchedule(rec.key, { state: rec.state, updatedAt: T0 + i });
      } else {
        // A patch without a state, or with the same state, changes no count.
        store.updateSchedule(rec.key, { nextAt: T0 + i, updatedAt: T0 + i });
      }
      if (i % 50 === 0) assertCountsTrue(store, file);
    }
    assertCountsTrue(store, file);
    assert.equal(store.countLiveSchedules('nobody'), 0);
    assert.equal(store.countLiveSchedules('t0', 'nobody/p'), 0);
  });

  test('a rolled-back transaction leaves the counts as they were', (t) => {
    const file = tempFile(t);
    const store = new SqliteStore(file);
    t.after(() => store.close());
    store.insertSchedule(schedule('t', 'p', 'a', 'active'));
    assert.throws(() =>
      store.transaction(() => {
        store.insertSchedule(schedule('t', 'p', 'b', 'active'));
        store.updateSchedule('t/p/a', { state: 'deleted' });
        assert.equal(store.countLiveSchedules('t'), 1);
        throw new Error('roll back');
      }),
    );
    assert.equal(store.countLiveSchedules('t'), 1);
    assert.equal(store.countLiveSchedules('t', 't/p'), 1);
    assertCountsTrue(store, file);
  });

  test('a version-4 store with schedules is counted by the migration, then kept', (t) => {
    const file = tempFile(t);
    const db = new Database(file);
    for (const f of readdirSync(MIGRATIONS)
      .filter((n) => /^000[1-4]_/.test(n))
      .sort())
      db.exec(readFileSync(join(MIGRATIONS, f), 'utf8'));
    db.pragma('user_version = 4');
    const insert = db.prepare(
      `INSERT INTO schedules (key, plugin_id, tenant, local_id, origin, spec, overlap, misfire,
         decl_hash, state, anchor_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'runtime', '{}', 'skip', 'skip', 'h', ?, 0, 0, 0)`,
    );
    let n = 0;
    for (const tenant of ['a', 'b'])
      for (const state of STATES)
        for (let i = 0; i < 3; i++) {
          const id = `s${n++}`;
          insert.run(`${tenant}/p/${id}`, `${tenant}/p`, tenant, id, state);
        }
    db.close();
    const store = new SqliteStore(file);
    t.after(() => store.close());
    assert.equal(store.countLiveSchedules('a'), 9);
    assert.equal(store.countLiveSchedules('b', 'b/p'), 9);
    store.insertSchedule(schedule('a', 'p', 'new', 'paused'));
    assert.equal(store.countLiveSchedules('a'), 10);
    assertCountsTrue(store, file);
  });

  test('multi-row inserts (full batches and a rest, mixed states and plugins) are counted', (t) => {
    const file = tempFile(t);
    const store = new SqliteStore(file);
    t.after(() => store.close());
    const recs: ScheduleRecord[] = [];
    for (let i = 0; i < 173; i++) {
      const rec = schedule(`t${i % 2}`, `p${i % 3}`, `s${i}`, STATES[i % 5] as ScheduleState);
      // Distinct specs too: every row reads back its own (the parsed-spec cache is shared).
      recs.push({ ...rec, spec: { kind: 'every', every: `${i + 1}m`, everyMs: (i + 1) * 60_000 } });
    }
    store.insertSchedules(recs);
    assertCountsTrue(store, file);
    for (const r of recs) assert.deepEqual(store.getSchedule(r.key), { ...r, generation: 1 });
    // A batch that fails part-way (a duplicate key in its second statement) writes nothing.
    const more = Array.from({ length: 60 }, (_, i) => schedule('t0', 'p9', `m${i}`, 'active'));
    more[55] = schedule('t0', 'p0', 's0', 'active');
    assert.throws(() => store.insertSchedules(more), { code: 'HG_STORE' });
    assert.equal(store.countLiveSchedules('t0', 't0/p9'), 0);
    assert.equal(store.getSchedule('t0/p9/m0'), undefined);
    assertCountsTrue(store, file);
  });

  test('a store migrated from version 5 keeps counting inserts without the insert trigger', (t) => {
    const file = tempFile(t);
    const db = new Database(file);
    for (const f of readdirSync(MIGRATIONS)
      .filter((n) => /^000[1-5]_/.test(n))
      .sort())
      db.exec(readFileSync(join(MIGRATIONS, f), 'utf8'));
    db.pragma('user_version = 5');
    db.close();
    const store = new SqliteStore(file);
    t.after(() => store.close());
    store.insertSchedule(schedule('a', 'p', 'x', 'active'));
    store.insertSchedule(schedule('a', 'p', 'y', 'deleted'));
    assert.equal(store.countLiveSchedules('a'), 1);
    assertCountsTrue(store, file);
  });
});
