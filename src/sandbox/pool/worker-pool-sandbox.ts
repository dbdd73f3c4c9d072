/**
 * A `Sandbox` that runs every guest call on a pool of worker threads, so the main thread (store,
 * scheduler, operator surfaces) never executes guest code.
 *
 * - Loading never runs on the main thread: a plugin's load is queued like a call (its tenant's
 *   turn, fairness included) and runs in one worker, which validates, instruments and compiles
 *   it (prepareGuest) and instantiates it (its start function runs), under the load deadline
 *   (`loadTimeoutMs`). The compiled `WebAssembly.Module` comes back and is posted to the other
 *   workers, which instantiate it lazily (and re-create it after a trap).
 * - Calls go out in batches, pipelined (batch-dispatch.ts); outcomes come back through each
 *   worker's result ring in shared memory, without a message (result-ring.ts,
 *   result-delivery.ts).
 * - Every call has a wall-clock deadline (the plugin's `timeoutMs`), counted from the moment it
 *   starts in its worker: when it passes, the worker is terminated (this interrupts a running
 *   wasm loop within milliseconds) and replaced by a warm spare, and the call ends `timed_out`.
 *   A worker that dies on its own ends its running call `worker_crashed`. Either way, the other
 *   calls it held are never lost: those that had finished end with their real outcomes (read
 *   from its ring), and those that had not started are dispatched again.
 * - Host functions are answered on the main thread through a shared-memory channel.
 * - A plugin's variables (`CallRequest.vars`) stay on the main thread; each worker keeps a copy,
 *   refreshed by a snapshot with a call only when it is stale, and a call's changes come back
 *   with its outcome and are applied before it settles (vars-sync.ts, ../plugin-vars.ts).
 * - Lifetimes: while the pool owes an answer (a call or load not settled) it holds a keep-alive
 *   timer, and only then: calls waiting for a worker that is still booting (a replacement, a
 *   spare) must keep the process alive, an idle pool must not (worker threads are always
 *   unref'd). `close()` settles everything it holds (waiting, running, loading:
 *   `abandoned`/`closed`, or the outcome a worker had published) and waits for threads at most
 *   `closeTimeoutMs`.
 *
 * The parts: dispatch.ts (the per-tenant waiting room and its fairness rule), batch-dispatch.ts
 * (batches and pipelining), result-delivery.ts (outcomes back), watchdog.ts (the deadlines),
 * worker-lifecycle.ts (slots, spares, retired workers); this file ties them together and
 * implements `Sandbox`.
 */
import os from 'node:os';
import { HourglassError } from '../../errors.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  Sandbox,
  SandboxStats,
} from '../types.ts';
import { BatchDispatcher, type Guest } from './batch-dispatch.ts';
import { FairQueue, pendingCall, type LoadTask, type PendingCall } from './dispatch.ts';
import type { WorkerPoolOptions } from './options.ts';
import { answerHostCall, CTL_RUNNING, type FromWorker, type ToWorker } from './protocol.ts';
import { loadResult, type LoadAnswer } from './load-result.ts';
import { ResultDelivery } from './result-delivery.ts';
import { ringRelease } from './result-ring.ts';
import { Watchdog } from './watchdog.ts';
import { applyVars } from './vars-sync.ts';
import { DEFAULT_ENTRY, WorkerSet, type Runner, type Slot } from './worker-lifecycle.ts';

export type { WorkerPoolOptions } from './options.ts';

