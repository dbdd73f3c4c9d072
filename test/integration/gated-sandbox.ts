/**
 * The real in-thread sandbox with `run` calls held at a gate until the test releases them, one
 * by one or all: a stand-in for slow guests that keeps virtual time deterministic. It tracks
 * how many runs of each schedule are inside at once, and can rewrite a run's payload on its way
 * in (the model test makes each run return a cursor naming the run).
 */
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from '../../src/sandbox/types.ts';

export interface HeldRun {
  readonly pluginId: string;
  readonly scheduleKey: string;
  readonly runId: number;
  release(): void;
}

export class GatedSandbox implements Sandbox {
  readonly inner: InThreadSandbox;
  /** Runs waiting at the gate, oldest first. */
  readonly held: HeldRun[] = [];
  readonly active = new Map<string, number>();
  maxConcurrent = 0;
  /** Calls past the gate that have not returned yet. */
  inside = 0;
  /** Every `run` call, when it arrived. */
  onRun?: (req: CallRequest) => void;
  /** Rewrites a run's input (JSON text) before the guest sees it. */
  rewriteInput?: (req: CallRequest) => string | undefined;
  #open = false;

  constructor(hostCall: HostCallHandler) {
    this.inner = new InThreadSandbox({ hostCall });
  }

  load(spec: GuestSpec): Promise<GuestInfo> {
    return this.inner.load(spec);
  }

  async call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    if (req.fn !== 'run') return this.inner.call(pluginId, req);
    this.onRun?.(req);
    const key = req.caller.scheduleKey ?? '';
    const n = (this.active.get(key) ?? 0) + 1;
    this.active.set(key, n);
    this.maxConcurrent = Math.max(this.maxConcurrent, n);
    try {
      if (!this.#open) {
        await new Promise<void>((resolve) =>
          this.held.push({
            pluginId: req.caller.pluginId,
            scheduleKey: key,
            runId: req.caller.runId ?? -1,
            release: () => {
              const i = this.held.findIndex((h) => h.runId === (req.caller.runId ?? -1));
              if (i >= 0) this.held.splice(i, 1);
              resolve();
            },
          }),
        );
      }
      const input = this.rewriteInput?.(req);
      this.inside++;
      try {
        return await this.inner.call(pluginId, input === undefined ? req : { ...req, input });
      } finally {
        this.inside--;
      }
    } finally {
      this.active.set(key, (this.active.get(key) ?? 1) - 1);
    }
  }

  get waiting(): number {
    return this.held.length;
  }

  /** Lets the held calls (and all later ones) through. */
  open(): void {
    this.#open = true;
    for (const h of [...this.held]) h.release();
  }

  /** Holds later calls again. */
  shut(): void {
    this.#open = false;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  unload(pluginId: string): Promise<void> {
    return this.inner.unload(pluginId);
  }
}

/**
 * Lets the event loop run until released calls have returned and their outcomes are written.
 * Each round waits for the store's writes so far (a guest is called only once its run is
 * committed: on the threaded SQLite store and on PostgreSQL, after a round trip).
 */
export async function quiesce(
  g: GatedSandbox,
  store: { committed(): Promise<void> },
  rounds = 3,
): Promise<void> {
  for (let quiet = 0; quiet < rounds;) {
    await store.committed();
    await new Promise((resolve) => setImmediate(resolve));
    quiet = g.inside === 0 ? quiet + 1 : 0;
  }
}
