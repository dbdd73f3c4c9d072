/**
 * The compiled package for benchmarks: benchmarks measure the host as users run it, from dist/
 * (pool workers then boot the compiled worker-boot.js; from the sources they would boot through
 * tsx). Importing this module checks that dist/ is built and not older than src/ or
 * host-functions/ (the check bin/hourglass.js makes, bin/dist-stale.js) and exits with a message
 * telling to run `npm run build` otherwise (`npm run bench` builds first).
 *
 * `hourglass` is the public entry (dist/src/index.js) typed as src/index.ts; `fromDist(path)`
 * imports any other compiled module, typed by the caller from its source (a type-only import, so
 * type-checking needs no dist/):
 *
 *   import type * as Registry from '../host-functions/registry.ts';
 *   const { HOST_CALL_FUEL } = await fromDist<typeof Registry>('host-functions/registry.js');
 *
 * Run benchmarks with `node --import ./bench/tsx-main.js` (what bench/run-all.ts does): tsx
 * compiles the benchmark's own .ts files in the main thread only, so no pool worker loads tsx
 * (a worker inherits the process's `--import` flags).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distStaleness } from '../bin/dist-stale.js';
import type * as Hourglass from '../src/index.ts';

/** The checkout's root folder. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const why = distStaleness(ROOT);
if (why !== null) {
  console.error(
    `bench: ${why}.\nRun \`npm run build\` first: benchmarks measure the compiled dist/.`,
  );
  process.exit(1);
}

/** Imports `dist/<path>` (e.g. 'src/host/host.js'); `M` is its source module's type. */
export async function fromDist<M>(path: string): Promise<M> {
  return (await import(pathToFileURL(join(ROOT, 'dist', path)).href)) as M;
}

/** The package's public entry, compiled. */
export const hourglass = await fromDist<typeof Hourglass>('src/index.js');

/**
 * RSS (MB) that tsx added to this process when bench/tsx-main.js registered it (its loader
 * thread; a user's process has none), or 0 when it was not loaded that way.
 */
export function tsxRssMb(): number {
  const bytes = (globalThis as { __hgTsxRssBytes?: number }).__hgTsxRssBytes;
  return typeof bytes === 'number' ? bytes / 2 ** 20 : 0;
}
