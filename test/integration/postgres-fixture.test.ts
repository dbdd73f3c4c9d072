/** The PostgreSQL fixture itself: fresh databases are distinct, usable and dropped; on loopback. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { freshDatabase, testPgAdminUrl } from '../support/postgres.ts';

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const tableExists = (url: string, table: string) =>
  withClient(url, async (c) => {
    const r = await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
    return r.rows[0]?.t !== null;
  });

const databaseExists = (name: string) =>
  withClient(testPgAdminUrl(), async (c) => {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return r.rowCount === 1;
  });

test('the test server listens on loopback', async () => {
  const addr = await withClient(testPgAdminUrl(), async (c) => {
    const r = await c.query<{ addr: string }>('SELECT inet_server_addr() AS addr');
    return r.rows[0]?.addr;
  });
  assert.equal(addr, '127.0.0.1');
});

test('fresh databases are distinct and usable, and drop() removes them', async () => {
  const a = await freshDatabase();
  const b = await freshDatabase();
  try {
    assert.notEqual(a.url, b.url);
    const nameA = new URL(a.url).pathname.slice(1);
    assert.match(nameA, /^hg_test_[0-9a-f]{16}$/);

    await withClient(a.url, async (c) => {
      await c.query('CREATE TABLE probe (id integer PRIMARY KEY)');
      await c.query('INSERT INTO probe VALUES (1), (2)');
      const r = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM probe');
      assert.equal(r.rows[0]?.n, 2);
    });
    assert.equal(await tableExists(a.url, 'probe'), true);
    assert.equal(await tableExists(b.url, 'probe'), false);

    // drop() succeeds with a connection still open on the database (WITH (FORCE)).
    const open = new pg.Client({ connectionString: a.url });
    await open.connect();
    open.on('error', () => {}); // the server terminates it
    await a.drop();
    await open.end().catch(() => {});
    assert.equal(await databaseExists(nameA), false);
    await a.drop(); // idempotent
  } finally {
    await a.drop();
    await b.drop();
  }
});

test('a test context drops its database after the test', async (t) => {
  let name = '';
  await t.test('inner', async (t2) => {
    const db = await freshDatabase(t2);
    name = new URL(db.url).pathname.slice(1);
    assert.equal(await databaseExists(name), true);
  });
  assert.equal(await databaseExists(name), false);
});
