/**
 * Schedule rows whose write is deferred (issue 10: arming 100k schedules in a second). A plugin's
 * declared rows are derived again from its `schedules()` output at every discovery, so they need
 * not be on disk before the plugin is armed: a crash before they are written loses nothing (the
 * next discovery finds them missing and creates them, as at a first load). Writing them was about
 * a third of arming's main-thread time; deferred, they are written in bounded chunks afterwards,
 * between other work, or at once before anything could see their absence (see SqliteStore).
 *
 * This module is the bookkeeping only: batches in the order they were deferred, each with the
 * tenants and plugins it holds (so a read of one plugin or tenant writes only what it could
 * see), and `snapshot`/`restore` around a transaction: the list is replaced, never changed in
 * place, so a rolled-back transaction restores it exactly (rows deferred inside it are dropped,
 * rows written inside it are pending again).
 */
import type { ScheduleRecord } from './types.ts';

/** Rows of one deferral not yet written: `recs[from..]`. */
interface Batch {
  readonly recs: readonly ScheduleRecord[];
  readonly from: number;
  readonly tenants: ReadonlySet<string>;
  readonly plugins: ReadonlySet<string>;
}

/** Which pending rows an operation could see. */
export type DeferredScope =
  { readonly tenant: string } | { readonly pluginId: string } | { readonly key: string };

function matches(b: Batch, scope: DeferredScope | undefined): boolean {
  if (scope === undefined) return true;
  if ('tenant' in scope) return b.tenants.has(scope.tenant);
  if ('pluginId' in scope) return b.plugins.has(scope.pluginId);
  // A key is "<plugin id>/<local id>": a prefix match may take more than needed, never less.
  for (const p of b.plugins) if (scope.key.startsWith(`${p}/`)) return true;
  return false;
}

export class DeferredRows {
  #batches: readonly Batch[] = [];
  #rows = 0;

  /** Rows not yet written. */
  get size(): number {
    return this.#rows;
  }

  add(recs: readonly ScheduleRecord[]): void {
    if (recs.length === 0) return;
    const tenants = new Set<string>();
    const plugins = new Set<string>();
    for (const r of recs) {
      tenants.add(r.tenant);
      plugins.add(r.pluginId);
    }
    this.#batches = [...this.#batches, { recs, from: 0, tenants, plugins }];
    this.#rows += recs.length;
  }

  /** Whether any pending row is in `scope` (all rows when absent). */
  has(scope?: DeferredScope): boolean {
    if (this.#rows === 0) return false;
    for (const b of this.#batches) if (matches(b, scope)) return true;
    return false;
  }

  /**
   * Takes up to `limit` pending rows in `scope`, oldest first, as slices `[recs, from, to)`
   * for the caller to write; they are no longer pending (a rolled-back write `restore`s them).
   */
  take(
    scope: DeferredScope | undefined,
    limit: number,
  ): [readonly ScheduleRecord[], number, number][] {
    const out: [readonly ScheduleRecord[], number, number][] = [];
    const keep: Batch[] = [];
    let left = limit;
    for (const b of this.#batches) {
      if (left <= 0 || !matches(b, scope)) {
        keep.push(b);
        continue;
      }
      const to = Math.min(b.recs.length, b.from + left);
      out.push([b.recs, b.from, to]);
      left -= to - b.from;
      this.#rows -= to - b.from;
      if (to < b.recs.length) keep.push({ ...b, from: to });
    }
    this.#batches = keep;
    return out;
  }

  /** The pending list as it is now (for `restore` after a rollback). */
  snapshot(): readonly unknown[] {
    return this.#batches;
  }

  restore(snap: readonly unknown[]): void {
    this.#batches = snap as readonly Batch[];
    let n = 0;
    for (const b of this.#batches) n += b.recs.length - b.from;
    this.#rows = n;
  }
}
