/**
 * Retention pruning beside firing (issue 14: "retention pruning 1M runs without a fire later
 * than 10 ms on the real clock", measured, not asserted). A store file holding RUNS (1,000,000)
 * finished runs, all older than the tenant's 30 days, spread over the schedules that fire; a host
 * on it (the writer thread, the host's default; STORE_WRITER=inline for the inline store) with
 * SCHEDULES interval schedules of the no-op guest firing on the real clock (`every: 10s` with a
 * 10 s jitter: SCHEDULES/10 fires a second, due times spread evenly). Then, in one process:
 *
 * 1. warm-up (two periods, not measured);
 * 2. baseline: fire lateness over BASELINE_S seconds, no pruning;
 * 3. pruning: one retention round (`host.retention.runRound()`, steps of BATCH rows, the
 *    tenant keeping the newest 10 runs of each schedule) while the schedules fire; fire
 *    lateness over the round, and the prune rate (rows deleted / the round's wall time). A round
 *    that has not ended after PRUNE_MAX_S is cut short there (the result says so).
 *
 * Lateness of a fire = the moment the scheduler starts it (`run:started`) − its due time
 * (nominal + the schedule's jitter), as in bench/lateness.bench.ts. Also reported per phase:
 * the event loop's delay, fires over 10 ms and how many of those overlap the hypervisor's steal
 * (this VM's CPUs not running: /proc/stat, `CpuWatch`), 5 ms or more of the scheduler thread
 * waiting for a CPU (the cores busy with other threads: its schedstat) or one of that thread's GC
 * pauses, and the steal and the thread's waits over the phase. Writes
 * bench/results/retention.json (load, Node, commit). ~3-4 minutes with the defaults on a 2-core
 * machine.
 *
 *   node --expose-gc --import ./bench/tsx-main.js bench/retention.bench.ts   (npm run bench -- retention)
 *
 * Env: RUNS (1000000), SCHEDULES (2000), BASELINE_S (30), PRUNE_MAX_S (180), BATCH (500),
 * RATE (`retention.maxRowsPerSec`: the host's default when unset, `none` for no limit),
 * STORE_WRITER (thread | inline).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { hourglass, ROOT } from './built.ts';
import {
  CpuWatch,
  environment,
  fillRuns,
  GcWatch,
  percentile,
  RUN_COLUMNS,
  writeResult,
} from './common.ts';
import { jitterFor } from '../src/schedule/spec.ts';

const { Host, parseHostConfig, SqliteStore } = hourglass;

const RUNS = Number(process.env.RUNS ?? 1_000_000);
const SCHEDULES = Number(process.env.SCHEDULES ?? 2_000);
const BASELINE_S = Number(process.env.BASELINE_S ?? 30);
const PRUNE_MAX_S = Number(process.env.PRUNE_MAX_S ?? 180);
const BATCH = Number(process.env.BATCH ?? 500);
/** `retention.maxRowsPerSec`: unset, the host's default; `none`, no limit. */
const RATE =
  process.env.RATE === undefined
    ? undefined
    : process.env.RATE === 'none'
      ? null
      : Number(process.env.RATE);
const WRITER = process.env.STORE_WRITER === 'inline' ? 'inline' : 'thread';
const KEEP = 10;
const PERIOD_MS = 10_000;
const DAY = 86_400_000;
const NOOP_WASM = resolve(ROOT, 'guest-examples/wat/build/noop.wasm');

const before = environment();
const dir = mkdtempSync(join(tmpdir(), 'hourglass-retention-'));
const path = join(dir, 'hourglass.db');

/** The store file with RUNS finished runs of tenant b, 90 to ~32 days old; answers its ms. */
function buildStore(): number {
  const first = Date.now() - 90 * DAY;
  const step = Math.floor((58 * DAY) / RUNS);
  return fillRuns(
    path,
    (p) => new SqliteStore(p),
    RUN_COLUMNS,
    "?, ?, 'b/noop', 'b', ?, 'schedule', ?, NULL, ?, ?, ?, 1, NULL, 0, ?, 500000000, NULL",
    (insert) => {
      for (let id = 1; id <= RUNS; id++) {
        const s = (id * 7919) % SCHEDULES;
        const started = first + id * step;
        insert.run(
          id,
          `b/noop/s${s}`,
          `s${s}`,
          id % 50 === 3 ? 'failed' : 'succeeded',
          started - 1,
          started,
          started + 2,
          10_000 + ((id * 37) % 90_000),
        );
      }
    },
  );
}

