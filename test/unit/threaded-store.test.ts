/**
 * The threaded SQLite store (src/store/sqlite-writer/): what only it does, against a real file
 * and a real writer thread. Its `Store` contract is in the conformance suite
 * (store-conformance-sqlite.test.ts); here: another connection sees a flush once `committed()`
 * resolves; a reopen reads the file back (ids go on); a write the file refuses is reported,
 * kept and written once space returns, and one sent behind it is refused with it; the lease is kept by the writer and released after the
 * last flush; commands a CLI queues reach `pendingCommands()`; a copy is made again when another
 * connection wrote before the lease was taken; the mirror lets go of old finished runs. A turn
 * that writes thousands of rows goes out in parts that commit only with the turn's last write
 * (an operation of another kind rolls them back; a part the file refuses fails its flush); a run
 * the host thinks new but the file has takes the host's image; a changed run goes out as the
 * columns a start or an outcome changes, and one the file lacks fails its flush, whose retry
 * writes whole rows. The writer thread runs at its nice value, the scheduler's thread at the
 * process's, and a writer never goes below the nice value of the thread that started it.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { HourglassError } from '../../src/errors.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { ThreadedSqliteStore, WRITER_NICE } from '../../src/store/sqlite-writer/threaded-store.ts';
import type { LeaseClaim, NewRun } from '../../src/store/types.ts';
import {
  MIRROR_CACHE_KIB,
  MIRROR_FINISHED_RUNS,
  type Dirty,
} from '../../src/store/write-behind.ts';
import { runOf, succeeded } from '../support/conformance/fixture.ts';
import { scheduleRow } from './schedule-row.ts';

const T0 = Date.parse('2026-01-15T10:00:00Z');

function file(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'hourglass-threaded-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return join(d, 'h.db');
}

/** A `running` run of `acme/p/<localId>`. */
function run(localId: string): NewRun {
  return runOf(`acme/p/${localId}`);
}

function claim(owner: string): LeaseClaim {
  return { owner, pid: process.pid, hostName: 'here', now: Date.now(), staleMs: 60_000 };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a flush is in the file once committed() resolves; a reopen reads it back and ids go on', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  store.insertSchedules([scheduleRow('acme', 'a'), scheduleRow('acme', 'b')]);
  const r1 = store.insertRun(run('a'));
  store.updateSchedule('acme/p/b', { state: 'paused', pauseNote: 'n', updatedAt: T0 + 1 });
  await store.committed();
  const cli = new SqliteStore(path, { mustExist: true });
  try {
    assert.equal(cli.getSchedule('acme/p/b')?.state, 'paused');
    assert.equal(cli.getRun(r1)?.status, 'running');
    assert.equal(cli.countLiveSchedules('acme'), 2, 'counts follow the mirror');
  } finally {
    cli.close();
  }
  store.updateSchedule('acme/p/a', { state: 'deleted', updatedAt: T0 + 2 });
  await store.close();

  const again = new ThreadedSqliteStore(path);
  t.after(() => again.close());
  assert.equal(again.getSchedule('acme/p/b')?.pauseNote, 'n');
  assert.equal(again.getSchedule('acme/p/a')?.state, 'deleted', 'close wrote the last change');
  assert.equal(again.countLiveSchedules('acme'), 1);
  assert.equal(again.getRun(r1)?.localId, 'a');
  assert.ok(again.insertRun(run('b')) > r1, 'run ids go on after the file');
  // A deleted schedule created again is a new incarnation, once (no trigger fires twice).
  const gen = again.getSchedule('acme/p/a')?.generation as number;
  again.updateSchedule('acme/p/a', { state: 'active', updatedAt: T0 + 3 });
  assert.equal(again.getSchedule('acme/p/a')?.generation, gen + 1);
  await again.committed();
  const cli2 = new SqliteStore(path, { mustExist: true });
  try {
    assert.equal(cli2.getSchedule('acme/p/a')?.generation, gen + 1);
  } finally {
    cli2.close();
  }
});

test('a write the file refuses is reported and kept, and written once space returns', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  t.after(() => store.close());
  const errors: HourglassError[] = [];
  store.setWriteErrorListener((e) => errors.push(e));
  store.setMaxBytes(1); // held at its current size: as a full disk
  const ids: number[] = [];
  for (let i = 0; i < 300; i++)
    ids.push(store.insertRun({ ...run(`r${i}`), error: 'x'.repeat(200) }));
  await assert.rejects(store.committed(), (e: HourglassError) => e.code === 'HG_STORE_WRITE');
  assert.ok(errors.some((e) => e.code === 'HG_STORE_WRITE'));
  assert.throws(() => store.renewLease('h', Date.now()), /HG_STORE_WRITE|SQLITE_FULL|full/);
  assert.equal(store.getRun(ids[299] as number)?.localId, 'r299', 'the host still reads its rows');
  store.setMaxBytes(null);
  await until('a retried flush', () => {
    try {
      store.renewLease('h', Date.now());
      return true;
    } catch {
      return false;
    }
  });
  await store.committed();
  const cli = new SqliteStore(path, { mustExist: true });
  try {
    assert.equal(cli.listRuns({ limit: 1000 }).length, 300, 'nothing was lost');
  } finally {
    cli.close();
  }
});

