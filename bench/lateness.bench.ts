/**
 * Fire lateness at scale: 10k active interval schedules of the no-op guest firing 1,000 times a
 * second on the real clock, through the whole host (SQLite store with group commit, the pool
 * sandbox). Each schedule is `every: 10s` with a 10 s jitter, so their due times (nominal time
 * + the schedule's fixed jitter) spread evenly over each 10 s. Lateness of a fire = the moment
 * the scheduler starts it (`run:started`, high-resolution clock) − its due time.
 *
 *   npx tsx bench/lateness.bench.ts                  (or: npm run bench -- lateness)
 *   SECONDS=60 npx tsx bench/lateness.bench.ts       (the "Must show" run)
 *
 * Env: SECONDS (measured window, default 10), SCHEDULES (default 10000; fires/s = SCHEDULES/10),
 * MODE (pool | in-thread, default pool), STORE_WRITER (inline | thread: who writes the store
 * file, default thread, the host's default). The first two periods after start are a warm-up, not
 * measured: a schedule's first tick is one period after its creation plus its jitter (up to one
 * more period), and a first fire reads the schedule created through the API once (it has no
 * `generation` in memory yet), which is not the steady state this measures.
 * Reports p50/p99/max lateness, the event loop's delay (p50/p99/max) over the window, runs
 * recorded per second, and writes bench/results/lateness.json with load, Node and commit. To say
 * where a tail comes from it also reports the fires more than 2 ms late (and how many of them
 * overlapped one of the main thread's GC pauses, or 1 ms or more of that thread waiting for a CPU:
 * `CpuWatch`), those pauses and waits, and the machine's CPU shares
 * over the window (user, system, idle, iowait, steal: another process's or the hypervisor's
 * time shows there). TRACE=file writes every fire's [due, lateness] and every pause's
 * [start, end, kind] (epoch ms).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { burstHost } from './host-burst.ts';
import {
  CpuWatch,
  environment,
  GcWatch,
  machineCpuTimes,
  percentile,
  writeResult,
} from './common.ts';
import { jitterFor } from '../src/schedule/spec.ts';

const SECONDS = Number(process.env.SECONDS ?? 10);
const SCHEDULES = Number(process.env.SCHEDULES ?? 10_000);
const MODE = (process.env.MODE ?? 'pool') as 'pool' | 'in-thread';
const PERIOD_MS = 10_000;
const WARMUP_MS = 2 * PERIOD_MS;

const before = environment();
const setupStart = performance.now();
const h = await burstHost({
  count: SCHEDULES,
  concurrency: 1000,
  mode: MODE,
  declaration: (i) => ({ id: `s${i}`, every: '10s', jitter: '10s' }),
});
const setupMs = performance.now() - setupStart;
const host = h.host;
const now = () => performance.timeOrigin + performance.now();
const late: number[] = [];
/** [due, lateness] of each measured fire, in due order as they come. */
const fires: [number, number][] = [];
const gc = new GcWatch();
const cpuWatch = new CpuWatch();
let measuring = false;
let finished = 0;
host.events.on('run:started', (run) => {
  if (!measuring || run.trigger !== 'schedule') return;
  const s = run.schedule;
  const due = run.scheduledAt + jitterFor(s.key, run.scheduledAt, s.jitterMs);
  const l = now() - due;
  late.push(l);
  fires.push([due, l]);
});
host.events.on('run:finished', () => {
  if (measuring) finished++;
});
const keepAlive = setInterval(() => undefined, 1000);
console.log(
  `${SCHEDULES} schedules armed in ${Math.round(setupMs)} ms; warming up ${WARMUP_MS / 1000} s`,
);
await new Promise((r) => setTimeout(r, WARMUP_MS));
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
measuring = true;
const cpu0 = machineCpuTimes();
const proc0 = process.cpuUsage();
const t0 = performance.now();
const t0Epoch = now();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
measuring = false;
const t1Epoch = now();
const cpu = machineCpuTimes().map((v, i) => v - (cpu0[i] ?? 0));
const proc = process.cpuUsage(proc0);
gc.close();
const gcs = gc.pauses.filter(([start]) => start >= t0Epoch && start <= t1Epoch);
if (process.env.TRACE) writeFileSync(process.env.TRACE, JSON.stringify({ fires, gcs }));
const wallS = (performance.now() - t0) / 1000;
loop.disable();
clearInterval(keepAlive);
const skipped = host.store.listRuns({ status: 'skipped_misfire', limit: 1_000_000 }).length;
await h.close();

const ms = (v: number) => Number(v.toFixed(3));
const result = {
  schedules: SCHEDULES,
  mode: MODE,
  writer: process.env.STORE_WRITER === 'inline' ? 'inline' : 'thread',
  seconds: SECONDS,
  loadBefore: before.loadavg,
  fires: late.length,
  firesPerSec: Math.round(late.length / wallS),
  runsRecordedPerSec: Math.round(finished / wallS),
  skippedMisfire: skipped,
  latenessMs: {
    p50: ms(percentile(late, 50)),
    p99: ms(percentile(late, 99)),
    max: ms(percentile(late, 100)),
  },
  eventLoopDelayMs: {
    p50: ms(loop.percentile(50) / 1e6),
    p99: ms(loop.percentile(99) / 1e6),
    max: ms(loop.max / 1e6),
  },
  over2ms: over2ms(),
  mainThreadGc: gc.summary(t0Epoch, t1Epoch),
  // The main thread's waits for a CPU over the window (samples of 0.5 ms or more).
  mainThreadCpuWaitMs: cpuWatch.waitBetween(t0Epoch, t1Epoch),
  // The host process's CPU (all its threads) over the window, in % of one core.
  processCpuPct: Number(((proc.user + proc.system) / 10_000 / wallS).toFixed(1)),
  // Shares of the machine's CPU time (all cores) over the window, from /proc/stat.
  machineCpuPct: cpuShares(),
  goal: 'p99 fire lateness <= 2 ms at 10k schedules, 1,000 fires/s, 60 s, quiet machine',
};

/**
 * Fires started more than 2 ms late: how many, how many waited on a GC pause, and how many while
 * the main thread waited 1 ms or more for a CPU.
 */
function over2ms(): { fires: number; pct: number; duringGc: number; waitingForCpu: number } {
  let n = 0;
  let duringGc = 0;
  let waitingForCpu = 0;
  for (const [due, l] of fires) {
    if (l <= 2) continue;
    n++;
    // A pause that overlapped [due, due + l]: the fire waited on it (at least partly).
    if (gc.during(due, due + l)) duringGc++;
    if (cpuWatch.waitBetween(due, due + l) >= 1) waitingForCpu++;
  }
  const pct = Number(((100 * n) / Math.max(1, fires.length)).toFixed(2));
  return { fires: n, pct, duringGc, waitingForCpu };
}

function cpuShares(): Record<string, number> {
  const total = cpu.reduce((a, v) => a + v, 0) || 1;
  const pct = (i: number) => Number(((100 * (cpu[i] ?? 0)) / total).toFixed(1));
  return { user: pct(0) + pct(1), system: pct(2), idle: pct(3), iowait: pct(4), steal: pct(7) };
}
console.log(result);
writeResult('lateness', result);
await cpuWatch.close();