console.log(`building a store with ${RUNS} finished runs…`);
const buildMs = buildStore();
writeFileSync(
  join(dir, 'noop.json'),
  JSON.stringify({ name: 'noop', version: '1', wasm: NOOP_WASM, capabilities: [] }),
);
const config = parseHostConfig(
  {
    store: { path, writer: WRITER },
    sandbox: { mode: 'pool' },
    // Rounds are started by the bench, not the timer.
    retention: {
      intervalMs: 86_400_000,
      batchRows: BATCH,
      ...(RATE === undefined ? {} : { maxRowsPerSec: RATE }),
    },
    tenants: [
      {
        id: 'b',
        quotas: { maxRunsInFlight: 1000, maxSchedules: SCHEDULES + 10 },
        retention: { maxAgeDays: 30, maxRuns: null, keepPerSchedule: KEEP },
        plugins: [{ manifest: 'noop.json' }],
      },
    ],
  },
  'bench',
  dir,
);
const host = new Host(config);
const startT = performance.now();
await host.start();
const startMs = performance.now() - startT;
const caller = { pluginId: 'b/noop', tenant: 'b', phase: 'run' as const };
host.store.transaction(() => {
  for (let i = 0; i < SCHEDULES; i++) {
    const r = host.schedules.create(caller, { id: `s${i}`, every: '10s', jitter: '10s' });
    if (!('ok' in r)) throw new Error(`create failed: ${JSON.stringify(r)}`);
  }
});

const now = (): number => performance.timeOrigin + performance.now();
let phase: 'warmup' | 'baseline' | 'pruning' | 'after' = 'warmup';
const late: Record<'baseline' | 'pruning', number[]> = { baseline: [], pruning: [] };
/** [due, start] (epoch ms) of each fire more than 10 ms late. */
const over: Record<'baseline' | 'pruning', [number, number][]> = { baseline: [], pruning: [] };
const cpu = new CpuWatch();
const gc = new GcWatch();
host.events.on('run:started', (run) => {
  if ((phase !== 'baseline' && phase !== 'pruning') || run.trigger !== 'schedule') return;
  const s = run.schedule;
  const due = run.scheduledAt + jitterFor(s.key, run.scheduledAt, s.jitterMs);
  const start = now();
  late[phase].push(start - due);
  if (start - due > 10) over[phase].push([due, start]);
});
let deleted = 0;
let rounds = 0;
host.events.on('runs:pruned', (e) => {
  deleted += e.count;
  rounds++;
});
const keepAlive = setInterval(() => undefined, 1000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

console.log(
  `host started in ${Math.round(startMs)} ms (${WRITER}); ${SCHEDULES} schedules; warming up ${(2 * PERIOD_MS) / 1000} s`,
);
await sleep(2 * PERIOD_MS);

const ms = (v: number): number => Number(v.toFixed(3));
async function measure(
  name: 'baseline' | 'pruning',
  during: () => Promise<unknown>,
): Promise<Record<string, unknown>> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const proc0 = process.cpuUsage();
  const t0Epoch = now();
  phase = name;
  const t0 = performance.now();
  const ended = await during();
  const wallS = (performance.now() - t0) / 1000;
  const t1Epoch = now();
  phase = 'after';
  loop.disable();
  const proc = process.cpuUsage(proc0);
  const l = late[name];
  return {
    seconds: Number(wallS.toFixed(1)),
    fires: l.length,
    firesPerSec: Math.round(l.length / wallS),
    latenessMs: {
      p50: ms(percentile(l, 50)),
      p99: ms(percentile(l, 99)),
      max: ms(percentile(l, 100)),
    },
    firesOver10ms: l.filter((v) => v > 10).length,
    // Of those, the fires during which the hypervisor ran something else on this VM's CPUs.
    firesOver10msDuringSteal: over[name].filter(([due, start]) => cpu.stealBetween(due, start) > 0)
      .length,
    // As many windows of the same lengths placed evenly over the phase: the count expected by
    // chance, at this phase's rate of steal.
    firesOver10msDuringStealByChance: Number(
      cpu.stealByChance(over[name], t0Epoch, t1Epoch).toFixed(1),
    ),
    // Those during which the scheduler's thread waited 5 ms or more for a CPU.
    firesOver10msWaitingForCpu: over[name].filter(
      ([due, start]) => cpu.waitBetween(due, start) >= 5,
    ).length,
    // And those during one of the scheduler thread's GC pauses.
    firesOver10msDuringGc: over[name].filter(([due, start]) => gc.during(due, start)).length,
    gcPauses: gc.byKind(t0Epoch, t1Epoch),
    stealMs: cpu.stealBetween(t0Epoch, t1Epoch),
    // The scheduler thread's waits for a CPU (samples of 0.5 ms or more).
    mainThreadCpuWaitMs: cpu.waitBetween(t0Epoch, t1Epoch),
    eventLoopDelayMs: {
      p50: ms(loop.percentile(50) / 1e6),
      p99: ms(loop.percentile(99) / 1e6),
      max: ms(loop.max / 1e6),
    },
    processCpuPct: Number(((proc.user + proc.system) / 10_000 / wallS).toFixed(1)),
    heapUsedMbAfter: Math.round(process.memoryUsage().heapUsed / 1e6),
    ...(ended === undefined ? {} : { ended }),
  };
}

