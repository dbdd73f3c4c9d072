// Preload for benchmarks (`node --import ./bench/tsx-main.js bench/x.bench.ts`, as
// bench/run-all.ts runs them): registers tsx in the main thread only, for the benchmark's own
// .ts files. Worker threads inherit `--import` flags; there this does nothing, so pool workers
// boot the compiled dist/ without tsx (see bench/built.ts). tsx's loader hooks run on a thread
// of their own, which a user's process does not have: the RSS it adds is kept in
// `globalThis.__hgTsxRssBytes` so that benches can report it (bench/built.ts `tsxRssMb`).
import process from 'node:process';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const before = process.memoryUsage().rss;
  const { register } = await import('tsx/esm/api');
  register();
  // The hooks thread starts with the first import it serves.
  await import('node:os');
  globalThis.__hgTsxRssBytes = process.memoryUsage().rss - before;
}
