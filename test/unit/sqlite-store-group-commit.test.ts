import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { NewRun } from '../../src/store/types.ts';

function run(localId: string): NewRun {
  return {
    scheduleKey: `t/p/${localId}`,
    pluginId: 't/p',
    tenant: 't',
    localId,
    trigger: 'schedule',
    scheduledAt: 1,
    startedAt: 2,
    attempt: 1,
    status: 'running',
    reason: null,
    finishedAt: null,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
  };
}

function stores(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'hg-group-'));
  const path = join(dir, 'h.db');
  const host = new SqliteStore(path, { groupCommit: true });
  const other = new SqliteStore(path, { mustExist: true });
  t.after(() => {
    host.close();
    other.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { host, other };
}

const tick = () => new Promise((r) => setImmediate(r));

test('group commit: writes of one task commit together in a microtask; the writer sees them at once', async (t) => {
  const { host, other } = stores(t);
  const a = host.insertRun(run('a'));
  host.finishRun(a, {
    status: 'succeeded',
    reason: null,
    finishedAt: 3,
    error: null,
    outputBytes: 0,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
  });
  host.insertRun(run('b'));
  assert.equal(host.getRun(a)?.status, 'succeeded');
  assert.equal(other.listRuns().length, 0, 'not committed yet');
  await tick();
  assert.deepEqual(
    other.listRuns().map((r) => [r.localId, r.status]),
    [
      ['b', 'running'],
      ['a', 'succeeded'],
    ],
  );
});

test('group commit: a transaction that throws inside a group undoes only its own writes', async (t) => {
  const { host, other } = stores(t);
  host.insertRun(run('kept'));
  assert.throws(() =>
    host.transaction(() => {
      host.insertRun(run('undone'));
      host.transaction(() => host.insertRun(run('nested-undone')));
      throw new Error('boom');
    }),
  );
  host.transaction(() => host.insertRun(run('after')));
  await tick();
  assert.deepEqual(
    other
      .listRuns()
      .map((r) => r.localId)
      .sort(),
    ['after', 'kept'],
  );
});

test('group commit: close() commits what is pending', (t) => {
  const { host, other } = stores(t);
  host.insertRun(run('last'));
  host.close();
  assert.equal(other.listRuns()[0]?.localId, 'last');
});
