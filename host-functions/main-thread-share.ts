/**
 * Each tenant's share of the main thread for host calls: a token bucket of milliseconds per
 * tenant, refilled at the tenant's quota `hostCallMsPerSecond` and holding at most
 * `BURST_SECONDS` seconds' worth (a burst: time is measured on the wall clock, which a loaded
 * machine inflates, and an ordinary run's few calls must never see `busy`; sustained use is
 * held to the rate). A call is admitted while the bucket is above zero; its measured main-thread time (plus
 * a fixed overhead for the message hop and the answer's copy, which the handler's clock does not
 * see) is taken out afterwards, so the bucket may go below zero by one call. A refused call is
 * answered `busy` before its JSON is even parsed, and its overhead is taken too: a tenant that
 * keeps calling while refused stays refused, whatever its fuel.
 *
 * Why time rather than counts: the cost of a call varies by 1000× (a `schedule_get` of a small
 * row vs a page of large payloads); fuel already prices the guest, this bounds what the host
 * spends. One tenant's storm then takes at most its share, and since every single call is
 * bounded (pages, bounded cron searches), another tenant's fire waits at most one call.
 *
 * Time is read from `performance.now()` (the real main thread), never from the host's clock,
 * so a manual test clock does not change it.
 */
import { performance } from 'node:perf_hooks';

/** Main-thread time charged to every host call beyond what its handler measures. */
export const HOST_CALL_OVERHEAD_MS = 0.02;
/** The bucket holds this many seconds of a tenant's share. */
export const BURST_SECONDS = 5;

interface Bucket {
  tokens: number;
  at: number;
}

export class MainThreadShare {
  readonly #buckets = new Map<string, Bucket>();
  readonly #msPerSecond: (tenant: string) => number;
  readonly #now: () => number;

  /** `msPerSecond(tenant)`: the tenant's share, in main-thread ms per second of real time. */
  constructor(
    msPerSecond: (tenant: string) => number,
    now: () => number = () => performance.now(),
  ) {
    this.#msPerSecond = msPerSecond;
    this.#now = now;
  }

  #bucket(tenant: string): { bucket: Bucket; rate: number } {
    const rate = this.#msPerSecond(tenant);
    const now = this.#now();
    let bucket = this.#buckets.get(tenant);
    if (!bucket) {
      bucket = { tokens: rate * BURST_SECONDS, at: now };
      this.#buckets.set(tenant, bucket);
    } else {
      const full = rate * BURST_SECONDS;
      bucket.tokens = Math.min(full, bucket.tokens + ((now - bucket.at) * rate) / 1000);
      bucket.at = now;
    }
    return { bucket, rate };
  }

  /** Null when the tenant may make a call now; otherwise why not (and the overhead is taken). */
  admit(tenant: string): string | null {
    const { bucket, rate } = this.#bucket(tenant);
    if (bucket.tokens > 0) return null;
    bucket.tokens -= HOST_CALL_OVERHEAD_MS;
    const waitMs = Math.ceil((-bucket.tokens * 1000) / rate);
    return `tenant ${tenant} used its share of the host's main thread (${rate} ms per second); try again in ${waitMs} ms`;
  }

  /** Takes a call's measured main-thread time (plus the overhead) out of the tenant's bucket. */
  spend(tenant: string, ms: number): void {
    const { bucket } = this.#bucket(tenant);
    bucket.tokens -= Math.max(0, ms) + HOST_CALL_OVERHEAD_MS;
  }

  /** The tenant's balance in ms (negative: in debt). For tests and metrics. */
  balance(tenant: string): number {
    return this.#bucket(tenant).bucket.tokens;
  }
}
