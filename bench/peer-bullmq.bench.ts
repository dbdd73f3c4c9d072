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
 *    Sustained rate = jobs ÷ wall time; ROUNDS (default 3) alternating rounds, each after a full
 *    GC (the stacks share this process), median reported.
 *    Hourglass runs twice in each round: with its default store writer (`store.writer:
 *    "thread"`, the file written by a thread of its own, which keeps fire lateness low on a busy
 *    disk) and with `"inline"` (group commit on the scheduler's thread: less CPU per run, the
 *    disk's waits on that thread); `ratio` gives both against BullMQ.
 * 2. Fire lateness: 1,000 repeating schedules every 1 s on each stack (Hourglass: `every: 1s`;
 *    BullMQ: job schedulers `every: 1000` on the `aof` Redis) for LATENESS_SECONDS (default 5)
 *    after a 2 s warm-up: start of the run/processor − its due time; p50/p99/max.
 * Writes bench/results/peer-bullmq.json with load, Node and commit.
 */
import createPlugin, { type Plugin } from '@extism/extism';
import { Queue, Worker, type Job } from 'bullmq';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { burstHost, NOOP_WASM } from './host-burst.ts';
import { environment, median, percentile, writeResult } from './common.ts';

const JOBS = Number(process.env.JOBS ?? 5000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONCURRENCY = 64;
const LATENESS_SECONDS = Number(process.env.LATENESS_SECONDS ?? 5);
const REDIS = process.env.REDIS ?? '/usr/bin/redis-server';
const before = environment();
const dir = mkdtempSync(join(tmpdir(), 'hourglass-peer-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

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

/** A free list of Extism instances of the no-op guest: one per concurrent job. */
const wasm = readFileSync(NOOP_WASM);
const idle: Plugin[] = [];
const allPlugins: Plugin[] = [];
async function callGuest(input: string): Promise<void> {
  let p = idle.pop();
  if (!p) {
    p = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false });
    allPlugins.push(p);
  }
  try {
    await p.call('run', input);
  } finally {
    idle.push(p);
  }
}

function contextOf(job: Job, startedAt: number): string {
  return JSON.stringify({
    scheduleId: job.name,
    runId: job.id,
    plugin: 'b/noop',
    scheduledAt: new Date(job.timestamp).toISOString(),
    firedAt: new Date(startedAt).toISOString(),
    attempt: job.attemptsMade + 1,
    catchUp: false,
    trigger: 'schedule',
    payload: job.data as unknown,
    cursor: null,
  });
}

let queueSeq = 0;
async function bullmqRound(redis: Redis, jobs: number): Promise<number> {
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
  const name = `bench${queueSeq++}`;
  const queue = new Queue(name, { connection });
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const worker = new Worker(
    name,
    async (job) => {
      await callGuest(contextOf(job, Date.now()));
    },
    { connection, concurrency: CONCURRENCY, autorun: false },
  );
  worker.on('completed', () => {
    if (++done === jobs) resolveAll();
  });
  await worker.waitUntilReady();
  const t0 = performance.now();
  void worker.run();
  for (let i = 0; i < jobs; i += 1000) {
    const n = Math.min(1000, jobs - i);
    await queue.addBulk(
      Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k } })),
    );
  }
  await all;
  const ms = performance.now() - t0;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return (jobs / ms) * 1000;
}

async function bullmqLateness(redis: Redis, seconds: number): Promise<number[]> {
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
  const name = `late${queueSeq++}`;
  const queue = new Queue(name, { connection });
  const late: number[] = [];
  let measuring = false;
  const worker = new Worker(
    name,
    async (job) => {
      const start = now();
      const due = (job.opts as { prevMillis?: number }).prevMillis ?? job.timestamp + job.delay;
      if (measuring) late.push(start - due);
      await callGuest(contextOf(job, start));
    },
    { connection, concurrency: CONCURRENCY },
  );
  for (let i = 0; i < 1000; i++)
    await queue.upsertJobScheduler(`s${i}`, { every: 1000 }, { name: 'noop', data: { i } });
  await sleep(2000);
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return late;
}

