/**
 * One host process of bench/cluster.bench.ts (not a bench of its own): `openHost` on the config
 * file named by argv[2] (SQLite or PostgreSQL: what `hourglass start` does), from the compiled
 * dist/ (bench/built.ts). Forked with an IPC channel by the bench:
 *
 * - child → parent `{ type: 'started', pid, nodeThreads }` once `start()` resolved (on
 *   PostgreSQL: joined the cluster with whatever share it could take at once; the bench waits
 *   for the balance itself); `nodeThreads`: the thread ids before the host was made (Node's
 *   own: main and V8's platform threads), so the bench can tell the host's threads apart;
 * - parent → child `{ cmd: 'drive', perTenant }`: starts the closed loop of triggers (below);
 * - parent → child `{ cmd: 'profile-start' }` / `{ cmd: 'profile-stop', path }` (answered
 *   `profiling` / `profiled`): V8's sampling profiler on the main thread over the measured window
 *   only (through `node:inspector`), written to `path` as a .cpuprofile; `profiled` carries
 *   the flush timing (below) over the same span;
 * - parent → child `{ cmd: 'stop' }`: stops the host (runs finish, everything is written, leases
 *   are released), sends `{ type: 'stopped', errors }` and exits.
 *
 * `CLUSTER_HOST_FLUSH_TIMING=1` (the bench's profiled round only) times the PostgreSQL store's
 * flushes from outside the store: it wraps the clients `PgStore` takes from its pool with
 * `pool.connect()` (which only flushes and tenant loads do) and sums, per statement kind, the
 * wall time from sending to the answer, and the rows each flush upserts. A flush is either the
 * one statement `WITH lease …` (its rows: the sum of its 4th parameter, rows per tenant) or,
 * when it replaces job contracts, BEGIN … COMMIT. Nothing in src/ changes.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname } from 'node:path';
import type { PoolClient } from 'pg';
import type * as OpenHostModule from '../src/cluster/open-host.ts';
import type { PgStore } from '../src/store/postgres/pg-store.ts';
import { fromDist, hourglass } from './built.ts';

const { openHost } = await fromDist<typeof OpenHostModule>('src/cluster/open-host.js');
const { parseHostConfig } = hourglass;

const file = process.argv[2];
if (!file || !process.send) {
  console.error('usage: forked by bench/cluster.bench.ts with a config file');
  process.exit(2);
}
const config = parseHostConfig(JSON.parse(readFileSync(file, 'utf8')), file, dirname(file));

/** Wall time (ms) and count per statement kind of the store's flushes, and rows upserted. */
export interface FlushTiming {
  flushes: number;
  /** From BEGIN sent to COMMIT answered (or the one statement's round trip), summed; the longest. */
  flushMs: number;
  maxFlushMs: number;
  rows: number;
  byKind: Record<string, { n: number; ms: number }>;
}

const timing: FlushTiming = { flushes: 0, flushMs: 0, maxFlushMs: 0, rows: 0, byKind: {} };

const ONE_STATEMENT = 'flush (one statement)';

function kindOf(sql: string): string {
  const s = sql.trimStart();
  if (s.startsWith('WITH lease ')) return ONE_STATEMENT;
  if (s.startsWith('INSERT INTO ')) return `upsert ${s.slice(12).split(/[\s(]/)[0] ?? '?'}`;
  if (s.startsWith('SELECT tenant, owner, epoch FROM hg_shards')) return 'lock leases';
  return s.split(/\s/)[0]?.toUpperCase() ?? '?';
}

