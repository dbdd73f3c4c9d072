/**
 * A `Sandbox` that runs every guest call on a pool of worker threads, so the main thread (store,
 * scheduler, operator surfaces) never executes guest code.
 *
 * - Each guest is validated and compiled once on the main thread; the `WebAssembly.Module` is
 *   posted to workers, which instantiate it lazily (and re-create it after a trap).
 * - Calls travel in batches: waiting calls are queued per tenant, and when a worker is idle it
 *   gets its share of them (taken round-robin across tenants, so one tenant's burst cannot
 *   starve another) in one message; it runs them in order and posts their outcomes back
 *   together. A message costs ~20 µs each way, a no-op call ~1 µs: batching is what makes the
 *   pool cheap. A call shares a batch with calls behind it only if its predecessor (same
 *   plugin, export and schedule) was fast; any other call goes last. If a call still runs long,
 *   the calls behind it that have not started are taken back (through a claim word in shared
 *   memory) and dispatched again.
 * - Every call has a wall-clock deadline (the plugin's `timeoutMs`), counted from the moment it
 *   starts in its worker: when it passes, the worker is terminated (this interrupts a running
 *   wasm loop within milliseconds) and replaced by a warm spare, and the call ends `timed_out`.
 *   A worker that dies on its own ends its running call `worker_crashed`. Either way, the other
 *   calls of its batch are never lost: those that had finished end with their real outcomes
 *   (posted, or read from the worker's outcome journal), and those that had not started are
 *   dispatched again.
 * - Host functions are answered on the main thread through a shared-memory channel.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { HourglassError } from '../../errors.ts';
import { prepareGuest, type PreparedGuest } from '../guest-module.ts';
import type { PreparedSpec } from '../in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallAnswer,
  HostCallHandler,
  Sandbox,
} from '../types.ts';
import { asHostCallAnswer } from '../types.ts';
import { journalRead, newJournal, outcomeFrom } from './outcome-journal.ts';
import {
  answerHostCall,
  CLAIM_STOLEN,
  CTL_BYTES,
  CTL_CLAIM,
  CTL_RUNNING,
  CTL_STARTED_F64,
  CTL_WORDS,
  newChannel,
  type BatchCall,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './protocol.ts';

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
   * short, so a guest burning its budget cannot delay ticks. 0 keeps the process's priority.
   * @defaultValue 10
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
  readonly onGuestLog?: (entry: { pluginId: string; level: string; message: string }) => void;
  /** Called when a worker is replaced (after a deadline or a crash). */
  readonly onWorkerReplaced?: (info: {
    slot: number;
    reason: 'timed_out' | 'worker_crashed';
  }) => void;
}

interface Guest {
  readonly spec: PreparedSpec;
  readonly prepared: PreparedGuest;
}

interface PendingCall {
  readonly callId: number;
  readonly pluginId: string;
  readonly tenant: string;
  readonly req: CallRequest;
  readonly resolve: (o: CallOutcome) => void;
  /** See `speedKey`. */
  readonly speedKey: string;
  started: number;
  timeoutMs: number;
  settled: boolean;
  /** Times it was dispatched again after its worker died before running it. */
  retries: number;
  /** Posted to a worker and not settled (counted in the pool's per-tenant `#held`). */
  held: boolean;
}

