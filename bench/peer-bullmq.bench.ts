/**
 * Hourglass against the usual alternative stack, BullMQ 5 on Redis, running the SAME no-op
 * guest (guest-examples/wat/build/noop.wasm: BullMQ's processor calls it through Extism, as a
 * peer stack running compiled guests would) at the same concurrency (64 = Hourglass's per-tenant
 * in-flight cap = the BullMQ Worker's `concurrency`).
 *
 *   npx tsx bench/peer-bullmq.bench.ts                               (or: npm run bench -- peer)
 *   JOBS=20000 ROUNDS=5 LATENESS_SECONDS=30 npx tsx bench/peer-bullmq.bench.ts   (full run)
 *
 * It starts Debian's /usr/bin/redis-server itself (REDIS env to override), twice, on loopback
 * ports in a temp dir: `aof` (appendonly yes, appendfsync everysec: the fair durable setting,
 * Hourglass's SQLite runs WAL + synchronous=NORMAL) and `none` (no AOF, no RDB), and stops them.
 *
 * 1. End to end: JOBS jobs (default 5000). Hourglass: JOBS schedules of the no-op guest, all
 *    triggered at once through the operator path of a whole host (pool sandbox, SQLite store),
 *    until every run is recorded. BullMQ: `addBulk` of JOBS jobs, one in-process Worker, until
 *    every job completed (BullMQ's defaults: completed jobs are kept, like Hourglass's run rows).
 *    Sustained rate = jobs ÷ wall time; ROUNDS (default 3) alternating rounds, median reported.
 *    Each stack runs in a process of its own, as users run it (bench/peer-stack.ts: why), warmed
 *    up by two full rounds (WARM_UP); this process only starts them and alternates their rounds.
 *    Hourglass runs twice in each round: with its default store writer (`store.writer:
 *    "thread"`, the file written by a thread of its own, which keeps fire lateness low on a busy
 *    disk) and with `"inline"` (group commit on the scheduler's thread: less CPU per run, the
 *    disk's waits on that thread); `ratio` gives both against BullMQ.
 * 2. Fire lateness: 1,000 repeating schedules every 1 s on each stack (Hourglass: `every: 1s`;
 *    BullMQ: job schedulers `every: 1000` on the `aof` Redis) for LATENESS_SECONDS (default 5)
 *    after a 2 s warm-up: start of the run/processor − its due time; p50/p99/max.
 * Writes bench/results/peer-bullmq.json with load, Node and commit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { environment, forkBench, median, percentile, writeResult } from './common.ts';
import type { PeerReply, PeerRequest } from './peer-stack.ts';

const JOBS = Number(process.env.JOBS ?? 5000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONCURRENCY = 64;
const LATENESS_SECONDS = Number(process.env.LATENESS_SECONDS ?? 5);
/** Full rounds each stack runs before the measured ones. */
const WARM_UP = Number(process.env.WARM_UP ?? 2);
const REDIS = process.env.REDIS ?? '/usr/bin/redis-server';
const before = environment();
const dir = mkdtempSync(join(tmpdir(), 'hourglass-peer-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Redis {
  readonly port: number;
  readonly proc: ChildProcess;
}

async function startRedis(name: string, port: number, persist: boolean): Promise<Redis> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir];
  args.push('--dbfilename', `${name}.rdb`, '--appendfilename', `${name}.aof`);
  args.push('--appenddirname', `${name}-aof`, '--daemonize', 'no', '--protected-mode', 'yes');
  if (persist) args.push('--appendonly', 'yes', '--appendfsync', 'everysec');
  else args.push('--appendonly', 'no');
  const proc = spawn(REDIS, args, { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return { port, proc };
    await sleep(50);
  }
  proc.kill();
  throw new Error(`redis-server (${name}) did not start on port ${port}`);
}

/** A stack in a process of its own (bench/peer-stack.ts: why). */
interface Peer {
  ask<T extends PeerReply['type']>(
    req: PeerRequest,
    type: T,
  ): Promise<Extract<PeerReply, { type: T }>>;
  exit(): Promise<void>;
}

const STACK = join(dirname(fileURLToPath(import.meta.url)), 'peer-stack.ts');

