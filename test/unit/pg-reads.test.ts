/**
 * src/store/postgres/pg-reads.ts (what the CLI reads on PostgreSQL) against the Store the rows
 * were written through: every query answers what the owning `PgStore` (its mirror, i.e. the
 * SQLite store's semantics) answers for the same rows, except the order of runs recorded by
 * different hosts, which pg-reads gives by start time (ids are per-host blocks).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import {
  getCommand,
  listRuns,
  listSchedules,
  queueCommand,
  scheduleState,
  tenantOwner,
} from '../../src/store/postgres/pg-reads.ts';
import { TenantLeases } from '../../src/cluster/tenant-leases.ts';
import { PG_TYPES, PgStore } from '../../src/store/postgres/pg-store.ts';
import type { RunQuery, ScheduleQuery } from '../../src/store/types.ts';
import { runOf, succeeded } from '../support/conformance/fixture.ts';
import { freshDatabase } from '../support/postgres.ts';
import { scheduleRow } from './schedule-row.ts';

const T0 = Date.parse('2026-01-15T10:00:00Z');

/** A store that owns `tenants` (as store-conformance-postgres.test.ts; importing it would run that suite). */
async function ownedPgStore(url: string, owner: string, tenants: string[]): Promise<PgStore> {
  const store = await PgStore.open({ url, owner });
  const leases = new TenantLeases(store.pool, owner);
  await leases.ensure(tenants);
  for (const t of tenants) {
    const claimed = await leases.claim(t, 60_000);
    if (!claimed) throw new Error(`tenant ${t} is held`);
    await store.adoptTenant(t, claimed.epoch);
  }
  return store;
}

test('pg-reads: schedules and runs as the owning store lists them; runs of two hosts by start time', async (t) => {
  const db = await freshDatabase();
  const a = await ownedPgStore(db.url, 'host-a', ['acme']);
  const b = await ownedPgStore(db.url, 'host-b', ['globex']);
  const pool = new pg.Pool({ connectionString: db.url, max: 1, types: PG_TYPES });
  t.after(async () => {
    await pool.end();
    await a.close();
    await b.close();
    await db.drop();
  });

  // Keys whose bytewise order differs from a linguistic one (case, '_', '-').
  const ids = ['b', 'B', 'a_1', 'a-1', 'Z', 'c'];
  a.insertSchedules([
    ...ids.map((id, i) => scheduleRow('acme', id, { nextAt: T0 + i * 1_000 })),
    scheduleRow('acme', 'x', { plugin: 'q', state: 'paused', pauseNote: 'n', nextAt: null }),
    scheduleRow('acme', 'gone', { state: 'deleted' }),
    scheduleRow('acme', 'old', { state: 'retired', plugin: 'q' }),
  ]);
  b.insertSchedule(
    scheduleRow('globex', 'cron', {
      spec: { kind: 'cron', cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      jitter: '5s',
      jitterMs: 5_000,
      payload: '{"k":1}',
      description: 'd',
      cursor: 'c1',
    }),
  );
  await a.committed();
  await b.committed();
  const queries: ScheduleQuery[] = [
    {},
    { pluginId: 'acme/p' },
    { pluginId: 'acme/p', after: 'a_1', limit: 3 },
    { after: 'acme/p/B', limit: 2 },
    { tenant: 'acme', states: ['paused', 'deleted', 'retired'] },
    { states: ['active', 'paused', 'completed', 'deleted', 'retired'] },
  ];
  for (const q of queries) {
    const want = [...a.listSchedules(q), ...b.listSchedules(q)].sort((x, y) =>
      q.pluginId === undefined ? cmp(x.key, y.key) : cmp(x.localId, y.localId),
    );
    assert.deepEqual(
      await listSchedules(pool, q),
      q.limit === undefined ? want : want.slice(0, q.limit),
      JSON.stringify(q),
    );
  }

  // Runs: host b's ids are above host a's (a later block); a's runs started later.
  const rb = b.insertRun({ ...runOf('globex/p/cron', { startedAt: T0 + 10 }) });
  const ra1 = a.insertRun(runOf('acme/p/b', { startedAt: T0 + 20 }));
  const ra2 = a.insertRun(runOf('acme/p/c', { startedAt: T0 + 30, trigger: 'manual' }));
  a.finishRun(ra1, succeeded(T0 + 25));
  assert.ok(rb > ra2, 'host b took the later id block');
  await a.committed();
  await b.committed();
  assert.deepEqual(
    (await listRuns(pool)).map((r) => r.id),
    [ra2, ra1, rb],
  );
  const runQueries: RunQuery[] = [
    { pluginId: 'acme/p' },
    { scheduleKey: 'acme/p/b' },
    { status: 'running' },
    { pluginId: 'acme/p', limit: 1 },
  ];
  for (const q of runQueries)
    assert.deepEqual(
      await listRuns(pool, q),
      [...a.listRuns(q), ...b.listRuns(q)]
        .sort((x, y) => y.startedAt - x.startedAt)
        .slice(0, q.limit ?? 100),
      JSON.stringify(q),
    );

  // Owners, states and queued commands.
  assert.equal((await tenantOwner(pool, 'acme'))?.owner, 'host-a');
  assert.equal(await tenantOwner(pool, 'nobody'), undefined);
  assert.equal(await scheduleState(pool, 'acme/q/x'), 'paused');
  assert.equal(await scheduleState(pool, 'acme/p/none'), undefined);
  const id = await queueCommand(pool, 'acme/p/b', 'pause', 'why', T0);
  assert.ok(id < 2 ** 40);
  assert.deepEqual(await getCommand(pool, id), {
    id,
    scheduleKey: 'acme/p/b',
    action: 'pause',
    note: 'why',
    createdAt: T0,
    appliedAt: null,
    result: null,
  });
  // The owner finds it (as the cluster does on the notification) and its outcome is read back.
  assert.equal(await a.fetchCommands(), 1);
  a.completeCommand(id, '{"ok":"paused"}', T0 + 1);
  await a.committed();
  assert.deepEqual(await getCommand(pool, id), a.getCommand(id));
});

test('pg-reads: queueCommand notifies hg_commands with the tenant, on commit', async (t) => {
  const db = await freshDatabase();
  const a = await ownedPgStore(db.url, 'host-a', ['acme']);
  const pool = new pg.Pool({ connectionString: db.url, max: 1, types: PG_TYPES });
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  t.after(async () => {
    await listener.end();
    await pool.end();
    await a.close();
    await db.drop();
  });
  await listener.query('LISTEN hg_commands');
  const heard = new Promise<string | undefined>((resolve) =>
    listener.on('notification', (n) => resolve(n.payload)),
  );
  await queueCommand(pool, 'acme/p/x', 'trigger', null, T0);
  assert.equal(await heard, 'acme');
});

function cmp(x: string, y: string): number {
  return Buffer.compare(Buffer.from(x), Buffer.from(y));
}
