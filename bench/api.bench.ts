/**
 * The HTTP API's requests per second listing runs with 1M runs in the store (issue 12, "Must
 * show": "the API's requests/s for listing runs with 1M runs in the store (paged)").
 *
 *   npm run bench -- api
 *   node --expose-gc --import ./bench/tsx-main.js bench/api.bench.ts
 *   RUNS=1000000 ROUNDS=3 BENCH_TIME_MS=2500 CONCURRENCY=16 (the defaults)
 *
 * The store: a SQLite file made by `new SqliteStore(path)` (every migration, so every index the
 * API's queries use), then RUNS run rows (default 1,000,000) written straight into its `runs`
 * table with better-sqlite3 in one transaction (secondary indexes dropped first and made again
 * after, as SQLite builds an index fastest from sorted rows): 100 tenants × 10 plugins × 10
 * schedules, runs spread evenly over them in id order (each schedule 100 runs, each tenant
 * 10,000), 2% `failed` with an error, 0.05% `timed_out` (the rare status: 500 rows), the rest
 * `succeeded`, with fuel, times and a small result. `buildMs` is that whole step.
 *
 * The server: `startApiServer` on 127.0.0.1 (port 0) as `hourglass start` serves it: an
 * `OperatorService` over `openOperatorStore` (its own read connection to the file, as the API
 * of a running host has), tokens as the config holds them (SHA-256; an operator token and one
 * per tenant: 101, each request checks them all in constant time), the rate limit raised out of
 * the way (it is still on the path), and its per-request log line written at `info` to
 * /dev/null (formatted as in production, not printed). Reads only: the host view answers
 * nothing.
 *
 * The clients: CONCURRENCY (default 16) concurrent keep-alive HTTP clients (node:http, one
 * socket each) in a worker thread (bench/api-load.js), so they have their own event loop beside
 * the server's. Rates are SUSTAINED: requests answered ÷ wall time, from the first request to
 * the last answer; latencies are per request (p50, p99). Every answer must be 200. Scenarios:
 * - `GET /healthz` — the baseline: fastify, the hooks and a socket round trip, no store;
 * - `operator: first page` — `/v1/runs?limit=100` with the operator token (newest 100 of 1M);
 * - `operator: walk a tenant's pages` — `/v1/runs?tenant=T&limit=100`, then `&cursor=<next>`
 *   until the last page (100 pages of 100 for a tenant's 10,000 runs); each client walks its
 *   own tenant, then the one CONCURRENCY further on;
 * - `operator: status=timed_out` — the first page of the rare status (500 of 1M rows);
 * - `operator: schedule=…` — one schedule's runs (100: one page), a different schedule each
 *   request (1000 schedules in turn);
 * - `tenant token: own runs` — `/v1/runs?limit=100` with a tenant's token (each client its own
 *   tenant's token): the scope adds the tenant to the query.
 * Each round runs every scenario for BENCH_TIME_MS (default 2500), starting from a different
 * scenario each round (rotated) so drift falls on all alike, after a short warm-up; ROUNDS
 * (default 3); the median round is reported. Beside them, the same listings called in-process
 * on the `OperatorService` (tinybench, one at a time, no HTTP): what the store and the service
 * cost of each request. Writes bench/results/api.json (load before and after, Node, commit).
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';
import { fromDist } from './built.ts';
import {
  environment,
  fillRuns,
  median,
  percentile,
  rows,
  RUN_COLUMNS,
  writeResult,
} from './common.ts';
import type * as Auth from '../src/api/auth.ts';
import type * as Server from '../src/api/server.ts';
import type * as HostConfigModule from '../src/config/host-config.ts';
import type * as Log from '../src/observability/log.ts';
import type * as Service from '../src/operator/service.ts';
import type * as StoreAccess from '../src/operator/store-access.ts';
import type * as Sqlite from '../src/store/sqlite-store.ts';

const { hashToken, newToken } = await fromDist<typeof Auth>('src/api/auth.js');
const { startApiServer } = await fromDist<typeof Server>('src/api/server.js');
const { defaultHostConfig } = await fromDist<typeof HostConfigModule>('src/config/host-config.js');
const { createLogger } = await fromDist<typeof Log>('src/observability/log.js');
const { OperatorService, OPERATOR } = await fromDist<typeof Service>('src/operator/service.js');
const { openOperatorStore } = await fromDist<typeof StoreAccess>('src/operator/store-access.js');
const { SqliteStore } = await fromDist<typeof Sqlite>('src/store/sqlite-store.js');

const RUNS = Number(process.env.RUNS ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 2500);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const TENANTS = 100;
const PLUGINS = 10;
const SCHEDULES = 10;
const LIMIT = 100;
const RARE = 'timed_out';

const tenantId = (t: number): string => `t${String(t).padStart(3, '0')}`;

/** Makes the store and fills its `runs` table; answers the ms it took. */
function buildStore(path: string): number {
  const perSchedule = TENANTS * PLUGINS * SCHEDULES;
  const keys = Array.from({ length: perSchedule }, (_, s) => {
    const t = tenantId(Math.floor(s / (PLUGINS * SCHEDULES)));
    const plugin = `${t}/p${Math.floor(s / SCHEDULES) % PLUGINS}`;
    const local = `s${s % SCHEDULES}`;
    return { key: `${plugin}/${local}`, plugin, tenant: t, local };
  });
  const T0 = Date.UTC(2026, 0, 1);
  return fillRuns(
    path,
    (p) => new SqliteStore(p),
    RUN_COLUMNS,
    '?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, 1, ?, ?, ?, 500000000, ?',
    (insert) => {
      for (let id = 1; id <= RUNS; id++) {
        // Spread over the schedules (7919 is prime to their count: each gets RUNS / count).
        const k = keys[(id * 7919) % perSchedule] as (typeof keys)[number];
        const status = id % 2000 === 7 ? RARE : id % 50 === 3 ? 'failed' : 'succeeded';
        const started = T0 + id * 600;
        insert.run(
          id,
          k.key,
          k.plugin,
          k.tenant,
          k.local,
          id % 20 === 0 ? 'manual' : 'schedule',
          status,
          started - 1 - (id % 3),
          started,
          started + 2 + (id % 40),
          status === 'succeeded' ? null : `guest returned 1: upstream answered 503 (try ${id})`,
          status === 'succeeded' ? 24 : 0,
          10_000 + ((id * 37) % 90_000),
          status === 'succeeded' ? `{"seen":${id % 1000},"ok":true}` : null,
        );
      }
    },
  );
}