/** Forks bench/peer-stack.ts with `args`; resolves once its stack is warm. */
async function startPeer(args: string[]): Promise<Peer> {
  const child = forkBench(STACK, args, { env: { ...process.env, WARM_UP: String(WARM_UP) } });
  await child.next('ready');
  return {
    ask: (req, type) => {
      const answer = child.next(type);
      child.proc.send(req);
      return answer as Promise<Extract<PeerReply, { type: typeof type }>>;
    },
    async exit() {
      if (child.proc.exitCode === null && child.proc.signalCode === null)
        child.proc.send({ type: 'exit' } satisfies PeerRequest);
      await child.exited;
    },
  };
}

const stats = (l: number[]) => ({
  samples: l.length,
  p50: Number(percentile(l, 50).toFixed(3)),
  p99: Number(percentile(l, 99).toFixed(3)),
  max: Number(percentile(l, 100).toFixed(3)),
});

const peers: Peer[] = [];
const redisAof = await startRedis('aof', 16379 + (process.pid % 1000), true);
const redisNone = await startRedis('none', 17379 + (process.pid % 1000), false);
try {
  const peer = async ([kind, arg]: [string, string]) => {
    const p = await startPeer([kind, String(JOBS), String(CONCURRENCY), arg]);
    peers.push(p);
    return p;
  };
  const stacks = {
    hourglass: await peer(['hourglass', 'thread']),
    hourglassInline: await peer(['hourglass', 'inline']),
    bullmqAof: await peer(['bullmq', String(redisAof.port)]),
    bullmqNone: await peer(['bullmq', String(redisNone.port)]),
  };
  const rates: Record<keyof typeof stacks, number[]> = {
    hourglass: [],
    hourglassInline: [],
    bullmqAof: [],
    bullmqNone: [],
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of Object.keys(stacks) as (keyof typeof stacks)[])
      rates[k].push((await stacks[k].ask({ type: 'round' }, 'round')).rate);
    const at = (k: keyof typeof rates) => Math.round(rates[k][r] as number);
    console.log(
      `round ${r + 1}: hourglass ${at('hourglass')}/s (inline writer ${at('hourglassInline')}/s), bullmq aof ${at('bullmqAof')}/s, bullmq none ${at('bullmqNone')}/s`,
    );
  }
  await stacks.hourglassInline.exit();
  await stacks.bullmqNone.exit();
  const med = {
    hourglass: Math.round(median(rates.hourglass)),
    hourglassInline: Math.round(median(rates.hourglassInline)),
    bullmqAof: Math.round(median(rates.bullmqAof)),
    bullmqNone: Math.round(median(rates.bullmqNone)),
  };
  console.log(`fire lateness, 1,000 schedules every 1 s, ${LATENESS_SECONDS} s each`);
  const lateness = { type: 'lateness', seconds: LATENESS_SECONDS } as const;
  const hgLate = stats((await stacks.hourglass.ask(lateness, 'lateness')).late);
  const bqLate = stats((await stacks.bullmqAof.ask(lateness, 'lateness')).late);
  for (const p of peers) await p.exit();
  const result = {
    jobs: JOBS,
    rounds: ROUNDS,
    concurrency: CONCURRENCY,
    method: 'each stack in a process of its own (bench/peer-stack.ts), rounds alternated',
    warmUpRounds: WARM_UP,
    loadBefore: before.loadavg,
    jobsPerSec: { median: med, rounds: rates },
    ratio: {
      vsAof: Number((med.hourglass / med.bullmqAof).toFixed(2)),
      vsNone: Number((med.hourglass / med.bullmqNone).toFixed(2)),
      inlineVsAof: Number((med.hourglassInline / med.bullmqAof).toFixed(2)),
    },
    latenessMs: { hourglass: hgLate, bullmqAof: bqLate },
    goal: 'hourglass jobs/s >= 3x bullmq + redis (aof everysec), default writer',
  };
  console.log(JSON.stringify(result, null, 2));
  writeResult('peer-bullmq', result);
} finally {
  for (const p of peers) await p.exit().catch(() => undefined);
  redisAof.proc.kill();
  redisNone.proc.kill();
  await sleep(200);
  rmSync(dir, { recursive: true, force: true });
}
