/**
 * A `Sandbox` that runs every guest call on a pool of worker threads, so the main thread (store,
 * scheduler, operator surfaces) never executes guest code.
 *
 * - Each guest is validated and compiled once on the main thread; the `WebAssembly.Module` is
 *   posted to workers, which instantiate it lazily (and re-create it after a trap).
 * - One call runs per worker at a time. Waiting calls are queued per tenant and dispatched
 *   round-robin across tenants, so one tenant's burst cannot starve another.
 * - Every call has a wall-clock deadline (the plugin's `timeoutMs`): when it passes, the worker
 *   is terminated (this interrupts a running wasm loop within milliseconds) and replaced, and the
 *   call ends `timed_out`. A worker that dies on its own ends its call `worker_crashed`.
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
  HostCallHandler,
  Sandbox,
} from '../types.ts';
import {
  answerHostCall,
  CTL_BYTES,
  CTL_RUNNING,
  CTL_STARTED_F64,
  CTL_WORDS,
  newChannel,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './protocol.ts';

export interface WorkerPoolOptions {
  readonly hostCall: HostCallHandler;
  /** Number of workers. @defaultValue the number of CPU cores */
  readonly size?: number;
  /** How long a guest's host call waits for the main thread. @defaultValue 5000 */
  readonly hostCallTimeoutMs?: number;
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

interface Spawned {
  readonly worker: Worker;
  readonly channel: SharedArrayBuffer;
  exited: boolean;
}

interface PendingCall {
  readonly callId: number;
  readonly pluginId: string;
  readonly tenant: string;
  readonly req: CallRequest;
  readonly resolve: (o: CallOutcome) => void;
  started: number;
}

interface Slot {
  readonly index: number;
  worker: Worker;
  channel: SharedArrayBuffer;
  loaded: Set<string>;
  busy: PendingCall | null;
  deadline: NodeJS.Timeout | null;
  /** Resolvers for `load` acknowledgements from this worker. */
  loads: Map<string, (m: Extract<FromWorker, { type: 'loaded' }>) => void>;
}

const ENTRY = new URL('./worker-entry.js', import.meta.url);
/** Extra time a call may take before it starts (worker boot, guest instantiation). */
const SETUP_GRACE_MS = 30_000;

export class WorkerPoolSandbox implements Sandbox {
  readonly #o: WorkerPoolOptions;
  readonly #guests = new Map<string, Guest>();
  readonly #slots: Slot[] = [];
  /** Waiting calls per tenant, and the tenants' turn order. */
  readonly #queues = new Map<string, PendingCall[]>();
  #turn: string[] = [];
  #nextCallId = 1;
  #closed = false;
  /** A booted, idle worker ready to replace one that was terminated. */
  #spare: Spawned | null = null;

  constructor(opts: WorkerPoolOptions) {
    this.#o = opts;
    const size = Math.max(1, opts.size ?? os.availableParallelism());
    for (let index = 0; index < size; index++) {
      const slot = { index } as Slot;
      this.#adopt(slot, this.#spawn());
      this.#slots.push(slot);
    }
    this.#spare = this.#spawn();
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Terminates a worker as if it had crashed (for tests and operators). */
  async killWorker(index: number): Promise<void> {
    const slot = this.#slots[index];
    if (slot) await slot.worker.terminate();
  }

  /** Boots a worker (idle: unref'd, so it never keeps the process alive). */
  #spawn(): Spawned {
    const channel = newChannel();
    const init: WorkerInit = { channel, hostCallTimeoutMs: this.#o.hostCallTimeoutMs ?? 5_000 };
    const worker = new Worker(ENTRY, { workerData: init });
    const spawned: Spawned = { worker, channel, exited: false };
    worker.once('exit', () => (spawned.exited = true));
    worker.on('error', () => undefined); // 'exit' follows and does the accounting
    worker.unref();
    return spawned;
  }

  /** Puts a booted worker in `slot` (its loaded guests, call and deadline start empty). */
  #adopt(slot: Slot, spawned: Spawned): void {
    const { worker, channel } = spawned;
    Object.assign(slot, {
      worker,
      channel,
      loaded: new Set(),
      busy: null,
      deadline: null,
      loads: new Map(),
    });
    worker.on('message', (m: FromWorker) => {
      if (slot.worker === worker) this.#onMessage(slot, m);
    });
    worker.on('exit', () => this.#onExit(slot, worker));
    if (spawned.exited) this.#onExit(slot, worker);
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'hostcall': {
        let response: string;
        try {
          response = this.#o.hostCall(m.caller, m.fn, m.request);
        } catch (err) {
          response = JSON.stringify({
            error: { code: 'internal', message: (err as Error).message },
          });
        }
        answerHostCall(slot.channel, m.seq, response);
        return;
      }
      case 'result': {
        const call = slot.busy;
        if (!call || call.callId !== m.callId) return;
        this.#finish(slot, m.outcome);
        return;
      }
      case 'loaded':
        if (!m.error) slot.loaded.add(m.pluginId);
        slot.loads.get(m.pluginId)?.(m);
        slot.loads.delete(m.pluginId);
        return;
      case 'log':
        this.#o.onGuestLog?.(m);
        return;
      case 'ready':
        return;
    }
  }

