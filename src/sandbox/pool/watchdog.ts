/**
 * The deadline watchdog of one pool. The worker publishes which call it is running and since
 * when in shared memory; that call's deadline counts from that moment. While none runs (a fresh
 * worker booting, a guest instantiating) a generous setup deadline applies, counted from the
 * last sign of progress. Past either, the pool terminates and replaces the worker.
 *
 * While a call runs long, the calls queued behind it in the same batch that have not started
 * are taken back (through the claim word) and dispatched again, and the outcomes of calls it
 * finished before it are read from its result ring (in case no wake-up delivered them yet).
 */
import type { CallOutcome } from '../types.ts';
import { callLabel, type PendingCall } from './dispatch.ts';
import { CLAIM_STOLEN, CTL_CLAIM, CTL_RUNNING, CTL_STARTED_F64 } from './protocol.ts';
import { SETUP_GRACE_MS, type Runner } from './worker-lifecycle.ts';

/** Calls queued behind one that has run this long are taken back and dispatched again. */
export const STEAL_MS = 5;

export interface WatchdogHost {
  settle(call: PendingCall, outcome: CallOutcome): void;
  /** Queues calls taken back from a worker again, first in line, in this order. */
  requeue(calls: readonly PendingCall[]): void;
  /** Delivers the outcomes `r` has published. */
  drain(r: Runner): void;
  /** `call`, running (or set up) on `r`, passed its deadline: end it and replace `r`. */
  expire(r: Runner, call: PendingCall, reason: 'deadline' | 'setup_deadline', what: string): void;
}

export class Watchdog {
  readonly #host: WatchdogHost;

  constructor(host: WatchdogHost) {
    this.#host = host;
  }

  /**
   * Arms the watchdog of `r` after calls were posted to it (`size`: the calls it holds). A check
   * due sooner stays: posting more never delays one.
   */
  arm(r: Runner, size: number): void {
    const first = size > 1 ? Math.min(STEAL_MS, r.minTimeoutMs) : r.minTimeoutMs;
    if (r.timer && r.timerDue <= Date.now() + first) return;
    this.#at(r, first);
  }

  #at(r: Runner, ms: number): void {
    if (r.timer) clearTimeout(r.timer);
    r.timerDue = Date.now() + ms;
    r.timer = setTimeout(() => this.check(r), ms);
  }

  check(r: Runner): void {
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
          this.#host.drain(r);
        }
        const waitMs = r.assigned.at(-1) === call ? left : Math.min(left, STEAL_MS);
        this.#at(r, Math.min(waitMs, r.minTimeoutMs));
        return;
      }
      return this.#host.expire(
        r,
        call,
        'deadline',
        `${callLabel(call)} ran past its ${call.timeoutMs} ms deadline`,
      );
    }
    const next = r.assigned.find((c) => !c.settled);
    if (!next) return;
    const setupLeft = r.progressAt + next.timeoutMs + SETUP_GRACE_MS - now;
    if (setupLeft > 0) {
      this.#at(r, Math.min(setupLeft, r.minTimeoutMs));
      return;
    }
    this.#host.expire(
      r,
      next,
      'setup_deadline',
      `the guest was not ready within ${next.timeoutMs + SETUP_GRACE_MS} ms`,
    );
  }

  /** Takes back the calls of `r`'s batch that have not started, and queues them again first. */
  #steal(r: Runner): void {
    const from = Atomics.exchange(r.ctl, CTL_CLAIM, CLAIM_STOLEN);
    const at = from - r.batchBase;
    if (from === CLAIM_STOLEN || at < 0 || at >= r.batch.length) return;
    const stolen = new Set(r.batch.slice(at));
    r.batch = r.batch.slice(0, at);
    r.assigned = r.assigned.filter((c) => !stolen.has(c));
    this.#host.requeue([...stolen].filter((c) => !c.settled));
  }
}
