/**
 * PostgreSQL for tests: one fresh database per test on the server `npm test` starts
 * (`scripts/postgres-for-tests.mjs`, which sets HOURGLASS_TEST_PG_URL), or on the server that
 * variable names. Never skips: without the variable it throws, so a missing database fails the
 * run instead of hiding tests.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { TenantLeases } from '../../src/cluster/tenant-leases.ts';
import { PG_TYPES, PgStore } from '../../src/store/postgres/pg-store.ts';

const URL_VAR = 'HOURGLASS_TEST_PG_URL';

/** The URL of a database on the test server in which tests may create and drop databases. */
export function testPgAdminUrl(): string {
  const url = process.env[URL_VAR];
  if (!url) {
    throw new Error(
      `${URL_VAR} is not set: run the tests with npm test, which starts PostgreSQL ` +
        `(or: node scripts/postgres-for-tests.mjs -- node --import tsx --test <files>)`,
    );
  }
  return url;
}

export interface FreshDatabase {
  /** Connection URL of the new, empty database. */
  readonly url: string;
  /** Drops the database, closing whatever connections are still open on it. */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testPgAdminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database `hg_test_<random hex>`. With a test context it is dropped after
 * the test; otherwise call `drop()`.
 */
export async function freshDatabase(t?: {
  after(fn: () => Promise<void>): void;
}): Promise<FreshDatabase> {
  const name = `hg_test_${randomBytes(8).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(testPgAdminUrl());
  url.pathname = `/${name}`;
  const db: FreshDatabase = {
    url: url.toString(),
    drop: () =>
      admin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
  t?.after(() => db.drop());
  return db;
}

/**
 * A `PgStore` on `url` that owns `tenants` (their leases claimed and their rows adopted, as the
 * cluster does); `owner` again after a close is a restart of the same host.
 */
export async function ownedPgStore(
  url: string,
  owner: string,
  tenants: readonly string[],
): Promise<PgStore> {
  const store = await PgStore.open({ url, owner });
  const leases = new TenantLeases(store.pool, owner);
  await leases.ensure(tenants);
  for (const t of tenants) {
    const claimed = await leases.claim(t, 60_000);
    if (!claimed) throw new Error(`tenant ${t} is held by another owner`);
    await store.adoptTenant(t, claimed.epoch);
  }
  return store;
}

/**
 * A client on `url` that reads bigint columns as numbers (as the store does), ignores the error
 * event of a dropped database, and is closed after the test.
 */
export async function testClient(
  url: string,
  t: { after(fn: () => Promise<void>): void },
): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, types: PG_TYPES });
  c.on('error', () => undefined);
  await c.connect();
  t.after(() => c.end());
  return c;
}
