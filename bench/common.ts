/** Shared helpers for benchmarks: a results table with ratios against a baseline, written to bench/results/. */
import type BetterSqlite3 from 'better-sqlite3';
import Database from 'better-sqlite3';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Bench } from 'tinybench';
import { PROJECT_ROOT } from '../src/config/host-config.ts';

export interface Row {
  readonly name: string;
  readonly opsPerSec: number;
  readonly meanUs: number;
  readonly p99Us: number;
  readonly samples: number;
}

export function rows(bench: Bench): Row[] {
  return bench.tasks.map((task) => {
    const r = task.result;
    if (!('latency' in r)) throw new Error(`task ${task.name} did not complete: ${r.state}`);
    return {
      name: task.name,
      opsPerSec: r.throughput.mean,
      meanUs: r.latency.mean * 1000,
      p99Us: r.latency.p99 * 1000,
      samples: r.latency.samplesCount ?? r.latency.samples?.length ?? 0,
    };
  });
}

/** Prints a table with each row's ratio to `baseline`, and writes the JSON to bench/results/<name>.json. */
export function report(
  name: string,
  all: Row[],
  baseline: string,
  notes: Record<string, unknown> = {},
): void {
  const base = all.find((r) => r.name === baseline);
  if (!base) throw new Error(`no baseline row '${baseline}'`);
  console.log(`\n${name} (baseline: ${baseline})`);
  console.table(
    all.map((r) => ({
      task: r.name,
      'ops/s': Math.round(r.opsPerSec),
      'mean µs': r.meanUs.toFixed(1),
      'p99 µs': r.p99Us.toFixed(1),
      'vs baseline': `${(r.opsPerSec / base.opsPerSec).toFixed(3)}×`,
      samples: r.samples,
    })),
  );
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        name,
        date: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?' },
        baseline,
        rows: all.map((r) => ({ ...r, ratio: r.opsPerSec / base.opsPerSec })),
        ...notes,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`results written to ${file}`);
}

/** What every result records: when, where, on what load, at which commit. */
export function environment(): Record<string, unknown> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT })
      .toString()
      .trim();
    // Results a bench of the same run just wrote do not make the code dirty.
    const dirty = execFileSync(
      'git',
      ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results'],
      { cwd: PROJECT_ROOT },
    ).toString();
    if (dirty.trim() !== '') commit += '+dirty';
  } catch {
    // Not a git checkout.
  }
  return {
    date: new Date().toISOString(),
    commit,
    loadavg: os.loadavg().map((l) => Number(l.toFixed(2))),
    machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?' },
  };
}

