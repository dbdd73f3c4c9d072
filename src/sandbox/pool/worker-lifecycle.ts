/**
 * The pool's threads: one worker per slot, warm spares that replace a terminated one at once,
 * and retired workers that have not exited yet. A `Runner` is one worker thread and the calls it
 * holds; it outlives its slot until it has exited.
 *
 * Workers are unref'd while idle, so an idle pool never keeps the process alive.
 */
import { Worker } from 'node:worker_threads';
import type { PendingCall } from './dispatch.ts';
import { newJournal } from './outcome-journal.ts';
import { CTL_BYTES, CTL_WORDS, newChannel, type FromWorker, type WorkerInit } from './protocol.ts';

export interface Runner {
  readonly worker: Worker;
  readonly channel: SharedArrayBuffer;
  readonly journal: SharedArrayBuffer;
  readonly ctl: Int32Array;
  readonly clock: Float64Array;
  readonly loaded: Set<string>;
  /** The batch last posted to this worker (indices match the worker's claim word). */
  batch: PendingCall[];
  /** Calls posted to this worker whose outcome has not arrived, in the order they run. */
  assigned: PendingCall[];
  /** Shortest deadline among `assigned`. */
  minTimeoutMs: number;
  /** Last sign of progress (a batch posted, outcomes received): the setup deadline's origin. */
  progressAt: number;
  timer: NodeJS.Timeout | null;
  /** Booted (its 'ready' message arrived): only then does it get calls. */
  ready: boolean;
  /** Terminated by the pool or exited: no longer in a slot. */
  retired: boolean;
  exited: boolean;
  /** Resolvers for `load` acknowledgements from this worker. */
  readonly loads: Map<string, (m: Extract<FromWorker, { type: 'loaded' }>) => void>;
}

export interface Slot {
  readonly index: number;
  runner: Runner;
}

export interface WorkerEvents {
  onMessage(r: Runner, m: FromWorker): void;
  /** The worker exited; every message it posted has been delivered. */
  onExit(r: Runner): void;
}

const ENTRY = new URL('./worker-entry.js', import.meta.url);
/** Extra time a call may take before it starts (worker boot, guest instantiation). */
export const SETUP_GRACE_MS = 30_000;

export class WorkerSet {
  readonly slots: Slot[] = [];
  /** Booted (or booting), idle workers ready to replace one that was terminated. */
  spares: Runner[] = [];
  /** Retired workers that have not exited yet. */
  readonly retired = new Set<Runner>();
  readonly #init: Omit<WorkerInit, 'channel' | 'journal'>;
  readonly #events: WorkerEvents;
  readonly #spareCount: number;

  constructor(
    init: Omit<WorkerInit, 'channel' | 'journal'>,
    size: number,
    spareCount: number,
    events: WorkerEvents,
  ) {
    this.#init = init;
    this.#events = events;
    this.#spareCount = spareCount;
    for (let index = 0; index < size; index++) {
      this.slots.push({ index, runner: this.spawn() });
    }
    for (let i = 0; i < this.#spareCount; i++) this.spares.push(this.spawn());
  }

  /** Boots a worker (idle: unref'd, so it never keeps the process alive). */
  spawn(): Runner {
    const channel = newChannel();
    const journal = newJournal();
    const init: WorkerInit = { ...this.#init, channel, journal };
    const worker = new Worker(ENTRY, { workerData: init });
    const r: Runner = {
      worker,
      channel,
      journal,
      ctl: new Int32Array(channel, 0, CTL_WORDS),
      clock: new Float64Array(channel, 0, CTL_BYTES / 8),
      loaded: new Set(),
      batch: [],
      assigned: [],
      minTimeoutMs: Infinity,
      progressAt: 0,
      timer: null,
      ready: false,
      retired: false,
      exited: false,
      loads: new Map(),
    };
    worker.on('message', (m: FromWorker) => this.#events.onMessage(r, m));
    worker.on('error', () => undefined); // 'exit' follows and does the accounting
    worker.once('exit', () => this.#events.onExit(r));
    worker.unref();
    // Calls only go to booted workers: one that never boots is terminated (and replaced).
    const boot = setTimeout(() => {
      if (!r.ready) void worker.terminate().catch(() => undefined);
    }, SETUP_GRACE_MS);
    boot.unref();
    worker.once('message', () => clearTimeout(boot));
    return r;
  }

  slotOf(r: Runner): Slot | undefined {
    return this.slots.find((s) => s.runner === r);
  }

  /** Puts a warm worker in `slot` and retires (terminates) the one it had. */
  replace(slot: Slot): void {
    const old = slot.runner;
    old.retired = true;
    if (old.timer) clearTimeout(old.timer);
    old.timer = null;
    if (!old.exited) this.retired.add(old);
    // A replacement takes a warm spare, booted ones first (a fresh worker needs ~250 ms of CPU
    // to boot), and a new spare boots in the background.
    let at = this.spares.findIndex((r) => r.ready && !r.exited);
    if (at < 0) at = this.spares.findIndex((r) => !r.exited);
    const [spare] = at < 0 ? [] : this.spares.splice(at, 1);
    slot.runner = spare ?? this.spawn();
    this.spares.push(this.spawn());
    void old.worker.terminate().catch(() => undefined);
  }

  /**
   * Accounting for a worker that exited: it leaves the retired set; a spare that died is
   * replaced by a new one. Returns the slot it still held (the caller replaces it), if any.
   */
  exited(r: Runner): Slot | undefined {
    r.exited = true;
    this.retired.delete(r);
    if (r.retired) return undefined;
    const slot = this.slotOf(r);
    if (slot) return slot;
    if (this.spares.includes(r)) {
      this.spares = this.spares.filter((x) => x !== r);
      this.spares.push(this.spawn());
    }
    return undefined;
  }

  /** Every worker thread the set still has (slots, retired, spares); forgets the spares. */
  takeAll(): Runner[] {
    const all = [...this.slots.map((s) => s.runner), ...this.retired, ...this.spares];
    this.spares = [];
    return all;
  }
}
