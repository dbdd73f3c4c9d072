/**
 * Reconciling a plugin's declared schedules with the store after discovery: declarations that
 * are new are created, changed ones updated (keeping cursor, pause state and history), and
 * declared schedules that disappeared are retired. Runtime-created schedules are never touched,
 * except that a declaration with the same id takes the row over (declarations win).
 * A schedule the guest or an operator deleted stays deleted while its declaration is unchanged.
 */
import type { ParsedDeclaration } from '../schedule/declaration.ts';
import type { ScheduleRecord, Store } from '../store/types.ts';
import { isLive, patchOf, recordFromDeclaration, scheduleKey } from './schedule-ops.ts';

export interface ReconcileResult {
  readonly created: string[];
  readonly updated: string[];
  readonly retired: string[];
  readonly unchanged: string[];
}

/** Live schedules this plugin would have after reconciling (for the tenant quota check). */
export function liveCountAfter(
  store: Store,
  pluginId: string,
  decls: readonly ParsedDeclaration[],
): number {
  const declared = new Set(decls.map((d) => d.id));
  const mine = store.listSchedules({
    pluginId,
    states: ['active', 'paused', 'completed', 'deleted'],
  });
  const byId = new Map(mine.map((s) => [s.localId, s]));
  let n = 0;
  for (const d of decls) {
    const ex = byId.get(d.id);
    if (!(ex?.state === 'deleted' && ex.declHash === d.hash)) n++;
  }
  for (const s of mine) if (isLive(s) && s.origin === 'runtime' && !declared.has(s.localId)) n++;
  return n;
}

export function reconcile(
  store: Store,
  pluginId: string,
  tenant: string,
  decls: readonly ParsedDeclaration[],
  now: number,
): ReconcileResult {
  const result: ReconcileResult = { created: [], updated: [], retired: [], unchanged: [] };
  const existing = new Map<string, ScheduleRecord>(
    store
      .listSchedules({ pluginId, states: ['active', 'paused', 'completed', 'deleted', 'retired'] })
      .map((s) => [s.localId, s]),
  );
  for (const d of decls) {
    const ex = existing.get(d.id);
    if (!ex) {
      store.insertSchedule(recordFromDeclaration(pluginId, tenant, d, 'declared', now));
      result.created.push(d.id);
      continue;
    }
    const same = ex.origin === 'declared' && ex.declHash === d.hash;
    if (same && ex.state !== 'retired') {
      result.unchanged.push(d.id);
      continue;
    }
    const rec = recordFromDeclaration(
      pluginId,
      tenant,
      d,
      'declared',
      now,
      isLive(ex) ? ex : undefined,
    );
    store.updateSchedule(scheduleKey(pluginId, d.id), patchOf(rec));
    result.updated.push(d.id);
  }
  const declared = new Set(decls.map((d) => d.id));
  for (const s of existing.values()) {
    if (s.origin === 'declared' && !declared.has(s.localId) && s.state !== 'retired') {
      // `buffered_at` stays: the scheduler records the buffered tick `cancelled` (`retired`).
      store.updateSchedule(s.key, { state: 'retired', nextAt: null, updatedAt: now });
      result.retired.push(s.localId);
    }
  }
  return result;
}