test('a flush sent behind one the file refused is refused too: a flush that commits implies every earlier one did', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  t.after(() => store.close());
  const [small, chained] = [store.insertRun(run('a')), store.insertRun(run('b'))];
  await store.committed();
  store.setMaxBytes(1); // held at its current size: as a full disk
  // Alone, a small change fits in the file's pages: it commits under the cap.
  store.finishRun(small, succeeded(T0));
  await store.committed();
  // A flush that needs new pages is refused; one sent while it was in flight, which would
  // fit, is refused with it.
  for (let i = 0; i < 300; i++) store.insertRun({ ...run(`r${i}`), error: 'x'.repeat(200) });
  const big = store.committed();
  await Promise.resolve(); // the big flush is sent (the next one goes while it is in flight)
  store.finishRun(chained, succeeded(T0));
  const behind = store.committed();
  const outcomes = await Promise.allSettled([big, behind]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['rejected', 'rejected'],
  );
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  assert.equal(cli.getRun(small)?.status, 'succeeded');
  assert.equal(cli.getRun(chained)?.status, 'running', 'not written before the flush ahead of it');
  store.setMaxBytes(null);
  await until('a retried flush', () => cli.getRun(chained)?.status === 'succeeded');
  await store.committed();
  assert.equal(cli.listRuns({ limit: 1000 }).length, 302, 'nothing was lost');
});

test('the lease: one holder; a renewal that finds it taken says so at the next one; close releases it after the last write', async (t) => {
  const path = file(t);
  const a = new ThreadedSqliteStore(path);
  assert.equal(a.acquireLease(claim('A')).ok, true);
  const b = new ThreadedSqliteStore(path);
  t.after(() => b.close());
  const refused = b.acquireLease(claim('B'));
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.holder.owner, 'A');
  assert.equal(a.readLease()?.owner, 'A');
  assert.equal(a.renewLease('A', Date.now()), true);

  a.insertSchedule(scheduleRow('acme', 'late'));
  a.releaseLease('A');
  await a.close();
  const taken = b.acquireLease(claim('B'));
  assert.equal(taken.ok, true, 'released');
  assert.equal(
    b.getSchedule('acme/p/late')?.localId,
    'late',
    'written before the release; B copied it again',
  );

  // B's lease taken over (by force, as a takeover of a dead holder would): B hears it.
  const c = new SqliteStore(path, { mustExist: true });
  try {
    assert.equal(c.acquireLease({ ...claim('C'), replaceOwner: 'B' }).ok, true);
  } finally {
    c.close();
  }
  assert.equal(b.renewLease('B', Date.now()), true, 'the answer of the previous renewal');
  await until('the lost lease', () => !b.renewLease('B', Date.now()));
});

test('commands a CLI queues reach pendingCommands(); their outcome reaches the file', async (t) => {
  const path = file(t);
  const host = new ThreadedSqliteStore(path);
  t.after(() => host.close());
  host.insertSchedule(scheduleRow('acme', 'a'));
  await host.committed();
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  const id = cli.enqueueCommand('acme/p/a', 'pause', 'maintenance', T0);
  await until('the command', () => host.pendingCommands().some((c) => c.id === id));
  host.completeCommand(id, '{"ok":"paused"}', T0 + 1);
  assert.deepEqual(host.pendingCommands(), []);
  await host.committed();
  assert.equal(cli.getCommand(id)?.result, '{"ok":"paused"}');
  // A command the host queues itself has the file's next id; one queued in a transaction that
  // throws is taken out again.
  const own = host.enqueueCommand('acme/p/a', 'resume', null, T0 + 2);
  assert.equal(own, id + 1);
  assert.throws(() =>
    host.transaction(() => {
      host.enqueueCommand('acme/p/a', 'delete', null, T0 + 3);
      throw new Error('no');
    }),
  );
  assert.deepEqual(
    cli.pendingCommands().map((c) => c.action),
    ['resume'],
  );
});

