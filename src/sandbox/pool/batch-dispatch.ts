/**
 * Sending waiting calls to workers, in batches: which worker gets how many, and what may share
 * a batch.
 *
 * - Calls travel in batches: when a worker has room it gets its share of what waits (taken
 *   from the fair queue, dispatch.ts) in one message; it runs them in order. A message costs
 *   ~20 µs, a no-op call under 1 µs: batching is what makes the pool cheap. The batch is binary
 *   (request-codec.ts), transferred: JSON cost both threads more per call than the call.
 * - Pipelining: a busy worker gets its next batch before it runs out (when fewer than half a
 *   batch of its calls have not started), so it never idles while the main thread wakes up,
 *   reads outcomes and posts more. Only behind fast calls, and never to a worker whose calls
 *   were taken back.
 * - A call shares a batch with calls behind it only if its predecessor (same plugin, export and
 *   schedule) was fast; any other call goes last (and nothing is pipelined behind it). If a
 *   call still runs long, the calls behind it that have not started are taken back (the
 *   watchdog, through the claim word) and dispatched again.
 * - A load runs alone, on an idle worker: never behind calls that may run long (it could not be
 *   taken back).
 * - A call of a plugin with variables carries a snapshot of them when its worker's copy is not
 *   known to be current (vars-sync.ts).
 * - Dispatching happens in a microtask, once the code that queued a call has run, so that every
 *   call it makes synchronously (a timer's burst of due runs, a `Promise.all`) travels in one
 *   batch.
 */
import type { PreparedGuest } from '../guest-module.ts';
import type { PreparedSpec } from '../in-thread-sandbox.ts';
import type { CallOutcome } from '../types.ts';
import type { FairQueue, PendingCall } from './dispatch.ts';
import { CLAIM_STOLEN, CTL_CLAIM, type BatchCall, type ToWorker } from './protocol.ts';
import { encodeBatch } from './request-codec.ts';
import { WorkerSet, type Runner } from './worker-lifecycle.ts';
import { snapshotFor, snapshotLost } from './vars-sync.ts';

export interface Guest {
  readonly spec: PreparedSpec;
  readonly prepared: PreparedGuest;
}

/** Per-worker call sequence numbers restart from 0 past this (when the worker is idle). */
const SEQ_LIMIT = 1 << 30;

export interface DispatchHost {
  readonly queue: FairQueue;
  readonly guests: ReadonlyMap<string, Guest>;
  /** Calls (plugin, export, schedule) whose last run was fast: they may share a batch. */
  readonly fast: ReadonlySet<string>;
  closed(): boolean;
  settle(call: PendingCall, outcome: CallOutcome): void;
  /** Calls (or a load) were posted to `r`: arm its watchdog and watch its ring. */
  posted(r: Runner): void;
}

export class BatchDispatcher {
  readonly #host: DispatchHost;
  readonly #workers: WorkerSet;
  readonly #maxBatch: number;
  #queued = false;

  constructor(host: DispatchHost, workers: WorkerSet, maxBatch: number) {
    this.#host = host;
    this.#workers = workers;
    this.#maxBatch = maxBatch;
  }

