/**
 * Reconciling a plugin's declared schedules with the store after discovery: declarations that
 * are new are created, changed ones updated (keeping cursor, pause state and history), and
 * declared schedules that disappeared are retired. Runtime-created schedules are never touched,
 * except that a declaration with the same id takes the row over (declarations win).
 * A schedule the guest or an operator deleted stays deleted while its declaration is unchanged.
 *
 * A one-shot declared with an `at` at or before now (issue 14) is not refused (one refused entry
 * fails the whole list, so a plugin whose one-shot has passed could never load again) and not
 * completed silently: its row is written active with its `at` as its next time, so arming it
 * applies its misfire policy (scheduler `#misfire`): `run-once` runs it once (`catch_up`),
 * `skip` (the default) records the tick `skipped_misfire` with the reason. Only a new `at`
 * does: a row that already had this `at` (it fired, or was recorded, then) stays as it is.
 */
import { sameDeclaration, type ParsedDeclaration } from '../schedule/declaration.ts';
import type { ScheduleRecord, Store } from '../store/types.ts';
import { isLive, patchOf, recordFromDeclaration, scheduleKey } from './schedule-ops.ts';

export interface ReconcileResult {
  readonly created: string[];
  readonly updated: string[];
  readonly retired: string[];
  readonly unchanged: string[];
}

/** Every schedule row of a plugin (retired ones too), by local id: one read of the store. */
export function pluginSchedules(store: Store, pluginId: string): Map<string, ScheduleRecord> {
  return new Map(
    store
      .listSchedules({ pluginId, states: ['active', 'paused', 'completed', 'deleted', 'retired'] })
      .map((s) => [s.localId, s]),
  );
}

/**
 * Live schedules this plugin would have after reconciling (for the tenant quota check), from
 * its rows as `pluginSchedules` read them.
 */
export function liveCountAfter(
  byId: ReadonlyMap<string, ScheduleRecord>,
  decls: readonly ParsedDeclaration[],
): number {
  if (byId.size === 0) return decls.length; // a first load: every declaration is new
  const declared = new Set(decls.map((d) => d.id));
  let n = 0;
  for (const d of decls) {
    const ex = byId.get(d.id);
    if (!(ex?.state === 'deleted' && sameDeclaration(ex.declHash, d))) n++;
  }
  for (const s of byId.values())
    if (isLive(s) && s.origin === 'runtime' && !declared.has(s.localId)) n++;
  return n;
}

/**
 * Writes the changes (the caller runs it in one transaction with its quota check). `existing`
 * is the plugin's rows as `pluginSchedules` read them in that transaction. With `rows`, every
 * row of the plugin as it is afterwards is pushed there (unchanged and new rows from memory, the
 * few changed ones read again), so the scheduler can queue them without reading them again.
 */
export function reconcile(
  store: Store,
  pluginId: string,
  tenant: string,
  decls: readonly ParsedDeclaration[],
  now: number,
  existing: ReadonlyMap<string, ScheduleRecord> = pluginSchedules(store, pluginId),
  rows?: ScheduleRecord[],
): ReconcileResult {
  const result: ReconcileResult = { created: [], updated: [], retired: [], unchanged: [] };
  if (existing.size === 0) {
    // A first load: every declaration is a new row, in order (no map of what was written).
    const inserts = insertRows(store, pluginId, tenant, decls, now, result);
    if (rows) for (const rec of inserts) rows.push(rec);
    return result;
  }
  const written = reconcileRows(store, pluginId, tenant, decls, now, existing, result);
  if (rows) {
    for (const [id, ex] of existing) if (!written.has(id)) rows.push(ex);
    for (const [id, rec] of written)
      rows.push(rec ?? (store.getSchedule(scheduleKey(pluginId, id)) as ScheduleRecord));
  }
  return result;
}

/**
 * A record for a one-shot declared at or after its time, due at that time (so arming it follows
 * the misfire policy: see the module comment); any other record as it is.
 */
function pastOneShot(
  rec: ScheduleRecord,
  d: ParsedDeclaration,
  now: number,
  ex: ScheduleRecord | undefined,
): ScheduleRecord {
  const sp = d.spec;
  if (sp.kind !== 'at' || sp.atMs > now || rec.state !== 'completed') return rec;
  if (ex !== undefined && ex.spec.kind === 'at' && ex.spec.atMs === sp.atMs) return rec;
  return { ...rec, state: 'active', nextAt: sp.atMs };
}

/** A new row's record (its generation the column's default, 1: migration 0003). */
function newRecord(
  pluginId: string,
  tenant: string,
  d: ParsedDeclaration,
  now: number,
): ScheduleRecord {
  return pastOneShot(
    recordFromDeclaration(pluginId, tenant, d, 'declared', now, undefined, 1),
    d,
    now,
    undefined,
  );
}

/** The writes of `reconcile` when the plugin has no rows: all new; returns their records. */
function insertRows(
  store: Store,
  pluginId: string,
  tenant: string,
  decls: readonly ParsedDeclaration[],
  now: number,
  result: ReconcileResult,
): ScheduleRecord[] {
  const inserts: ScheduleRecord[] = [];
  for (const d of decls) {
    inserts.push(newRecord(pluginId, tenant, d, now));
    result.created.push(d.id);
  }
  // Deferred, as in `reconcileRows`.
  store.insertSchedules(inserts, { deferred: true });
  return inserts;
}

/** The writes of `reconcile`; returns the rows written (a new row's record; null: changed). */
function reconcileRows(
  store: Store,
  pluginId: string,
  tenant: string,
  decls: readonly ParsedDeclaration[],
  now: number,
  existing: ReadonlyMap<string, ScheduleRecord>,
  result: ReconcileResult,
): Map<string, ScheduleRecord | null> {
  const written = new Map<string, ScheduleRecord | null>();
  const inserts: ScheduleRecord[] = [];
  for (const d of decls) {
    const ex = existing.get(d.id);
    if (!ex) {
      const rec = newRecord(pluginId, tenant, d, now);
      inserts.push(rec);
      written.set(d.id, rec);
      result.created.push(d.id);
      continue;
    }
    const same = ex.origin === 'declared' && sameDeclaration(ex.declHash, d);
    if (same && ex.state !== 'retired') {
      result.unchanged.push(d.id);
      continue;
    }
    const rec = pastOneShot(
      recordFromDeclaration(pluginId, tenant, d, 'declared', now, isLive(ex) ? ex : undefined),
      d,
      now,
      ex,
    );
    store.updateSchedule(scheduleKey(pluginId, d.id), patchOf(rec));
    written.set(d.id, null);
    result.updated.push(d.id);
  }
  // New rows in a few multi-row statements (a first load writes all of them), deferred: they
  // are declared rows, derived again at every discovery, so the plugin is armed before they
  // are on disk, and the store writes them before anything could miss them (Store docs).
  store.insertSchedules(inserts, { deferred: true });
  const declared = new Set(decls.map((d) => d.id));
  for (const s of existing.values()) {
    if (s.origin === 'declared' && !declared.has(s.localId) && s.state !== 'retired') {
      // `buffered_at` stays: the scheduler records the buffered tick `cancelled` (`retired`).
      store.updateSchedule(s.key, { state: 'retired', nextAt: null, updatedAt: now });
      written.set(s.localId, null);
      result.retired.push(s.localId);
    }
  }
  return written;
}