test('the mirror lets go of finished runs older than the newest MIRROR_FINISHED_RUNS ids, a few per flush; the file keeps them', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  t.after(() => store.close());
  store.insertSchedules([scheduleRow('acme', 'a')]);
  const open = store.insertRun(run('a'));
  const ids: number[] = [];
  for (let i = 0; i < MIRROR_FINISHED_RUNS + 100; i++) {
    const id = store.insertRun(run('a'));
    store.finishRun(id, succeeded(T0 + i));
    ids.push(id);
  }
  await store.committed();
  const newest = ids[ids.length - 1] as number;
  // One flush wrote 10,101 runs: pruned once, as far as its id range.
  assert.equal(store.getRun(open)?.status, 'running', 'an open run stays, however old');
  assert.equal(store.getRun(ids[0] as number), undefined);
  assert.equal(store.getRun(newest - MIRROR_FINISHED_RUNS - 1), undefined);
  assert.equal(store.getRun(newest - MIRROR_FINISHED_RUNS)?.status, 'succeeded');
  // Afterwards the mirror follows a few at a time: 40 more runs move the range by 40.
  for (let i = 0; i < 40; i++) store.finishRun(store.insertRun(run('a')), succeeded(T0));
  await store.committed();
  assert.equal(store.getRun(newest - MIRROR_FINISHED_RUNS + 39), undefined);
  assert.equal(store.getRun(newest - MIRROR_FINISHED_RUNS + 40)?.status, 'succeeded');
  // The old open run finishes: it goes at the next prune.
  store.finishRun(open, succeeded(T0));
  await store.committed();
  assert.equal(store.getRun(open)?.status, 'succeeded');
  for (let i = 0; i < 40; i++) store.finishRun(store.insertRun(run('a')), succeeded(T0));
  await store.committed();
  assert.equal(store.getRun(open), undefined);
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  assert.equal(cli.getRun(ids[0] as number)?.status, 'succeeded', 'the file keeps the history');
  assert.equal(cli.getRun(open)?.status, 'succeeded');
});

/** Counts the parts it sends (`WriteBehindStore.streamRows`). */
class CountingStore extends ThreadedSqliteStore {
  parts = 0;
  protected override writePart(dirty: Dirty, chained: boolean): void {
    this.parts++;
    super.writePart(dirty, chained);
  }
}

test('a turn of thousands of writes goes out in parts that commit only with its end; another operation rolls them back and they go again', async (t) => {
  const path = file(t);
  const store = new CountingStore(path);
  t.after(() => store.close());
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  const ids: number[] = [];
  for (let i = 0; i < 3000; i++) ids.push(store.insertRun(run(`r${i}`)));
  const sent = store.parts;
  assert.ok(sent >= 4, `parts were sent during the turn (${sent})`);
  // A synchronous operation: the writer answers it after the parts ahead of it, which it rolls
  // back first. The file holds none of them: a part is never committed by itself.
  assert.equal(store.readLease(), undefined);
  assert.equal(cli.listRuns({ limit: 10_000 }).length, 0, 'nothing of an unfinished turn');
  for (let i = 0; i < 1000; i++) store.finishRun(ids[i] as number, succeeded(T0 + i));
  assert.ok(store.parts > sent, 'the rolled-back rows go out again, in parts');
  await store.committed();
  const rows = cli.listRuns({ limit: 10_000 });
  assert.equal(rows.length, 3000, 'each run once');
  assert.equal(rows.filter((r) => r.status === 'succeeded').length, 1000);
  assert.equal(cli.getRun(ids[2999] as number)?.localId, 'r2999');
});

/**
 * Commits in the file's WAL since it was last restarted: frames whose salts match the header's
 * and whose "database size after commit" field is set (the WAL format: sqlite.org/fileformat.html).
 */
function walCommits(path: string): number {
  const wal = readFileSync(`${path}-wal`);
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const [salt1, salt2] = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return commits;
}

