/**
 * A whole host on the threaded SQLite store (`store.writer: "thread"`, src/store/sqlite-writer/):
 * real guest, real file, real writer thread. Runs fire and are recorded; another connection (the
 * CLI's) sees them once committed; a command the CLI queues is applied by the host and its
 * outcome reaches the file; after a stop, a new host on the same file takes the lease and goes on
 * from what the first wrote (states, run history, run ids).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { ManualClock, proxyConfig, runsOf, startHost, tempDir, advance } from './helpers.ts';

const T0 = Date.parse('2026-01-15T10:00:00Z');

test('a host on the writer thread: runs recorded, CLI commands applied, a restart goes on from the file', async (t) => {
  const dir = tempDir(t);
  const base = proxyConfig(dir, { id: 's', every: '10s' }, { id: 'q', every: '10s' });
  const config = {
    ...base,
    commandPollMs: 20,
    store: { ...base.store, writer: 'thread' as const },
  };
  const clock = new ManualClock(T0);
  const first = await startHost(config, clock);
  let cli: SqliteStore | null = null;
  try {
    await advance(first.host, clock, 20_000, 10_000);
    assert.deepEqual(
      runsOf(first.host, 't/p/s').map((r) => r.status),
      ['succeeded', 'succeeded'],
    );
    await first.host.store.committed();
    cli = new SqliteStore(config.store.path, { mustExist: true });
    assert.deepEqual(
      cli.listRuns({ scheduleKey: 't/p/s' }).map((r) => r.status),
      ['succeeded', 'succeeded'],
      'the file has what the host recorded',
    );
    assert.equal(cli.readLease()?.pid, process.pid, 'the writer took the lease');

    // A command the CLI queues: the host fetches it, applies it, and writes its outcome.
    const id = cli.enqueueCommand('t/p/q', 'pause', 'from the CLI', clock.now());
    const end = Date.now() + 20_000;
    while (cli.getCommand(id)?.appliedAt == null) {
      if (Date.now() > end) assert.fail('the command was not applied');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(cli.getCommand(id)?.result, JSON.stringify({ ok: 'paused' }));
    assert.equal(first.host.store.getSchedule('t/p/q')?.state, 'paused');
  } finally {
    cli?.close();
    await first.stop();
  }

  const second = await startHost(config, clock);
  try {
    assert.equal(second.host.store.getSchedule('t/p/q')?.pauseNote, 'from the CLI');
    const before = runsOf(second.host, 't/p/s');
    assert.equal(before.length, 2, 'the history was read back');
    await advance(second.host, clock, 10_000, 10_000);
    const after = runsOf(second.host, 't/p/s');
    assert.equal(after.length, 3);
    assert.equal(after.at(-1)?.status, 'succeeded');
    assert.ok((after.at(-1)?.id ?? 0) > (before.at(-1)?.id ?? 0), 'run ids go on');
    assert.equal(runsOf(second.host, 't/p/q').length, 2, 'the paused schedule did not fire');
  } finally {
    await second.stop();
  }
});
