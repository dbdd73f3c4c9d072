// Preload for benchmarks (`node --import ./bench/tsx-main.js bench/x.bench.ts`, as
// bench/run-all.ts runs them): registers tsx in the main thread only, for the benchmark's own
// .ts files. Worker threads inherit `--import` flags; there this does nothing, so pool workers
// boot the compiled dist/ without tsx (see bench/built.ts).
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const { register } = await import('tsx/esm/api');
  register();
}
