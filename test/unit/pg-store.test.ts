/**
 * What only the PostgreSQL store has (the shared contract is in store-conformance-postgres):
 * migrations and the version check, fencing by epoch (the flush's check, the database's trigger,
 * the count of refused rows), disjoint id blocks, and its config.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TenantLeases } from '../../src/cluster/tenant-leases.ts';
import { parseHostConfig, POSTGRES_URL_ENV } from '../../src/config/host-config.ts';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { PG_SCHEMA_VERSION } from '../../src/store/postgres/pg-schema.ts';
import { runOf, succeeded } from '../support/conformance/fixture.ts';
import { freshDatabase, ownedPgStore, testClient, testPgAdminUrl } from '../support/postgres.ts';
import { scheduleRow } from './schedule-row.ts';

describe('PgStore', () => {
  test('migrates once when several hosts open a new database together; refuses a newer schema', async (t) => {
    const db = await freshDatabase(t);
    const stores = await Promise.all(
      ['a', 'b', 'c'].map((owner) => PgStore.open({ url: db.url, owner })),
    );
    for (const s of stores) await s.close();
    const c = await testClient(db.url, t);
    const v = await c.query<{ value: string }>(
      "SELECT value FROM hg_meta WHERE key = 'schema_version'",
    );
    assert.equal(v.rows[0]?.value, String(PG_SCHEMA_VERSION));
    await c.query("UPDATE hg_meta SET value = '99' WHERE key = 'schema_version'");
    await assert.rejects(PgStore.open({ url: db.url, owner: 'd' }), { code: 'HG_STORE_VERSION' });
  });

  test('an unreachable database fails open with HG_STORE_WRITE, naming it without its password', async () => {
    await assert.rejects(
      PgStore.open({ url: 'postgres://u:secret@127.0.0.1:1/x', owner: 'a' }),
      (err: Error & { code?: string }) =>
        err.code === 'HG_STORE_WRITE' && !err.message.includes('secret'),
    );
  });

  test('a takeover fences the old owner: its writes are refused, counted, and its waiters told', async (t) => {
    const db = await freshDatabase(t);
    const old = await ownedPgStore(db.url, 'old', ['acme']);
    t.after(() => old.close());
    old.insertSchedule(scheduleRow('acme', 'a', { plugin: 'p', at: 5_000 }));
    const id = old.insertRun(runOf('acme/p/a'));
    await old.committed({ tenant: 'acme' });

    // Another host takes the tenant over (the old lease expired).
    const c = await testClient(db.url, t);
    await c.query("UPDATE hg_shards SET expires_at = now() - interval '1 second'");
    const taker = await PgStore.open({ url: db.url, owner: 'new' });
    t.after(() => taker.close());
    const claimed = await new TenantLeases(taker.pool, 'new').claim('acme', 60_000);
    assert.equal(claimed?.from, 'old');
    await taker.adoptTenant('acme', claimed?.epoch as number);
    assert.equal(taker.abandonTenantRuns('acme', 2_000, 'taken over').length, 1);
    await taker.committed({ tenant: 'acme' });

    const fenced: string[] = [];
    old.setFenceListener((tenant) => fenced.push(tenant));
    old.finishRun(id, succeeded(3_000));
    old.updateSchedule('acme/p/a', { nextAt: 9_000, updatedAt: 3_000 });
    await assert.rejects(old.committed({ tenant: 'acme' }), { code: 'HG_STORE_FENCED' });
    assert.deepEqual(fenced, ['acme']);
    assert.equal(old.fencedRows, 2);
    assert.equal(old.owned.has('acme'), false);

    const r = await c.query('SELECT status, reason FROM runs WHERE id = $1', [id]);
    assert.deepEqual(r.rows, [{ status: 'abandoned', reason: 'taken over' }]);
    const s = await c.query("SELECT next_at FROM schedules WHERE key = 'acme/p/a'");
    assert.notEqual(s.rows[0]?.next_at, 9_000);
    const refused = await c.query('SELECT tenant, owner, rows FROM hg_fence_rejections');
    assert.deepEqual(refused.rows, [{ tenant: 'acme', owner: 'old', rows: 2 }]);
  });

  test('closed while its database is gone: close() returns, and the failed flush is not retried against the closed mirror', async (t) => {
    const db = await freshDatabase(t);
    const name = new URL(db.url).pathname.slice(1);
    const s = await ownedPgStore(db.url, 'a', ['acme']);
    const admin = await testClient(testPgAdminUrl(), t);
    await admin.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
      name,
    ]);
    s.insertSchedule(scheduleRow('acme', 'a', { plugin: 'p', at: 5_000 }));
    // HG_STORE_WRITE (a connection cut) or HG_STORE (none to be had), whichever it meets first.
    await assert.rejects(s.committed(), (e: { code?: string }) =>
      ['HG_STORE', 'HG_STORE_WRITE'].includes(e.code ?? ''),
    );
    await s.close();
    // A retry (100 ms after a failure, doubling) reading the closed mirror would throw from a
    // timer: an uncaught exception that fails this test.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(s.owned, new Map([['acme', 1]]));
    await admin.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
  });

  test('one flush for two tenants, one taken over: the other is written, the fenced rows refused and counted', async (t) => {
    const db = await freshDatabase(t);
    const old = await ownedPgStore(db.url, 'old', ['acme', 'globex']);
    t.after(() => old.close());
    const c = await testClient(db.url, t);
    // Another host's claim of acme (as TenantLeases.claim: owner and epoch change).
    await c.query("UPDATE hg_shards SET owner = 'new', epoch = epoch + 1 WHERE tenant = 'acme'");

    old.insertSchedule(scheduleRow('acme', 'a', { plugin: 'p', at: 5_000 }));
    old.insertRun(runOf('acme/p/a'));
    old.insertSchedule(scheduleRow('globex', 'g', { plugin: 'p', at: 5_000 }));
    const acme = assert.rejects(old.committed({ tenant: 'acme' }), { code: 'HG_STORE_FENCED' });
    await old.committed({ tenant: 'globex' });
    await acme;
    assert.equal(old.fencedRows, 2);
    assert.deepEqual([...old.owned.keys()], ['globex']);

    const s = await c.query('SELECT key FROM schedules ORDER BY key');
    assert.deepEqual(s.rows, [{ key: 'globex/p/g' }]);
    assert.equal((await c.query('SELECT id FROM runs')).rows.length, 0);
    const refused = await c.query('SELECT tenant, owner, rows FROM hg_fence_rejections');
    assert.deepEqual(refused.rows, [{ tenant: 'acme', owner: 'old', rows: 2 }]);
  });

  test('a flush waits for a takeover in progress: written if it rolls back, refused if it commits', async (t) => {
    const db = await freshDatabase(t);
    const old = await ownedPgStore(db.url, 'old', ['acme']);
    t.after(() => old.close());
    const c = await testClient(db.url, t);
    const taker = await testClient(db.url, t);
    const takeover = async () => {
      await taker.query('BEGIN');
      await taker.query(
        "UPDATE hg_shards SET owner = 'new', epoch = epoch + 1 WHERE tenant = 'acme'",
      );
    };
    // Until the flush waits for the lease row's lock (the takeover's row lock).
    const flushWaits = async () => {
      for (let i = 0; i < 1_000; i++) {
        const r = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'
             AND query LIKE 'WITH lease%'`,
        );
        if ((r.rows[0]?.n ?? 0) > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('the flush never waited for the lease lock');
    };

    await takeover();
    old.insertSchedule(scheduleRow('acme', 'a', { plugin: 'p', at: 5_000 }));
    const written = old.committed({ tenant: 'acme' });
    await flushWaits();
    await taker.query('ROLLBACK');
    await written;
    const s1 = await c.query("SELECT next_at FROM schedules WHERE key = 'acme/p/a'");
    assert.equal(s1.rows.length, 1);

    await takeover();
    old.updateSchedule('acme/p/a', { nextAt: 9_000, updatedAt: 3_000 });
    const refused = assert.rejects(old.committed({ tenant: 'acme' }), { code: 'HG_STORE_FENCED' });
    await flushWaits();
    await taker.query('COMMIT');
    await refused;
    assert.equal(old.fencedRows, 1);
    assert.equal(old.owned.has('acme'), false);
    const s2 = await c.query("SELECT next_at FROM schedules WHERE key = 'acme/p/a'");
    assert.deepEqual(s2.rows, s1.rows);
    const r = await c.query('SELECT tenant, owner, rows FROM hg_fence_rejections');
    assert.deepEqual(r.rows, [{ tenant: 'acme', owner: 'old', rows: 1 }]);
  });

  test('the database itself refuses a row with a stale epoch (trigger hg_fence, HGF01)', async (t) => {
    const db = await freshDatabase(t);
    const s = await ownedPgStore(db.url, 'a', ['acme']);
    t.after(() => s.close());
    s.insertSchedule(scheduleRow('acme', 'a', { plugin: 'p', at: 5_000 }));
    await s.committed();
    const c = await testClient(db.url, t);
    await assert.rejects(
      c.query("UPDATE schedules SET next_at = 1, epoch = epoch - 1 WHERE key = 'acme/p/a'"),
      { code: 'HGF01' },
    );
    await assert.rejects(
      c.query("UPDATE schedules SET next_at = 1, epoch = 99 WHERE key = 'acme/p/a'"),
      { code: 'HGF01' },
    );
  });

  test('hosts take disjoint id blocks; ids survive a restart unchanged', async (t) => {
    const db = await freshDatabase(t);
    const a = await ownedPgStore(db.url, 'a', ['acme']);
    const b = await ownedPgStore(db.url, 'b', ['globex']);
    const ida = [a.insertRun(runOf('acme/p/x')), a.insertRun(runOf('acme/p/y'))];
    const idb = [b.insertRun(runOf('globex/p/x'))];
    assert.equal(new Set([...ida, ...idb]).size, 3);
    assert.ok(Math.abs((ida[0] as number) - (idb[0] as number)) >= 2 ** 20);
    await a.close();
    await b.close();
    const again = await ownedPgStore(db.url, 'a', ['acme']);
    t.after(() => again.close());
    assert.equal(again.getRun(ida[1] as number)?.localId, 'y');
  });
});

describe('store.postgres in the host config', () => {
  const base = { tenants: [{ id: 'acme' }] };
  const parse = (raw: object) => parseHostConfig(raw, '/cfg/hourglass.json', '/cfg');

  test('absent: the SQLite file; a URL string or an object with settings', (t) => {
    const saved = process.env[POSTGRES_URL_ENV];
    delete process.env[POSTGRES_URL_ENV];
    t.after(() => {
      if (saved !== undefined) process.env[POSTGRES_URL_ENV] = saved;
    });
    assert.equal(parse(base).store.postgres, null);
    assert.deepEqual(parse({ ...base, store: { postgres: 'postgres://h/db' } }).store.postgres, {
      url: 'postgres://h/db',
      poolSize: 10,
      statementTimeoutMs: 10_000,
      leaseTtlMs: 10_000,
    });
    const o = parse({
      ...base,
      store: { postgres: { url: 'postgresql://h/db', poolSize: 3, leaseTtlMs: 2_000 } },
    });
    assert.equal(o.store.postgres?.poolSize, 3);
    assert.equal(o.store.postgres?.leaseTtlMs, 2_000);
    assert.throws(() => parse({ ...base, store: { postgres: 'mysql://h/db' } }), {
      code: 'HG_CONFIG_INVALID',
    });
    assert.throws(() => parse({ ...base, store: { postgres: { poolSize: 3 } } }), {
      code: 'HG_CONFIG_INVALID',
    });
  });

  test('the environment variable selects PostgreSQL and wins over the file', (t) => {
    const saved = process.env[POSTGRES_URL_ENV];
    t.after(() => {
      if (saved === undefined) delete process.env[POSTGRES_URL_ENV];
      else process.env[POSTGRES_URL_ENV] = saved;
    });
    process.env[POSTGRES_URL_ENV] = 'postgres://secret@env/db';
    assert.equal(parse(base).store.postgres?.url, 'postgres://secret@env/db');
    assert.equal(
      parse({ ...base, store: { postgres: { url: 'postgres://file/db', poolSize: 2 } } }).store
        .postgres?.url,
      'postgres://secret@env/db',
    );
  });
});