test('flushes that queue up behind a busy writer commit together, in one transaction, each answered', async (t) => {
  const path = file(t);
  const store = new CountingStore(path);
  t.after(() => store.close());
  const first = store.insertRun(run('first'));
  await store.committed();
  const before = walCommits(path);
  // Another connection holds the write lock: the writer waits on it in the first part of the
  // next flush, and the flushes sent meanwhile queue up on its port.
  const other = new Database(path);
  t.after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  const ids: number[] = [];
  for (let i = 0; i < 600; i++) ids.push(store.insertRun(run(`r${i}`)));
  assert.ok(store.parts > 0, 'a part went out during the turn');
  const flushes = [store.committed()];
  await Promise.resolve(); // that turn's flush is sent
  store.finishRun(first, succeeded(T0));
  flushes.push(store.committed());
  await Promise.resolve();
  store.finishRun(ids[0] as number, succeeded(T0 + 1));
  flushes.push(store.committed());
  await Promise.resolve();
  other.exec('ROLLBACK');
  await Promise.all(flushes);
  assert.equal(walCommits(path) - before, 1, 'three flushes, one commit');
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  assert.equal(cli.listRuns({ limit: 1000 }).length, 601);
  assert.equal(cli.getRun(first)?.status, 'succeeded');
  assert.equal(cli.getRun(ids[0] as number)?.status, 'succeeded');
  // With nothing queued, each flush is its own commit.
  store.finishRun(ids[1] as number, succeeded(T0 + 2));
  await store.committed();
  store.finishRun(ids[2] as number, succeeded(T0 + 3));
  await store.committed();
  assert.equal(walCommits(path) - before, 3);
});

test('a part the file refuses fails its flush; its rows are kept and written once space returns', async (t) => {
  const path = file(t);
  const store = new CountingStore(path);
  t.after(() => store.close());
  store.setMaxBytes(1); // held at its current size: as a full disk
  for (let i = 0; i < 2000; i++) store.insertRun({ ...run(`r${i}`), error: 'x'.repeat(200) });
  assert.ok(store.parts > 0);
  await assert.rejects(store.committed(), (e: HourglassError) => e.code === 'HG_STORE_WRITE');
  store.setMaxBytes(null);
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  await until('a retried flush', () => cli.listRuns({ limit: 5000 }).length > 0);
  await store.committed();
  assert.equal(cli.listRuns({ limit: 5000 }).length, 2000, 'nothing was lost');
});

test('a run the host inserted that the file already has takes the host image (the flush does not fail)', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  t.after(() => store.close());
  const first = store.insertRun(run('a'));
  await store.committed();
  // Another connection takes the next run id behind the host's back.
  const other = new SqliteStore(path, { mustExist: true });
  t.after(() => other.close());
  assert.equal(other.insertRun(run('theirs')), first + 1);
  const mine = store.insertRun(run('mine'));
  assert.equal(mine, first + 1);
  await store.committed();
  assert.equal(other.getRun(mine)?.localId, 'mine');
});

test('a changed run goes out as its changed columns; one the file lacks fails its flush, and the retry writes its whole row', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  t.after(() => store.close());
  const errors: HourglassError[] = [];
  store.setWriteErrorListener((e) => errors.push(e));
  const kept = store.insertRun(run('kept'));
  const lost = store.insertRun(run('lost'));
  await store.committed();
  store.finishRun(kept, { ...succeeded(T0), outputBytes: 7 });
  await store.committed();
  const cli = new SqliteStore(path, { mustExist: true });
  t.after(() => cli.close());
  const k = cli.getRun(kept);
  assert.equal(k?.status, 'succeeded');
  assert.equal(k?.outputBytes, 7);
  assert.equal(k?.localId, 'kept', 'the columns an outcome does not change stay');
  // Deleted behind the host's back: its outcome cannot be an update.
  const raw = new Database(path);
  raw.prepare('DELETE FROM runs WHERE id = ?').run(lost);
  raw.close();
  store.finishRun(lost, succeeded(T0 + 1));
  await assert.rejects(
    store.committed(),
    (e: HourglassError) => e.code === 'HG_STORE_WRITE' && /not in the file/.test(e.message),
  );
  assert.ok(errors.some((e) => e.code === 'HG_STORE_WRITE'));
  await until('the retried flush', () => cli.getRun(lost) !== undefined);
  await store.committed();
  const l = cli.getRun(lost);
  assert.equal(l?.status, 'succeeded');
  assert.equal(l?.localId, 'lost', 'the retry wrote the whole row');
  assert.equal(l?.scheduleKey, 'acme/p/lost');
});

test('a flush that pushes thousands of finished runs out of the mirror prunes them a page at a time', async (t) => {
  const path = file(t);
  const store = new ThreadedSqliteStore(path);
  t.after(() => store.close());
  const ids: number[] = [];
  for (let i = 0; i < MIRROR_FINISHED_RUNS + 3000; i++) {
    const id = store.insertRun(run('a'));
    store.finishRun(id, succeeded(T0 + i));
    ids.push(id);
  }
  await store.committed();
  const at = (i: number) => store.getRun(ids[i] as number);
  assert.equal(at(0), undefined);
  assert.equal(at(1023), undefined);
  assert.equal(at(1024)?.status, 'succeeded', 'the rest of the range waits for the next prune');
  for (let i = 0; i < 32; i++) store.finishRun(store.insertRun(run('a')), succeeded(T0));
  await store.committed();
  assert.equal(at(2047), undefined);
  assert.equal(at(2048)?.status, 'succeeded');
});

