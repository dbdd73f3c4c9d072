/**
 * A `Sandbox` that runs every guest call on a pool of worker threads, so the main thread (store,
 * scheduler, operator surfaces) never executes guest code.
 *
 * - Loading never runs on the main thread: a plugin's load is queued like a call (its tenant's
 *   turn, fairness included) and runs in one worker, which validates, instruments and compiles
 *   it (prepareGuest) and instantiates it (its start function runs), under the load deadline
 *   (`loadTimeoutMs`). The compiled `WebAssembly.Module` comes back and is posted to the other
 *   workers, which instantiate it lazily (and re-create it after a trap).
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
 * - Lifetimes: while the pool owes an answer (a call or load not settled) it holds a keep-alive
 *   timer, and only then: calls waiting for a worker that is still booting (a replacement, a
 *   spare) must keep the process alive, an idle pool must not (worker threads are always
 *   unref'd). Tying liveness to the threads instead, as before, let the event loop drain while
 *   calls waited for a booting worker, and their promises never settled. `close()` settles
 *   everything it holds (waiting, running, loading: `abandoned`/`closed`, or the outcome a worker
 *   had journaled) and waits for threads at most `closeTimeoutMs`.
 *
 * The parts: dispatch.ts (the per-tenant waiting room and its fairness rule), watchdog.ts (the
 * deadlines), worker-lifecycle.ts (slots, spares, retired workers); this file ties them together
 * and implements `Sandbox`.
 */
import os from 'node:os';
import { HourglassError, type ErrorCode } from '../../errors.ts';
import type { PreparedGuest } from '../guest-module.ts';
import type { PreparedSpec } from '../in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallAnswer,
  Sandbox,
} from '../types.ts';
import { asHostCallAnswer } from '../types.ts';
import { FairQueue, speedKey, type LoadTask, type PendingCall } from './dispatch.ts';
import type { WorkerPoolOptions } from './options.ts';
import { RingCorruptError, ringDrain, ringRelease, ringWait } from './result-ring.ts';
import {
  answerHostCall,
  CLAIM_STOLEN,
  CTL_CLAIM,
  CTL_RUNNING,
  type BatchCall,
  type FromWorker,
  type ToWorker,
} from './protocol.ts';
import { Watchdog } from './watchdog.ts';
import { DEFAULT_ENTRY, WorkerSet, type Runner, type Slot } from './worker-lifecycle.ts';

export type { WorkerPoolOptions } from './options.ts';

interface Guest {
  readonly spec: PreparedSpec;
  readonly prepared: PreparedGuest;
}

/** A call whose worker died before running it is dispatched again at most this many times. */
const MAX_RETRIES = 3;
/** Per-worker call sequence numbers restart from 0 past this (when the worker is idle). */
const SEQ_LIMIT = 1 << 30;

function failure(
  status: 'worker_crashed' | 'failed' | 'abandoned',
  reason: string,
  message: string,
  durationMs = 0,
): CallOutcome {
  return { ok: false, status, reason, message, durationMs, fuelUsed: null };
}

export class WorkerPoolSandbox implements Sandbox {
  readonly #o: WorkerPoolOptions;
  readonly #maxBatch: number;
  readonly #fastCallMs: number;
  readonly #loadTimeoutMs: number;
  readonly #guests = new Map<string, Guest>();
  readonly #queue = new FairQueue();
  readonly #workers: WorkerSet;
  readonly #watchdog: Watchdog;
  #dispatchQueued = false;
  /** Calls (plugin, export, schedule) whose last run was fast: they may share a batch. */
  readonly #fast = new Set<string>();
  #nextCallId = 1;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Calls and loads not settled; while > 0, `#alive` is ref'd (see the head comment). */
  #owed = 0;
  readonly #alive: NodeJS.Timeout;

