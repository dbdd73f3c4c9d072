/**
 * One host per store (issue 9, item 7): a second host on a store whose lease is live is refused
 * with HG_STORE_LEASE naming the holder, in-process and as a second `hourglass start` process,
 * and the first host's runs go on unaffected; a host that loses its lease stops firing; a stale
 * lease (or one whose holder is gone) is taken over.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig, PROJECT_ROOT } from '../../src/config/host-config.ts';
import { HourglassError } from '../../src/errors.ts';
import { Host } from '../../src/host/host.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { GUEST, decls, runsLogged, tempDir } from './helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'hourglass.js');

function config(dir: string, extra: Record<string, unknown> = {}) {
  return parseHostConfig(
    {
      store: { path: join(dir, 'h.db') },
      sandbox: { mode: 'in-thread' },
      leaseHeartbeatMs: 200,
      ...extra,
      tenants: [
        {
          id: 't',
          plugins: [
            {
              manifest: manifest(dir),
              config: { schedules: decls({ id: 'beat', every: '1s' }) },
            },
          ],
        },
      ],
    },
    join(dir, 'config.json'),
    dir,
  );
}

function manifest(dir: string): string {
  const file = join(dir, 'p.json');
  writeFileSync(file, JSON.stringify({ name: 'p', version: '1', wasm: GUEST.proxy }));
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startRefused(host: Host): Promise<HourglassError> {
  try {
    await host.start();
  } catch (err) {
    assert.ok(err instanceof HourglassError, String(err));
    return err;
  }
  assert.fail('the second host started');
}

test('a second Host on a live store is refused naming the holder; stopping it leaves the first alone', async (t) => {
  const dir = tempDir(t);
  // The default heartbeat: a loaded machine's stalls must not make a's lease look stale.
  const a = new Host(config(dir, { leaseHeartbeatMs: 1_000 }));
  await a.start();
  try {
    const before = a.store.readLease();
    const b = new Host(config(dir, { leaseHeartbeatMs: 1_000 }));
    const err = await startRefused(b);
    assert.equal(err.code, 'HG_STORE_LEASE');
    assert.match(err.message, new RegExp(`pid ${process.pid} on ${hostname()}`));
    assert.match(err.message, /since \d{4}-\d\d-\d\dT/);
    await b.stop(); // safe, and touches nothing of a's
    assert.equal(a.store.readLease()?.owner, before?.owner);
    // a keeps firing: a new run finishes after b gave up, none abandoned.
    const n = a.store.listRuns({ status: 'succeeded' }).length;
    await until(
      'a run of the first host',
      () => a.store.listRuns({ status: 'succeeded' }).length > n,
    );
    assert.equal(a.store.listRuns({ status: 'abandoned' }).length, 0);
    assert.equal(a.storeHealth, 'healthy');
  } finally {
    await a.stop();
  }
  // Released on stop: a third host starts at once.
  const c = new Host(config(dir));
  await c.start();
  await c.stop();
});

test('a host whose lease is taken stops firing (lease:lost); a stale lease is taken over', async (t) => {
  const dir = tempDir(t);
  const a = new Host(config(dir));
  const lost: unknown[] = [];
  a.events.on('lease:lost', (e) => lost.push(e.holder));
  a.events.on('host:error', () => undefined);
  await a.start();
  try {
    await until('a first run', () => a.store.listRuns({ status: 'succeeded' }).length > 0);
    // Another host elsewhere takes the store (as after a partition: written straight to SQLite).
    const raw = new Database(join(dir, 'h.db'));
    raw
      .prepare(
        "UPDATE host_lease SET owner = 'other', pid = 1, host_name = 'elsewhere', epoch = epoch + 1",
      )
      .run();
    raw.close();
    await until('lease:lost', () => lost.length > 0);
    assert.equal(a.storeHealth, 'lost');
    assert.ok(a.scheduler.suspended);
    const n = a.store.listRuns({ limit: 10_000 }).length;
    await sleep(2_500);
    assert.equal(a.store.listRuns({ limit: 10_000 }).length, n, 'no tick fired after the loss');
  } finally {
    await a.stop();
  }
  // a did not release the other host's lease nor abandon anything on stop.
  const store = new SqliteStore(join(dir, 'h.db'));
  try {
    assert.equal(store.readLease()?.owner, 'other');
    // 'elsewhere' stopped heartbeating long ago once this is stale: a new host takes over.
    const raw = new Database(join(dir, 'h.db'));
    raw.prepare('UPDATE host_lease SET heartbeat_at = ?').run(Date.now() - 60_000);
    raw.close();
  } finally {
    store.close();
  }
  const b = new Host(config(dir));
  await b.start();
  try {
    const lease = b.store.readLease();
    assert.equal(lease?.pid, process.pid);
    assert.equal(lease?.epoch, 3);
  } finally {
    await b.stop();
  }
});

test('two processes: a second `hourglass start` on a live store exits non-zero naming the holder; the first runs on', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      store: { path: 'h.db' },
      sandbox: { mode: 'in-thread' },
      tenants: [
        {
          id: 't',
          plugins: [
            {
              manifest: manifest(dir),
              config: { schedules: decls({ id: 'beat', every: '1s' }) },
            },
          ],
        },
      ],
    }),
  );
  const first = spawn(process.execPath, [CLI, 'start', '--config', file], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  first.stdout.on('data', (c: Buffer) => (output += c.toString()));
  first.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => first.on('exit', resolve));
  try {
    await until('the first host running', () => runsLogged(output, 't/p/beat').length > 0, 60_000);
    const second = spawnSync(process.execPath, [CLI, 'start', '--config', file], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(second.status, 1, second.stdout + second.stderr);
    assert.match(second.stderr, /HG_STORE_LEASE/);
    assert.match(second.stderr, new RegExp(`pid ${first.pid} on ${hostname()}, holding it since`));
    // The first host's runs are unaffected: more succeed afterwards, none abandoned.
    const count = () => runsLogged(output, 't/p/beat').length;
    const n = count();
    await until('another run of the first host', () => count() > n, 30_000);
    assert.doesNotMatch(output, /abandoned|"level":50/);
  } finally {
    first.kill('SIGTERM');
  }
  assert.equal(await exited, 0, output);
  const store = new SqliteStore(join(dir, 'h.db'), { mustExist: true });
  try {
    assert.equal(store.listRuns({ status: 'abandoned' }).length, 0);
    assert.equal(store.readLease(), undefined, 'released on stop');
  } finally {
    store.close();
  }
});

test('two processes: after the holder is killed (SIGKILL), a new `hourglass start` takes the store at once', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      store: { path: 'h.db' },
      sandbox: { mode: 'in-thread' },
      tenants: [
        {
          id: 't',
          plugins: [
            { manifest: manifest(dir), config: { schedules: decls({ id: 'beat', every: '1s' }) } },
          ],
        },
      ],
    }),
  );
  const start = () => {
    const child = spawn(process.execPath, [CLI, 'start', '--config', file], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const io = { output: '' };
    child.stdout.on('data', (c: Buffer) => (io.output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (io.output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { child, io, exited };
  };
  const first = start();
  await until(
    'the first host running',
    () => runsLogged(first.io.output, 't/p/beat').length > 0,
    60_000,
  );
  first.child.kill('SIGKILL');
  await first.exited;
  // Its lease is fresh (renewed within the last second) but its pid is gone.
  const began = Date.now();
  const second = start();
  try {
    await until(
      'the second host running',
      () => /running with 1 plugin/.test(second.io.output),
      60_000,
    );
    assert.doesNotMatch(second.io.output, /HG_STORE_LEASE/);
    await until(
      'a run of the second host',
      () => runsLogged(second.io.output, 't/p/beat').length > 0,
      30_000,
    );
    assert.ok(Date.now() - began < 60_000);
  } finally {
    second.child.kill('SIGTERM');
  }
  assert.equal(await second.exited, 0, second.io.output);
  const store = new SqliteStore(join(dir, 'h.db'), { mustExist: true });
  try {
    assert.equal(store.listRuns({ status: 'running' }).length, 0);
  } finally {
    store.close();
  }
});
