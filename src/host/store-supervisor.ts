/**
 * The host's hold on its store: the lease (one host per store) and the store's health (a store
 * that cannot take writes stops firing, never the process).
 *
 * Lease. `acquire()` takes the store's lease by compare-and-set (`Store.acquireLease`, one
 * statement): free, stale (no renewal for 3 heartbeats and at least 10 s, on the wall clock), or held by a
 * holder proved dead, i.e. on this machine with its pid gone, or in this process with its host
 * stopped or its store closed (a test's "crash"); else it throws `HG_STORE_LEASE` naming the
 * holder. A timer renews it every heartbeat (a write that commits at once); a renewal that finds
 * another owner means the lease was lost: the host stops firing for good (`lease:lost`).
 *
 * Health. A failed write (the store's write-error listener, a scheduler timer's error, a failed
 * renewal) puts the store in `failed`: firing is suspended and `store:failed` + `host:error`
 * are emitted once. A retry (a lease renewal: a real write) runs 50 ms later, then at every
 * heartbeat; once one succeeds, `resume()` (the host: wait for runs in flight, reload the
 * schedules from the store, fire again) runs and `store:recovered` follows. A short outage (a
 * busy lock, space freed at once) thus costs other tenants well under a second. The retry delay
 * doubles (up to 64 heartbeats) each time the store fails again soon after recovering: a
 * renewal rewrites one existing row and may succeed while larger writes still fail (a WAL with
 * room left, a `store.maxBytes` cap), so without it the host would flap. While failed, nothing new starts, so no run id that a rolled-back
 * group commit freed can be handed out twice.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { errorMessage, HourglassError } from '../errors.ts';
import { pidAlive } from '../store/process-alive.ts';
import { isStoreFailure } from '../store/sqlite-errors.ts';
import type { HostLease, Store } from '../store/types.ts';

/** The lease is stale after this many heartbeats without renewal, and not sooner than `LEASE_MIN_STALE_MS`. */
export const LEASE_STALE_HEARTBEATS = 3;
/**
 * A busy host's event loop can stall for seconds (a large plugin loading); a holder that
 * crashed on this machine is detected by its pid at once, so a long bound costs little.
 */
export const LEASE_MIN_STALE_MS = 10_000;

/** How long after its last renewal a lease renewed every `heartbeatMs` is stale. */
export function leaseStaleMs(heartbeatMs: number): number {
  return Math.max(heartbeatMs * LEASE_STALE_HEARTBEATS, LEASE_MIN_STALE_MS);
}
/** The first retry after a store failure; later ones back off. */
const FIRST_RETRY_MS = 50;

export type StoreHealth = 'idle' | 'healthy' | 'failed' | 'recovering' | 'lost' | 'closed';

export interface SupervisorDeps {
  readonly store: Store;
  /** Names the store in messages (its path). */
  readonly storeName: string;
  readonly heartbeatMs: number;
  /** Stop firing. */
  suspend(): void;
  /**
   * Make the host consistent with the store again and fire again (may take a while); fire
   * again only if `stillRecovering()` (a write may fail again meanwhile).
   */
  resume(stillRecovering: () => boolean): Promise<void>;
  readonly on: {
    failed(e: { code: string; message: string; cause: unknown }): void;
    recovered(e: { downMs: number }): void;
    leaseLost(e: { holder: HostLease | null }): void;
    error(message: string, cause: unknown): void;
  };
}

/** Hosts of this process that hold a lease: owner → "still alive?". */
const LIVE_IN_PROCESS = new Map<string, () => boolean>();

/** Whether the holder of a lease is certainly gone (so its lease may be taken before it is stale). */
export function holderDead(h: HostLease): boolean {
  // A lease written before host names were recorded (store versions 1-3) is taken as local:
  // SQLite stores are local files.
  if ((h.hostName || hostname()) !== hostname()) return false;
  if (h.pid === process.pid) return !(LIVE_IN_PROCESS.get(h.owner)?.() ?? false);
  return !pidAlive(h.pid);
}

export function describeHolder(h: HostLease, now = Date.now()): string {
  return `pid ${h.pid} on ${h.hostName || '(unknown host)'}, holding it since ${new Date(h.startedAt).toISOString()} (last heartbeat ${Math.max(0, now - h.heartbeatAt)} ms ago)`;
}

export class StoreSupervisor {
  readonly owner = randomUUID();
  readonly #d: SupervisorDeps;
  #state: StoreHealth = 'idle';
  #timer: NodeJS.Timeout | null = null;
  #failedAt = 0;
  #recoveredAt = -Infinity;
  /** Failures in a row (each soon after the previous recovery): the retry delay's exponent. */
  #streak = 0;
  #retryAt = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #recovering: Promise<void> | null = null;

  constructor(deps: SupervisorDeps) {
    this.#d = deps;
  }

