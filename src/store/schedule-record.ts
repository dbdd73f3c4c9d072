/**
 * Copies of schedule records with one fixed shape.
 *
 * The scheduler keeps every owned schedule's record in memory (100k at scale) and replaces it
 * on each fire, pause or cursor change. Built by object spread (`{ ...s, ...patch }`), the copies
 * of these 22-field records each got a hidden class of their own in V8 (a map and a 552-byte
 * descriptor array per record: 60 MB at 100k schedules, measured with a heap snapshot of
 * `bench/arming.bench.ts`), and the property reads that see them go megamorphic. One object
 * literal with every field in the same order gives them all one hidden class.
 */
import type { SchedulePatch, ScheduleRecord } from './types.ts';

/** `s` with `patch` applied (a field present in `patch` wins, `undefined` included). */
export function patchedRecord(
  s: ScheduleRecord,
  patch: SchedulePatch & { readonly generation?: number } = {},
): ScheduleRecord {
  const p = patch as Partial<ScheduleRecord>;
  return {
    key: s.key,
    pluginId: s.pluginId,
    tenant: s.tenant,
    localId: s.localId,
    origin: 'origin' in p ? (p.origin as ScheduleRecord['origin']) : s.origin,
    spec: 'spec' in p ? (p.spec as ScheduleRecord['spec']) : s.spec,
    jitter: 'jitter' in p ? (p.jitter as string | null) : s.jitter,
    jitterMs: 'jitterMs' in p ? (p.jitterMs as number) : s.jitterMs,
    payload: 'payload' in p ? (p.payload as string | null) : s.payload,
    overlap: 'overlap' in p ? (p.overlap as ScheduleRecord['overlap']) : s.overlap,
    misfire: 'misfire' in p ? (p.misfire as ScheduleRecord['misfire']) : s.misfire,
    description: 'description' in p ? (p.description as string | null) : s.description,
    scope: 'scope' in p ? (p.scope as ScheduleRecord['scope']) : s.scope,
    priority: 'priority' in p ? (p.priority as number) : s.priority,
    declHash: 'declHash' in p ? (p.declHash as string) : s.declHash,
    state: 'state' in p ? (p.state as ScheduleRecord['state']) : s.state,
    pauseNote: 'pauseNote' in p ? (p.pauseNote as string | null) : s.pauseNote,
    anchorAt: 'anchorAt' in p ? (p.anchorAt as number) : s.anchorAt,
    nextAt: 'nextAt' in p ? (p.nextAt as number | null) : s.nextAt,
    cursor: 'cursor' in p ? (p.cursor as string | null) : s.cursor,
    bufferedAt: 'bufferedAt' in p ? (p.bufferedAt as number | null) : s.bufferedAt,
    createdAt: s.createdAt,
    updatedAt: 'updatedAt' in p ? (p.updatedAt as number) : s.updatedAt,
    generation: 'generation' in p ? p.generation : s.generation,
    retry: 'retry' in p ? (p.retry as string | null) : s.retry,
    job: 'job' in p ? (p.job as string | null) : s.job,
    breakerAfter: 'breakerAfter' in p ? (p.breakerAfter as number | null) : s.breakerAfter,
    failStreak: 'failStreak' in p ? (p.failStreak as number) : s.failStreak,
  };
}