console.log(`baseline: ${BASELINE_S} s without pruning`);
const baseline = await measure('baseline', () => sleep(BASELINE_S * 1000));
console.log(baseline);
console.log(
  `pruning: one round (steps of ${BATCH}, at most ${String(config.retention.maxRowsPerSec ?? 'unlimited')} rows/s), at most ${PRUNE_MAX_S} s`,
);
const pruneT0 = performance.now();
const pruning = await measure('pruning', async () => {
  let cap: NodeJS.Timeout | undefined;
  const cut = new Promise<string>((r) => {
    cap = setTimeout(() => r('cut short at PRUNE_MAX_S'), PRUNE_MAX_S * 1000);
  });
  const round = host.retention.runRound().then(() => 'round ended');
  // The cap's timer is cleared, so that the process exits once the results are written.
  return Promise.race([round, cut]).finally(() => clearTimeout(cap));
});
const pruneS = (performance.now() - pruneT0) / 1000;
console.log(pruning);
clearInterval(keepAlive);
const loadAfter = environment().loadavg;
await cpu.close();
gc.close();
await host.stop();
// What the file holds once the host stopped (every flush written).
const db = new Database(path, { readonly: true });
const left = db.prepare("SELECT count(*) AS n FROM runs WHERE tenant = 'b'").get() as { n: number };
db.close();
rmSync(dir, { recursive: true, force: true });

const result = {
  runs: RUNS,
  schedules: SCHEDULES,
  firesPerSecNominal: SCHEDULES / (PERIOD_MS / 1000),
  writer: WRITER,
  batchRows: BATCH,
  maxRowsPerSec: config.retention.maxRowsPerSec,
  keepPerSchedule: KEEP,
  loadBefore: before.loadavg,
  loadAfter,
  buildStoreS: Number((buildMs / 1000).toFixed(1)),
  hostStartMs: Math.round(startMs),
  baseline,
  pruning,
  prune: {
    deleted,
    tenantRounds: rounds,
    seconds: Number(pruneS.toFixed(1)),
    rowsPerSec: Math.round(deleted / pruneS),
    runsLeftInFile: left.n,
  },
  goal: 'no fire later than 10 ms on the real clock while 1M runs are pruned (issue 14; measured, not asserted)',
};
console.log(result);
writeResult('retention', result);