type Scenario =
  | {
      readonly kind: 'paths';
      readonly paths: readonly string[];
      readonly tokens: readonly (string | null)[];
      readonly concurrency: number;
    }
  | {
      readonly kind: 'walk';
      readonly tenants: readonly string[];
      readonly token: string;
      readonly limit: number;
      readonly concurrency: number;
    };

interface LoadResult {
  readonly requests: number;
  readonly wallMs: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly bytes: number;
  readonly walks: number;
  readonly latencies: Float64Array;
}

/** The load worker (bench/api-load.js) and a request/answer call over it. */
function loadWorker(): {
  run(scenario: Scenario, ms: number): Promise<LoadResult>;
  close(): Promise<number>;
} {
  const worker = new Worker(new URL('./api-load.js', import.meta.url));
  const waiting = new Map<number, (r: LoadResult | { failed: string }) => void>();
  worker.on('message', (m: { id: number } & (LoadResult | { failed: string })) => {
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  let next = 0;
  return {
    run: (scenario, ms) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, (r) => ('failed' in r ? reject(new Error(r.failed)) : resolve(r)));
        worker.postMessage({ id, origin, scenario, ms });
      }),
    close: () => worker.terminate(),
  };
}

// ---- the store ----

const dir = mkdtempSync(join(os.tmpdir(), 'hourglass-api-bench-'));
const storePath = join(dir, 'runs.db');
const before = environment();
console.log(`building a store with ${RUNS.toLocaleString('en')} runs…`);
const buildMs = buildStore(storePath);
console.log(`built in ${(buildMs / 1000).toFixed(1)} s`);

// ---- the server ----

const config = defaultHostConfig(dir);
const tenants = Array.from({ length: TENANTS }, (_, t) => tenantId(t));
const operatorToken = newToken();
const tenantTokens = tenants.map(() => newToken());
const api = {
  host: '127.0.0.1',
  port: 0,
  tls: null,
  tokens: [
    { name: 'bench-operator', sha256: hashToken(operatorToken), tenant: null },
    ...tenants.map((t, i) => ({
      name: `bench-${t}`,
      sha256: hashToken(tenantTokens[i] as string),
      tenant: t,
    })),
  ],
  rateLimitPerMinute: 1_000_000_000,
  bodyLimitBytes: 1_048_576,
};
const unused = { via: 'store' as const, ok: false, message: 'unused' };
const refused = { ok: false as const, code: 'unused', message: 'unused' };
// Reads only: nothing reaches a host.
const hostView = {
  served: () => null,
  command: async () => unused,
  reload: async () => refused,
  upload: async () => refused,
};
const operatorStore = await openOperatorStore(config, storePath);
const service = new OperatorService(operatorStore, () => config, hostView);
const logSink = createWriteStream('/dev/null');
const server = await startApiServer({
  config: api,
  service,
  log: createLogger({ level: 'info', destination: logSink }),
  readiness: () => ({ ready: true, reason: null }),
  metrics: null,
  version: 'bench',
});
const origin = server.url;

