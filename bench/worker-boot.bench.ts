/**
 * Worker boot: CPU time and wall time from `new Worker(entry)` to the pool worker's `ready`
 * message, for the compiled worker (dist/, what an installed package boots) and the TypeScript
 * sources through tsx (tests, development), beside an empty worker (thread + isolate only).
 *
 *   npm run build && npx tsx bench/worker-boot.bench.ts        (ROUNDS=5 WORKERS=10 by default)
 *
 * Each round runs one child process per variant (alternating), which boots WORKERS workers one
 * after another; CPU is the child's `process.cpuUsage()` across the boot (every thread: the main
 * thread only waits). The first boot of a process (cold module caches) is reported apart from
 * the median of the rest. Results: bench/results/worker-boot.json with load average, Node
 * version, commit and cores.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../src/config/host-config.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const WORKERS = Number(process.env.WORKERS ?? 10);

interface Boot {
  readonly cpuMs: number;
  readonly wallMs: number;
}

/** The child: boots WORKERS workers from `entry` one at a time and prints their timings. */
function childScript(pool: string, entry: string | null): string {
  const url = (p: string) => JSON.stringify(pathToFileURL(join(pool, p)).href);
  return `import { Worker } from 'node:worker_threads';
import { newChannel } from ${url('protocol' + (pool.includes('dist') ? '.js' : '.ts'))};
import { newRing } from ${url('result-ring' + (pool.includes('dist') ? '.js' : '.ts'))};
import { DEFAULT_ENTRY } from ${url('worker-lifecycle' + (pool.includes('dist') ? '.js' : '.ts'))};
const entry = ${entry === null ? 'DEFAULT_ENTRY' : JSON.stringify(entry)};
const boots = [];
for (let i = 0; i < ${WORKERS}; i++) {
  const workerData = { channel: newChannel(), ring: newRing(), hostCallTimeoutMs: 1000, nice: 0, hostCallFuel: {} };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const w = new Worker(typeof entry === 'string' && entry.startsWith('data:') ? new URL(entry) : entry, { workerData });
  await new Promise((ok, fail) => { w.once('message', ok); w.once('error', fail); });
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  boots.push({ cpuMs: (c.user + c.system) / 1000, wallMs });
  await w.terminate();
}
console.log(JSON.stringify(boots));
`;
}

const EMPTY =
  "data:text/javascript,import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ type: 'ready' });";

const dir = mkdtempSync(join(os.tmpdir(), 'hourglass-worker-boot-'));
const distPool = join(PROJECT_ROOT, 'dist', 'src', 'sandbox', 'pool');
const srcPool = join(PROJECT_ROOT, 'src', 'sandbox', 'pool');
if (!existsSync(join(distPool, 'worker-boot.js'))) throw new Error('run `npm run build` first');
const variants = [
  { name: 'empty worker', args: [], script: childScript(distPool, EMPTY) },
  { name: 'compiled (dist/)', args: [], script: childScript(distPool, null) },
  { name: 'sources through tsx', args: ['--import', 'tsx'], script: childScript(srcPool, null) },
];
const results = new Map<string, { first: number[]; rest: Boot[] }>();
for (let round = 0; round < ROUNDS; round++) {
  for (const v of variants) {
    const file = join(dir, `${v.name.replace(/\W+/g, '-')}.mjs`);
    writeFileSync(file, v.script);
    const r = spawnSync(process.execPath, [...v.args, file], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`${v.name}: exit ${r.status}: ${r.stderr}`);
    const boots = JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as Boot[];
    const acc = results.get(v.name) ?? { first: [], rest: [] };
    acc.first.push(boots[0]?.cpuMs ?? NaN);
    acc.rest.push(...boots.slice(1));
    results.set(v.name, acc);
  }
}
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
};
const rows = variants.map((v) => {
  const r = results.get(v.name)!;
  return {
    variant: v.name,
    'first boot CPU ms (median)': +median(r.first).toFixed(1),
    'later boots CPU ms (median)': +median(r.rest.map((b) => b.cpuMs)).toFixed(1),
    'later boots wall ms (median)': +median(r.rest.map((b) => b.wallMs)).toFixed(1),
    boots: r.first.length + r.rest.length,
  };
});
console.table(rows);
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT })
  .toString()
  .trim();
const out = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'worker-boot.json'),
  `${JSON.stringify(
    {
      name: 'worker-boot',
      date: new Date().toISOString(),
      commit,
      machine: { node: process.version, cpus: os.cpus().length, loadavg: os.loadavg() },
      settings: { rounds: ROUNDS, workersPerRound: WORKERS },
      rows,
    },
    null,
    2,
  )}\n`,
);
