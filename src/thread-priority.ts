/**
 * Thread priorities (Linux: a nice value is per thread; elsewhere `setpriority` may apply to the
 * whole process, and then Node refuses or it is ignored). The scheduler's thread keeps the
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
  try {
    if (nice !== undefined && nice > os.getPriority()) os.setPriority(nice);
  } catch {
    // not permitted here: keep the thread's priority
  }
}
