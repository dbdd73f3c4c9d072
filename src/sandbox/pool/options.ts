/** Options of the worker pool (`WorkerPoolSandbox`). */
import type { HostCallHandler } from '../types.ts';
import type { GuestLogEntry } from '../in-thread-sandbox.ts';

export interface WorkerPoolOptions {
  readonly hostCall: HostCallHandler;
  /** Static fuel price of each host function (see `InThreadSandboxOptions`). @defaultValue none */
  readonly hostCallFuel?: Readonly<Record<string, number>>;
  /** Number of workers. @defaultValue the number of CPU cores */
  readonly size?: number;
  /** How long a guest's host call waits for the main thread. @defaultValue 5000 */
  readonly hostCallTimeoutMs?: number;
  /**
   * Niceness of the worker threads (on Linux a nice value is per thread): guest code, and
   * worker boots, yield to the main thread (scheduler, store, operator surfaces) when cores are
   * short, so a guest burning its budget cannot delay ticks. Never below the process's own nice
   * value (0, or less than the process's, keeps the process's). @defaultValue 10
   */
  readonly workerNice?: number;
  /**
   * Booted idle workers kept to replace terminated ones at once. Two cover deadline kills that
   * come faster than a worker boots (its boot runs at `workerNice` too). @defaultValue 2
   */
  readonly spareWorkers?: number;
  /** Most calls sent to a worker in one message. @defaultValue 64 */
  readonly maxBatch?: number;
  /**
   * A call whose predecessor (same plugin, export and schedule) took less than this many ms
   * may share a batch with calls queued behind it. @defaultValue 2
   */
  readonly fastCallMs?: number;
  /**
   * Deadline of a plugin's load in its worker (validation, instrumentation, compilation and the
   * start function), counted from when it starts there. Past it the worker is terminated and
   * the load fails with `HG_PLUGIN_LOAD`. @defaultValue 30000
   */
  readonly loadTimeoutMs?: number;
  /**
   * How long `close()` waits for worker threads to exit. A thread blocked in native code may
   * never return from `terminate()`; `close()` then settles what it held and returns anyway.
   * Small, so that a host's stop stays within its shutdown grace + 1 s. @defaultValue 500
   */
  readonly closeTimeoutMs?: number;
  /** First wait before a worker is spawned again after one failed to boot (doubles, ≤ 5 s). @defaultValue 100 */
  readonly bootBackoffMs?: number;
  /** Boot failures in a row after which the pool gives up (`HG_SANDBOX_BOOT`). @defaultValue 10 */
  readonly maxBootFailures?: number;
  /** The module a worker boots. For tests (a worker that fails at boot). @defaultValue the pool's worker */
  readonly workerEntry?: URL;
  /** Guest log lines, and outbound HTTP requests (entries with `http`). */
  readonly onGuestLog?: (entry: GuestLogEntry) => void;
  /** Called when a worker is replaced (after a deadline or a crash). */
  readonly onWorkerReplaced?: (info: {
    slot: number;
    reason: 'timed_out' | 'worker_crashed';
  }) => void;
}
