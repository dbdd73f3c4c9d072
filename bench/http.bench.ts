/**
 * What an outbound HTTP request costs a guest (src/sandbox/http/) against the same request made
 * directly from Node, on a loopback server in a child process (so neither side shares a thread
 * with it).
 *
 *   npm run build && npm run build:guests && npx tsx bench/run-all.ts http
 *   (ROUNDS=7 REQUESTS=300 BYTES=1024)
 *
 * Each round alternates:
 * - direct: REQUESTS sequential `http.request`s from the main thread with `agent: false` (a new
 *   connection each, as the sandbox makes them), reading each body whole (the baseline);
 * - direct, kept alive: the same through `fetch` (one kept-alive connection), for reference;
 * - sandbox: one guest call (the http-probe guest in the compiled worker pool, mode `l`) that
 *   makes REQUESTS requests in a loop and is stopped by its `requestsPerCall` cap of REQUESTS
 *   (the cap's refusal ends the call): the guest's thread blocks on each, the net thread makes
 *   it, the body lands in an Extism block, fuel is charged.
 * Reported: sustained requests/s (requests ÷ wall time) and µs per request, medians of the
 * rounds, and the sandbox's time per request as a multiple of the direct one. Results:
 * bench/results/http.json with load average, commit and cores.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type * as Policy from '../src/sandbox/http/policy.ts';
import type * as Manifest from '../src/plugin/manifest.ts';
import type * as Pool from '../src/sandbox/pool/worker-pool-sandbox.ts';
import { ROOT, fromDist } from './built.ts';
import { median, writeResult } from './common.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const REQUESTS = Number(process.env.REQUESTS ?? 300);
const BYTES = Number(process.env.BYTES ?? 1024);

const { resolveHttpPolicy, pluginHttpConfig, tenantHttpConfig } = await fromDist<typeof Policy>(
  'src/sandbox/http/policy.js',
);
const { DEFAULT_LIMITS } = await fromDist<typeof Manifest>('src/plugin/manifest.js');
const { WorkerPoolSandbox } = await fromDist<typeof Pool>(
  'src/sandbox/pool/worker-pool-sandbox.js',
);

// The server: a child process answering BYTES bytes of JSON to every request.
const child = spawn(
  process.execPath,
  [
    '-e',
    `const body = JSON.stringify('x'.repeat(${Math.max(0, BYTES - 2)}));
     const s = require('node:http').createServer((q, r) => { r.setHeader('content-type', 'application/json'); r.end(body); });
     s.listen(0, '127.0.0.1', () => process.send(s.address().port));
     process.on('disconnect', () => process.exit(0));`,
  ],
  { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
);
const port = await new Promise<number>((resolve) =>
  child.once('message', (m) => resolve(Number(m))),
);
const url = `http://127.0.0.1:${port}/`;

function direct(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function directRound(): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    if ((await direct()) !== BYTES) throw new Error('short body');
  }
  return performance.now() - t0;
}

async function fetchRound(): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const r = await fetch(url);
    if ((await r.arrayBuffer()).byteLength !== BYTES) throw new Error('short body');
  }
  return performance.now() - t0;
}

const pool = new WorkerPoolSandbox({ hostCall: () => '{"ok":null}', size: 1, spareWorkers: 0 });
const policy = resolveHttpPolicy(
  pluginHttpConfig({ allowedHosts: ['http://*:*'], limits: { requestsPerCall: REQUESTS } }),
  tenantHttpConfig({
    allowedHosts: [`http://127.0.0.1:${port}`],
    allowPrivate: ['127.0.0.1'],
    limits: { requestsPerCall: REQUESTS },
  }),
);
await pool.load({
  pluginId: 'b/probe',
  tenant: 'b',
  wasm: new Uint8Array(readFileSync(join(ROOT, 'guest-examples/wat/build/http-probe.wasm'))),
  config: { mode: 'l', req: JSON.stringify({ url }) },
  limits: { ...DEFAULT_LIMITS, timeoutMs: 600_000, fuel: { ...DEFAULT_LIMITS.fuel, run: 1e15 } },
  http: policy,
});

async function sandboxRound(): Promise<number> {
  const t0 = performance.now();
  const o = await pool.call('b/probe', {
    fn: 'run',
    caller: { pluginId: 'b/probe', tenant: 'b', phase: 'run', runId: 1 },
  });
  const ms = performance.now() - t0;
  // The loop ends at its cap: every one of REQUESTS requests was made.
  if (o.ok || !/too_many_requests/.test(o.message))
    throw new Error(`unexpected: ${JSON.stringify(o)}`);
  return ms;
}

// Warm-up: the net thread boots, both paths are compiled.
await directRound();
await fetchRound();
await sandboxRound();
const directMs: number[] = [];
const fetchMs: number[] = [];
const sandboxMs: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  directMs.push(await directRound());
  sandboxMs.push(await sandboxRound());
  fetchMs.push(await fetchRound());
}
await pool.close();
child.disconnect();

const summary = (ms: number) => ({
  ms: Number(ms.toFixed(1)),
  requestsPerSec: Math.round(REQUESTS / (ms / 1000)),
  usPerRequest: Number(((ms * 1000) / REQUESTS).toFixed(1)),
});
const d = summary(median(directMs));
const s = summary(median(sandboxMs));
const f = summary(median(fetchMs));
console.table({
  'direct http.request, new connection (baseline)': d,
  'sandbox (guest → net thread), new connection': s,
  'direct fetch, kept alive (reference)': f,
});
const ratio = Number((median(sandboxMs) / median(directMs)).toFixed(2));
console.log(`sandbox time per request ÷ direct: ${ratio}x`);
writeResult('http', {
  params: { rounds: ROUNDS, requests: REQUESTS, bodyBytes: BYTES },
  median: { direct: d, sandbox: s, fetchKeptAlive: f, sandboxOverDirect: ratio },
  rounds: {
    directMs: directMs.map((x) => Number(x.toFixed(1))),
    sandboxMs: sandboxMs.map((x) => Number(x.toFixed(1))),
    fetchMs: fetchMs.map((x) => Number(x.toFixed(1))),
  },
});