/** One worker thread and the calls it holds. Outlives its slot until it has exited. */
interface Runner {
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

interface Slot {
  readonly index: number;
  runner: Runner;
}

/** What predicts a call's duration: the same export of the same plugin for the same schedule. */
function speedKey(pluginId: string, req: CallRequest): string {
  return `${pluginId}\n${req.fn}\n${req.caller.scheduleKey ?? ''}`;
}

const ENTRY = new URL('./worker-entry.js', import.meta.url);
/** Extra time a call may take before it starts (worker boot, guest instantiation). */
const SETUP_GRACE_MS = 30_000;
/** Calls queued behind one that has run this long are taken back and dispatched again. */
const STEAL_MS = 5;
/** A call whose worker died before running it is dispatched again at most this many times. */
const MAX_RETRIES = 3;

export class WorkerPoolSandbox implements Sandbox {
  readonly #o: WorkerPoolOptions;
  readonly #maxBatch: number;
  readonly #spareCount: number;
  readonly #fastCallMs: number;
  readonly #guests = new Map<string, Guest>();
  readonly #slots: Slot[] = [];
  /** Waiting calls per tenant, and the tenants' turn order. */
  readonly #queues = new Map<string, PendingCall[]>();
  #turn: string[] = [];
  #waiting = 0;
  /** Calls held by workers (posted, not settled), per tenant: for fairness. */
  readonly #held = new Map<string, number>();
  #dispatchQueued = false;
  /** Calls (plugin, export, schedule) whose last run was fast: they may share a batch. */
  readonly #fast = new Set<string>();
  #nextCallId = 1;
  #closed = false;
  /** Booted (or booting), idle workers ready to replace one that was terminated. */
  #spares: Runner[] = [];
  /** Retired workers that have not exited yet. */
  readonly #retired = new Set<Runner>();

  constructor(opts: WorkerPoolOptions) {
    this.#o = opts;
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 64);
    this.#spareCount = Math.max(1, opts.spareWorkers ?? 2);
    this.#fastCallMs = opts.fastCallMs ?? 2;
    const size = Math.max(1, opts.size ?? os.availableParallelism());
    for (let index = 0; index < size; index++) {
      this.#slots.push({ index, runner: this.#spawn() });
    }
    for (let i = 0; i < this.#spareCount; i++) this.#spares.push(this.#spawn());
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Terminates a worker as if it had crashed (for tests and operators). */
  async killWorker(index: number): Promise<void> {
    const slot = this.#slots[index];
    if (slot) await slot.runner.worker.terminate();
  }

  /** Boots a worker (idle: unref'd, so it never keeps the process alive). */
  #spawn(): Runner {
    const channel = newChannel();
    const journal = newJournal();
    const init: WorkerInit = {
      channel,
      journal,
      hostCallTimeoutMs: this.#o.hostCallTimeoutMs ?? 5_000,
      nice: this.#o.workerNice ?? 10,
      hostCallFuel: this.#o.hostCallFuel ?? {},
    };
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
    worker.on('message', (m: FromWorker) => this.#onMessage(r, m));
    worker.on('error', () => undefined); // 'exit' follows and does the accounting
    worker.once('exit', () => this.#onExit(r));
    worker.unref();
    // Calls only go to booted workers: one that never boots is terminated (and replaced).
    const boot = setTimeout(() => {
      if (!r.ready) void worker.terminate().catch(() => undefined);
    }, SETUP_GRACE_MS);
    boot.unref();
    worker.once('message', () => clearTimeout(boot));
    return r;
  }

  #onMessage(r: Runner, m: FromWorker): void {
    switch (m.type) {
      case 'results': {
        const metas = JSON.parse(m.metas) as CallOutcome[];
        this.#onResults(r, m.callIds, (i) =>
          outcomeFrom(metas[i] as CallOutcome, m.outputs[i] ?? null),
        );
        return;
      }
      case 'hostcall': {
        let response: HostCallAnswer;
        try {
          response = asHostCallAnswer(this.#o.hostCall(m.caller, m.fn, m.request));
        } catch (err) {
          const answer = JSON.stringify({
            error: { code: 'internal', message: (err as Error).message },
          });
          response = { answer, fuel: 0, denied: null };
        }
        answerHostCall(r.channel, m.seq, response);
        return;
      }
      case 'loaded':
        if (!m.error) r.loaded.add(m.pluginId);
        r.loads.get(m.pluginId)?.(m);
        r.loads.delete(m.pluginId);
        return;
      case 'log':
        this.#o.onGuestLog?.(m);
        return;
      case 'ready':
        r.ready = true;
        if (!r.retired) this.#scheduleDispatch();
        return;
    }
  }

  #onResults(r: Runner, callIds: number[], outcomeOf: (i: number) => CallOutcome): void {
    // Outcomes come in the order the calls were posted: match them from the front.
    let head = 0;
    for (let i = 0; i < callIds.length; i++) {
      const id = callIds[i] as number;
      let call = r.assigned[head];
      if (call?.callId === id) head++;
      else {
        const at = r.assigned.findIndex((c, j) => j >= head && c.callId === id);
        if (at < 0) continue;
        call = r.assigned.splice(at, 1)[0] as PendingCall;
      }
      const outcome = outcomeOf(i);
      if (outcome.durationMs < this.#fastCallMs) this.#fast.add(call.speedKey);
      else this.#fast.delete(call.speedKey);
      this.#settle(call, outcome);
    }
    if (head > 0) r.assigned.splice(0, head);
    r.progressAt = Date.now();
    if (r.assigned.length === 0 && !r.retired) {
      this.#idle(r);
      this.#scheduleDispatch();
    }
  }

  #settle(call: PendingCall, outcome: CallOutcome): void {
    if (call.settled) return;
    call.settled = true;
    this.#hold(call, false);
    call.resolve(outcome);
  }

