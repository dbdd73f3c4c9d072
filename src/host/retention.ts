/**
 * Run-history retention on the host (docs/store.md, "Retention"): a periodic task that deletes
 * each tenant's finished runs beyond its `retention` (src/config/host-config.ts: age, count,
 * the newest runs of every schedule always kept) through `Store.pruneRuns`.
 *
 * Never stalls firing. A round (every `retention.intervalMs`, on the host's `Clock`, so a fake
 * clock drives it in tests) goes through the tenants one after another, in steps of at most
 * `retention.batchRows` deleted runs; each step waits for its deletes to be durable and then
 * yields a turn of the event loop (`setImmediate`) before the next, so due fires and finished
 * runs go between steps, or longer when the round is ahead of `retention.maxRowsPerSec`: flat
 * out, a round kept the writer thread on most of a core that the pool's workers share
 * (docs/store.md, "Retention"). What a step costs the scheduler's thread depends on the store:
 * with the writer thread (the default) or PostgreSQL, it only deletes the rows from the mirror (the
 * choice is read, and the rows deleted, by the writer or the database); an inline SQLite store
 * reads and deletes on this thread, a window of `4 × batchRows` index entries a step.
 *
 * A round is skipped while the store fails (the supervisor is not healthy); a step that fails
 * is reported like any other store error and ends the round (the next round starts over). On a
 * shared store, only the tenant's owner prunes it (`pruneRuns` does nothing for a tenant this
 * host does not own), fenced by the tenant's epoch like every other write. Each tenant's round
 * that deleted something emits `runs:pruned` (metrics count it, the log says it at debug).
 */
import type { Clock, TimerHandle } from '../clock.ts';
import type { RetentionConfig, TenantConfig } from '../config/host-config.ts';
import { isHourglassError } from '../errors.ts';
import type { RunPruneCursor, Store } from '../store/types.ts';

export interface RetentionDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly config: RetentionConfig;
  readonly tenants: readonly TenantConfig[];
  /** False while the store fails: the round is skipped. */
  readonly healthy: () => boolean;
  readonly pruned: (tenant: string, count: number) => void;
  readonly error: (err: unknown, what: string) => void;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class RunRetention {
  readonly #d: RetentionDeps;
  #timer: TimerHandle | null = null;
  #round: Promise<void> | null = null;
  #stopped = false;
  /** Ends the pacing wait in progress (`stop()`). */
  #wake: (() => void) | null = null;

  constructor(deps: RetentionDeps) {
    this.#d = deps;
  }

  /** Arms the first round, one interval from now. */
  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#timer = this.#d.clock.setTimer(() => {
      this.#timer = null;
      void this.runRound()
        .catch(() => undefined)
        .finally(() => this.start());
    }, this.#d.config.intervalMs);
  }

  /** One round now (joins the round in progress, if any); `runs:pruned` tells what it deleted. */
  runRound(): Promise<void> {
    this.#round ??= this.#runRound().finally(() => (this.#round = null));
    return this.#round;
  }

  async #runRound(): Promise<void> {
    if (this.#stopped || !this.#d.healthy()) return;
    const pace = { from: performance.now(), rows: 0 };
    for (const tenant of this.#d.tenants) {
      if (this.#stopped) return;
      const r = tenant.retention;
      if (r.maxAgeMs === null && r.maxRuns === null) continue;
      let cursor: RunPruneCursor | null = null;
      let count = 0;
      try {
        do {
          if (this.#stopped || !this.#d.healthy()) break;
          const step = await this.#d.store.pruneRuns({
            tenant: tenant.id,
            startedBefore: r.maxAgeMs === null ? null : this.#d.clock.now() - r.maxAgeMs,
            maxRuns: r.maxRuns,
            keepPerSchedule: r.keepPerSchedule,
            limit: this.#d.config.batchRows,
            cursor,
          });
          count += step.deleted;
          cursor = step.cursor;
          await this.#pace(pace, step.deleted);
        } while (cursor !== null);
      } catch (err) {
        // This host no longer owns the tenant: its new owner prunes it.
        if (!(isHourglassError(err) && err.code === 'HG_STORE_FENCED'))
          this.#d.error(err, `retention of tenant ${tenant.id}`);
      }
      if (count > 0) this.#d.pruned(tenant.id, count);
    }
  }

  /**
   * After a step that deleted `rows`: a turn of the event loop, or, when the round is ahead of
   * `maxRowsPerSec` (counted from its start, `pace.from` on the real clock, with `pace.rows`
   * deleted since: this bounds the store's work, not a schedule), until it no longer is.
   * `stop()` cuts the wait short.
   */
  async #pace(pace: { from: number; rows: number }, rows: number): Promise<void> {
    const rate = this.#d.config.maxRowsPerSec;
    pace.rows += rows;
    const wait = rate === null ? 0 : pace.from + (pace.rows * 1000) / rate - performance.now();
    if (wait < 1) return nextTurn();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, wait);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Cancels the timer and waits for the round in progress to end (after its current step). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    this.#timer?.cancel();
    this.#timer = null;
    await this.#round?.catch(() => undefined);
  }
}
