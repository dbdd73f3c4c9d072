/**
 * "Where the time goes" for bench/cluster.bench.ts: CPU time per thread and process from
 * /proc (the host processes' main threads, their other threads, the PostgreSQL server's
 * processes), and the main thread's CPU profile split by what the samples were doing.
 *
 * The profile samples the main thread on a wall clock: a synchronous call that blocks in the
 * kernel (better-sqlite3 writing the WAL, or its fsync at a checkpoint) is charged to its JS
 * frame like CPU work; /proc's per-thread CPU tells the two apart.
 *
 * A sample is charged to the deepest frame of its stack that belongs to a known part (so a
 * better-sqlite3 call made by the SqliteStore counts as the store, a socket write made by the
 * pg driver as the driver); samples with no such frame are Node's own ("other"), V8's garbage
 * collector, or idle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundResult } from './cluster-round.ts';

/** /proc's clock ticks per second (`getconf CLK_TCK`: 100 on Linux). */
const TICK_MS = 10;

/** utime + stime (ms) of a /proc/<pid>[/task/<tid>]/stat line, and the children's if asked. */
function statMs(path: string, children = false): number {
  try {
    const text = readFileSync(path, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const t = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    return t * TICK_MS;
  } catch {
    return 0; // gone meanwhile
  }
}

function ppidOf(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** CPU ms of a host process: main thread, Node's own threads, the threads the host started. */
export interface HostCpu {
  main: number;
  nodeThreads: number;
  hostThreads: number;
}

export function hostCpu(pid: number, nodeThreads: readonly number[]): HostCpu {
  const out: HostCpu = { main: 0, nodeThreads: 0, hostThreads: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    const tid = Number(t);
    const ms = statMs(`/proc/${pid}/task/${t}/stat`);
    if (tid === pid) out.main += ms;
    else if (nodeThreads.includes(tid)) out.nodeThreads += ms;
    else out.hostThreads += ms;
  }
  return out;
}

export function diffHostCpu(a: HostCpu, b: HostCpu): HostCpu {
  return {
    main: b.main - a.main,
    nodeThreads: b.nodeThreads - a.nodeThreads,
    hostThreads: b.hostThreads - a.hostThreads,
  };
}

/**
 * CPU ms of a PostgreSQL server: the postmaster (with the children it has reaped) and every
 * live child (backends, WAL writer, checkpointer, ...). 0 when its processes are not readable.
 */
export function postgresCpu(postmasterPid: number | null): number {
  if (postmasterPid === null) return 0;
  let ms = statMs(`/proc/${postmasterPid}/stat`, true);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    if (ppidOf(Number(p)) === postmasterPid) ms += statMs(`/proc/${p}/stat`);
  }
  return ms;
}

/** The postmaster's pid, from `postmaster.pid` in the server's data directory (same machine). */
export function postmasterPid(dataDirectory: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Parts of a host, by the path of the compiled module (or package) a frame is in. */
const PARTS: [string, RegExp][] = [
  [
    'pg driver (flush SQL: encode, socket, parse)',
    /\/node_modules\/(pg|pg-pool|pg-protocol|pg-types|pgpass)\//,
  ],
  ['flush prep (row images, column arrays)', /\/dist\/src\/store\/postgres\/(mirror|tables)\.js/],
  ['PgStore (dirty marks, flush control)', /\/dist\/src\/store\/postgres\//],
  [
    'SQLite store (on PostgreSQL: the in-memory mirror)',
    /\/dist\/src\/store\/|\/node_modules\/better-sqlite3\//,
  ],
  ['scheduler', /\/dist\/src\/(scheduler|schedule)\//],
  ['host run path', /\/dist\/src\/host\//],
  ['sandbox dispatch (main thread side)', /\/dist\/src\/sandbox\//],
  ['cluster (leases, commands)', /\/dist\/src\/cluster\//],
  ['other Hourglass', /\/dist\/src\//],
];

export interface ProfileSplit {
  /** Main-thread ms per part; `idle`, `V8 garbage collector` and the rest apart. */
  byPart: Record<string, number>;
  /** The functions with the most self time: name, file, part, ms. */
  top: { fn: string; file: string; part: string; ms: number }[];
}

export function splitProfile(path: string): ProfileSplit {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = partOf.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id) as ProfileNode;
    const fn = n.callFrame.functionName;
    let part: string;
    if (fn === '(idle)') part = 'idle';
    else if (fn === '(garbage collector)') part = 'V8 garbage collector';
    else if (fn === '(program)') part = 'V8/native, no JS frame';
    else {
      const hit = PARTS.find(([, re]) => re.test(n.callFrame.url));
      const up = parent.get(id);
      part = hit ? hit[0] : up === undefined ? 'Node and other (no Hourglass frame)' : classify(up);
    }
    partOf.set(id, part);
    return part;
  };
  const byPart: Record<string, number> = {};
  const self = new Map<string, { fn: string; file: string; part: string; ms: number }>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    const part = classify(id);
    byPart[part] = (byPart[part] ?? 0) + ms;
    if (part === 'idle') continue;
    const n = byId.get(id) as ProfileNode;
    const file = n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/');
    const key = `${n.callFrame.functionName}@${file}`;
    const e = self.get(key) ?? { fn: n.callFrame.functionName || '(anonymous)', file, part, ms: 0 };
    e.ms += ms;
    self.set(key, e);
  }
  const top = [...self.values()].sort((a, b) => b.ms - a.ms).slice(0, 15);
  for (const t of top) t.ms = Number(t.ms.toFixed(1));
  for (const k of Object.keys(byPart)) byPart[k] = Number((byPart[k] as number).toFixed(1));
  return { byPart, top };
}

/** Prints where the time of a profiled round went (bench/cluster-round.ts). */
export function printProfile(x: RoundResult, windowMs: number): void {
  const share = (ms: number) => `${((ms / windowMs) * 100).toFixed(0)}%`;
  console.log(
    `\nwhere the time goes (${x.workload} ${x.config}, ${x.runsPerSec} runs/s over ${windowMs / 1000} s; CPU in % of one core):`,
  );
  console.log(
    `  host main thread ${share(x.cpuMs.hostMain)}, the host's threads (pool workers) ${share(x.cpuMs.hostThreads)}, ` +
      `Node's threads (GC, compiler) ${share(x.cpuMs.nodeThreads)}, PostgreSQL's processes ${share(x.cpuMs.postgres)}`,
  );
  if (x.profile) {
    console.log(
      '  main thread, sampled: a sample taken while the thread waits in a blocking call (a\n' +
        "  synchronous SQLite write, its fsync) counts for that call's part, not as idle:",
    );
    const total = Object.values(x.profile.byPart).reduce((a, b) => a + b, 0);
    console.table(
      Object.entries(x.profile.byPart)
        .sort((a, b) => b[1] - a[1])
        .map(([part, ms]) => ({
          'main thread (sampled wall time)': part,
          ms: Math.round(ms),
          share: `${((ms / total) * 100).toFixed(1)}%`,
          'µs/run': Number(((ms * 1000) / Math.max(1, x.runs)).toFixed(1)),
        })),
    );
    console.table(x.profile.top.slice(0, 10));
  }
  const f = x.flush?.[0];
  if (f && f.flushes > 0) {
    console.log(
      `  flushes: ${f.flushes} (${((f.flushes * 1000) / windowMs).toFixed(1)}/s), ` +
        `${(f.rows / f.flushes).toFixed(0)} rows each, ${(f.flushMs / f.flushes).toFixed(2)} ms each (longest ${f.maxFlushMs.toFixed(1)} ms) ` +
        `(BEGIN sent → COMMIT answered, or the one statement sent → answered; wall; one flush at a time), ${share(f.flushMs)} of the window`,
    );
    console.table(
      Object.entries(f.byKind).map(([statement, k]) => ({
        statement,
        n: k.n,
        'ms avg': Number((k.ms / k.n).toFixed(3)),
        'ms total': Math.round(k.ms),
      })),
    );
  }
}