  constructor(opts: WorkerPoolOptions) {
    this.#o = opts;
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 64);
    this.#fastCallMs = opts.fastCallMs ?? 2;
    this.#loadTimeoutMs = opts.loadTimeoutMs ?? 30_000;
    this.#alive = setInterval(() => undefined, 1 << 30);
    this.#alive.unref();
    this.#watchdog = new Watchdog({
      settle: (call, outcome) => this.#settle(call, outcome),
      requeue: (calls) => this.#requeue(calls),
      drain: (r) => this.#drain(r),
      expire: (r, call, reason, what) => this.#expire(r, call, reason, what),
    });
    this.#workers = new WorkerSet(
      {
        init: {
          hostCallTimeoutMs: opts.hostCallTimeoutMs ?? 5_000,
          nice: opts.workerNice ?? 10,
          hostCallFuel: opts.hostCallFuel ?? {},
        },
        size: Math.max(1, opts.size ?? os.availableParallelism()),
        spares: Math.max(1, opts.spareWorkers ?? 2),
        bootBackoffMs: opts.bootBackoffMs ?? 100,
        maxBootFailures: Math.max(1, opts.maxBootFailures ?? 10),
        entry: opts.workerEntry ?? DEFAULT_ENTRY,
      },
      {
        onMessage: (r, m) => this.#onMessage(r, m),
        onExit: (r) => this.#onExit(r),
        onBroken: () => this.#failIfNoWorkers(),
      },
    );
  }

  get size(): number {
    return this.#workers.slots.length;
  }

  /** Worker threads alive now: `size` + spares when settled, more while retired ones exit. */
  get threads(): number {
    return this.#workers.threads;
  }

  /** Terminates a worker as if it had crashed (for tests and operators). */
  async killWorker(index: number): Promise<void> {
    const slot = this.#workers.slots[index];
    if (slot) await slot.runner.worker.terminate();
  }

  #owe(delta: 1 | -1): void {
    this.#owed += delta;
    if (this.#owed > 0) this.#alive.ref();
    else this.#alive.unref();
  }

  #onMessage(r: Runner, m: FromWorker): void {
    switch (m.type) {
      case 'results': {
        // The ring holds what the worker finished before these: deliver that first.
        this.#drain(r);
        const metas = JSON.parse(m.metas) as CallOutcome[];
        const outcomes = new Map<number, CallOutcome>();
        m.callIds.forEach((id, i) => {
          const o = metas[i] as CallOutcome;
          if (o.ok) (o as { output: Uint8Array | null }).output = m.outputs[i] ?? null;
          outcomes.set(id, o);
        });
        this.#onResults(r, outcomes);
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
      case 'prepared':
        this.#onPrepared(r, m);
        return;
      case 'loaded':
        if (!m.error) r.loaded.add(m.pluginId);
        return;
      case 'log':
        this.#o.onGuestLog?.(m);
        return;
      case 'ready':
        r.ready = true;
        this.#workers.booted();
        if (!r.retired) this.#scheduleDispatch();
        return;
    }
  }

  /**
   * Reads what `r` put in its ring: log lines are forwarded, outcomes returned. A corrupt ring
   * (see result-ring.ts) ends the worker as crashed; what preceded the corruption counts.
   */
  #readRing(r: Runner): Map<number, CallOutcome> {
    const outcomes = new Map<number, CallOutcome>();
    try {
      ringDrain(r.ring, {
        outcome: (id, o) => outcomes.set(id, o),
        log: (line) => this.#o.onGuestLog?.(line),
      });
    } catch (err) {
      if (!(err instanceof RingCorruptError)) throw err;
      r.error ??= `its result ring is corrupt (${err.message})`;
      if (!r.exited) void r.worker.terminate().catch(() => undefined);
    }
    return outcomes;
  }

  /** Delivers the outcomes in `r`'s ring. */
  #drain(r: Runner): void {
    const outcomes = this.#readRing(r);
    if (outcomes.size > 0) this.#onResults(r, outcomes);
  }

  /**
   * While `r` holds calls, waits (without blocking) for it to publish outcomes, and delivers
   * them. The worker wakes the main thread only when it waits; while busy, the main thread finds
   * everything published on its next read.
   */
  #watch(r: Runner): void {
    while (!r.watching && !r.exited && r.assigned.length > 0) {
      const wait = ringWait(r.ring);
      if (wait === null) {
        this.#drain(r);
        continue;
      }
      r.watching = true;
      void wait.then(() => {
        r.watching = false;
        if (r.exited || this.#closed) return;
        this.#drain(r);
        this.#watch(r);
      });
    }
  }

  #onResults(r: Runner, outcomes: Map<number, CallOutcome>): void {
    // Outcomes come in the order the calls were posted: match them from the front. An id the
    // pool did not post to `r` (or already settled) is ignored.
    let head = 0;
    for (const [id, outcome] of outcomes) {
      let call = r.assigned[head];
      if (call?.callId === id) head++;
      else {
        const at = r.assigned.findIndex((c, j) => j >= head && c.callId === id);
        if (at < 0) continue;
        call = r.assigned.splice(at, 1)[0] as PendingCall;
      }
      if (outcome.durationMs < this.#fastCallMs) this.#fast.add(call.speedKey);
      else this.#fast.delete(call.speedKey);
      this.#settle(call, outcome);
    }
    if (head > 0) r.assigned.splice(0, head);
    this.#progress(r);
  }

  #onPrepared(r: Runner, m: Extract<FromWorker, { type: 'prepared' }>): void {
    const at = r.assigned.findIndex((c) => c.callId === m.callId);
    const call = at < 0 ? undefined : r.assigned.splice(at, 1)[0];
    if (call?.load && !call.settled) {
      if (m.prepared) r.loaded.add(call.pluginId);
      this.#finish(call);
      call.load.done(m);
    }
    this.#progress(r);
  }

  /** `r` delivered outcomes: when it holds nothing more, it takes the next calls. */
  #progress(r: Runner): void {
    r.progressAt = Date.now();
    if (r.retired) return;
    if (r.assigned.length === 0) {
      if (r.timer) clearTimeout(r.timer);
      r.timer = null;
      r.minTimeoutMs = Infinity;
      this.#scheduleDispatch();
    } else if (this.#queue.waiting > 0) this.#scheduleDispatch(); // it may take more (#room)
  }

  /** Marks `call` settled (once); the caller then delivers its answer. */
  #finish(call: PendingCall): boolean {
    if (call.settled) return false;
    call.settled = true;
    this.#queue.hold(call, false);
    this.#owe(-1);
    return true;
  }

  #settle(call: PendingCall, outcome: CallOutcome): void {
    if (this.#finish(call)) call.resolve(outcome);
  }

  /**
   * A worker exited: terminated by the watchdog, killed, or crashed. Every message it posted has
   * been delivered by now; the calls it still held end here or go back to the queue.
   */
  #onExit(r: Runner): void {
    r.exited = true;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    ringRelease(r.ring);
    if (this.#closed) return; // close() settles what it held
    const slot = this.#workers.exited(r);
    if (slot) this.#replace(slot, 'worker_crashed');
    const journaled = this.#readRing(r);
    const running = Atomics.load(r.ctl, CTL_RUNNING);
    const again: PendingCall[] = [];
    for (const call of r.assigned) {
      if (call.settled) continue;
      const outcome = journaled.get(call.callId);
      if (outcome) this.#settle(call, outcome);
      else if (call.callId === running || call.retries >= MAX_RETRIES) {
        this.#fast.delete(call.speedKey);
        this.#settle(
          call,
          failure(
            'worker_crashed',
            'worker_exit',
            `the sandbox worker exited during ${call.load ? 'the load' : 'the call'}; it was replaced${r.error ? ` (${r.error})` : ''}`,
            Date.now() - call.started,
          ),
        );
      } else {
        call.retries++;
        again.push(call);
      }
    }
    r.assigned = [];
    r.batch = [];
    this.#requeue(again);
    this.#failIfNoWorkers();
  }

  /**
   * Boots have failed too often (`broken`) and no slot has a working worker left: what waits
   * fails, and so does everything after. Slots whose workers still work keep serving calls.
   */
  #failIfNoWorkers(): void {
    const broken = this.#workers.broken;
    if (broken === null || this.#workers.slots.some((s) => WorkerSet.usable(s.runner))) return;
    for (const call of this.#queue.drain())
      this.#settle(call, failure('worker_crashed', 'worker_boot', broken));
  }

  /** Puts a warm worker in `slot` and retires (terminates) the one it had. */
  #replace(slot: Slot, reason: 'timed_out' | 'worker_crashed'): void {
    this.#workers.replace(slot);
    this.#o.onWorkerReplaced?.({ slot: slot.index, reason });
  }

  async load(spec: GuestSpec): Promise<GuestInfo> {
    if (this.#closed) throw new HourglassError('HG_HOST_STATE', 'the sandbox pool is closed');
    const { wasm, ...rest } = spec;
    const answer = await new Promise<
      Extract<FromWorker, { type: 'prepared' }> | Extract<CallOutcome, { ok: false }>
    >((resolve) => {
      const load: LoadTask = { spec: rest, wasm, done: resolve };
      this.#enqueue(spec.pluginId, spec.tenant, this.#loadTimeoutMs, load, {
        fn: 'schedules',
        caller: { pluginId: spec.pluginId, tenant: spec.tenant, phase: 'discovery' },
      }).then((o) => {
        if (!o.ok) resolve(o);
      });
    });
    if ('ok' in answer) {
      // The worker timed out, died, could not boot, or the pool closed: not the guest's answer.
      const code: ErrorCode =
        answer.reason === 'worker_boot'
          ? 'HG_SANDBOX_BOOT'
          : answer.reason === 'closed'
            ? 'HG_HOST_STATE'
            : 'HG_PLUGIN_LOAD';
      throw new HourglassError(code, `plugin ${spec.pluginId}: ${answer.message}`, {
        pluginId: spec.pluginId,
      });
    }
    if (answer.error || !answer.prepared || !answer.info) {
      const code = (answer.error?.code ?? 'HG_PLUGIN_LOAD') as ErrorCode;
      throw new HourglassError(code, answer.error?.message ?? 'the load failed', {
        pluginId: spec.pluginId,
      });
    }
    // Workers that had an older version instantiate this one before their next call of it.
    const loadedBy = this.#workers.slots.find((s) => s.runner.loaded.has(spec.pluginId));
    for (const slot of this.#workers.slots)
      if (slot !== loadedBy) slot.runner.loaded.delete(spec.pluginId);
    for (const spare of this.#workers.spares) spare.loaded.delete(spec.pluginId);
    this.#guests.set(spec.pluginId, { spec: rest, prepared: answer.prepared });
    return answer.info;
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
    return this.#enqueue(pluginId, guest.spec.tenant, guest.spec.limits.timeoutMs, undefined, req);
  }

  #enqueue(
    pluginId: string,
    tenant: string,
    timeoutMs: number,
    load: LoadTask | undefined,
    req: CallRequest,
  ): Promise<CallOutcome> {
    return new Promise((resolve) => {
      // Ids travel as int32 and only need to be unique among calls in flight: they wrap.
      const callId = this.#nextCallId;
      this.#nextCallId = callId >= 0x7fffffff ? 1 : callId + 1;
      const call: PendingCall = {
        callId,
        pluginId,
        tenant,
        req,
        resolve,
        speedKey: speedKey(pluginId, req),
        started: Date.now(),
        timeoutMs,
        settled: false,
        retries: 0,
        held: false,
        slow: false,
        ...(load ? { load } : {}),
      };
      this.#owe(1);
      this.#queue.enqueue(call, false);
      this.#scheduleDispatch();
      this.#failIfNoWorkers();
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
    const open = this.#workers.slots.filter(
      (s) => WorkerSet.usable(s.runner) && this.#room(s.runner) > 0,
    );
    for (let i = 0; i < open.length && this.#queue.waiting > 0; i++) {
      // An even share of what waits for each worker, so that a burst uses all of them.
      const r = (open[i] as Slot).runner;
      const share = Math.min(this.#room(r), Math.ceil(this.#queue.waiting / (open.length - i)));
      this.#send(r, share);
    }
  }

  /**
   * How many calls `r` may be sent now. An idle worker takes a batch. A busy one takes the next
   * batch before it runs out (pipelining: it never waits for the main thread between batches)
   * if what it holds is fast, nothing was taken back from it, and fewer than half a batch of
   * its calls have not started.
   */
  #room(r: Runner): number {
    if (r.assigned.length === 0) return this.#maxBatch;
    const claim = Atomics.load(r.ctl, CTL_CLAIM);
    const last = r.assigned.at(-1) as PendingCall;
    if (claim === CLAIM_STOLEN || last.load || last.slow) return 0;
    const notStarted = r.nextSeq - claim;
    return notStarted * 2 <= this.#maxBatch ? this.#maxBatch - notStarted : 0;
  }

  /**
   * Sends up to `max` waiting calls to a worker in one batch. A load ends the batch: it is
   * posted after it, as its own message, and only to an idle worker.
   */
  #send(r: Runner, max: number): void {
    const batch: BatchCall[] = [];
    const now = Date.now();
    const idle = r.assigned.length === 0;
    let load: PendingCall | undefined;
    if (idle || r.nextSeq > SEQ_LIMIT) {
      if (!idle) return; // sequence numbers wrap only while nothing is in flight
      if (r.nextSeq > SEQ_LIMIT) r.nextSeq = 0;
      r.batch = [];
      r.batchBase = r.nextSeq;
    } else {
      // Forget the calls that have started (they are settled or running), keep the rest.
      const started = Math.max(0, Atomics.load(r.ctl, CTL_CLAIM) - r.batchBase);
      r.batch = r.batch.slice(started);
      r.batchBase += started;
    }
    while (batch.length < max) {
      const call = this.#queue.take();
      if (!call) break;
      if (call.load) {
        // A load runs alone: never behind calls that may run long (it could not be taken back).
        if (batch.length > 0 || !idle) this.#queue.enqueue(call, true);
        else load = call;
        break;
      }
      const guest = this.#guests.get(call.pluginId);
      if (!guest) {
        this.#settle(call, failure('failed', 'unloaded', `plugin ${call.pluginId} was unloaded`));
        continue;
      }
      if (!r.loaded.has(call.pluginId)) {
        r.loaded.add(call.pluginId);
        this.#post(r, { type: 'load', spec: guest.spec, prepared: guest.prepared });
      }
      this.#assign(r, call, now);
      r.batch.push(call);
      // A call that may run long goes last.
      const fast = this.#fast.has(call.speedKey);
      call.slow = !fast;
      const seq = r.nextSeq++;
      batch.push(
        fast
          ? { callId: call.callId, seq, pluginId: call.pluginId, req: call.req }
          : { callId: call.callId, seq, pluginId: call.pluginId, req: call.req, slow: true },
      );
      if (!fast) break;
    }
    if (batch.length === 0 && !load) return;
    r.progressAt = now;
    if (batch.length > 0) {
      // After a steal (or a wrap), the claim word moves to this batch's first call.
      if (idle) Atomics.store(r.ctl, CTL_CLAIM, r.batchBase);
      this.#post(r, { type: 'batch', calls: JSON.stringify(batch) });
    }
    if (load?.load) {
      this.#assign(r, load, now);
      r.loaded.delete(load.pluginId);
      this.#post(r, {
        type: 'prepare',
        callId: load.callId,
        spec: load.load.spec,
        wasm: load.load.wasm,
      });
    }
    this.#watchdog.arm(r, r.assigned.length);
    this.#watch(r);
  }

  #assign(r: Runner, call: PendingCall, now: number): void {
    call.started = now;
    r.assigned.push(call);
    this.#queue.hold(call, true);
    if (call.timeoutMs < r.minTimeoutMs) r.minTimeoutMs = call.timeoutMs;
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

  /**
   * Closes the pool: every call and load it holds settles (those waiting and those running end
   * `abandoned`/`closed`, unless a worker had journaled a real outcome), and its threads
   * are terminated, waited for at most `closeTimeoutMs`. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const closed = failure('abandoned', 'closed', 'the sandbox pool was closed (the host stopped)');
    for (const call of this.#queue.drain()) this.#settle(call, closed);
    const all = this.#workers.close();
    for (const r of all) {
      if (r.timer) clearTimeout(r.timer);
      r.timer = null;
      ringRelease(r.ring);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(all.map((r) => r.worker.terminate().catch(() => undefined))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#o.closeTimeoutMs ?? 500);
      }),
    ]);
    clearTimeout(timer);
    for (const r of all) {
      // Outcomes a worker finished but had not posted are real; read them once it has exited.
      const journaled = r.exited ? this.#readRing(r) : new Map<number, CallOutcome>();
      for (const call of r.assigned) this.#settle(call, journaled.get(call.callId) ?? closed);
      r.assigned = [];
    }
    clearInterval(this.#alive);
  }
}
