// Worker bootstrap when Hourglass runs from its TypeScript sources (tests, development): a
// worker's first module does not inherit tsx from --import, so register it here, then boot as a
// compiled worker does (worker-boot.ts). Compiled (dist/), workers boot worker-boot.js directly.
import os from 'node:os';
import process from 'node:process';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

// Lower the priority before tsx compiles anything, as thread-priority.ts does (worker-boot.ts
// calls it again, harmlessly).
try {
  if (process.platform === 'linux' && workerData?.nice > os.getPriority())
    os.setPriority(workerData.nice);
} catch {
  // not permitted here: keep the process's priority
}

register();
await import('./worker-boot.ts');
