/**
 * Every-host schedules (`scope: "host"`) on a cluster: each host runs its own copy of them.
 *
 * A tenant's owner keeps the declared rows (the templates: what operators list, pause and
 * delete) and does not fire them (`Scheduler` `firesHere`). Every host that runs a tenant with
 * templates holds a shard of its own for it, the tenant's *replica* `<tenant>@<owner>`, leased
 * and fenced like a tenant but claimed only by that host; in it the host keeps one copy of each
 * template (`<tenant>@<owner>/<plugin>/<id>`), with its own next time, cursor and runs, and fires
 * it under its own at-most-one gate. The copies follow the templates (src/cluster/cluster.ts
 * reads them every round): a new or changed declaration, a pause or resume, a delete, a
 * declaration that went away. A replica's runs may read schedules but not change them
 * (`everyHostWrite` in schedule-ops.ts). The shard of a host that died is closed by a survivor:
 * its open runs recorded `abandoned`, its copies retired (cluster.ts).
 *
 * On one host (SQLite) there are no replicas: an every-host schedule fires from its own row.
 */
import type { TenantQuotas } from '../config/host-config.ts';
import { parseDeclaration, type ParsedDeclaration } from '../schedule/declaration.ts';
import type { ScheduleRecord, Store } from '../store/types.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { isLive, patchOf, recordFromDeclaration, type ScheduleOps } from './schedule-ops.ts';

/** The replica shard of `tenant` on the host `owner`. Tenant ids cannot hold `@`. */
export function replicaShard(tenant: string, owner: string): string {
  return `${tenant}@${owner}`;
}

/** The configured tenant a shard belongs to: the tenant itself, or a replica's tenant. */
export function baseTenant(shard: string): string {
  const i = shard.indexOf('@');
  return i < 0 ? shard : shard.slice(0, i);
}

/** The host a replica shard belongs to (null: not a replica). */
export function replicaOwner(shard: string): string | null {
  const i = shard.indexOf('@');
  return i < 0 ? null : shard.slice(i + 1);
}

/** A template's declaration, as a guest would have declared it (parsed again, not trusted). */
function declarationOf(t: ScheduleRecord): Record<string, unknown> {
  const sp = t.spec;
  return {
    id: t.localId,
    ...(sp.kind === 'cron'
      ? { cron: sp.cron, timezone: sp.timezone, ...(sp.dst === undefined ? {} : { dst: sp.dst }) }
      : sp.kind === 'every'
        ? { every: sp.every }
        : { at: sp.at }),
    ...(t.jitter === null ? {} : { jitter: t.jitter }),
    ...(t.payload === null ? {} : { payload: JSON.parse(t.payload) as unknown }),
    overlap: t.overlap,
    misfire: t.misfire,
    priority: t.priority,
    ...(t.description === null ? {} : { description: t.description }),
    scope: 'host',
  };
}

export interface ReplicaDeps {
  readonly store: Store;
  readonly scheduler: Scheduler;
  readonly schedules: ScheduleOps;
  readonly quotas: (tenant: string) => TenantQuotas;
  readonly now: () => number;
  readonly onError: (message: string) => void;
}

/**
 * Brings one replica plugin's copies in line with its templates (one transaction). `seen`
 * keeps, per copy, the template state last applied to it: a template's pause or resume is
 * applied once, so an operator may still pause one host's copy by its own key.
 */
export function syncCopies(
  d: ReplicaDeps,
  pluginId: string,
  shard: string,
  templates: readonly ScheduleRecord[],
  seen: Map<string, string>,
): void {
  const now = d.now();
  const quotas = d.quotas(shard);
  d.store.transaction(() => {
    const copies = new Map(
      d.store
        .listSchedules({
          pluginId,
          states: ['active', 'paused', 'completed', 'deleted', 'retired'],
        })
        .map((s) => [s.localId, s]),
    );
    const wanted = new Set<string>();
    for (const t of templates) {
      if (t.state === 'retired') continue;
      wanted.add(t.localId);
      const key = `${pluginId}/${t.localId}`;
      const copy = copies.get(t.localId);
      if (t.state === 'deleted') {
        if (isLive(copy)) d.schedules.deleteKey(key);
        seen.set(key, 'deleted');
        continue;
      }
      const parsed = parseDeclaration(declarationOf(t), quotas, now);
      if (!parsed.ok) {
        d.onError(
          `replica ${key}: template refused: ${parsed.issue.field} ${parsed.issue.message}`,
        );
        continue;
      }
      const decl: ParsedDeclaration = parsed.value;
      const paused = t.state === 'paused';
      if (!copy || !isLive(copy) || copy.declHash !== decl.hash) {
        // New, revived, or a changed declaration: the copy is the template's declaration, in
        // the template's pause state; it keeps its cursor and history.
        const rec = recordFromDeclaration(pluginId, shard, decl, 'declared', now, undefined, 1);
        const row = {
          ...rec,
          cursor: isLive(copy) ? copy.cursor : null,
          createdAt: copy?.createdAt ?? now,
          ...(paused ? { state: 'paused' as const, pauseNote: t.pauseNote, nextAt: null } : {}),
        };
        if (copy) d.store.updateSchedule(key, patchOf(row));
        else d.store.insertSchedule(row);
        const stored = d.store.getSchedule(key) as ScheduleRecord;
        if (stored.state === 'active') d.scheduler.upsert(stored);
        else d.scheduler.remove(key);
      } else if (seen.get(key) !== t.state) {
        if (paused) d.schedules.pauseKey(key, t.pauseNote);
        else if (copy.state === 'paused') d.schedules.resumeKey(key);
      }
      seen.set(key, t.state);
    }
    // Declarations that went away: their copies retire.
    for (const c of copies.values()) {
      if (wanted.has(c.localId) || !isLive(c)) continue;
      d.store.updateSchedule(c.key, { state: 'retired', nextAt: null, updatedAt: now });
      d.scheduler.remove(c.key);
      seen.delete(c.key);
    }
  });
}
