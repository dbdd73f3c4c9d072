/**
 * The pool's threads: one worker per slot, warm spares that replace a terminated one at once,
 * and retired workers that have not exited yet. A `Runner` is one worker thread and the calls it
 * holds; it outlives its slot until it has exited.
 *
 * Workers are always unref'd: what keeps the process alive is the pool's own keep-alive, held
 * while it owes an answer (see worker-pool-sandbox.ts), never a thread.
 *
 * Boot failures back off (piscina's worker_pool does not respawn a worker that fails at startup
 * forever either): a worker that exits before its `ready` message counts as one; while they
 * come in a row, no thread is spawned until `bootBackoffMs × 2^(n-1)` (at most
 * `MAX_BOOT_BACKOFF_MS`) has passed, and after `maxBootFailures` in a row the set gives up
 * (`broken`): the pool then fails what waits and what comes. A boot resets the count. A slot
 * whose worker died while no replacement can be spawned keeps its dead runner (never dispatched
 * to) until the backoff ends.
 */
import { Worker } from 'node:worker_threads';
import type { PendingCall } from './dispatch.ts';
import type { VarsCopies } from './vars-sync.ts';
import { newRing } from './result-ring.ts';
import { CTL_BYTES, CTL_WORDS, newChannel, type FromWorker, type WorkerInit } from './protocol.ts';

/**
 * Young generation of a worker's JS heap (MB; V8 makes two semi-spaces of a third each, 4 MB
 * here, and a new-large-object space). V8's default lets the semi-spaces grow to 16 MB, and a
 * worker that instantiated guests for discovery grew them to 8 MB: 16 MB committed per worker,
 * never given back while it is idle, for 2-3 MB of young objects. At 4 MB a pool worker under
 * the dispatch bench's load scavenges no more often per call than uncapped (it does not grow
 * past that there); 6 MB (2 MB semi-spaces) saved ~10 MB more RSS but scavenged ~25% more often.
 */
export const WORKER_YOUNG_GENERATION_MB = 12;

export interface Runner {
  readonly worker: Worker;
  readonly channel: SharedArrayBuffer;
  /** Where the worker puts outcomes and log lines (see result-ring.ts). */
  readonly ring: SharedArrayBuffer;
  /** The pool waits on `ring` (see `ringWait`). */
  watching: boolean;
  readonly ctl: Int32Array;
  readonly clock: Float64Array;
  readonly loaded: Set<string>;
  /** What the pool knows of this worker's copies of plugins' variables (vars-sync.ts). */
  readonly vars: VarsCopies;
  /**
   * Calls posted to this worker that may not have started, in order: `batch[i]` has sequence
   * number `batchBase + i` (see `CTL_CLAIM`); `nextSeq` is the next call's.
   */
  batch: PendingCall[];
  batchBase: number;
  nextSeq: number;
  /** Calls posted to this worker whose outcome has not arrived, in the order they run. */
  assigned: PendingCall[];
  /** Shortest deadline among `assigned`. */
  minTimeoutMs: number;
  /** Last sign of progress (a batch posted, outcomes received): the setup deadline's origin. */
  progressAt: number;
  timer: NodeJS.Timeout | null;
  /** When `timer` fires (ms since the epoch). */
  timerDue: number;
  /** Booted (its 'ready' message arrived): only then does it get calls. */
  ready: boolean;
  /** Terminated by the pool or exited: no longer in a slot. */
  retired: boolean;
  exited: boolean;
  /** The error the thread died of (its 'error' event), for boot-failure messages. */
  error: string | null;
}

export interface Slot {
  readonly index: number;
  runner: Runner;
}

export interface WorkerEvents {
  onMessage(r: Runner, m: FromWorker): void;
  /** The worker exited; every message it posted has been delivered. */
  onExit(r: Runner): void;
  /** Boot failed `maxBootFailures` times in a row: no worker will be spawned again. */
  onBroken(message: string): void;
}

export interface WorkerSetOptions {
  readonly init: Omit<WorkerInit, 'channel' | 'ring'>;
  readonly size: number;
  readonly spares: number;
  readonly bootBackoffMs: number;
  readonly maxBootFailures: number;
  /** The module a worker boots (tests give a failing one). */
  readonly entry: URL;
}

/**
 * The module a worker boots: compiled (this file is .js), the compiled worker-boot.js directly;
 * from the sources under tsx, worker-entry.js, which registers tsx in the new thread first.
 */
export const DEFAULT_ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./worker-entry.js', import.meta.url)
  : new URL('./worker-boot.js', import.meta.url);
/** Extra time a call may take before it starts (worker boot, guest instantiation). */
export const SETUP_GRACE_MS = 30_000;
/** Longest wait between boot attempts after failures in a row. */
export const MAX_BOOT_BACKOFF_MS = 5_000;