  get staleMs(): number {
    return leaseStaleMs(this.#d.heartbeatMs);
  }

  get state(): StoreHealth {
    return this.#state;
  }

  /** Whether this host still holds the lease (as far as it knows). */
  get holdsLease(): boolean {
    return this.#state !== 'idle' && this.#state !== 'lost' && this.#state !== 'closed';
  }

  /** Takes the lease (or throws `HG_STORE_LEASE` naming the live holder) and starts the heartbeat. */
  acquire(): void {
    if (this.#state !== 'idle') throw new HourglassError('HG_HOST_STATE', 'lease already taken');
    const claim = {
      owner: this.owner,
      pid: process.pid,
      hostName: hostname(),
      now: Date.now(),
      staleMs: this.staleMs,
    };
    let r = this.#d.store.acquireLease(claim);
    if (!r.ok && holderDead(r.holder)) {
      r = this.#d.store.acquireLease({ ...claim, replaceOwner: r.holder.owner });
    }
    if (!r.ok) {
      throw new HourglassError(
        'HG_STORE_LEASE',
        `store '${this.#d.storeName}' is in use by another host: ${describeHolder(r.holder)}; its lease goes stale ${this.staleMs} ms after its last heartbeat`,
      );
    }
    this.#state = 'healthy';
    LIVE_IN_PROCESS.set(this.owner, () => this.#alive());
    this.#d.store.setWriteErrorListener?.((err) => this.reportFailure(err));
    this.#timer = setInterval(() => this.#heartbeat(), this.#d.heartbeatMs);
    this.#timer.unref();
  }

  /** Alive for the lease's purposes: not stopped, and its store still answers. */
  #alive(): boolean {
    if (!this.holdsLease) return false;
    try {
      this.#d.store.readLease();
      return true;
    } catch {
      return false;
    }
  }

  /** Something failed: a store failure suspends firing until a write succeeds again. */
  reportError(err: unknown, what: string): void {
    if (isStoreFailure(err)) this.reportFailure(err);
    else this.#tell('error', `${what}: ${errorMessage(err)}`, err);
  }

  reportFailure(err: unknown): void {
    if (this.#state !== 'healthy' && this.#state !== 'recovering') return;
    this.#state = 'failed';
    this.#failedAt = Date.now();
    const soon = this.#failedAt - this.#recoveredAt < this.#d.heartbeatMs * 64;
    this.#streak = soon ? Math.min(this.#streak + 1, 20) : 0;
    const delay = Math.min(FIRST_RETRY_MS * 2 ** this.#streak, this.#d.heartbeatMs * 64);
    this.#retryAt = this.#failedAt + delay;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#heartbeat(), delay);
    this.#retryTimer.unref();
    this.#d.suspend();
    const code = err instanceof HourglassError ? err.code : 'HG_STORE';
    const message = `the store cannot take writes; firing is suspended until a write succeeds: ${errorMessage(err)}`;
    this.#tell('failed', { code, message, cause: err });
    this.#tell('error', message, err);
  }

  /** Calls a listener; one that throws must not escape a timer. */
  #tell<K extends keyof SupervisorDeps['on']>(
    which: K,
    ...args: Parameters<SupervisorDeps['on'][K]>
  ): void {
    try {
      (this.#d.on[which] as (...a: Parameters<SupervisorDeps['on'][K]>) => void)(...args);
    } catch {
      // Reported nowhere: the listener itself is what failed.
    }
  }

  #heartbeat(): void {
    if (!this.holdsLease) return;
    let held: boolean;
    try {
      held = this.#d.store.renewLease(this.owner, Date.now());
    } catch (err) {
      this.reportFailure(err);
      return;
    }
    if (!held) {
      this.#lose();
      return;
    }
    if (this.#state === 'failed' && Date.now() >= this.#retryAt) this.#recover();
  }

  #lose(): void {
    this.#state = 'lost';
    this.#stopTimer();
    this.#d.suspend();
    let holder: HostLease | null = null;
    try {
      holder = this.#d.store.readLease() ?? null;
    } catch {
      // The holder stays unnamed.
    }
    this.#tell('leaseLost', { holder });
    this.#tell(
      'error',
      `this host lost its lease on store '${this.#d.storeName}'${holder ? ` to ${describeHolder(holder)}` : ''}; it no longer fires`,
      null,
    );
  }

  #recover(): void {
    if (this.#recovering) return;
    this.#state = 'recovering';
    this.#recovering = this.#d
      .resume(() => this.#state === 'recovering')
      .then(
        () => {
          if (this.#state !== 'recovering') return;
          this.#state = 'healthy';
          this.#recoveredAt = Date.now();
          this.#tell('recovered', { downMs: Date.now() - this.#failedAt });
        },
        (err: unknown) => {
          if (this.#state === 'recovering') this.reportFailure(err);
        },
      )
      .finally(() => {
        this.#recovering = null;
      });
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#timer = null;
    this.#retryTimer = null;
  }

  /** Stops the heartbeat; gives the lease up if this host still holds it and `release`. */
  close(release: boolean): void {
    const held = this.holdsLease;
    this.#state = 'closed';
    this.#stopTimer();
    LIVE_IN_PROCESS.delete(this.owner);
    this.#d.store.setWriteErrorListener?.(null);
    if (held && release) this.#d.store.releaseLease(this.owner);
  }
}
