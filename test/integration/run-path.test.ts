/**
 * The run path's durability and memory rules (issue 10): a guest is called only once its run's
 * `running` row and the fire's next time are committed; the schedule in memory carries the
 * cursor each run wrote; the store reports what the executor no longer reads. The first two on
 * SQLite and on PostgreSQL (where "committed" means flushed to the database: the guest's call
 * looks at the database synchronously, through `psql`, so no flush can finish meanwhile).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { HostConfig } from '../../src/config/host-config.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { GatedSandbox } from './gated-sandbox.ts';
import {
  advance,
  ManualClock,
  proxyConfig,
  runsOf,
  startHost,
  STORES,
  storeDir,
  T0,
  tempDir,
  type ProxyResult,
} from './helpers.ts';

/** What another connection sees now: the run's status and the schedule's next time. */
function committedState(config: HostConfig, runId: number): { status: unknown; nextAt: unknown } {
  const pgc = config.store.postgres;
  if (pgc) {
    const sql = `SELECT (SELECT status FROM runs WHERE id = ${runId}), (SELECT next_at FROM schedules WHERE key = 't/p/s')`;
    const r = spawnSync('psql', ['-XAtq', '-F', ',', '-d', pgc.url, '-c', sql], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const [status, nextAt] = r.stdout.trim().split(',');
    return { status: status || undefined, nextAt: Number(nextAt) };
  }
  const other = new Database(config.store.path, { readonly: true });
  try {
    const row = other.prepare('SELECT status FROM runs WHERE id = ?').get(runId) as
      { status: string } | undefined;
    const s = other.prepare("SELECT next_at FROM schedules WHERE key = 't/p/s'").get() as {
      next_at: number;
    };
    return { status: row?.status, nextAt: s.next_at };
  } finally {
    other.close();
  }
}

for (const store of STORES)
  describe(store, () => {
    test('a guest is called only once its running row and the next fire time are committed', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(dir, { id: 's', every: '10s' });
      let gated: GatedSandbox | undefined;
      const { host, stop } = await startHost(config, clock, {
        sandbox: (hc) => (gated = new GatedSandbox(hc)),
      });
      const g = gated as GatedSandbox;
      g.open();
      const seen: { status: unknown; nextAt: unknown }[] = [];
      g.onRun = (req) => seen.push(committedState(config, req.caller.runId ?? -1));
      try {
        await advance(host, clock, 30_000, 10_000);
        assert.deepEqual(seen, [
          { status: 'running', nextAt: T0 + 20_000 },
          { status: 'running', nextAt: T0 + 30_000 },
          { status: 'running', nextAt: T0 + 40_000 },
        ]);
      } finally {
        await stop();
      }
    });

    test('a fire after a run sees the cursor that run wrote (kept in memory, not re-read)', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = proxyConfig(dir, { id: 's', every: '10s', payload: { setCursor: { n: 1 } } });
      const { host, stop } = await startHost(config, clock);
      try {
        await advance(host, clock, 30_000, 10_000);
        const runs = runsOf(host, 't/p/s');
        const seen = runs.map((r) => (JSON.parse(r.result ?? 'null') as ProxyResult).seenCursor);
        assert.deepEqual(seen, [null, { n: 1 }, { n: 1 }]);
        assert.equal(host.store.getSchedule('t/p/s')?.cursor, '{"n":1}');
      } finally {
        await stop();
      }
    });
  });

test('store: committed() follows the group; finishRun reports a missing row; restoreRun, advanceSchedule', async (t) => {
  const dir = tempDir(t);
  const store = new SqliteStore(`${dir}/h.db`, { groupCommit: true });
  t.after(() => store.close());
  await store.committed(); // nothing open: resolves at once
  const id = store.insertRun({
    scheduleKey: 't/p/x',
    pluginId: 't/p',
    tenant: 't',
    localId: 'x',
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
  });
  const other = new Database(`${dir}/h.db`, { readonly: true });
  t.after(() => other.close());
  const count = () => (other.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n;
  assert.equal(count(), 0, 'not committed yet');
  await store.committed();
  assert.equal(count(), 1);
  const fin = {
    status: 'succeeded' as const,
    reason: null,
    finishedAt: 3,
    error: null,
    outputBytes: 0,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
  };
  assert.equal(store.finishRun(id, fin), true);
  assert.equal(store.finishRun(id + 1000, fin), false);
  // restoreRun writes a missing row whole under its id, never over an existing one.
  const whole = { ...fin, id: id + 1000, scheduleKey: 't/p/x', pluginId: 't/p', tenant: 't' };
  const rec = { ...whole, localId: 'x', trigger: 'schedule' as const, scheduledAt: 1 };
  const run = {
    ...rec,
    startedAt: 2,
    attempt: 1,
    coversUntil: null,
    pluginVersion: '1.0.0',
    wasmSha256: 'ab'.repeat(32),
    logTail: null,
  };
  assert.equal(store.restoreRun(run), true);
  assert.equal(store.getRun(id + 1000)?.status, 'succeeded');
  assert.equal(store.restoreRun({ ...run, status: 'failed' }), false);
  assert.equal(store.getRun(id + 1000)?.status, 'succeeded');
  assert.equal(store.advanceSchedule('t/p/none', 1, 2, 3), false);
});