  /** Dispatches in a microtask (see the head comment). */
  schedule(): void {
    if (this.#queued || this.#host.closed()) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      this.#dispatch();
    });
  }

  /** Queues calls taken back from a worker again, first in line, in this order. */
  requeue(calls: readonly PendingCall[]): void {
    for (let i = calls.length - 1; i >= 0; i--) {
      snapshotLost(calls[i] as PendingCall);
      this.#host.queue.enqueue(calls[i] as PendingCall, true);
    }
    this.schedule();
  }

  #dispatch(): void {
    const queue = this.#host.queue;
    if (this.#host.closed()) return;
    // Only booted workers: calls wait in the queue (for whichever worker is ready first), not
    // behind a boot.
    const open = this.#workers.slots
      .map((s) => s.runner)
      .filter((r) => WorkerSet.usable(r) && this.#room(r) > 0);
    for (let i = 0; i < open.length && queue.waiting > 0; i++) {
      // An even share of what waits for each worker, so that a burst uses all of them.
      const r = open[i] as Runner;
      const share = Math.min(this.#room(r), Math.ceil(queue.waiting / (open.length - i)));
      this.#send(r, share);
    }
  }

  /** How many calls `r` may be sent now (see pipelining in the head comment). */
  #room(r: Runner): number {
    if (r.assigned.length === 0) return this.#maxBatch;
    const claim = Atomics.load(r.ctl, CTL_CLAIM);
    const last = r.assigned.at(-1) as PendingCall;
    if (claim === CLAIM_STOLEN || last.load || last.slow) return 0;
    const notStarted = r.nextSeq - claim;
    return notStarted * 2 <= this.#maxBatch ? this.#maxBatch - notStarted : 0;
  }

  /**
   * Sends up to `max` waiting calls to `r` in one batch. A load ends the batch: it is posted
   * after it, as its own message, and only to an idle worker.
   */
  #send(r: Runner, max: number): void {
    const { queue, guests, fast } = this.#host;
    const batch: BatchCall[] = [];
    const now = Date.now();
    const idle = r.assigned.length === 0;
    let load: PendingCall | undefined;
    if (idle) {
      if (r.nextSeq > SEQ_LIMIT) r.nextSeq = 0;
      r.batch = [];
      r.batchBase = r.nextSeq;
    } else {
      if (r.nextSeq > SEQ_LIMIT) return; // sequence numbers wrap only while nothing is in flight
      // Forget the calls that have started (settled or running), keep the rest.
      const started = Math.max(0, Atomics.load(r.ctl, CTL_CLAIM) - r.batchBase);
      r.batch = r.batch.slice(started);
      r.batchBase += started;
    }
    while (batch.length < max) {
      const call = queue.take();
      if (!call) break;
      if (call.load) {
        if (batch.length > 0 || !idle) queue.enqueue(call, true);
        else load = call;
        break;
      }
      const guest = guests.get(call.pluginId);
      if (!guest) {
        this.#host.settle(call, {
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
        r.vars.delete(call.pluginId); // a new instance's guest: its variables come with the call
        this.#post(r, { type: 'load', spec: guest.spec, prepared: guest.prepared });
      }
      this.#assign(r, call, now);
      r.batch.push(call);
      // A call that may run long goes last.
      call.slow = !fast.has(call.speedKey);
      const { callId, pluginId, req } = call;
      const seq = r.nextSeq++;
      const b: BatchCall = call.slow
        ? { callId, seq, pluginId, req, slow: true }
        : { callId, seq, pluginId, req };
      const vars = req.vars === undefined ? undefined : snapshotFor(r.vars, call);
      batch.push(vars === undefined ? b : { ...b, vars });
      if (call.slow) break;
    }
    if (batch.length === 0 && !load) return;
    r.progressAt = now;
    if (batch.length > 0) {
      // After a steal (or a wrap), the claim word moves to this batch's first call.
      if (idle) Atomics.store(r.ctl, CTL_CLAIM, r.batchBase);
      const calls = encodeBatch(batch);
      r.worker.postMessage({ type: 'batch', calls } satisfies ToWorker, [calls]);
    }
    if (load?.load) {
      this.#assign(r, load, now);
      r.loaded.delete(load.pluginId);
      r.vars.delete(load.pluginId);
      this.#post(r, {
        type: 'prepare',
        callId: load.callId,
        spec: load.load.spec,
        wasm: load.load.wasm,
      });
    }
    this.#host.posted(r);
  }

  #assign(r: Runner, call: PendingCall, now: number): void {
    call.started = now;
    r.assigned.push(call);
    this.#host.queue.hold(call, true);
    if (call.timeoutMs < r.minTimeoutMs) r.minTimeoutMs = call.timeoutMs;
  }

  #post(r: Runner, msg: ToWorker): void {
    r.worker.postMessage(msg);
  }
}