// ---- the scenarios ----

const someSchedules = Array.from({ length: 1000 }, (_, i) => {
  const s = (i * 7) % (TENANTS * PLUGINS * SCHEDULES);
  const t = tenantId(Math.floor(s / (PLUGINS * SCHEDULES)));
  return `${t}/p${Math.floor(s / SCHEDULES) % PLUGINS}/s${s % SCHEDULES}`;
});
const scenarios: { readonly name: string; readonly scenario: Scenario }[] = [
  {
    name: 'GET /healthz (baseline)',
    scenario: { kind: 'paths', paths: ['/healthz'], tokens: [null], concurrency: CONCURRENCY },
  },
  {
    name: `operator: first page (limit ${LIMIT})`,
    scenario: {
      kind: 'paths',
      paths: [`/v1/runs?limit=${LIMIT}`],
      tokens: [operatorToken],
      concurrency: CONCURRENCY,
    },
  },
  {
    name: `operator: walk a tenant's pages with the cursor (limit ${LIMIT})`,
    scenario: {
      kind: 'walk',
      tenants,
      token: operatorToken,
      limit: LIMIT,
      concurrency: CONCURRENCY,
    },
  },
  {
    name: `operator: status=${RARE} (rare: 0.05%), first page`,
    scenario: {
      kind: 'paths',
      paths: [`/v1/runs?status=${RARE}&limit=${LIMIT}`],
      tokens: [operatorToken],
      concurrency: CONCURRENCY,
    },
  },
  {
    name: `operator: schedule=<one of 1000>, its ${RUNS / (TENANTS * PLUGINS * SCHEDULES)} runs`,
    scenario: {
      kind: 'paths',
      paths: someSchedules.map((k) => `/v1/runs?schedule=${encodeURIComponent(k)}&limit=${LIMIT}`),
      tokens: [operatorToken],
      concurrency: CONCURRENCY,
    },
  },
  {
    name: `tenant token: own runs, first page (limit ${LIMIT})`,
    scenario: {
      kind: 'paths',
      paths: [`/v1/runs?limit=${LIMIT}`],
      tokens: tenantTokens,
      concurrency: CONCURRENCY,
    },
  },
];

