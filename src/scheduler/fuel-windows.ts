/**
 * Fuel windows: a tenant quota of fuel per time window (`tenants[].quotas.fuelWindow`,
 * docs/schedules.md "Fuel windows"). Windows are aligned to the clock (window n covers
 * [n·windowMs, (n+1)·windowMs)); a run's fuel counts in the window it started in (its run row's
 * `started_at`), added when its outcome is recorded. Once a window's count reaches the quota, the
 * scheduler records the tenant's ticks `quota_exhausted` (not run) until the window turns; runs
 * already in flight finish (so a window may end a little over its quota: by what the runs in
 * flight at that moment use, each at most its fuel budget).
 *
 * The count is rebuilt, not persisted: the first time a tenant is checked in a window after this
 * host took it up (a start, or a cluster adoption: `forget`), it is summed from the store's runs
 * of the tenant started in the window; after that, memory counts (every run of the tenant in the
 * window is then this host's). A restart within the window keeps the count (the runs are in the
 * store); no new table, so nothing to migrate or fence. On PostgreSQL the owner's mirror holds
 * only the tenant's latest 1,000 finished runs, so a host taking a tenant up (`Host.adoptTenant`)
 * sums its window in PostgreSQL itself (`Store.fuelUsedSince`, every host's flushed runs) and
 * `prime`s the count with it.
 */
import type { Store } from '../store/types.ts';

export interface FuelWindow {
  /** Fuel the tenant's runs may use per window (counted as the runs' `fuelUsed`). */
  readonly fuel: number;
  /** The window's length in ms; windows are aligned to the clock (floor(now / windowMs)). */
  readonly windowMs: number;
}

/** A tenant's window spent, told once per window (the host emits `tenant:quota_exhausted`). */
export interface QuotaExhausted {
  readonly tenant: string;
  readonly fuel: number;
  readonly used: number;
  readonly windowStart: number;
  readonly windowEnd: number;
}

export interface FuelWindowsOptions {
  readonly store: Store;
  /** The tenant's window; null: no fuel window. */
  readonly window: (tenant: string) => FuelWindow | null;
  readonly onExhausted?: (e: QuotaExhausted) => void;
}

interface Count {
  readonly start: number;
  used: number;
  told: boolean;
}

/** Runs read per page when a count is rebuilt from the store. */
const PAGE = 1_000;

export class FuelWindows {
  readonly #o: FuelWindowsOptions;
  readonly #counts = new Map<string, Count>();

  constructor(opts: FuelWindowsOptions) {
    this.#o = opts;
  }

  /**
   * Null when the tenant may start a run at `now`; else why not (the reason of its
   * `quota_exhausted` records).
   */
  check(tenant: string, now: number): string | null {
    const w = this.#o.window(tenant);
    if (w === null) return null;
    const c = this.#count(tenant, w, now);
    if (c.used < w.fuel) return null;
    const end = c.start + w.windowMs;
    if (!c.told) {
      c.told = true;
      this.#o.onExhausted?.({
        tenant,
        fuel: w.fuel,
        used: c.used,
        windowStart: c.start,
        windowEnd: end,
      });
    }
    return `the tenant's fuel window is spent (${c.used} of ${w.fuel} fuel used since ${iso(c.start)}); runs resume at ${iso(end)}`;
  }

  /** A run of `tenant` that started at `startedAt` used `fuel` (its outcome was recorded). */
  add(tenant: string, startedAt: number, fuel: number | null): void {
    const w = this.#o.window(tenant);
    if (w === null || fuel === null || fuel <= 0) return;
    const start = windowStart(startedAt, w.windowMs);
    const c = this.#counts.get(tenant);
    // Not counted yet in this process: the next check sums the store (this run's row included).
    if (c === undefined || start < c.start) return;
    if (start > c.start) this.#counts.set(tenant, { start, used: fuel, told: false });
    else c.used += fuel;
  }

  /** The tenant's count for `now`'s window. */
  #count(tenant: string, w: FuelWindow, now: number): Count {
    const start = windowStart(now, w.windowMs);
    let c = this.#counts.get(tenant);
    if (c !== undefined && c.start === start) return c;
    // The window turned while this host counted: every run started in the new window is this
    // host's and is counted as it ends (`add`). Else (first check) the store's runs are summed.
    const used = c !== undefined && c.start < start ? 0 : this.#sum(tenant, start, now);
    c = { start, used, told: false };
    this.#counts.set(tenant, c);
    return c;
  }

  /** The fuel of the tenant's runs started in [from, …), read from the store. */
  #sum(tenant: string, from: number, now: number): number {
    let used = 0;
    let before: { startedAt: number; id: number } | undefined;
    for (;;) {
      const page = this.#o.store.listRuns({
        tenant,
        since: from,
        until: now + 1,
        limit: PAGE,
        ...(before === undefined ? {} : { before }),
      });
      for (const r of page) used += r.fuelUsed ?? 0;
      const last = page.at(-1);
      if (page.length < PAGE || last === undefined) return used;
      before = { startedAt: last.startedAt, id: last.id };
    }
  }

  /**
   * The tenant's count for `now`'s window, as summed elsewhere (`Store.fuelUsedSince`, when the
   * host takes the tenant up); returns the window's start to sum from. No-op without a window.
   */
  windowStartOf(tenant: string, now: number): number | null {
    const w = this.#o.window(tenant);
    return w === null ? null : windowStart(now, w.windowMs);
  }

  /** Sets the tenant's count for the window that starts at `start` (see `windowStartOf`). */
  prime(tenant: string, start: number, used: number): void {
    this.#counts.set(tenant, { start, used, told: false });
  }

  /** Forgets the tenant's count (the host gave the tenant up, or took it up again). */
  forget(tenant: string): void {
    this.#counts.delete(tenant);
  }
}

function windowStart(at: number, windowMs: number): number {
  return Math.floor(at / windowMs) * windowMs;
}

const iso = (ms: number) => new Date(ms).toISOString();
