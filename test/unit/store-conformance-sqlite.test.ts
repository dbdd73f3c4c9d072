/**
 * The store conformance suite (test/support/store-conformance.ts) against `SqliteStore` on a
 * file in a fresh temp folder: with group commit (the host's inline store) and without (as the CLI
 * does); and against `ThreadedSqliteStore` (the host's default: a writer thread owns the file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.ts';
import { ThreadedSqliteStore } from '../../src/store/sqlite-writer/threaded-store.ts';
import type { Store } from '../../src/store/types.ts';
import { storeConformance, type StoreUnderTest } from '../support/store-conformance.ts';

function sqliteUnderTest(
  opts: SqliteStoreOptions & { readonly threaded?: boolean },
): StoreUnderTest {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-conformance-'));
  const file = join(dir, 'hourglass.db');
  let last: Store | null = null;
  return {
    name: 'sqlite',
    async open() {
      last = opts.threaded ? new ThreadedSqliteStore(file) : new SqliteStore(file, opts);
      return last;
    },
    async reopen(store) {
      await store.committed();
      await store.close();
      last = opts.threaded
        ? new ThreadedSqliteStore(file)
        : new SqliteStore(file, { ...opts, mustExist: true });
      return last;
    },
    async cleanup() {
      await last?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

for (const groupCommit of [true, false]) {
  describe(`SqliteStore conformance (groupCommit: ${groupCommit})`, () => {
    storeConformance(() => sqliteUnderTest({ groupCommit }));
  });
}

describe('ThreadedSqliteStore conformance', () => {
  storeConformance(() => sqliteUnderTest({ threaded: true }));
});