/** A call whose worker died before running it is dispatched again at most this many times. */
const MAX_RETRIES = 3;

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
  readonly #fastCallMs: number;
  readonly #loadTimeoutMs: number;
  readonly #guests = new Map<string, Guest>();
  readonly #queue = new FairQueue();
  readonly #workers: WorkerSet;
  readonly #watchdog: Watchdog;
  readonly #dispatcher: BatchDispatcher;
  readonly #delivery: ResultDelivery;
  /** Calls (plugin, export, schedule) whose last run was fast: they may share a batch. */
  readonly #fast = new Set<string>();
  #nextCallId = 1;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Calls and loads not settled; while > 0, `#alive` is ref'd (see the head comment). */
  #owed = 0;
  readonly #alive: NodeJS.Timeout;
  /** Workers replaced so far, by why (`stats`). */
  readonly #replaced = { timed_out: 0, worker_crashed: 0 };

  constructor(opts: WorkerPoolOptions) {
    this.#o = opts;
    this.#fastCallMs = opts.fastCallMs ?? 2;
    this.#loadTimeoutMs = opts.loadTimeoutMs ?? 30_000;
    this.#alive = setInterval(() => undefined, 1 << 30);
    this.#alive.unref();
    this.#watchdog = new Watchdog({
      settle: (call, outcome) => this.#settle(call, outcome),
      requeue: (calls) => this.#dispatcher.requeue(calls),
      drain: (r) => this.#delivery.drain(r),
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
    this.#delivery = new ResultDelivery({
      closed: () => this.#closed,
      results: (r, outcomes) => this.#onResults(r, outcomes),
      log: opts.onGuestLog,
    });
    this.#dispatcher = new BatchDispatcher(
      {
        queue: this.#queue,
        guests: this.#guests,
        fast: this.#fast,
        closed: () => this.#closed,
        settle: (call, outcome) => this.#settle(call, outcome),
        posted: (r) => {
          this.#watchdog.arm(r, r.assigned.length);
          this.#delivery.watch(r);
        },
      },
      this.#workers,
      Math.max(1, opts.maxBatch ?? 64),
    );
  }

  get size(): number {
    return this.#workers.slots.length;
  }

  /** Worker threads alive now: `size` + spares when settled, more while retired ones exit. */
  get threads(): number {
    return this.#workers.threads;
  }

  /** Calls waiting, workers busy, replacements so far: a pass over the slots, no allocation but the answer. */
  stats(): SandboxStats {
    let busy = 0;
    for (const s of this.#workers.slots) if (s.runner.assigned.length > 0) busy++;
    return {
      queued: this.#queue.waiting,
      busy,
      workers: this.#workers.slots.length,
      replaced: { ...this.#replaced },
    };
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
      case 'results':
        this.#delivery.posted(r, m);
        return;
      case 'hostcall':
        answerHostCall(r.channel, m.seq, () => this.#o.hostCall(m.caller, m.fn, m.request));
        return;
      case 'prepared':
        this.#delivery.drain(r); // log lines of the load
        this.#onPrepared(r, m);
        return;
      case 'loaded':
        this.#delivery.drain(r);
        if (!m.error) r.loaded.add(m.pluginId);
        return;
      case 'log':
        this.#o.onGuestLog?.(m);
        return;
      case 'ready':
        r.ready = true;
        this.#workers.booted();
        if (!r.retired) this.#dispatcher.schedule();
        return;
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
      this.#settle(call, applyVars(call, outcome, r.vars));
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
      this.#dispatcher.schedule();
    } else if (this.#queue.waiting > 0) this.#dispatcher.schedule(); // it may take more (#room)
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
    const journaled = this.#delivery.read(r);
    const running = Atomics.load(r.ctl, CTL_RUNNING);
    const again: PendingCall[] = [];
    for (const call of r.assigned) {
      if (call.settled) continue;
      const outcome = journaled.get(call.callId);
      if (outcome) this.#settle(call, applyVars(call, outcome, null));
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
    this.#dispatcher.requeue(again);
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
    this.#replaced[reason]++;
    this.#o.onWorkerReplaced?.({ slot: slot.index, reason });
  }

  async load(spec: GuestSpec): Promise<GuestInfo> {
    if (this.#closed) throw new HourglassError('HG_HOST_STATE', 'the sandbox pool is closed');
    const { wasm, ...rest } = spec;
    const answer = await new Promise<LoadAnswer>((resolve) => {
      const load: LoadTask = { spec: rest, wasm, done: resolve };
      this.#enqueue(spec.pluginId, spec.tenant, this.#loadTimeoutMs, load, {
        fn: 'schedules',
        caller: { pluginId: spec.pluginId, tenant: spec.tenant, phase: 'discovery' },
      }).then((o) => {
        if (!o.ok) resolve(o);
      });
    });
    const { prepared, info } = loadResult(spec.pluginId, answer);
    // Workers that had an older version instantiate this one before their next call of it.
    const loadedBy = this.#workers.slots.find((s) => s.runner.loaded.has(spec.pluginId));
    for (const slot of this.#workers.slots)
      if (slot !== loadedBy) slot.runner.loaded.delete(spec.pluginId);
    for (const spare of this.#workers.spares) spare.loaded.delete(spec.pluginId);
    this.#guests.set(spec.pluginId, { spec: rest, prepared });
    return info;
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
      const call = pendingCall(callId, pluginId, tenant, timeoutMs, req, resolve, load);
      this.#owe(1);
      this.#queue.enqueue(call, false);
      this.#dispatcher.schedule();
      this.#failIfNoWorkers();
    });
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
    this.#dispatcher.schedule();
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
      const journaled = r.exited ? this.#delivery.read(r) : new Map<number, CallOutcome>();
      for (const call of r.assigned) {
        const outcome = journaled.get(call.callId);
        this.#settle(call, outcome ? applyVars(call, outcome, null) : closed);
      }
      r.assigned = [];
    }
    clearInterval(this.#alive);
  }
}
