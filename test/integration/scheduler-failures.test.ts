/**
 * Failure paths of the scheduler and the run executor (issue 9 item 14): a store error or a
 * throwing listener inside a timer becomes a `host:error`, never an uncaught exception; an
 * outcome that cannot be written is reported and retried until it sticks; `suspend`/`resume`;
 * a reload checks the new version before it replaces the old and waits only for its own runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/types.ts';
import { GatedSandbox, quiesce } from './gated-sandbox.ts';
import {
  T0,
  GUEST,
  ManualClock,
  advance,
  decls,
  makeConfig,
  proxyConfig,
  runsOf,
  startHost,
  tempDir,
} from './helpers.ts';

/** A real store whose named methods throw while `failing` says so (disk full, I/O error). */
function failingStore(path: string, failing: (method: string) => boolean): Store {
  const real = new SqliteStore(path, { groupCommit: true });
  return new Proxy(real, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (failing(String(prop)))
          throw new Error(`SQLITE_FULL: database or disk is full (${String(prop)})`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

test('a store error inside the scheduler timer is reported, not thrown; the fire is retried', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  let fail = false;
  const config = proxyConfig(dir, { id: 's', every: '10s' });
  const store = failingStore(
    config.store.path,
    (m) => fail && (m === 'updateSchedule' || m === 'advanceSchedule'),
  );
  const { host } = await startHost(config, clock, { store });
  const errors: string[] = [];
  host.events.on('host:error', (e) => errors.push(e.message));
  try {
    fail = true;
    clock.advance(10_000); // would throw out of the timer without the guard
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /firing t\/p\/s/);
    fail = false;
    await advance(host, clock, 1_000, 1_000); // the retry, 1 s later
    const runs = runsOf(host, 't/p/s');
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.scheduledAt, T0 + 10_000);
    assert.equal(runs[0]?.status, 'succeeded');
  } finally {
    await host.stop();
  }
});

test('a throwing event listener cannot break a fire or a run', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const { host } = await startHost(proxyConfig(dir, { id: 's', every: '10s' }), clock);
  const errors: string[] = [];
  host.events.on('host:error', (e) => errors.push(e.message));
  host.events.on('run:started', () => {
    throw new Error('listener bug');
  });
  host.events.on('run:finished', () => {
    throw new Error('listener bug');
  });
  try {
    await advance(host, clock, 20_000, 10_000);
    assert.deepEqual(
      runsOf(host, 't/p/s').map((r) => r.status),
      ['succeeded', 'succeeded'],
    );
    assert.ok(errors.some((m) => m.includes('run:started listener')));
  } finally {
    await host.stop();
  }
});

test('an outcome that cannot be written is reported and retried; the run is never left `running`', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  let failures = 3;
  const config = proxyConfig(dir, { id: 's', every: '10s', payload: { setCursor: 7 } });
  const store = failingStore(config.store.path, (m) => m === 'finishRun' && failures-- > 0);
  const { host } = await startHost(config, clock, { store });
  const errors: string[] = [];
  host.events.on('host:error', (e) => errors.push(e.message));
  try {
    await advance(host, clock, 10_000, 10_000);
    const [run] = runsOf(host, 't/p/s');
    assert.equal(run?.status, 'succeeded');
    assert.equal(host.store.getSchedule('t/p/s')?.cursor, '7');
    assert.equal(errors.filter((m) => m.includes('recording the outcome')).length, 3);
  } finally {
    await host.stop();
  }
});

test('suspend stops firing; resume records the ticks missed meanwhile and fires again', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const { host } = await startHost(proxyConfig(dir, { id: 's', every: '10s' }), clock);
  try {
    await advance(host, clock, 10_000, 10_000);
    host.scheduler.suspend();
    await advance(host, clock, 60_000, 10_000);
    assert.equal(runsOf(host, 't/p/s').length, 1, 'nothing fired while suspended');
    host.scheduler.resume();
    await host.scheduler.settle();
    const statuses = runsOf(host, 't/p/s').map((r) => r.status);
    assert.deepEqual(statuses, ['succeeded', 'skipped_misfire']);
    await advance(host, clock, 10_000, 10_000);
    assert.equal(runsOf(host, 't/p/s').at(-1)?.status, 'succeeded');
  } finally {
    await host.stop();
  }
});

test('a reload whose new version fails discovery leaves the old version serving', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const config = proxyConfig(dir, { id: 's', every: '10s' });
  const { host } = await startHost(config, clock);
  try {
    const entry = config.tenants[0]?.plugins[0];
    assert.ok(entry);
    await assert.rejects(
      host.loadPlugin('t', { ...entry, config: { schedules: '{"not": "a list"}' } }),
      (err: { code?: string }) => err.code === 'HG_DECLARATION_INVALID',
    );
    await advance(host, clock, 10_000, 10_000);
    assert.equal(runsOf(host, 't/p/s').at(-1)?.status, 'succeeded', 'the old version still runs');
    assert.equal(host.store.getPlugin('t/p')?.status, 'loaded');
    // A good new version replaces it.
    const v2 = await host.loadPlugin('t', {
      ...entry,
      config: { schedules: decls({ id: 's', every: '10s' }, { id: 'new', every: '10s' }) },
    });
    assert.equal(v2.sandboxId, 't/p#2');
    await advance(host, clock, 10_000, 10_000);
    assert.equal(runsOf(host, 't/p/new').at(-1)?.status, 'succeeded');
  } finally {
    await host.stop();
  }
});

