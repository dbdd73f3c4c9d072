/**
 * Run-history retention (docs/store.md, "Retention"): which finished runs of a tenant a prune
 * step deletes, shared by the SQLite store (the file, inline or on its writer thread) and the
 * PostgreSQL store.
 *
 * A step reads one window of the tenant's runs, oldest first, from where the previous step of
 * the round stopped (`RunPruneCursor`), and picks at most `limit` of them. A run goes when it
 * is finished (never `running`, `waiting` or `pending`), is not among the newest
 * `keepPerSchedule` runs of its schedule, and either started before `startedBefore` (age) or the
 * tenant still holds more than `maxRuns` runs (count: the excess is counted once, at a round's
 * first step, and carried in the cursor). The round ends (cursor null) at the end of the
 * tenant's runs, or at the first run that is young enough once the count is within its cap: runs
 * are read in the store's order (SQLite: by id, which one host hands out in time order;
 * PostgreSQL: by start time, then id), so everything after it is younger still.
 *
 * The "newest N of a schedule" are the newest in the same order (SQLite: highest ids;
 * PostgreSQL: latest starts), looked up once per schedule and step through the schedule's index.
 */
import type { RunPruneCursor, RunPruneStep } from './types.ts';

/** Statuses of runs that are not finished: never pruned. */
export const OPEN_RUN_STATUSES: readonly string[] = Object.freeze([
  'running',
  'waiting',
  'pending',
]);
const OPEN = new Set(OPEN_RUN_STATUSES);

/** How many runs a step reads for each run it may delete (kept and open runs are skipped). */
export const PRUNE_WINDOW_FACTOR = 4;

/** A run as a prune step reads it. */
export interface PruneRow {
  readonly id: number;
  readonly schedule_key: string;
  readonly status: string;
  readonly started_at: number;
}

/** What a prune step picked: the ids to delete, and where the next step of the round starts. */
export interface PruneSelection {
  readonly ids: number[];
  /** null: the round is over for this tenant. */
  readonly cursor: RunPruneCursor | null;
}

/** The rows a step reads (`limit × PRUNE_WINDOW_FACTOR`, at least 64). */
export function pruneWindow(step: RunPruneStep): number {
  return Math.max(64, step.limit * PRUNE_WINDOW_FACTOR);
}

/**
 * Picks a step's runs from `rows` (a window read oldest first: `pruneWindow(step)` rows after
 * the cursor, fewer at the end). `excess`: how many runs the tenant holds beyond `maxRuns` (0
 * when within it). `kept(row)`: the row is among its schedule's newest `keepPerSchedule`.
 */
export function choosePrunable(
  rows: readonly PruneRow[],
  step: RunPruneStep,
  excess: number,
  kept: (row: PruneRow) => boolean,
): PruneSelection {
  const ids: number[] = [];
  const before = step.startedBefore ?? Number.NEGATIVE_INFINITY;
  let last: PruneRow | null = null;
  for (const row of rows) {
    if (ids.length >= step.limit) break;
    const old = row.started_at < before;
    if (!old && excess <= 0) return { ids, cursor: null };
    last = row;
    if (OPEN.has(row.status) || kept(row)) continue;
    ids.push(row.id);
    excess--;
  }
  if (last === null || (rows.length < pruneWindow(step) && last === rows.at(-1)))
    return { ids, cursor: null };
  return { ids, cursor: { startedAt: last.started_at, id: last.id, excess: Math.max(0, excess) } };
}