export class WorkerSet {
  readonly slots: Slot[] = [];
  /** Booted (or booting), idle workers ready to replace one that was terminated. */
  spares: Runner[] = [];
  /** Retired workers that have not exited yet. */
  readonly retired = new Set<Runner>();
  /** Why the set gave up spawning workers (see the head comment), or null. */
  broken: string | null = null;
  readonly #o: WorkerSetOptions;
  readonly #events: WorkerEvents;
  #bootFailures = 0;
  #backoffUntil = 0;
  #refillTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(o: WorkerSetOptions, events: WorkerEvents) {
    this.#o = o;
    this.#events = events;
    for (let index = 0; index < o.size; index++) {
      this.slots.push({ index, runner: this.spawn() });
    }
    for (let i = 0; i < o.spares; i++) this.spares.push(this.spawn());
  }

  /** Boots a worker (unref'd: a thread never keeps the process alive by itself). */
  spawn(): Runner {
    const channel = newChannel();
    const ring = newRing();
    const init: WorkerInit = { ...this.#o.init, channel, ring };
    const worker = new Worker(this.#o.entry, {
      workerData: init,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    const r: Runner = {
      worker,
      channel,
      ring,
      watching: false,
      ctl: new Int32Array(channel, 0, CTL_WORDS),
      clock: new Float64Array(channel, 0, CTL_BYTES / 8),
      loaded: new Set(),
      vars: new Map(),
      batch: [],
      batchBase: 0,
      nextSeq: 0,
      assigned: [],
      minTimeoutMs: Infinity,
      progressAt: 0,
      timer: null,
      timerDue: 0,
      ready: false,
      retired: false,
      exited: false,
      error: null,
    };
    worker.on('message', (m: FromWorker) => this.#events.onMessage(r, m));
    worker.on('error', (err: Error) => {
      r.error = err.message; // 'exit' follows and does the accounting
    });
    worker.once('exit', () => this.#events.onExit(r));
    worker.unref();
    // Calls only go to booted workers: one that never boots is terminated (a boot failure).
    const boot = setTimeout(() => {
      if (!r.ready) {
        r.error = `the worker did not boot within ${SETUP_GRACE_MS} ms`;
        void worker.terminate().catch(() => undefined);
      }
    }, SETUP_GRACE_MS);
    boot.unref();
    // Cleared at exit too: a worker terminated before it booted (a pool closed at once) would
    // otherwise leave the timer holding the pool, and through it the host, for its 30 s.
    const booted = () => clearTimeout(boot);
    worker.once('message', booted);
    worker.once('exit', booted);
    return r;
  }

  /** A slot's worker that can take calls now. */
  static usable(r: Runner): boolean {
    return r.ready && !r.retired && !r.exited;
  }

  slotOf(r: Runner): Slot | undefined {
    return this.slots.find((s) => s.runner === r);
  }

  /** A worker said `ready`: boots work, so failures are no longer in a row. */
  booted(): void {
    this.#bootFailures = 0;
    this.#backoffUntil = 0;
  }

  /** Puts a warm worker in `slot` and retires (terminates) the one it had. */
  replace(slot: Slot): void {
    const old = slot.runner;
    this.#retire(old);
    this.#fill(slot);
    this.#refill();
  }

  #retire(r: Runner): void {
    if (r.retired) return;
    r.retired = true;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    if (!r.exited) {
      this.retired.add(r);
      void r.worker.terminate().catch(() => undefined);
    }
  }

  /**
   * Gives `slot` a spare (booted ones first: a fresh worker needs ~250 ms of CPU to boot), or a
   * new worker, unless spawning is backing off (the slot then keeps its retired runner).
   */
  #fill(slot: Slot): void {
    let at = this.spares.findIndex((r) => r.ready && !r.exited);
    if (at < 0) at = this.spares.findIndex((r) => !r.exited);
    const [spare] = at < 0 ? [] : this.spares.splice(at, 1);
    if (spare) slot.runner = spare;
    else if (this.#maySpawn()) slot.runner = this.spawn();
  }

  #maySpawn(): boolean {
    return !this.#closed && this.broken === null && Date.now() >= this.#backoffUntil;
  }

  /** Gives every slot a live worker and tops up the spares, now or when the backoff ends. */
  #refill(): void {
    if (this.#closed || this.broken !== null) return;
    if (!this.#maySpawn()) {
      if (!this.#refillTimer) {
        this.#refillTimer = setTimeout(
          () => {
            this.#refillTimer = null;
            this.#refill();
          },
          Math.max(1, this.#backoffUntil - Date.now()),
        );
        this.#refillTimer.unref();
      }
      return;
    }
    for (const slot of this.slots) if (slot.runner.retired || slot.runner.exited) this.#fill(slot);
    this.spares = this.spares.filter((r) => !r.exited);
    while (this.spares.length < this.#o.spares) this.spares.push(this.spawn());
  }

  /**
   * Accounting for a worker that exited: it leaves the retired set; a boot failure backs off;
   * a spare is replaced. Returns the slot it still held (the caller replaces it), if any.
   */
  exited(r: Runner): Slot | undefined {
    r.exited = true;
    this.retired.delete(r);
    if (r.retired) return undefined;
    if (!r.ready) {
      this.#bootFailures++;
      const delay = Math.min(
        this.#o.bootBackoffMs * 2 ** (this.#bootFailures - 1),
        MAX_BOOT_BACKOFF_MS,
      );
      this.#backoffUntil = Date.now() + delay;
      if (this.#bootFailures >= this.#o.maxBootFailures) {
        this.broken = `the sandbox workers failed to boot ${this.#bootFailures} times in a row (last: ${r.error ?? 'exited before it was ready'})`;
        this.#events.onBroken(this.broken);
        return undefined;
      }
    }
    const slot = this.slotOf(r);
    if (slot) return slot;
    this.spares = this.spares.filter((x) => x !== r);
    this.#refill();
    return undefined;
  }

  /** Worker threads that have not exited (slots, spares, retired). */
  get threads(): number {
    const all = new Set([...this.slots.map((s) => s.runner), ...this.spares, ...this.retired]);
    return [...all].filter((r) => !r.exited).length;
  }

  /** Stops spawning and returns every worker the set still has (slots, retired, spares). */
  close(): Runner[] {
    this.#closed = true;
    if (this.#refillTimer) clearTimeout(this.#refillTimer);
    this.#refillTimer = null;
    const all = new Set([...this.slots.map((s) => s.runner), ...this.retired, ...this.spares]);
    this.spares = [];
    return [...all];
  }
}
