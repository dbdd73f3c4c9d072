/**
 * The store conformance suite (test/support/store-conformance.ts) against `PgStore`: a fresh
 * database per test on the PostgreSQL that `npm test` starts. The store owns the test's tenants
 * (their leases are claimed and their rows adopted, as the cluster does), and a reopen is a
 * restart of the same host: a new store with the same owner token claims them again (a new
 * epoch) and reads everything back from PostgreSQL, not from the old store's mirror.
 */
import { describe } from 'node:test';
import type { Store } from '../../src/store/types.ts';
import { freshDatabase, ownedPgStore, type FreshDatabase } from '../support/postgres.ts';
import { storeConformance, type StoreUnderTest } from '../support/store-conformance.ts';

function pgUnderTest(): StoreUnderTest {
  let db: FreshDatabase | null = null;
  let last: Store | null = null;
  const owner = 'conformance-host';
  return {
    name: 'postgres',
    async open(tenants) {
      db = await freshDatabase();
      last = await ownedPgStore(db.url, owner, tenants);
      return last;
    },
    async reopen(store, tenants) {
      await store.committed();
      await store.close();
      last = await ownedPgStore((db as FreshDatabase).url, owner, tenants);
      return last;
    },
    async cleanup() {
      await last?.close();
      await db?.drop();
    },
  };
}

describe('PgStore conformance', () => {
  storeConformance(pgUnderTest);
});