/** The mirror's own connection (its pager settings and size). */
class MirrorView extends ThreadedSqliteStore {
  pragma(name: string): unknown {
    return this.mirror.mirrorDatabase.pragma(name, { simple: true });
  }
}

test('the mirror keeps MIRROR_CACHE_KIB in memory and spills the rest to a temporary file: rows beyond it read back whole, before and after a reopen', async (t) => {
  const path = file(t);
  const description = 'd'.repeat(400);
  const rows = Array.from({ length: 30_000 }, (_, i) =>
    scheduleRow('acme', `s${i}`, { description, nextAt: T0 + i }),
  );
  const check = (store: MirrorView): void => {
    // Spilled: SQLite's temporary file (`etilqs_*`, unlinked at once) is open. A `:memory:`
    // mirror would hold every page in memory and open no file.
    const spills = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return /\/etilqs_\w+/.test(readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        return false; // closed meanwhile
      }
    });
    assert.ok(spills.length > 0, 'no temporary file open');
    assert.equal(store.pragma('cache_size'), -MIRROR_CACHE_KIB);
    const bytes = (store.pragma('page_count') as number) * (store.pragma('page_size') as number);
    assert.ok(bytes > 1.5 * MIRROR_CACHE_KIB * 1024, `the mirror holds ${bytes} bytes`);
    const all = store.listSchedules({ pluginId: 'acme/p' });
    assert.equal(all.length, rows.length);
    assert.ok(all.every((s) => s.description === description));
    assert.equal(store.getSchedule('acme/p/s12345')?.nextAt, T0 + 12_345);
  };
  const store = new MirrorView(path);
  let open = true;
  t.after(() => (open ? store.close() : undefined));
  store.insertSchedules(rows);
  await store.committed();
  check(store);
  open = false;
  await store.close();
  const again = new MirrorView(path);
  t.after(() => again.close());
  check(again);
});

/** The nice values of this process's threads started since `before` (Linux: per thread). */
function niceOfNewThreads(before: ReadonlySet<string>): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    if (before.has(tid)) continue;
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}

test('the writer thread runs below the scheduler thread: at nice 5 by default, at writerNice when given', async (t) => {
  // Relative to the test's own nice value (a developer may run the suite under `nice`): a
  // thread cannot go below it without privilege, and the writer keeps it then.
  const base = os.getPriority();
  for (const [opts, nice] of [
    [{}, Math.max(WRITER_NICE, base)],
    [{ writerNice: Math.min(base + 3, 19) }, Math.min(base + 3, 19)],
  ] as const) {
    const before = new Set(readdirSync('/proc/self/task'));
    const store = new ThreadedSqliteStore(file(t), opts);
    t.after(() => store.close());
    // The writer has answered `open`: it set its nice value before that.
    const niced = niceOfNewThreads(before).filter((n) => n !== base);
    assert.deepEqual(niced, nice === base ? [] : [nice]);
    await store.close();
  }
  assert.equal(WRITER_NICE, 5);
  assert.equal(os.getPriority(), base, "the scheduler's thread keeps the process's priority");
});

test('a writer started from a thread at nice 15 stays at 15: writerNice never raises a priority (a privileged process could)', async (t) => {
  const url = new URL('../../src/store/sqlite-writer/threaded-store.ts', import.meta.url).href;
  // A thread that raised its own nice value to 15 (no privilege needed) opens a store: its
  // writer thread starts at 15 and must not move to WRITER_NICE (5), which root could do.
  const w = new Worker(
    `const os = require('node:os');
     const { readdirSync, readFileSync } = require('node:fs');
     const { parentPort, workerData } = require('node:worker_threads');
     os.setPriority(15);
     import('tsx/esm/api')
       .then(({ register }) => (register(), import(${JSON.stringify(url)})))
       .then(async ({ ThreadedSqliteStore }) => {
         const before = new Set(readdirSync('/proc/self/task'));
         const store = new ThreadedSqliteStore(workerData);
         const nices = [];
         for (const tid of readdirSync('/proc/self/task')) {
           if (before.has(tid)) continue;
           const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
           nices.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
         }
         await store.close();
         parentPort.postMessage(nices);
       });`,
    { eval: true, workerData: file(t) },
  );
  const nices = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  // The writer and what the store's open started with it (a libuv or V8 thread).
  assert.ok((nices as number[]).length >= 1, 'the writer started');
  assert.deepEqual(
    (nices as number[]).filter((n) => n !== 15),
    [],
    "every thread at its creator's nice value",
  );
});