/** Wraps the promise form of `pool.connect()`: its clients' queries are timed. */
function timeFlushes(store: PgStore): void {
  const pool = store.pool;
  const connect = pool.connect.bind(pool) as (...a: unknown[]) => unknown;
  (pool as unknown as { connect: (...a: unknown[]) => unknown }).connect = (...args) => {
    if (args.length > 0) return connect(...args); // pool.query's callback form: untouched
    return (connect() as Promise<PoolClient>).then((client) => {
      const marked = client as unknown as {
        __hgTimed?: boolean;
        query: (...a: unknown[]) => unknown;
      };
      if (!marked.__hgTimed) {
        marked.__hgTimed = true;
        const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
        let begun = 0;
        marked.query = (...a: unknown[]) => {
          // pool.query's callback form (this client back in the pool): untouched.
          if (typeof a[a.length - 1] === 'function') return query(...a);
          const sql = typeof a[0] === 'string' ? a[0] : '';
          const kind = kindOf(sql);
          const t0 = performance.now();
          if (kind === 'BEGIN' && sql.trim() === 'BEGIN') begun = t0;
          if (kind.startsWith('upsert ')) {
            const cols = a[1] as unknown[][] | undefined;
            timing.rows += Array.isArray(cols?.[0]) ? cols[0].length : 0;
          }
          if (kind === ONE_STATEMENT) {
            begun = t0;
            const perTenant = (a[1] as unknown[] | undefined)?.[3];
            if (Array.isArray(perTenant))
              for (const n of perTenant) timing.rows += typeof n === 'number' ? n : 0;
          }
          return query(...a).then((r) => {
            const t1 = performance.now();
            const k = (timing.byKind[kind] ??= { n: 0, ms: 0 });
            k.n++;
            k.ms += t1 - t0;
            if ((kind === 'COMMIT' || kind === ONE_STATEMENT) && begun > 0) {
              timing.flushes++;
              timing.flushMs += t1 - begun;
              timing.maxFlushMs = Math.max(timing.maxFlushMs, t1 - begun);
              begun = 0;
            }
            return r;
          });
        };
      }
      return client;
    });
  };
}

// Threads Node itself started (V8's platform threads: GC and compiler helpers); the ones that
// appear later are the host's (the pool's workers, libuv's thread pool).
const nodeThreads = readdirSync('/proc/self/task').map(Number);
const opened = await openHost(config, {});
let errors = 0;
opened.host.events.on('host:error', (e) => {
  if (errors++ < 5) console.error(`cluster-host ${process.pid}: ${e.message}`);
});
if (process.env.CLUSTER_HOST_FLUSH_TIMING === '1' && opened.cluster)
  timeFlushes(opened.host.store as unknown as PgStore);
await opened.start();
// The pool's workers and the cluster's timers do not hold the event loop open.
const keepAlive = setInterval(() => undefined, 1000);
process.send({ type: 'started', pid: process.pid, nodeThreads });

/**
 * The closed loop (`{ cmd: 'drive', perTenant }`): each of the first `perTenant` schedules
 * (`s0`…) of every plugin this host has loaded is triggered (the operator path: the same
 * at-most-one gate, run row, durable start, guest call and outcome as a fire), and triggered
 * again as soon as its run's outcome is recorded and the schedule is free, so `perTenant` runs
 * per tenant are always in flight or being recorded: the rate is the system's.
 */
let driving = false;
function drive(perTenant: number): void {
  const host = opened.host;
  driving = true;
  const trigger = (key: string): void => {
    if (!driving) return;
    // The run's end is reported before its schedule is released: a trigger then would be
    // recorded `skipped_overlap`.
    if (host.scheduler.isBusy(key)) return void setImmediate(trigger, key);
    host.operate(key, 'trigger'); // not_found: the tenant went to another host
  };
  host.events.on('run:finished', (run) => {
    if (run.trigger === 'manual') setImmediate(trigger, run.scheduleKey);
  });
  for (const p of host.plugins) for (let i = 0; i < perTenant; i++) trigger(`${p.id}/s${i}`);
}

let session: Session | null = null;
process.on('message', (m: { cmd?: string; path?: string; perTenant?: number }) => {
  if (m.cmd === 'drive') return drive(m.perTenant as number);
  if (m.cmd === 'profile-start') {
    Object.assign(timing, { flushes: 0, flushMs: 0, maxFlushMs: 0, rows: 0, byKind: {} });
    session = new Session();
    session.connect();
    void session
      .post('Profiler.enable')
      .then(() => session?.post('Profiler.start'))
      .then(() => process.send?.({ type: 'profiling' }));
    return;
  }
  if (m.cmd === 'profile-stop') {
    void (session as Session).post('Profiler.stop').then(({ profile }) => {
      writeFileSync(m.path as string, JSON.stringify(profile));
      session?.disconnect();
      process.send?.({ type: 'profiled', flush: timing });
    });
    return;
  }
  if (m.cmd !== 'stop') return;
  driving = false;
  void opened.stop(5_000).then(
    () => {
      clearInterval(keepAlive);
      process.send?.({ type: 'stopped', errors }, () => process.exit(0));
    },
    (err: unknown) => {
      console.error(`cluster-host ${process.pid}: stop failed: ${String(err)}`);
      process.exit(1);
    },
  );
});
