/**
 * The pool's waiting room: calls waiting for a worker, queued per tenant, and the fairness rule
 * that picks the next one. A call is either waiting here or held by a worker (posted, not
 * settled); the per-tenant count of held calls is what fairness looks at.
 *
 * Plain turn order is not enough: a tenant whose burst took every worker before anyone else
 * queued would still be first in line, so the next call comes from the waiting tenant with the
 * fewest calls held by workers (ties: the one waiting longest for its turn).
 */
import type { PreparedSpec } from '../in-thread-sandbox.ts';
import type { CallOutcome, CallRequest } from '../types.ts';
import type { FromWorker } from './protocol.ts';
import type { VarsCopies } from './vars-sync.ts';

/** A plugin's load, queued and dispatched like a call (it occupies a worker while it runs). */
export interface LoadTask {
  readonly spec: PreparedSpec;
  readonly wasm: Uint8Array<ArrayBuffer>;
  /** The worker's answer (success or a refusal); failures of the worker itself go to `resolve`. */
  readonly done: (m: Extract<FromWorker, { type: 'prepared' }>) => void;
}

export interface PendingCall {
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
  /** Posted to a worker and not settled (counted in the queue's per-tenant held count). */
  held: boolean;
  /** Posted as one that may run long (so it ended its batch). */
  slow: boolean;
  /** The worker copies a snapshot of the plugin's variables was posted for (vars-sync.ts). */
  varsCopies: VarsCopies | null;
  /** Set for a plugin's load (then `req` names the discovery caller, for fairness only). */
  readonly load?: LoadTask;
}

/** A new call (or load), not queued yet. */
export function pendingCall(
  callId: number,
  pluginId: string,
  tenant: string,
  timeoutMs: number,
  req: CallRequest,
  resolve: (o: CallOutcome) => void,
  load: LoadTask | undefined,
): PendingCall {
  return {
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
    varsCopies: null,
    ...(load ? { load } : {}),
  };
}

/** What a call is, for messages: `run()`, or `loading`. */
export function callLabel(call: PendingCall): string {
  return call.load ? 'loading' : `${call.req.fn}()`;
}

/** What predicts a call's duration: the same export of the same plugin for the same schedule. */
export function speedKey(pluginId: string, req: CallRequest): string {
  return `${pluginId}\n${req.fn}\n${req.caller.scheduleKey ?? ''}`;
}

export class FairQueue {
  /** Waiting calls per tenant, and the tenants' turn order. */
  readonly #queues = new Map<string, PendingCall[]>();
  #turn: string[] = [];
  #waiting = 0;
  /** Calls held by workers (posted, not settled), per tenant. */
  readonly #held = new Map<string, number>();

  /** Calls waiting for a worker. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Queues a call (at the front of its tenant's queue when it was taken back from a worker). */
  enqueue(call: PendingCall, front: boolean): void {
    let q = this.#queues.get(call.tenant);
    if (!q) {
      this.#queues.set(call.tenant, (q = []));
      this.#turn.push(call.tenant);
    }
    if (front) q.unshift(call);
    else q.push(call);
    this.hold(call, false);
    this.#waiting++;
  }

  /** Counts `call` in (or out of) its tenant's calls held by workers. */
  hold(call: PendingCall, held: boolean): void {
    if (call.held === held) return;
    call.held = held;
    this.#held.set(call.tenant, (this.#held.get(call.tenant) ?? 0) + (held ? 1 : -1));
  }

  /** The next waiting call, by the fairness rule above. */
  take(): PendingCall | undefined {
    if (this.#turn.length === 1) {
      // One tenant waiting (the usual burst): no choice to make.
      const tenant = this.#turn[0] as string;
      const q = this.#queues.get(tenant) as PendingCall[];
      const call = q.shift();
      if (q.length === 0) {
        this.#queues.delete(tenant);
        this.#turn = [];
      }
      if (call) this.#waiting--;
      return call;
    }
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

  /** Empties the queue and returns every waiting call. */
  drain(): PendingCall[] {
    const all = [...this.#queues.values()].flat();
    this.#queues.clear();
    this.#turn = [];
    this.#waiting = 0;
    return all;
  }
}
