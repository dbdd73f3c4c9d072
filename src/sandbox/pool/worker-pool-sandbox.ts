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
 *
 * The parts: dispatch.ts (the per-tenant waiting room and its fairness rule), watchdog.ts (the
 * deadlines), worker-lifecycle.ts (slots, spares, retired workers); this file ties them together
 * and implements `Sandbox`.
 */
import os from 'node:os';
import { HourglassError } from '../../errors.ts';
import { prepareGuest, type PreparedGuest } from '../guest-module.ts';
import type { PreparedSpec } from '../in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from '../types.ts';
import { FairQueue, speedKey, type PendingCall } from './dispatch.ts';
import { journalRead, outcomeFrom } from './outcome-journal.ts';
import {
  answerHostCall,
  CTL_CLAIM,
  CTL_RUNNING,
  type BatchCall,
  type FromWorker,
  type ToWorker,
} from './protocol.ts';
import { Watchdog } from './watchdog.ts';
import { WorkerSet, type Runner, type Slot } from './worker-lifecycle.ts';

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

/** A call whose worker died before running it is dispatched again at most this many times. */
const MAX_RETRIES = 3;

export class WorkerPoolSandbox implements Sandbox {
  readonly #o: WorkerPoolOptions;
  readonly #maxBatch: number;
  readonly #fastCallMs: number;
  readonly #guests = new Map<string, Guest>();
  readonly #queue = new FairQueue();
  readonly #workers: WorkerSet;
  readonly #watchdog: Watchdog;
  #dispatchQueued = false;
  /** Calls (plugin, export, schedule) whose last run was fast: they may share a batch. */
  readonly #fast = new Set<string>();
  #nextCallId = 1;
  #closed = false;

  constructor(opts: WorkerPoolOptions) {
    this.#o = opts;
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 64);
    this.#fastCallMs = opts.fastCallMs ?? 2;
    this.#watchdog = new Watchdog({
      settle: (call, outcome) => this.#settle(call, outcome),
      requeue: (calls) => this.#requeue(calls),
      expire: (r, call, reason, what) => this.#expire(r, call, reason, what),
    });
    this.#workers = new WorkerSet(
      {
        hostCallTimeoutMs: opts.hostCallTimeoutMs ?? 5_000,
        nice: opts.workerNice ?? 10,
        hostCallFuel: opts.hostCallFuel ?? {},
      },
      Math.max(1, opts.size ?? os.availableParallelism()),
      Math.max(1, opts.spareWorkers ?? 2),
      { onMessage: (r, m) => this.#onMessage(r, m), onExit: (r) => this.#onExit(r) },
    );
  }

  get size(): number {
    return this.#workers.slots.length;
  }

  /** Terminates a worker as if it had crashed (for tests and operators). */
  async killWorker(index: number): Promise<void> {
    const slot = this.#workers.slots[index];
    if (slot) await slot.runner.worker.terminate();
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
        let response: string;
        try {
          response = this.#o.hostCall(m.caller, m.fn, m.request);
        } catch (err) {
          response = JSON.stringify({
            error: { code: 'internal', message: (err as Error).message },
          });
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
    this.#queue.hold(call, false);
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
    this.#workers.retired.delete(r);
    for (const resolve of r.loads.values())
      resolve({ type: 'loaded', pluginId: '', error: 'the worker exited' });
    r.loads.clear();
    if (this.#closed) return;
    const slot = this.#workers.exited(r);
    if (slot) this.#replace(slot, 'worker_crashed');
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
    this.#requeue(again);
  }

  /** Puts a warm worker in `slot` and retires (terminates) the one it had. */
  #replace(slot: Slot, reason: 'timed_out' | 'worker_crashed'): void {
    this.#workers.replace(slot);
    this.#o.onWorkerReplaced?.({ slot: slot.index, reason });
  }

  async load(spec: GuestSpec): Promise<GuestInfo> {
    if (this.#closed) throw new HourglassError('HG_HOST_STATE', 'the sandbox pool is closed');
    const { wasm, ...rest } = spec;
    const prepared = await prepareGuest(spec.pluginId, wasm, spec.limits);
    // Instantiate once in a worker (start functions are guest code: never on this thread).
    const r = (this.#workers.slots[0] as Slot).runner;
    r.loaded.delete(spec.pluginId);
    r.worker.ref(); // an idle pool must not keep the process alive; a pending answer must
    const ack = await new Promise<Extract<FromWorker, { type: 'loaded' }>>((resolve) => {
      r.loads.set(spec.pluginId, resolve);
      this.#post(r, { type: 'load', spec: rest, prepared });
    });
    if (r.assigned.length === 0 && r.loads.size === 0) r.worker.unref();
    if (ack.error || !ack.info) {
      throw new HourglassError(
        'HG_PLUGIN_LOAD',
        `plugin ${spec.pluginId}: cannot be instantiated: ${ack.error ?? 'unknown error'}`,
      );
    }
    for (const other of this.#workers.slots)
      if (other.runner !== r) other.runner.loaded.delete(spec.pluginId);
    for (const spare of this.#workers.spares) spare.loaded.delete(spec.pluginId);
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
      this.#queue.enqueue(
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

  /** Queues calls taken back from a worker again, first in line, in this order. */
  #requeue(calls: readonly PendingCall[]): void {
    for (let i = calls.length - 1; i >= 0; i--) this.#queue.enqueue(calls[i] as PendingCall, true);
    this.#scheduleDispatch();
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
    const idle = this.#workers.slots.filter(
      (s) => s.runner.ready && s.runner.assigned.length === 0,
    );
    for (let i = 0; i < idle.length && this.#queue.waiting > 0; i++) {
      // An even share of what waits for each idle worker, so that a burst uses all of them.
      const share = Math.min(this.#maxBatch, Math.ceil(this.#queue.waiting / (idle.length - i)));
      this.#send((idle[i] as Slot).runner, share);
    }
  }

  /** Sends up to `max` waiting calls to an idle worker in one batch. */
  #send(r: Runner, max: number): void {
    const batch: BatchCall[] = [];
    const now = Date.now();
    r.batch = [];
    while (batch.length < max) {
      const call = this.#queue.take();
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
      this.#queue.hold(call, true);
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
    this.#watchdog.arm(r, batch.length);
  }

  #expire(r: Runner, call: PendingCall, reason: 'deadline' | 'setup_deadline', what: string): void {
    const slot = this.#workers.slotOf(r);
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
    for (const slot of this.#workers.slots) {
      if (slot.runner.loaded.delete(pluginId))
        this.#post(slot.runner, { type: 'unload', pluginId });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const call of this.#queue.drain())
      this.#settle(call, {
        ok: false,
        status: 'worker_crashed',
        reason: 'closed',
        message: 'the sandbox pool was closed',
        durationMs: 0,
        fuelUsed: null,
      });
    await Promise.all(
      this.#workers.takeAll().map(async (r) => {
        if (r.timer) clearTimeout(r.timer);
        r.timer = null;
        await r.worker.terminate();
      }),
    );
  }
}
