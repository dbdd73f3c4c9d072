/**
 * The analysis of bench/cluster.bench.ts (bench/cluster-profile.ts): a profile's samples are
 * charged to the deepest frame of a known part, and CPU is read from /proc. No speed asserted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hostCpu, postgresCpu, splitProfile } from '../../bench/cluster-profile.ts';

const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({
  id,
  callFrame: { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 },
  children,
});

test('samples go to the deepest frame of a known part; idle and GC apart', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hg-profile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = '/x/hourglass';
  const nodes = [
    frame(1, '(root)', '', [2, 3, 4, 8]),
    frame(2, 'fire', `file://${root}/dist/src/scheduler/scheduler.js`, [5]),
    frame(3, '(idle)', ''),
    frame(4, '(garbage collector)', ''),
    // scheduler → store (JS) → better-sqlite3's native `run` (no url): the store's.
    frame(5, 'insertRun', `file://${root}/dist/src/store/sqlite-store.js`, [6]),
    frame(6, 'run', '', []),
    frame(7, 'onData', 'node:net', []),
    // A socket callback with no Hourglass frame: Node's.
    frame(8, 'emit', 'node:events', [7, 9]),
    // The pg driver called from a Node frame: the driver's.
    frame(9, 'parse', `file://${root}/node_modules/pg-protocol/dist/parser.js`, []),
  ];
  const samples = [6, 6, 2, 3, 3, 3, 4, 7, 9];
  const file = join(dir, 'p.cpuprofile');
  writeFileSync(
    file,
    JSON.stringify({ nodes, samples, timeDeltas: samples.map(() => 1000), startTime: 0 }),
  );
  const { byPart, top } = splitProfile(file);
  assert.deepEqual(byPart, {
    'SQLite store (on PostgreSQL: the in-memory mirror)': 2,
    scheduler: 1,
    idle: 3,
    'V8 garbage collector': 1,
    'Node and other (no Hourglass frame)': 1,
    'pg driver (flush SQL: encode, socket, parse)': 1,
  });
  assert.equal(top[0]?.fn, 'run');
  assert.equal(top[0]?.ms, 2);
  assert.ok(!top.some((f) => f.fn === '(idle)'));
});

test("a process's CPU by thread, from /proc", () => {
  const until = Date.now() + 50;
  while (Date.now() < until); // some CPU on the main thread
  const cpu = hostCpu(process.pid, []);
  assert.ok(cpu.main > 0);
  assert.equal(cpu.nodeThreads, 0);
  // Threads listed as Node's own are not the host's.
  const others = readdirSync(`/proc/${process.pid}/task`)
    .map(Number)
    .filter((tid) => tid !== process.pid);
  assert.equal(hostCpu(process.pid, others).hostThreads, 0);
  assert.deepEqual(hostCpu(2 ** 30, []), { main: 0, nodeThreads: 0, hostThreads: 0 });
  assert.equal(postgresCpu(null), 0);
});
