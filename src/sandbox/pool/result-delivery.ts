/**
 * The main thread's side of the workers' result rings (result-ring.ts): reading what a worker
 * published, and waiting for more without blocking.
 *
 * While a worker holds calls, the pool keeps one `Atomics.waitAsync` pending on its ring; when
 * it resolves, everything published is read and delivered, and the wait is renewed while calls
 * remain. A pending wait does not keep the process alive (the pool's own keep-alive does, while
 * it owes answers); an exited worker's wait is released (`ringRelease`) and its ring read once
 * more, so outcomes it finished before it died count.
 *
 * A ring whose framing is inconsistent ends its worker as crashed: the worker is terminated,
 * and what it held is accounted for like any worker exit.
 */
import type { GuestLogEntry } from '../in-thread-sandbox.ts';
import type { CallOutcome } from '../types.ts';
import { deltaFromJson } from '../plugin-vars.ts';
import type { FromWorker } from './protocol.ts';
import { RingCorruptError, ringDrain, ringWait } from './result-ring.ts';
import type { Runner } from './worker-lifecycle.ts';

export interface DeliveryHost {
  closed(): boolean;
  /** Outcomes `r` published, by call id, in the order it wrote them. */
  results(r: Runner, outcomes: Map<number, CallOutcome>): void;
  log?: ((line: GuestLogEntry) => void) | undefined;
}

export class ResultDelivery {
  readonly #host: DeliveryHost;

  constructor(host: DeliveryHost) {
    this.#host = host;
  }

  /**
   * Reads what `r` put in its ring: log lines are forwarded, outcomes returned. A corrupt ring
   * ends the worker; what preceded the corruption counts.
   */
  read(r: Runner): Map<number, CallOutcome> {
    const outcomes = new Map<number, CallOutcome>();
    try {
      ringDrain(r.ring, {
        outcome: (id, o) => outcomes.set(id, o),
        log: (line) => this.#host.log?.(line),
      });
    } catch (err) {
      if (!(err instanceof RingCorruptError)) throw err;
      r.error ??= `its result ring is corrupt (${err.message})`;
      if (!r.exited) void r.worker.terminate().catch(() => undefined);
    }
    return outcomes;
  }

  /**
   * Delivers outcomes the ring refused (a `results` message), after what the ring holds: the
   * worker published those before it posted these.
   */
  posted(r: Runner, m: Extract<FromWorker, { type: 'results' }>): void {
    this.drain(r);
    const metas = JSON.parse(m.metas) as CallOutcome[];
    const outcomes = new Map<number, CallOutcome>();
    m.callIds.forEach((id, i) => {
      const o = metas[i] as CallOutcome;
      if (o.ok) {
        (o as { output: Uint8Array | null }).output = m.outputs[i] ?? null;
        if (o.vars !== undefined) (o as { vars: unknown }).vars = deltaFromJson(o.vars);
      }
      outcomes.set(id, o);
    });
    this.#host.results(r, outcomes);
  }

  /** Delivers the outcomes in `r`'s ring. */
  drain(r: Runner): void {
    const outcomes = this.read(r);
    if (outcomes.size > 0) this.#host.results(r, outcomes);
  }

  /**
   * While `r` holds calls, waits (without blocking) for it to publish outcomes, and delivers
   * them. The worker wakes the main thread only when it waits, and coalesces wake-ups; while
   * busy, the main thread finds everything published on its next read.
   */
  watch(r: Runner): void {
    while (!r.watching && !r.exited && r.assigned.length > 0) {
      const wait = ringWait(r.ring);
      if (wait === null) {
        this.drain(r);
        continue;
      }
      r.watching = true;
      void wait.then(() => {
        r.watching = false;
        if (r.exited || this.#host.closed()) return;
        this.drain(r);
        this.watch(r);
      });
    }
  }
}
