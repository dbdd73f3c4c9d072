/**
 * The records the scheduler writes for ticks: the run row of a tick (waiting, running, or a
 * terminal record for a tick that does not run) and the wording of their reasons. Kept apart
 * from the scheduler so the rules for "every tick leaves a record" read in one place.
 */
import type { NewRun, RunTrigger, ScheduleRecord, ScheduleState } from '../store/types.ts';

/** The state of a tick's row when it starts running, or starts waiting (shared, no copy). */
export const RUNNING = { status: 'running', reason: null, finishedAt: null } as const;
export const WAITING = { status: 'waiting', reason: null, finishedAt: null } as const;

/** Statuses of a tick that does not run. */
export type NotRunStatus = 'skipped_overlap' | 'skipped_misfire' | 'cancelled' | 'quota_exhausted';

/**
 * Why a tick accepted (queued, waiting for a tenant slot, or buffered) was cancelled: its
 * schedule was paused, deleted or retired, or its plugin unloaded, before the tick could start.
 */
export type CancelReason = 'paused' | 'deleted' | 'retired' | 'unloaded';

/** A run row for a tick of `s` (attempt 1 unless given; outcome fields empty until it finishes). */
export function newRun(
  s: ScheduleRecord,
  trigger: RunTrigger,
  scheduledAt: number,
  startedAt: number,
  state: Readonly<Pick<NewRun, 'status' | 'reason' | 'finishedAt'>>,
  coversUntil: number | null = null,
  attempt = 1,
): NewRun {
  // One literal with every field (no spread): one object of one shape per tick.
  return {
    scheduleKey: s.key,
    pluginId: s.pluginId,
    tenant: s.tenant,
    localId: s.localId,
    trigger,
    status: state.status,
    reason: state.reason,
    scheduledAt,
    startedAt,
    finishedAt: state.finishedAt,
    attempt,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
    coversUntil,
  };
}

/** The outcome fields of a terminal record written over a `waiting` row. */
export function notRunFinish(status: NotRunStatus, reason: string, now: number) {
  return {
    status,
    reason,
    finishedAt: now,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
  } as const;
}

/** Why a schedule in `state` can no longer run a tick it had accepted; null: it can. */
export function cancelReasonOf(state: ScheduleState | undefined): CancelReason | null {
  switch (state) {
    case undefined:
    case 'deleted':
      return 'deleted';
    case 'paused':
      return 'paused';
    case 'retired':
      return 'retired';
    case 'active':
    case 'completed':
      return null;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export const REASONS = {
  overlap: 'previous run still in flight',
  overlapBuffered: 'previous run still in flight and one tick already buffered',
  downtime: (from: number) =>
    `tick of ${iso(from)} (and any later ones) missed while the host was down (or not firing)`,
  late: (from: number, until: number, lateMs: number) =>
    `ticks from ${iso(from)} to ${iso(until)} missed: the host fired ${lateMs} ms late (event loop blocked, store suspended or clock jump)`,
  tripped: (failures: number, limit: number, last: string) =>
    `breaker: ${failures} failed ticks in a row (limit ${limit}; the last one ${last}); resume to clear`,
  declaredLate: (at: number) =>
    `one-shot at ${iso(at)} was declared after its time (misfire policy "skip"; "run-once" runs it once)`,
  backfillCancelled: 'backfill cancelled by the operator',
  waitedTooLong: (from: number) =>
    `tick of ${iso(from)} was waiting for a tenant slot or buffered when the host stopped, and is past the misfire grace`,
} as const;
