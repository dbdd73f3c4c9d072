/**
 * Thread priorities, on Linux only: there a nice value is per thread; elsewhere (macOS,
 * Windows) it applies to the whole process, and lowering a worker's would lower the
 * scheduler's thread with it, so nothing is changed. The scheduler's thread keeps the
 * process's; the pool's workers (`WorkerPoolOptions.workerNice`) and the store's writer thread
 * (`ThreadedSqliteStoreOptions.writerNice`) lower their own, so that when cores are short the
 * kernel runs the scheduler's thread first.
 */
import os from 'node:os';

/**
 * Lowers the calling thread's priority to nice value `nice`, never raising it: a thread at a
 * higher nice value already (the process started under `nice`) keeps it, even where the process
 * is privileged enough to go lower. A refusal keeps the thread's priority.
 */
export function lowerThreadPriority(nice: number | undefined): void {
  if (process.platform !== 'linux') return;
  try {
    if (nice !== undefined && nice > os.getPriority()) os.setPriority(nice);
  } catch {
    // not permitted here: keep the thread's priority
  }
}