  #onExit(slot: Slot, worker: Worker): void {
    if (slot.worker !== worker) return; // already replaced
    const call = slot.busy;
    for (const resolve of slot.loads.values())
      resolve({ type: 'loaded', pluginId: '', error: 'the worker exited' });
    if (this.#closed) return;
    this.#replace(slot, 'worker_crashed');
    if (call) {
      call.resolve({
        ok: false,
        status: 'worker_crashed',
        reason: 'worker_exit',
        message: 'the sandbox worker exited during the call; it was replaced',
        durationMs: Date.now() - call.started,
        fuelUsed: null,
      });
    }
    this.#dispatch();
  }

  #replace(slot: Slot, reason: 'timed_out' | 'worker_crashed'): void {
    if (slot.deadline) clearTimeout(slot.deadline);
    const old = slot.worker;
    // A replacement takes the warm spare (a fresh worker needs ~250 ms to boot), and a new spare
    // boots in the background.
    const spare = this.#spare && !this.#spare.exited ? this.#spare : this.#spawn();
    this.#spare = this.#closed ? null : this.#spawn();
    this.#adopt(slot, spare);
    void old.terminate().catch(() => undefined);
    this.#o.onWorkerReplaced?.({ slot: slot.index, reason });
  }

  async load(spec: GuestSpec): Promise<GuestInfo> {
    if (this.#closed) throw new HourglassError('HG_HOST_STATE', 'the sandbox pool is closed');
    const { wasm, ...rest } = spec;
    const prepared = await prepareGuest(spec.pluginId, wasm, spec.limits);
    // Instantiate once in a worker (start functions are guest code: never on this thread).
    const slot = this.#slots[0] as Slot;
    slot.loaded.delete(spec.pluginId);
    slot.worker.ref(); // an idle pool must not keep the process alive; a pending answer must
    const ack = await new Promise<Extract<FromWorker, { type: 'loaded' }>>((resolve) => {
      slot.loads.set(spec.pluginId, resolve);
      this.#post(slot, { type: 'load', spec: rest, prepared });
    });
    if (!slot.busy) slot.worker.unref();
    if (ack.error || !ack.info) {
      throw new HourglassError(
        'HG_PLUGIN_LOAD',
        `plugin ${spec.pluginId}: cannot be instantiated: ${ack.error ?? 'unknown error'}`,
      );
    }
    for (const other of this.#slots) if (other !== slot) other.loaded.delete(spec.pluginId);
    this.#guests.set(spec.pluginId, { spec: rest, prepared });
    return ack.info;
  }

  #post(slot: Slot, msg: ToWorker): void {
    slot.worker.postMessage(msg);
  }

  call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    const guest = this.#guests.get(pluginId);
    if (!guest || this.#closed)
      return Promise.reject(
        new HourglassError('HG_HOST_STATE', `plugin ${pluginId} is not loaded`),
      );
    return new Promise((resolve) => {
      const call: PendingCall = {
        callId: this.#nextCallId++,
        pluginId,
        tenant: guest.spec.tenant,
        req,
        resolve,
        started: Date.now(),
      };
      let q = this.#queues.get(call.tenant);
      if (!q) {
        this.#queues.set(call.tenant, (q = []));
        this.#turn.push(call.tenant);
      }
      q.push(call);
      this.#dispatch();
    });
  }

  /**
   * Next waiting call: from the waiting tenant with the fewest calls running (ties: the one
   * waiting longest for its turn). Plain turn order is not enough: a tenant whose burst took
   * every worker before anyone else queued would still be first in line.
   */
  #take(): PendingCall | undefined {
    let best = -1;
    let bestRunning = Infinity;
    for (let i = 0; i < this.#turn.length; i++) {
      const tenant = this.#turn[i] as string;
      let running = 0;
      for (const slot of this.#slots) if (slot.busy?.tenant === tenant) running++;
      if (running < bestRunning) [best, bestRunning] = [i, running];
    }
    if (best < 0) return undefined;
    const [tenant] = this.#turn.splice(best, 1) as [string];
    const q = this.#queues.get(tenant);
    const call = q?.shift();
    if (q && q.length > 0) this.#turn.push(tenant);
    else this.#queues.delete(tenant);
    return call;
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.busy) continue;
      const call = this.#take();
      if (!call) return;
      const guest = this.#guests.get(call.pluginId);
      if (!guest) {
        call.resolve({
          ok: false,
          status: 'failed',
          reason: 'unloaded',
          message: `plugin ${call.pluginId} was unloaded`,
          durationMs: 0,
          fuelUsed: null,
        });
        continue;
      }
      slot.busy = call;
      slot.worker.ref();
      call.started = Date.now();
      if (!slot.loaded.has(call.pluginId)) {
        slot.loaded.add(call.pluginId);
        this.#post(slot, { type: 'load', spec: guest.spec, prepared: guest.prepared });
      }
      this.#post(slot, {
        type: 'call',
        callId: call.callId,
        pluginId: call.pluginId,
        req: call.req,
      });
      this.#watch(slot, call, guest.spec.limits.timeoutMs, Date.now());
    }
  }

  /**
   * The deadline watchdog. The worker publishes which call it is running and since when in
   * shared memory; the deadline counts from that moment. Before it (a fresh worker booting, the
   * guest instantiating) a generous setup deadline applies. Past either, the worker is
   * terminated and replaced.
   */
  #watch(slot: Slot, call: PendingCall, timeoutMs: number, dispatchedAt: number): void {
    const check = () => {
      if (slot.busy !== call) return;
      const now = Date.now();
      const ctl = new Int32Array(slot.channel, 0, CTL_WORDS);
      if (Atomics.load(ctl, CTL_RUNNING) === call.callId) {
        const startedAt = new Float64Array(slot.channel, 0, CTL_BYTES / 8)[
          CTL_STARTED_F64
        ] as number;
        call.started = startedAt;
        const left = startedAt + timeoutMs - now;
        if (left > 0) return void (slot.deadline = setTimeout(check, left));
        return this.#expire(
          slot,
          call,
          'deadline',
          `${call.req.fn}() ran past its ${timeoutMs} ms deadline`,
        );
      }
      const setupLeft = dispatchedAt + timeoutMs + SETUP_GRACE_MS - now;
      if (setupLeft > 0)
        return void (slot.deadline = setTimeout(check, Math.min(setupLeft, timeoutMs)));
      this.#expire(
        slot,
        call,
        'setup_deadline',
        `the guest was not ready within ${timeoutMs + SETUP_GRACE_MS} ms`,
      );
    };
    if (slot.deadline) clearTimeout(slot.deadline);
    slot.deadline = setTimeout(check, timeoutMs);
  }

  #expire(
    slot: Slot,
    call: PendingCall,
    reason: 'deadline' | 'setup_deadline',
    what: string,
  ): void {
    this.#replace(slot, 'timed_out');
    call.resolve({
      ok: false,
      status: 'timed_out',
      reason,
      message: `${what}; the worker was terminated`,
      durationMs: Date.now() - call.started,
      fuelUsed: null,
    });
    this.#dispatch();
  }

  #finish(slot: Slot, outcome: CallOutcome): void {
    const call = slot.busy;
    if (slot.deadline) clearTimeout(slot.deadline);
    slot.deadline = null;
    slot.busy = null;
    if (slot.loads.size === 0) slot.worker.unref();
    call?.resolve(outcome);
    this.#dispatch();
  }

  async unload(pluginId: string): Promise<void> {
    this.#guests.delete(pluginId);
    for (const slot of this.#slots) {
      if (slot.loaded.delete(pluginId)) this.#post(slot, { type: 'unload', pluginId });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const [, q] of this.#queues) {
      for (const call of q)
        call.resolve({
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
    const spare = this.#spare;
    this.#spare = null;
    await spare?.worker.terminate();
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.deadline) clearTimeout(slot.deadline);
        await slot.worker.terminate();
      }),
    );
  }
}
