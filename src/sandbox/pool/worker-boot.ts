/**
 * A pool worker's first module when Hourglass runs compiled (dist/): lowers the thread's
 * priority, then loads the worker. Under tsx (sources: tests, development) worker-entry.js
 * registers tsx first and imports this file; worker-lifecycle.ts picks which one a worker boots.
 */
import { workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../../thread-priority.ts';

// Lower this thread's priority first, so that booting and guest code yield to the main thread
// (scheduler, store, operator surfaces) when cores are short.
lowerThreadPriority((workerData as { nice?: number } | null)?.nice);

// Each worker would print Node's "WASI is an experimental feature" (Extism loads node:wasi) on
// its own thread's stderr; experimental-feature warnings are noise, others still print.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
});

await import('./worker-main.ts');
