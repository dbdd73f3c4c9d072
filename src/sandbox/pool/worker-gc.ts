/**
 * Frees the linear memories of guest instances a pool worker dropped (after discovery, a trap,
 * an unload: in-thread-sandbox.ts). V8 releases a dropped instance's memory only at a major GC
 * of the thread's heap, and an idle worker allocates nothing that would start one: the
 * memories and JS garbage of the instances its guests used for discovery would stay resident
 * for as long as the process runs (the arming bench, 100 proxy guests at 1,000 declarations
 * each: user RSS 283 MB with this collector, 298 MB without; medians of 3 alternating runs).
 *
 * Node has no GC call without `--expose-gc` on the user's command line, and a worker's
 * `execArgv` cannot carry V8 flags. So the worker takes V8's `gc` function once at boot: the
 * flag is set while one fresh `vm` context is made, then unset (V8 flags are process-wide; a
 * context made later, on any thread, has no `gc`). If that fails, nothing is collected here and
 * V8's own heuristics decide, as before.
 *
 * A collection is asked for only when the worker is idle (no message waiting) and at least
 * `GC_RELEASED_BYTES` were dropped since the last one: one major GC per that many bytes at most,
 * so a guest that traps on every call does not buy a GC per call.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Dropped linear memory (bytes) that makes an idle worker collect. */
export const GC_RELEASED_BYTES = 4 * 2 ** 20;

function takeGc(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    try {
      const gc: unknown = runInNewContext('gc');
      return typeof gc === 'function' ? (gc as () => void) : null;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  } catch {
    return null;
  }
}

export class WorkerGc {
  readonly #gc = takeGc();
  #pending = 0;

  /** Whether this thread can collect (`gc` was obtained). */
  get available(): boolean {
    return this.#gc !== null;
  }

  /** Notes dropped bytes; collects if enough piled up and `idle` (nothing else to do). */
  released(bytes: number, idle: boolean): void {
    this.#pending += bytes;
    if (!idle || this.#pending < GC_RELEASED_BYTES || !this.#gc) return;
    this.#pending = 0;
    this.#gc();
  }
}
