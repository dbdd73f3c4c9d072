// Worker bootstrap: the project runs TypeScript sources through tsx, which a worker's first
// module does not inherit from --import; register it here, then load the real worker.
import os from 'node:os';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

// Lower this thread's priority first (on Linux a nice value is per thread), so that booting and
// guest code yield to the main thread (scheduler, store, operator surfaces) when cores are short.
try {
  if (workerData?.nice) os.setPriority(workerData.nice);
} catch {
  // not permitted here: keep the process's priority
}

register();
await import('./worker-main.ts');
