/**
 * A whole host on the threaded SQLite store (`store.writer: "thread"`, src/store/sqlite-writer/):
 * real guest, real file, real writer thread. Runs fire and are recorded; another connection (the
 * CLI's) sees them once committed; a command the CLI queues is applied by the host and its
 * outcome reaches the file; after a stop, a new host on the same file takes the lease and goes on
 * from what the first wrote (states, run history, run ids). A run's slot is freed once its
 * outcome is written, before it is durable (`Store.writesKeptInOrder`), yet every guest call
 * finds its own start and every earlier outcome in the file.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import type { HostCallHandler, Sandbox } from '../../src/sandbox/types.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import {
  advance,
  decls,
  GUEST,
  makeConfig,
  ManualClock,
  proxyConfig,
  runsOf,
  startHost,
  tempDir,
} from './helpers.ts';

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

test('on the writer thread a run frees its slot once its outcome is written, and the next guest call still finds that outcome in the file', async (t) => {
  const dir = tempDir(t);
  const every = (id: string) => ({ id, every: '1h' });
  const base = makeConfig(dir, [
    {
      id: 't',
      quotas: { maxRunsInFlight: 1 },
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: { schedules: decls(every('a'), every('b'), every('c')) },
        },
      ],
    },
  ]);
  const config = { ...base, store: { ...base.store, writer: 'thread' as const } };
  const cli: { store: SqliteStore | null } = { store: null };
  t.after(() => cli.store?.close());
  const called: number[] = [];
  const problems: string[] = [];
  // The real sandbox, and a look at the file (another connection, as the CLI's) at every call.
  const observed = (hostCall: HostCallHandler): Sandbox => {
    const inner = new InThreadSandbox({ hostCall });
    return {
      load: (spec) => inner.load(spec),
      unload: (id) => inner.unload(id),
      close: () => inner.close(),
      call(pluginId, req) {
        const runId = req.caller.runId;
        if (req.fn === 'run' && runId !== undefined) {
          called.push(runId);
          cli.store ??= new SqliteStore(config.store.path, { mustExist: true });
          for (const r of cli.store.listRuns({ limit: 100 })) {
            if (r.id === runId && r.status !== 'running')
              problems.push(`run ${runId} was called while the file says ${r.status}`);
            if (r.id !== runId && r.status === 'running')
              problems.push(`run ${runId} was called while run ${r.id} is running in the file`);
          }
        }
        return inner.call(pluginId, req);
      },
    };
  };
  const clock = new ManualClock(T0);
  const { host, stop } = await startHost(config, clock, { sandbox: observed });
  try {
    let finished = 0;
    host.events.on('run:finished', () => finished++);
    for (const id of ['a', 'b', 'c']) assert.ok(host.operate(`t/p/${id}`, 'trigger').ok);
    const end = Date.now() + 20_000;
    while (finished < 3) {
      if (Date.now() > end) assert.fail(`${finished} of 3 runs finished`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await host.store.committed();
    assert.equal(called.length, 3, 'one tick after another, the tenant allowing one at a time');
    assert.deepEqual(problems, []);
    assert.deepEqual(
      (cli.store as SqliteStore).listRuns({ limit: 100 }).map((r) => r.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
  } finally {
    await stop();
  }
});