  #idle(r: Runner): void {
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    r.minTimeoutMs = Infinity;
    if (r.loads.size === 0) r.worker.unref();
  }

  /**
   * A worker exited: terminated by the watchdog, killed, or crashed. Every message it posted has
   * been delivered by now; the calls it still held end here or go back to the queue.
   */
  #onExit(r: Runner): void {
    r.exited = true;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    this.#retired.delete(r);
    for (const resolve of r.loads.values())
      resolve({ type: 'loaded', pluginId: '', error: 'the worker exited' });
    r.loads.clear();
    if (this.#closed) return;
    if (!r.retired) {
      const slot = this.#slots.find((s) => s.runner === r);
      if (slot) this.#replace(slot, 'worker_crashed');
      else if (this.#spares.includes(r)) {
        this.#spares = this.#spares.filter((x) => x !== r);
        this.#spares.push(this.#spawn());
      }
    }
    const journaled = journalRead(r.journal);
    const running = Atomics.load(r.ctl, CTL_RUNNING);
    const again: PendingCall[] = [];
    for (const call of r.assigned) {
      if (call.settled) continue;
      const outcome = journaled.get(call.callId);
      if (outcome) this.#settle(call, outcome);
      else if (call.callId === running || call.retries >= MAX_RETRIES) {
        this.#fast.delete(call.speedKey);
        this.#settle(call, {
          ok: false,
          status: 'worker_crashed',
          reason: 'worker_exit',
          message: 'the sandbox worker exited during the call; it was replaced',
          durationMs: Date.now() - call.started,
          fuelUsed: null,
        });
      } else {
        call.retries++;
        again.push(call);
      }
    }
    r.assigned = [];
    r.batch = [];
    for (let i = again.length - 1; i >= 0; i--) this.#enqueue(again[i] as PendingCall, true);
    this.#scheduleDispatch();
  }

  /** Puts a warm worker in `slot` and retires (terminates) the one it had. */
  #replace(slot: Slot, reason: 'timed_out' | 'worker_crashed'): void {
    const old = slot.runner;
    old.retired = true;
    if (old.timer) clearTimeout(old.timer);
    old.timer = null;
    if (!old.exited) this.#retired.add(old);
    // A replacement takes a warm spare, booted ones first (a fresh worker needs ~250 ms of CPU
    // to boot), and a new spare boots in the background.
    let at = this.#spares.findIndex((r) => r.ready && !r.exited);
    if (at < 0) at = this.#spares.findIndex((r) => !r.exited);
    const [spare] = at < 0 ? [] : this.#spares.splice(at, 1);
    slot.runner = spare ?? this.#spawn();
    this.#spares.push(this.#spawn());
    void old.worker.terminate().catch(() => undefined);
    this.#o.onWorkerReplaced?.({ slot: slot.index, reason });
  }

  async load(spec: GuestSpec): Promise<GuestInfo> {
    if (this.#closed) throw new HourglassError('HG_HOST_STATE', 'the sandbox pool is closed');
    const { wasm, ...rest } = spec;
    const prepared = await prepareGuest(spec.pluginId, wasm, spec.limits);
    // Instantiate once in a worker (start functions are guest code: never on this thread).
    const r = (this.#slots[0] as Slot).runner;
    r.loaded.delete(spec.pluginId);
    r.worker.ref(); // an idle pool must not keep the process alive; a pending answer must
    const ack = await new Promise<Extract<FromWorker, { type: 'loaded' }>>((resolve) => {
      r.loads.set(spec.pluginId, resolve);
      this.#post(r, { type: 'load', spec: rest, prepared });
    });
    if (r.assigned.length === 0 && r.loads.size === 0) r.worker.unref();
    if (ack.error || !ack.info) {
      throw new HourglassError(
        ack.code === 'HG_PLUGIN_INIT_FUEL' ? 'HG_PLUGIN_INIT_FUEL' : 'HG_PLUGIN_LOAD',
        `plugin ${spec.pluginId}: cannot be instantiated: ${ack.error ?? 'unknown error'}`,
      );
    }
    for (const other of this.#slots)
      if (other.runner !== r) other.runner.loaded.delete(spec.pluginId);
    for (const spare of this.#spares) spare.loaded.delete(spec.pluginId);
    this.#guests.set(spec.pluginId, { spec: rest, prepared });
    return ack.info;
  }

  #post(r: Runner, msg: ToWorker): void {
    r.worker.postMessage(msg);
  }

  call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    const guest = this.#guests.get(pluginId);
    if (!guest || this.#closed)
      return Promise.reject(
        new HourglassError('HG_HOST_STATE', `plugin ${pluginId} is not loaded`),
      );
    return new Promise((resolve) => {
      this.#enqueue(
        {
          callId: this.#nextCallId++,
          pluginId,
          tenant: guest.spec.tenant,
          req,
          resolve,
          speedKey: speedKey(pluginId, req),
          started: Date.now(),
          timeoutMs: guest.spec.limits.timeoutMs,
          settled: false,
          retries: 0,
          held: false,
        },
        false,
      );
      this.#scheduleDispatch();
    });
  }

  #enqueue(call: PendingCall, front: boolean): void {
    let q = this.#queues.get(call.tenant);
    if (!q) {
      this.#queues.set(call.tenant, (q = []));
      this.#turn.push(call.tenant);
    }
    if (front) q.unshift(call);
    else q.push(call);
    this.#hold(call, false);
    this.#waiting++;
  }

  /** Counts `call` in (or out of) its tenant's calls held by workers. */
  #hold(call: PendingCall, held: boolean): void {
    if (call.held === held) return;
    call.held = held;
    this.#held.set(call.tenant, (this.#held.get(call.tenant) ?? 0) + (held ? 1 : -1));
  }

  /**
   * Next waiting call: from the waiting tenant with the fewest calls held by workers (ties: the
   * one waiting longest for its turn). Plain turn order is not enough: a tenant whose burst took
   * every worker before anyone else queued would still be first in line.
   */
  #take(): PendingCall | undefined {
    let best = -1;
    let bestHeld = Infinity;
    for (let i = 0; i < this.#turn.length; i++) {
      const held = this.#held.get(this.#turn[i] as string) ?? 0;
      if (held < bestHeld) [best, bestHeld] = [i, held];
    }
    if (best < 0) return undefined;
    const [tenant] = this.#turn.splice(best, 1) as [string];
    const q = this.#queues.get(tenant);
    const call = q?.shift();
    if (q && q.length > 0) this.#turn.push(tenant);
    else this.#queues.delete(tenant);
    if (call) this.#waiting--;
    return call;
  }

  /**
   * Dispatches in a microtask, once the code that made this call has run, so that every call it
   * makes synchronously (a timer's burst of due runs, a `Promise.all`) travels in one batch.
   */
  #scheduleDispatch(): void {
    if (this.#dispatchQueued || this.#closed) return;
    this.#dispatchQueued = true;
    queueMicrotask(() => {
      this.#dispatchQueued = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    if (this.#closed) return;
    // Only booted workers: calls wait in the queue (for whichever worker is ready first), not
    // behind a boot.
    const idle = this.#slots.filter((s) => s.runner.ready && s.runner.assigned.length === 0);
    for (let i = 0; i < idle.length && this.#waiting > 0; i++) {
      // An even share of what waits for each idle worker, so that a burst uses all of them.
      const share = Math.min(this.#maxBatch, Math.ceil(this.#waiting / (idle.length - i)));
      this.#send((idle[i] as Slot).runner, share);
    }
  }

  /** Sends up to `max` waiting calls to an idle worker in one batch. */
  #send(r: Runner, max: number): void {
    const batch: BatchCall[] = [];
    const now = Date.now();
    r.batch = [];
    while (batch.length < max) {
      const call = this.#take();
      if (!call) break;
      const guest = this.#guests.get(call.pluginId);
      if (!guest) {
        this.#settle(call, {
          ok: false,
          status: 'failed',
          reason: 'unloaded',
          message: `plugin ${call.pluginId} was unloaded`,
          durationMs: 0,
          fuelUsed: null,
        });
        continue;
      }
      if (!r.loaded.has(call.pluginId)) {
        r.loaded.add(call.pluginId);
        this.#post(r, { type: 'load', spec: guest.spec, prepared: guest.prepared });
      }
      call.started = now;
      r.batch.push(call);
      r.assigned.push(call);
      this.#hold(call, true);
      if (call.timeoutMs < r.minTimeoutMs) r.minTimeoutMs = call.timeoutMs;
      // A call that may run long goes last, and the worker posts what it holds before it.
      const fast = this.#fast.has(call.speedKey);
      batch.push(
        fast
          ? { callId: call.callId, pluginId: call.pluginId, req: call.req }
          : { callId: call.callId, pluginId: call.pluginId, req: call.req, slow: true },
      );
      if (!fast) break;
    }
    if (batch.length === 0) return;
    r.worker.ref();
    r.progressAt = now;
    Atomics.store(r.ctl, CTL_CLAIM, 0);
    this.#post(r, { type: 'batch', calls: JSON.stringify(batch) });
    if (r.timer) clearTimeout(r.timer);
    const first = batch.length > 1 ? Math.min(STEAL_MS, r.minTimeoutMs) : r.minTimeoutMs;
    r.timer = setTimeout(() => this.#check(r), first);
  }

  /**
   * The deadline watchdog. The worker publishes which call it is running and since when in
   * shared memory; that call's deadline counts from that moment. While none runs (a fresh worker
   * booting, a guest instantiating) a generous setup deadline applies, counted from the last
   * sign of progress. Past either, the worker is terminated and replaced.
   */
  #check(r: Runner): void {
    r.timer = null;
    if (r.retired || r.assigned.length === 0) return;
    const now = Date.now();
    const running = Atomics.load(r.ctl, CTL_RUNNING);
    const call = running === 0 ? undefined : r.assigned.find((c) => c.callId === running);
    if (call) {
      call.started = r.clock[CTL_STARTED_F64] as number;
      const left = call.started + call.timeoutMs - now;
      if (left > 0) {
        if (now - call.started >= STEAL_MS) {
          this.#steal(r);
          this.#harvest(r, call.callId);
        }
        const waitMs = r.assigned.at(-1) === call ? left : Math.min(left, STEAL_MS);
        r.timer = setTimeout(() => this.#check(r), Math.min(waitMs, r.minTimeoutMs));
        return;
      }
      return this.#expire(
        r,
        call,
        'deadline',
        `${call.req.fn}() ran past its ${call.timeoutMs} ms deadline`,
      );
    }
    const next = r.assigned.find((c) => !c.settled);
    if (!next) return;
    const setupLeft = r.progressAt + next.timeoutMs + SETUP_GRACE_MS - now;
    if (setupLeft > 0) {
      r.timer = setTimeout(() => this.#check(r), Math.min(setupLeft, r.minTimeoutMs));
      return;
    }
    this.#expire(
      r,
      next,
      'setup_deadline',
      `the guest was not ready within ${next.timeoutMs + SETUP_GRACE_MS} ms`,
    );
  }

  /** Takes back the calls of `r`'s batch that have not started, and queues them again first. */
  #steal(r: Runner): void {
    const from = Atomics.exchange(r.ctl, CTL_CLAIM, CLAIM_STOLEN);
    if (from === CLAIM_STOLEN || from >= r.batch.length) return;
    const stolen = new Set(r.batch.slice(from));
    r.batch = r.batch.slice(0, from);
    r.assigned = r.assigned.filter((c) => !stolen.has(c));
    const again = [...stolen].filter((c) => !c.settled);
    for (let i = again.length - 1; i >= 0; i--) this.#enqueue(again[i] as PendingCall, true);
    this.#scheduleDispatch();
  }

  /**
   * Settles the calls `r` finished before the long one it is running (`runningId`), whose
   * outcomes it holds until that one ends. The worker only touches its journal between calls,
   * so a copy taken while the same call runs before and after it is consistent.
   */
  #harvest(r: Runner, runningId: number): void {
    const journaled = journalRead(r.journal);
    if (journaled.size === 0 || Atomics.load(r.ctl, CTL_RUNNING) !== runningId) return;
    r.assigned = r.assigned.filter((call) => {
      const outcome = journaled.get(call.callId);
      if (outcome) this.#settle(call, outcome);
      return !outcome;
    });
  }

  #expire(r: Runner, call: PendingCall, reason: 'deadline' | 'setup_deadline', what: string): void {
    const slot = this.#slots.find((s) => s.runner === r);
    if (slot) this.#replace(slot, 'timed_out');
    this.#fast.delete(call.speedKey);
    this.#settle(call, {
      ok: false,
      status: 'timed_out',
      reason,
      message: `${what}; the worker was terminated`,
      durationMs: Date.now() - call.started,
      fuelUsed: null,
    });
    // The rest of its batch is accounted for when it has exited (#onExit).
    this.#scheduleDispatch();
  }

  async unload(pluginId: string): Promise<void> {
    this.#guests.delete(pluginId);
    for (const key of this.#fast) if (key.startsWith(`${pluginId}\n`)) this.#fast.delete(key);
    for (const slot of this.#slots) {
      if (slot.runner.loaded.delete(pluginId))
        this.#post(slot.runner, { type: 'unload', pluginId });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const [, q] of this.#queues) {
      for (const call of q)
        this.#settle(call, {
          ok: false,
          status: 'worker_crashed',
          reason: 'closed',
          message: 'the sandbox pool was closed',
          durationMs: 0,
          fuelUsed: null,
        });
    }
    this.#queues.clear();
    this.#turn = [];
    this.#waiting = 0;
    const all = [...this.#slots.map((s) => s.runner), ...this.#retired, ...this.#spares];
    this.#spares = [];
    await Promise.all(
      all.map(async (r) => {
        if (r.timer) clearTimeout(r.timer);
        r.timer = null;
        await r.worker.terminate();
      }),
    );
  }
}
