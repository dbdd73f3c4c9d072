/**
 * Runs every benchmark in bench/ (or those named on the command line), one process each:
 * throughput, lateness, peer-bullmq (starts redis-server), dispatch, fuel (metering overhead per
 * kernel; bench/kernels/ built at bench time),
 * hostile-lateness (a good tenant's fire lateness beside the worst hostile-corpus cases; ~4 min),
 * cluster (runs/s on PostgreSQL with 1-3 host processes beside SQLite; starts its own
 * PostgreSQL; ~3 min), metrics (a burst's runs/s with and without `HostMetrics`, and the
 * metrics listeners' ns per run), api (the HTTP API's requests/s listing runs with 1M runs in
 * the store, paged, beside GET /healthz; ~1-2 min), http (a guest's outbound request through
 * the sandbox against the same request made directly from Node; ~10 s), retention (fire
 * lateness while a 1M-run history is pruned, beside a baseline without pruning; ~4 min).
 * Each runs under bench/tsx-main.js (tsx in the main thread only, see bench/built.ts), with
 * `--expose-gc` (a bench may collect before measuring memory).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)));
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', pathToFileURL(join(here, 'tsx-main.js')).href, join(here, f)],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
