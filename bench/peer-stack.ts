/**
 * One stack of bench/peer-bullmq.bench.ts in a process of its own (forked by the bench):
 *
 *   peer-stack.ts hourglass JOBS CONCURRENCY thread|inline   a host (bench/host-burst.ts), JOBS schedules
 *   peer-stack.ts bullmq JOBS CONCURRENCY REDIS_PORT         a BullMQ Queue and Worker on that Redis
 *
 * CONCURRENCY is Hourglass's per-tenant in-flight cap and BullMQ's Worker `concurrency`.
 *
 * Why a process each: a user runs either stack alone in its process. In one shared process each
 * stack's rounds paid for the other's heap (BullMQ's 20k completed jobs, Hourglass's mirror and
 * its 64 Extism instances for BullMQ's processor) in their GC work, and the full collection the
 * bench made before each round to even that out made things worse for both: V8 then set the old
 * generation's limit from a freshly compacted heap, and the round that followed paid for a major
 * GC its own steady state does not have (a 20k burst at ~29k runs/s after a forced collection
 * against ~32k without, on the 2-core VM of docs/store.md).
 *
 * It warms its stack up (WARM_UP full rounds, not measured: both stacks ran their first
 * measured rounds 5-25% slower after one), sends `{ type: 'ready' }`, then answers the
 * bench's messages: `round` (one round, `{ type: 'round', rate }` in jobs/s of wall time),
 * `lateness` (`{ type: 'lateness', late }`: start − due of every run in `seconds` after a 2 s
 * warm-up, 1,000 schedules every 1 s), `exit`.
 */
import createPlugin, { type Plugin } from '@extism/extism';
import { Queue, Worker, type Job } from 'bullmq';
import { readFileSync } from 'node:fs';
import { burstHost, NOOP_WASM, type BurstHost } from './host-burst.ts';

type Reply =
  { type: 'ready' } | { type: 'round'; rate: number } | { type: 'lateness'; late: number[] };
export type PeerRequest =
  { type: 'round' } | { type: 'lateness'; seconds: number } | { type: 'exit' };
export type PeerReply = Reply;

/** Rounds run before the measured ones (env WARM_UP, set by the bench). */
const WARM_UP = Number(process.env.WARM_UP);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

interface Stack {
  round(): Promise<number>;
  lateness(seconds: number): Promise<number[]>;
  close(): Promise<void>;
}

// ---- Hourglass ----

async function hourglassStack(jobs: number, writer: 'thread' | 'inline'): Promise<Stack> {
  let burst: BurstHost | null = await burstHost({
    count: jobs,
    concurrency: CONCURRENCY,
    mode: 'pool',
    writer,
  });
  for (let i = 0; i < WARM_UP; i++) await burst.burst(); // JIT, workers
  return {
    async round() {
      const b = await (burst as BurstHost).burst();
      return (b.runs / b.ms) * 1000;
    },
    async lateness(seconds) {
      await burst?.close();
      burst = null;
      const h = await burstHost({
        count: 1000,
        concurrency: CONCURRENCY,
        mode: 'pool',
        writer,
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
    },
    async close() {
      await burst?.close();
    },
  };
}

// ---- BullMQ: its processor calls the same no-op guest through Extism ----

/** A free list of Extism instances of the no-op guest: one per concurrent job. */
const idle: Plugin[] = [];
const allPlugins: Plugin[] = [];
let wasm: Buffer | null = null;
async function callGuest(input: string): Promise<void> {
  let p = idle.pop();
  if (!p) {
    wasm ??= readFileSync(NOOP_WASM);
    p = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false });
    allPlugins.push(p);
  }
  try {
    await p.call('run', input);
  } finally {
    idle.push(p);
  }
}

/** The run context Hourglass gives its guest, built from the job. */
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

async function bullmqStack(jobs: number, port: number): Promise<Stack> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  let queueSeq = 0;
  /** `addBulk` of `n` jobs, one in-process Worker, until every job completed. */
  async function round(n: number): Promise<number> {
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
      if (++done === n) resolveAll();
    });
    await worker.waitUntilReady();
    const t0 = performance.now();
    void worker.run();
    for (let i = 0; i < n; i += 1000) {
      const k = Math.min(1000, n - i);
      await queue.addBulk(
        Array.from({ length: k }, (_, j) => ({ name: 'noop', data: { i: i + j } })),
      );
    }
    await all;
    const ms = performance.now() - t0;
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    return (n / ms) * 1000;
  }
  for (let i = 0; i < WARM_UP; i++) await round(jobs); // JIT, connections, Extism instances
  return {
    round: () => round(jobs),
    async lateness(seconds) {
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
    },
    async close() {
      for (const p of allPlugins) await p.close();
    },
  };
}

// ---- the process ----

const send = (m: Reply) =>
  new Promise<void>((resolve) =>
    (process.send as NonNullable<typeof process.send>)(m, () => resolve()),
  );

const [kind, jobsArg, concurrencyArg, arg] = process.argv.slice(2);
const jobs = Number(jobsArg);
const CONCURRENCY = Number(concurrencyArg);
if (
  !process.send ||
  !(jobs > 0) ||
  !(CONCURRENCY > 0) ||
  !(WARM_UP >= 0) ||
  (kind !== 'hourglass' && kind !== 'bullmq')
) {
  console.error(
    'usage (forked by bench/peer-bullmq.bench.ts): WARM_UP=n peer-stack.ts hourglass|bullmq JOBS CONCURRENCY thread|inline|REDIS_PORT',
  );
  process.exit(2);
}
const stack =
  kind === 'hourglass'
    ? await hourglassStack(jobs, arg === 'inline' ? 'inline' : 'thread')
    : await bullmqStack(jobs, Number(arg));
await send({ type: 'ready' });
// One request at a time: the bench waits for each answer.
process.on('message', (m: PeerRequest) => {
  void (async () => {
    if (m.type === 'round') await send({ type: 'round', rate: await stack.round() });
    else if (m.type === 'lateness')
      await send({ type: 'lateness', late: await stack.lateness(m.seconds) });
    else {
      await stack.close();
      process.exit(0);
    }
  })().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
});
