/**
 * "Every tick leaves a record" (docs/design.md), as a check: which nominal ticks a schedule
 * owed in given spans have no record accounting for them. A tick T is accounted for by
 * - a run record with `scheduledAt` = T (any status: waiting, running, a finished run,
 *   `skipped_*`, `cancelled`, `abandoned`);
 * - a record covering a span (`coversUntil`): `scheduledAt` <= T <= `coversUntil`;
 * - the schedule's buffered tick (`bufferedAt` = T);
 * - the schedule's pending next tick: T >= `nextAt` (not yet fired).
 */
import { nextFireAfter } from '../../src/schedule/spec.ts';
import type { RunRecord, ScheduleRecord } from '../../src/store/types.ts';

/** Nominal ticks of `s` in (from, until]. */
export function nominalTicks(s: ScheduleRecord, from: number, until: number): number[] {
  const out: number[] = [];
  for (let t = nextFireAfter(s.spec, from, s.anchorAt); t !== null && t <= until;) {
    out.push(t);
    t = nextFireAfter(s.spec, t, s.anchorAt);
  }
  return out;
}

export function isAccounted(t: number, s: ScheduleRecord, runs: readonly RunRecord[]): boolean {
  if (s.bufferedAt === t) return true;
  if (s.state === 'active' && s.nextAt !== null && t >= s.nextAt) return true;
  return runs.some(
    (r) =>
      r.scheduledAt === t || (r.coversUntil !== null && r.scheduledAt <= t && t <= r.coversUntil),
  );
}

/** Owed ticks (in the spans, each (from, until]) with no record. */
export function unaccounted(
  s: ScheduleRecord,
  runs: readonly RunRecord[],
  spans: readonly (readonly [number, number])[],
): number[] {
  const missing: number[] = [];
  for (const [from, until] of spans)
    for (const t of nominalTicks(s, from, until)) if (!isAccounted(t, s, runs)) missing.push(t);
  return missing;
}