/** The `p`-th percentile (0-100) of `values` (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Writes `bench/results/<name>.json` with the environment; returns the file's path. */
export function writeResult(name: string, result: Record<string, unknown>): string {
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ name, ...environment(), ...result }, null, 2)}\n`);
  console.log(`results written to ${file}`);
  return file;
}

/**
 * Fills a fresh store's `runs` table fast (benchmarks that need a large history): the store is
 * created by `newStore` (its migrations), then, in one transaction without the runs indexes
 * (rebuilt after), `fill` inserts through the statement `INSERT INTO runs (columns) VALUES
 * (values)`; then a checkpoint and ANALYZE. Answers the ms it took.
 */
export function fillRuns(
  path: string,
  newStore: (path: string) => { close(): void },
  columns: string,
  values: string,
  fill: (insert: BetterSqlite3.Statement) => void,
): number {
  const t0 = performance.now();
  newStore(path).close();
  const db = new Database(path);
  try {
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144');
    const indexes = db
      .prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL",
      )
      .all() as { name: string; sql: string }[];
    const insert = db.prepare(`INSERT INTO runs (${columns}) VALUES (${values})`);
    db.transaction(() => {
      for (const { name } of indexes) db.exec(`DROP INDEX ${name}`);
      fill(insert);
      for (const { sql } of indexes) db.exec(sql);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
  return performance.now() - t0;
}

/** A benchmark's child process (bench/cluster-host.ts, bench/peer-stack.ts): IPC messages `{ type, … }`. */
export interface BenchChild {
  readonly proc: ChildProcess;
  /** The next message of `type` (one that came before this call included); rejects if the process exits first. */
  next(type: string): Promise<Record<string, unknown>>;
  /** Resolves when the process has exited (listened from the fork on: it may exit early). */
  readonly exited: Promise<void>;
}

/**
 * Forks `script` as bench/run-all.ts runs a benchmark: under bench/tsx-main.js (tsx in its main
 * thread only), after `execArgv`, its output on this process's.
 */
export function forkBench(
  script: string,
  args: readonly string[],
  opts: { readonly env?: NodeJS.ProcessEnv; readonly execArgv?: readonly string[] } = {},
): BenchChild {
  const tsxMain = pathToFileURL(join(PROJECT_ROOT, 'bench', 'tsx-main.js')).href;
  const proc = fork(script, args, {
    execArgv: [
      ...(opts.execArgv ?? []),
      '--disable-warning=ExperimentalWarning',
      '--import',
      tsxMain,
    ],
    env: opts.env ?? process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  const early: Record<string, unknown>[] = [];
  proc.on('message', (m: Record<string, unknown>) => {
    const w = waiting.get(m.type as string);
    if (w) {
      waiting.delete(m.type as string);
      w(m);
    } else early.push(m);
  });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((res, rej) => {
      const i = early.findIndex((m) => m.type === type);
      if (i >= 0) return res(early.splice(i, 1)[0] as Record<string, unknown>);
      waiting.set(type, res);
      void exited.then(() => rej(new Error(`${script} exited before '${type}'`)));
    });
  return { proc, next, exited };
}

/** The `runs` columns a benchmark's history fills (`fillRuns`). */
export const RUN_COLUMNS = `id, schedule_key, plugin_id, tenant, local_id, trigger, status, reason,
  scheduled_at, started_at, finished_at, attempt, error, output_bytes, fuel_used, fuel_budget, result`;

/**
 * The machine's CPU time by kind (ms, all cores since boot): /proc/stat's first line, in its order
 * (user, nice, system, idle, iowait, irq, softirq, steal, …). Differences of two reads give a
 * window's shares.
 */
export function machineCpuTimes(): number[] {
  return (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map((ticks) => Number(ticks) * 10);
}

const GC_KINDS: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };

/**
 * This thread's GC pauses as they happen (a `gc` PerformanceObserver; on the thread that runs
 * the bench, the host's scheduler thread): each [start, end, kind], epoch ms, kind as
 * `NODE_PERFORMANCE_GC_*`. To say which late fires waited on one.
 */
export class GcWatch {
  readonly pauses: [start: number, end: number, kind: number][] = [];
  readonly #observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const at = performance.timeOrigin + e.startTime;
      this.pauses.push([
        at,
        at + e.duration,
        (e as PerformanceEntry & { detail: { kind: number } }).detail.kind,
      ]);
    }
  });

  constructor() {
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** A pause overlapped [from, to] (epoch ms). */
  during(from: number, to: number): boolean {
    return this.pauses.some(([a, b]) => a <= to && b >= from);
  }

  /** The pauses that started in [from, to]: count, total, median and longest ms. */
  summary(
    from: number,
    to: number,
  ): { pauses: number; totalMs: number; p50Ms: number; maxMs: number } {
    const d = this.pauses.filter(([a]) => a >= from && a <= to).map(([a, b]) => b - a);
    const ms = (v: number) => Number(v.toFixed(3));
    return {
      pauses: d.length,
      totalMs: ms(d.reduce((a, v) => a + v, 0)),
      p50Ms: ms(percentile(d, 50)),
      maxMs: ms(percentile(d, 100)),
    };
  }

  /** The pauses that started in [from, to], by kind: count, total and longest ms. */
  byKind(from: number, to: number): Record<string, { n: number; ms: number; maxMs: number }> {
    const out: Record<string, { n: number; ms: number; maxMs: number }> = {};
    for (const [a, b, kind] of this.pauses) {
      if (a < from || a > to) continue;
      const k = (out[GC_KINDS[kind] ?? String(kind)] ??= { n: 0, ms: 0, maxMs: 0 });
      k.n++;
      k.ms = Number((k.ms + b - a).toFixed(3));
      k.maxMs = Number(Math.max(k.maxMs, b - a).toFixed(3));
    }
    return out;
  }

  close(): void {
    this.#observer.disconnect();
  }
}

/**
 * Where the CPU went while a bench ran (Linux): a thread reads every 2 ms the hypervisor's steal
 * (/proc/stat: this VM's CPUs not running) and the time this process's main thread, the host's
 * scheduler thread, spent runnable but waiting for a CPU (its /proc/<pid>/task/<pid>/schedstat:
 * the cores were busy with other threads or processes), and notes when either grew (steal in
 * ticks of 10 ms; a wait of 0.5 ms or more in a sample). So a bench can say which of its late
 * fires fall where the machine, or the other threads, held the CPU.
 */
export class CpuWatch {
  readonly #worker: Worker;
  /** [epoch ms when seen, steal ms added since the previous read]. */
  readonly #steal: [number, number][] = [];
  /** [epoch ms when seen, ms the main thread waited for a CPU since the previous read]. */
  readonly #waited: [number, number][] = [];

  constructor() {
    this.#worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const { readFileSync } = require('node:fs');
       // machineCpuTimes()'s field 7 (this code runs in its own thread, from a string).
       const steal = () => Number(readFileSync('/proc/stat', 'utf8').split('\\n')[0].trim().split(/\\s+/)[8]) * 10;
       const stat = '/proc/' + process.pid + '/task/' + process.pid + '/schedstat';
       const wait = () => Number(readFileSync(stat, 'utf8').split(' ')[1]) / 1e6;
       let lastSteal = steal();
       let lastWait = wait();
       setInterval(() => {
         const s = steal();
         const w = wait();
         if (s > lastSteal || w - lastWait >= 0.5)
           parentPort.postMessage([performance.timeOrigin + performance.now(), s - lastSteal, w - lastWait]);
         lastSteal = s;
         lastWait = w;
       }, 2);`,
      { eval: true },
    );
    this.#worker.on('message', ([at, steal, wait]: [number, number, number]) => {
      if (steal > 0) this.#steal.push([at, steal]);
      if (wait >= 0.5) this.#waited.push([at, wait]);
    });
    this.#worker.unref();
  }

  /** Steal (ms) seen from `from` to 5 ms after `to` (epoch ms: the sampler notes it after). */
  stealBetween(from: number, to: number): number {
    return sumBetween(this.#steal, from, to + 5);
  }

  /**
   * The main thread's waits for a CPU (ms, samples of 0.5 ms or more) seen from `from` to 3 ms
   * after `to` (a sample covers the 2 ms before it).
   */
  waitBetween(from: number, to: number): number {
    return sumBetween(this.#waited, from, to + 3);
  }

  /**
   * How many of `windows` ([from, to], epoch ms) would overlap steal by chance: each window
   * moved to `shifts` evenly spaced places in [start, end] (same length), the mean count that
   * overlap. To read `stealBetween`'s count against when steal is frequent.
   */
  stealByChance(
    windows: readonly [number, number][],
    start: number,
    end: number,
    shifts = 200,
  ): number {
    let hits = 0;
    for (const [from, to] of windows) {
      const len = to - from;
      for (let i = 0; i < shifts; i++) {
        const at = start + ((end - start - len) * i) / shifts;
        if (this.stealBetween(at, at + len) > 0) hits++;
      }
    }
    return hits / shifts;
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}

function sumBetween(events: readonly [number, number][], from: number, to: number): number {
  let ms = 0;
  for (const [at, d] of events) if (at >= from && at <= to) ms += d;
  return Number(ms.toFixed(3));
}
