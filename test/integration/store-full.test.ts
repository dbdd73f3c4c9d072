/**
 * Store failures degrade, never crash (issue 9, item 8). The store lives on a small tmpfs that
 * the test fills (we run as root in CI; where mounting is refused, the store's own size cap,
 * `store.maxBytes` / SQLite's max_page_count, makes the same SQLITE_FULL): the host stays up,
 * stops firing, reports `store:failed` + `host:error`, retries, and resumes (`store:recovered`)
 * with new runs recorded once space returns. `hourglass start --exit-on-store-failure` exits 3.
 * HG_TEST_NO_MOUNT=1 takes the fallback path even where mounting works.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig, PROJECT_ROOT } from '../../src/config/host-config.ts';
import { Host } from '../../src/host/host.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { GUEST, decls, runsLogged, tempDir } from './helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'hourglass.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A folder on a fresh 8 MiB tmpfs, or null where mounting is not allowed. */
function smallDisk(t: { after(fn: () => void): void }): string | null {
  if (process.env.HG_TEST_NO_MOUNT) return null; // to check the fallback path
  const dir = mkdtempSync(join(tmpdir(), 'hg-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  t.after(() => {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Fills the file system of `dir` to the last byte. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // The last partial chunk: byte by byte is too slow; smaller chunks until none fits.
  for (let size = 32 * 1024; size >= 1; size = Math.floor(size / 2)) {
    try {
      for (;;) writeSync(fd, chunk, 0, size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  }
  closeSync(fd);
}

function manifest(dir: string): string {
  const file = join(dir, 'p.json');
  writeFileSync(file, JSON.stringify({ name: 'p', version: '1', wasm: GUEST.proxy }));
  return file;
}

test('disk full: the host survives, stops firing, reports, retries, and resumes when space returns', async (t) => {
  const disk = smallDisk(t);
  const dir = disk ?? tempDir(t);
  const work = tempDir(t);
  const host = new Host(
    parseHostConfig(
      {
        store: { path: join(dir, 'h.db') },
        sandbox: { mode: 'in-thread' },
        leaseHeartbeatMs: 100,
        tenants: [
          {
            id: 't',
            plugins: [
              {
                manifest: manifest(work),
                config: { schedules: decls({ id: 'beat', every: '1s' }) },
              },
            ],
          },
        ],
      },
      join(work, 'config.json'),
      work,
    ),
  );
  const events: string[] = [];
  const failures: { code: string }[] = [];
  const errors: string[] = [];
  host.events.on('store:failed', (e) => (failures.push(e), events.push('failed')));
  host.events.on('store:recovered', () => events.push('recovered'));
  host.events.on(
    'host:error',
    (e) => (
      errors.push(e.message),
      process.env.HG_DEBUG && console.log(Date.now() % 100000, e.message)
    ),
  );
  if (process.env.HG_DEBUG)
    host.events.on('store:recovered', () => console.log(Date.now() % 100000, 'recovered'));
  await host.start();
  const filler = join(dir, 'filler');
  try {
    const succeeded = () => host.store.listRuns({ status: 'succeeded', limit: 10_000 }).length;
    await until('a first run', () => succeeded() > 0);
    if (disk) fill(filler);
    else (host.store as SqliteStore).setMaxBytes(1);
    await until('store:failed', () => failures.length > 0);
    assert.equal(failures[0]?.code, 'HG_STORE_WRITE');
    assert.ok(
      errors.some((m) => /cannot take writes/.test(m)),
      errors.join('\n'),
    );
    assert.ok(host.scheduler.suspended, 'firing stopped');
    assert.notEqual(host.storeHealth, 'healthy');
    // The host stays up through several seconds of failing writes (heartbeats, retries).
    await sleep(2_500);
    assert.ok(host.scheduler.suspended || events.includes('recovered'));
    // (Under a size cap the renewal, which rewrites one row, may succeed and the host retry
    // early, failing again at its next insert: recoveries before space returns don't count.)
    const seen = events.length;
    if (disk) unlinkSync(filler);
    else (host.store as SqliteStore).setMaxBytes(null);
    await until('store:recovered', () => events.slice(seen).includes('recovered'), 60_000);
    assert.equal(host.storeHealth, 'healthy');
    const n = succeeded();
    await until('a run after recovery', () => succeeded() > n);
    assert.equal(events[0], 'failed');
  } finally {
    await host.stop();
  }
  // Nothing left running; the lease released.
  const store = new SqliteStore(join(dir, 'h.db'), { mustExist: true });
  try {
    assert.equal(store.listRuns({ status: 'running' }).length, 0);
    assert.equal(store.readLease(), undefined);
  } finally {
    store.close();
  }
});

test('`hourglass start --exit-on-store-failure` stops and exits 3 when the store cannot take writes', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'config.json');
  // Each run records ~8 KB of result; a 128 KiB store cap is reached within a few runs.
  const output = JSON.stringify({ result: 'x'.repeat(8_000) });
  writeFileSync(
    file,
    JSON.stringify({
      store: { path: 'h.db', maxBytes: 131_072 },
      sandbox: { mode: 'in-thread' },
      tenants: [
        {
          id: 't',
          quotas: { maxOutputBytes: 10_000 },
          plugins: [
            {
              manifest: manifest(dir),
              config: { schedules: decls({ id: 'big', every: '1s', payload: { output } }) },
            },
          ],
        },
      ],
    }),
  );
  const child = spawn(
    process.execPath,
    [CLI, 'start', '--config', file, '--exit-on-store-failure'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
  });
  assert.equal(code, 3, out);
  assert.match(out, /store failed \(HG_STORE_WRITE\); exiting as asked/);
  assert.match(out, /hourglass: stopped/);
  assert.ok(
    runsLogged(out, 't/p/big').length > 0,
    `runs were recorded before the store filled:\n${out}`,
  );
});