// Each answer is what it should be, before anything is timed.
async function check(): Promise<void> {
  const get = async (path: string, token: string) => {
    const r = await fetch(`${origin}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as { items: { tenant: string; status: string }[]; next: string | null };
  };
  const first = await get(`/v1/runs?limit=${LIMIT}`, operatorToken);
  if (first.items.length !== LIMIT || first.next === null) throw new Error('first page');
  const rare = await get(`/v1/runs?status=${RARE}&limit=${LIMIT}`, operatorToken);
  if (rare.items.length === 0 || rare.items.some((r) => r.status !== RARE))
    throw new Error('status page');
  const own = await get(`/v1/runs?limit=${LIMIT}`, tenantTokens[3] as string);
  if (own.items.length !== LIMIT || own.items.some((r) => r.tenant !== tenants[3]))
    throw new Error('tenant page');
  const sched = await get(`/v1/runs?schedule=${someSchedules[5]}&limit=${LIMIT}`, operatorToken);
  if (sched.items.length !== RUNS / (TENANTS * PLUGINS * SCHEDULES)) throw new Error('schedule');
}

interface Round {
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly bytesPerRequest: number;
  readonly walksPerSec: number;
}

const load = loadWorker();
const results = new Map<string, Round[]>(scenarios.map((s) => [s.name, []]));
let inProcess: ReturnType<typeof rows> = [];
try {
  await check();
  // Warm-up: the server's JIT, SQLite's page cache, the sockets.
  for (const s of scenarios) await load.run(s.scenario, 400);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < scenarios.length; i++) {
      const s = scenarios[(r + i) % scenarios.length] as (typeof scenarios)[number];
      const res = await load.run(s.scenario, TIME_MS);
      if (res.errors > 0)
        throw new Error(`${s.name}: ${res.errors} errors, first: ${res.firstError}`);
      const lat = [...res.latencies];
      results.get(s.name)?.push({
        perSec: (res.requests / res.wallMs) * 1000,
        p50Ms: percentile(lat, 50),
        p99Ms: percentile(lat, 99),
        bytesPerRequest: res.bytes / res.requests,
        walksPerSec: (res.walks / res.wallMs) * 1000,
      });
    }
    console.log(
      `round ${r + 1}/${ROUNDS}: ${scenarios.map((s) => `${Math.round(results.get(s.name)?.at(-1)?.perSec ?? 0)}`).join(', ')} requests/s`,
    );
  }

  // The same listings in-process, on the service (no HTTP): the store's and the service's share.
  const bench = new Bench({ time: 500, warmup: true });
  let walkCursor: string | undefined;
  bench
    .add('service.runs: first page', async () => {
      await service.runs(OPERATOR, { limit: LIMIT });
    })
    .add("service.runs: a tenant's next page (walking)", async () => {
      const page = await service.runs(OPERATOR, {
        tenant: 't042',
        limit: LIMIT,
        ...(walkCursor === undefined ? {} : { cursor: walkCursor }),
      });
      walkCursor = page.next ?? undefined;
    })
    .add(`service.runs: status=${RARE}`, async () => {
      await service.runs(OPERATOR, { status: RARE, limit: LIMIT });
    })
    .add('service.runs: one schedule', async () => {
      await service.runs(OPERATOR, { scheduleKey: 't042/p3/s7', limit: LIMIT });
    })
    .add('service.runs: tenant scope', async () => {
      await service.runs({ kind: 'tenant', tenant: 't042' }, { limit: LIMIT });
    });
  await bench.run();
  inProcess = rows(bench);
} finally {
  await load.close();
  await server.close();
  await operatorStore.close();
  logSink.end();
  rmSync(dir, { recursive: true, force: true });
}

const baseName = scenarios[0]?.name ?? '';
const summary = scenarios.map((s) => {
  const rs = results.get(s.name) ?? [];
  const perSec = median(rs.map((r) => r.perSec));
  return {
    name: s.name,
    requestsPerSecMedian: Math.round(perSec),
    requestsPerSecRounds: rs.map((r) => Math.round(r.perSec)),
    p50Ms: Number(median(rs.map((r) => r.p50Ms)).toFixed(2)),
    p99Ms: Number(median(rs.map((r) => r.p99Ms)).toFixed(2)),
    bytesPerRequest: Math.round(median(rs.map((r) => r.bytesPerRequest))),
    ...(s.scenario.kind === 'walk'
      ? { tenantWalksPerSec: Number(median(rs.map((r) => r.walksPerSec)).toFixed(2)) }
      : {}),
  };
});
const base = summary[0]?.requestsPerSecMedian ?? 1;
console.table(
  summary.map((s) => ({
    scenario: s.name,
    'req/s': s.requestsPerSecMedian,
    'p50 ms': s.p50Ms,
    'p99 ms': s.p99Ms,
    'vs healthz': `${(s.requestsPerSecMedian / base).toFixed(3)}×`,
    'bytes/req': s.bytesPerRequest,
  })),
);
console.table(
  inProcess.map((r) => ({
    task: r.name,
    'ops/s': Math.round(r.opsPerSec),
    'mean µs': r.meanUs.toFixed(1),
    'p99 µs': r.p99Us.toFixed(1),
  })),
);
writeResult('api', {
  runs: RUNS,
  tenants: TENANTS,
  plugins: TENANTS * PLUGINS,
  schedules: TENANTS * PLUGINS * SCHEDULES,
  buildMs: Math.round(buildMs),
  rounds: ROUNDS,
  timeMsPerScenario: TIME_MS,
  concurrency: CONCURRENCY,
  loadBefore: before.loadavg,
  loadAfter: os.loadavg().map((l) => Number(l.toFixed(2))),
  baseline: baseName,
  rows: summary.map((s) => ({
    ...s,
    ratio: Number((s.requestsPerSecMedian / base).toFixed(3)),
  })),
  inProcess: {
    note: 'OperatorService.runs called in-process, one at a time (tinybench, no HTTP)',
    rows: inProcess.map((r) => ({
      name: r.name,
      opsPerSec: Math.round(r.opsPerSec),
      meanUs: Number(r.meanUs.toFixed(1)),
      p99Us: Number(r.p99Us.toFixed(1)),
      samples: r.samples,
    })),
  },
});
