/**
 * One conformance suite for every `Store` (issue 11): the store's contract as src/store/types.ts
 * documents it, asserted through the interface only, on the open store and again after the same
 * database is reopened. A store joins by one small test file that calls `storeConformance` with
 * a factory (test/unit/store-conformance-sqlite.test.ts is the model):
 *
 *   describe('PgStore conformance', () => storeConformance(() => ({
 *     name: 'postgres',
 *     open: (tenants) => …a new, empty database or schema…,
 *     reopen: async (store, tenants) => { await store.committed(); await store.close(); return …; },
 *     cleanup: async () => …drop it…,
 *   })));
 *
 * Each test opens its own store through `open` (a fresh database each time) and writes rows of
 * the tenants it names there (`acme`, `globex`) only. What only one implementation has (SQLite's
 * files, pragmas, migrations, group commit mechanics, the host lease, size caps, corruption)
 * stays in that implementation's own tests.
 */
import { recordConformance } from './conformance/records.ts';
import { retentionConformance } from './conformance/retention.ts';
import { runConformance } from './conformance/runs.ts';
import { scheduleConformance } from './conformance/schedules.ts';
import type { StoreUnderTest } from './conformance/fixture.ts';

export type { StoreUnderTest } from './conformance/fixture.ts';

/**
 * Registers the suite's `node:test` cases (call it inside a `describe`). `sut` makes a fresh
 * `StoreUnderTest` for each test; each test opens its own store and cleans it up.
 */
export function storeConformance(sut: () => StoreUnderTest): void {
  scheduleConformance(sut);
  runConformance(sut);
  recordConformance(sut);
  retentionConformance(sut);
}
