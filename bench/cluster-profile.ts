/**
 * "Where the time goes" for bench/cluster.bench.ts: CPU time per thread and process from
 * /proc (the host processes' main threads, their other threads, the PostgreSQL server's
 * processes), and the main thread's CPU profile split by what the samples were doing.
 *
 * A sample is charged to the deepest frame of its stack that belongs to a known part (so a
 * better-sqlite3 call made by the SqliteStore counts as the store, a socket write made by the
 * pg driver as the driver); samples with no such frame are Node's own ("other"), V8's garbage
 * collector, or idle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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
    'SQLite store (PgStore: the in-memory mirror)',
    /\/dist\/src\/store\/|\/node_modules\/better-sqlite3\//,
  ],
  ['scheduler', /\/dist\/src\/(scheduler|schedule)\//],
  ['host run path', /\/dist\/src\/host\//],
  ['sandbox dispatch (main thread side)', /\/dist\/src\/sandbox\//],
  ['cluster (leases, commands)', /\/dist\/src\/cluster\//],
  ['other Hourglass', /\/dist\/src\//],
];

/** Main-thread ms per part over the profile; `(idle)`, `(garbage collector)` and the rest apart. */
export function splitProfile(path: string): Record<string, number> {
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
  const out: Record<string, number> = {};
  for (let i = 0; i < p.samples.length; i++) {
    const part = classify(p.samples[i] as number);
    out[part] = (out[part] ?? 0) + (p.timeDeltas[i] ?? 0) / 1000;
  }
  return out;
}