async function hourglassLateness(seconds: number): Promise<number[]> {
  const h = await burstHost({
    count: 1000,
    concurrency: CONCURRENCY,
    mode: 'pool',
    declaration: (i) => ({ id: `s${i}`, every: '1s' }),
  });
  const late: number[] = [];
  let measuring = false;
  h.host.events.on('run:started', (run) => {
    if (measuring && run.trigger === 'schedule') late.push(now() - run.scheduledAt);
  });
  const keepAlive = setInterval(() => undefined, 1000);
  await sleep(2000);
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  clearInterval(keepAlive);
  await h.close();
  return late;
}

/**
 * A full collection before each round (the bench runs with --expose-gc): the two stacks share
 * this process, and each round would otherwise pay for the garbage the other stack's round left
 * (BullMQ's 20k jobs, Hourglass's 20k runs) in the GC work that falls into it.
 */
const collect = (): void => (globalThis as { gc?: () => void }).gc?.();

const stats = (l: number[]) => ({
  samples: l.length,
  p50: Number(percentile(l, 50).toFixed(3)),
  p99: Number(percentile(l, 99).toFixed(3)),
  max: Number(percentile(l, 100).toFixed(3)),
});

const redisAof = await startRedis('aof', 16379 + (process.pid % 1000), true);
const redisNone = await startRedis('none', 17379 + (process.pid % 1000), false);
try {
  const hg = await burstHost({
    count: JOBS,
    concurrency: CONCURRENCY,
    mode: 'pool',
    writer: 'thread',
  });
  const hgInline = await burstHost({
    count: JOBS,
    concurrency: CONCURRENCY,
    mode: 'pool',
    writer: 'inline',
  });
  const rates: Record<'hourglass' | 'hourglassInline' | 'bullmqAof' | 'bullmqNone', number[]> = {
    hourglass: [],
    hourglassInline: [],
    bullmqAof: [],
    bullmqNone: [],
  };
  // A warm-up of each stack (JIT, workers, Extism instances), not measured.
  await hg.burst();
  await hgInline.burst();
  await bullmqRound(redisAof, Math.min(JOBS, 2000));
  const round = (h: typeof hg) => h.burst().then((b) => (b.runs / b.ms) * 1000);
  for (let r = 0; r < ROUNDS; r++) {
    collect();
    rates.hourglass.push(await round(hg));
    collect();
    rates.hourglassInline.push(await round(hgInline));
    collect();
    rates.bullmqAof.push(await bullmqRound(redisAof, JOBS));
    collect();
    rates.bullmqNone.push(await bullmqRound(redisNone, JOBS));
    const at = (k: keyof typeof rates) => Math.round(rates[k][r] as number);
    console.log(
      `round ${r + 1}: hourglass ${at('hourglass')}/s (inline writer ${at('hourglassInline')}/s), bullmq aof ${at('bullmqAof')}/s, bullmq none ${at('bullmqNone')}/s`,
    );
  }
  await hg.close();
  await hgInline.close();
  const med = {
    hourglass: Math.round(median(rates.hourglass)),
    hourglassInline: Math.round(median(rates.hourglassInline)),
    bullmqAof: Math.round(median(rates.bullmqAof)),
    bullmqNone: Math.round(median(rates.bullmqNone)),
  };
  console.log(`fire lateness, 1,000 schedules every 1 s, ${LATENESS_SECONDS} s each`);
  const hgLate = stats(await hourglassLateness(LATENESS_SECONDS));
  const bqLate = stats(await bullmqLateness(redisAof, LATENESS_SECONDS));
  const result = {
    jobs: JOBS,
    rounds: ROUNDS,
    concurrency: CONCURRENCY,
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
  redisAof.proc.kill();
  redisNone.proc.kill();
  for (const p of allPlugins) await p.close();
  await sleep(200);
  rmSync(dir, { recursive: true, force: true });
}
