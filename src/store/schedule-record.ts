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
  const has = (k: keyof ScheduleRecord) => Object.hasOwn(p, k);
  return {
    key: s.key,
    pluginId: s.pluginId,
    tenant: s.tenant,
    localId: s.localId,
    origin: has('origin') ? (p.origin as ScheduleRecord['origin']) : s.origin,
    spec: has('spec') ? (p.spec as ScheduleRecord['spec']) : s.spec,
    jitter: has('jitter') ? (p.jitter as string | null) : s.jitter,
    jitterMs: has('jitterMs') ? (p.jitterMs as number) : s.jitterMs,
    payload: has('payload') ? (p.payload as string | null) : s.payload,
    overlap: has('overlap') ? (p.overlap as ScheduleRecord['overlap']) : s.overlap,
    misfire: has('misfire') ? (p.misfire as ScheduleRecord['misfire']) : s.misfire,
    description: has('description') ? (p.description as string | null) : s.description,
    declHash: has('declHash') ? (p.declHash as string) : s.declHash,
    state: has('state') ? (p.state as ScheduleRecord['state']) : s.state,
    pauseNote: has('pauseNote') ? (p.pauseNote as string | null) : s.pauseNote,
    anchorAt: has('anchorAt') ? (p.anchorAt as number) : s.anchorAt,
    nextAt: has('nextAt') ? (p.nextAt as number | null) : s.nextAt,
    cursor: has('cursor') ? (p.cursor as string | null) : s.cursor,
    bufferedAt: has('bufferedAt') ? (p.bufferedAt as number | null) : s.bufferedAt,
    createdAt: s.createdAt,
    updatedAt: has('updatedAt') ? (p.updatedAt as number) : s.updatedAt,
    generation: has('generation') ? p.generation : s.generation,
  };
}