test('reloading one plugin waits only for its own runs, and keeps its waiting ticks', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const config = makeConfig(dir, [
    {
      id: 't',
      quotas: { maxRunsInFlight: 1 },
      plugins: [
        {
          name: 'a',
          wasm: GUEST.proxy,
          config: { schedules: decls({ id: 'x', every: '1m' }, { id: 'y', every: '1m' }) },
        },
      ],
    },
    {
      id: 'u',
      plugins: [
        { name: 'b', wasm: GUEST.proxy, config: { schedules: decls({ id: 'z', every: '1m' }) } },
      ],
    },
  ]);
  let gated: GatedSandbox | undefined;
  const { host } = await startHost(config, clock, {
    sandbox: (hc) => (gated = new GatedSandbox(hc)),
  });
  const g = gated as GatedSandbox;
  try {
    clock.advance(60_000);
    await quiesce(g, host.store);
    // Held: t/a/x (running) and u/b/z (running); t/a/y waits for t's only slot.
    assert.deepEqual(g.held.map((h) => h.scheduleKey).sort(), ['t/a/x', 'u/b/z']);
    const [waiting] = host.store.listRuns({ status: 'waiting' });
    assert.equal(waiting?.scheduleKey, 't/a/y');
    const entry = config.tenants[0]?.plugins[0];
    assert.ok(entry);
    let done = false;
    const reload = host.loadPlugin('t', entry).then(() => (done = true));
    await quiesce(g, host.store);
    assert.equal(done, false, 'waits for its own run');
    g.held.find((h) => h.scheduleKey === 't/a/x')?.release();
    await reload;
    assert.ok(
      g.held.some((h) => h.scheduleKey === 'u/b/z'),
      "b's run is still held: not awaited",
    );
    // The waiting tick survived the reload and runs on the new version.
    await quiesce(g, host.store);
    assert.ok(g.held.some((h) => h.runId === waiting?.id));
    g.open();
    await host.scheduler.settle();
    assert.equal(host.store.getRun(waiting?.id ?? -1)?.status, 'succeeded');
  } finally {
    g.open();
    await host.stop();
  }
});

test('a wasm that disappears fails the reload and leaves the old version serving', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const manifest = join(dir, 'm.json');
  writeFileSync(
    manifest,
    JSON.stringify({ name: 'p', version: '1.0.0', wasm: GUEST.proxy, capabilities: [] }),
  );
  const config = makeConfig(dir, [
    { id: 't', plugins: [{ manifest, config: { schedules: decls({ id: 's', every: '10s' }) } }] },
  ]);
  const { host } = await startHost(config, clock);
  try {
    writeFileSync(
      manifest,
      JSON.stringify({
        name: 'p',
        version: '2.0.0',
        wasm: join(dir, 'gone.wasm'),
        capabilities: [],
      }),
    );
    const entry = config.tenants[0]?.plugins[0];
    assert.ok(entry);
    await assert.rejects(host.loadPlugin('t', entry));
    await advance(host, clock, 10_000, 10_000);
    assert.equal(runsOf(host, 't/p/s').at(-1)?.status, 'succeeded');
    assert.match(host.store.getPlugin('t/p')?.error ?? '', /reload failed/);
  } finally {
    await host.stop();
  }
});

test('an outcome write that does not persist is retried; a run row that vanished is written whole', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  // The inline store: this test changes the file under the host, which reads it back (the
  // threaded store's host reads its own mirror; the file is only its durable copy).
  const base = proxyConfig(dir, { id: 's', every: '10s' });
  const config = { ...base, store: { ...base.store, writer: 'inline' as const } };
  let gated: GatedSandbox | undefined;
  const { host } = await startHost(config, clock, {
    sandbox: (hc) => (gated = new GatedSandbox(hc)),
  });
  const g = gated as GatedSandbox;
  const errors: string[] = [];
  host.events.on('host:error', (e) => errors.push(e.message));
  const db = new Database(config.store.path);
  try {
    // Once, the outcome's update does not take: the row stays `running`, as a write that was
    // lost would leave it (the statement changes no row, which is how the host sees it).
    db.exec(`CREATE TABLE revert_once (n INTEGER);
      INSERT INTO revert_once VALUES (1);
      CREATE TRIGGER revert BEFORE UPDATE OF status ON runs
        WHEN NEW.status = 'succeeded' AND (SELECT COUNT(*) FROM revert_once) > 0
      BEGIN
        DELETE FROM revert_once;
        SELECT RAISE(IGNORE);
      END;`);
    clock.advance(10_000);
    await quiesce(g, host.store);
    g.held[0]?.release();
    await host.scheduler.settle();
    assert.deepEqual(
      runsOf(host, 't/p/s').map((r) => r.status),
      ['succeeded'],
    );
    assert.equal(errors.filter((m) => m.includes('did not persist')).length, 1);
    // The run's row disappears while it runs (its start was rolled back): written whole.
    clock.advance(10_000);
    await quiesce(g, host.store);
    const held = g.held[0];
    assert.ok(held);
    db.prepare('DELETE FROM runs WHERE id = ?').run(held.runId);
    held.release();
    await host.scheduler.settle();
    const runs = runsOf(host, 't/p/s');
    assert.deepEqual(
      runs.map((r) => [r.scheduledAt, r.status]),
      [
        [T0 + 10_000, 'succeeded'],
        [T0 + 20_000, 'succeeded'],
      ],
    );
  } finally {
    db.close();
    g.open();
    await host.stop();
  }
});
