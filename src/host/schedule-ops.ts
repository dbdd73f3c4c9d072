/**
 * Changes to schedules, shared by guests (scoped to their own plugin) and operators (any
 * schedule): create, pause, resume, delete, get, list. Each change is written to the store
 * first and then mirrored into the scheduler's queue.
 *
 * Scoping: a guest names schedules by local id; the key is always built from the *caller's*
 * plugin id, so a guest cannot even form another plugin's key. Deleted and retired schedules
 * answer `not_found` like ids that never existed.
 */
import type { TenantQuotas } from '../config/host-config.ts';
import { parseDeclaration, type ParsedDeclaration } from '../schedule/declaration.ts';
import { retryFromText } from '../schedule/retry.ts';
import { dstOf, nextFireAfter } from '../schedule/spec.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { CallerContext } from '../sandbox/types.ts';
import { patchedRecord } from '../store/schedule-record.ts';
import type { ScheduleOrigin, SchedulePatch, ScheduleRecord, Store } from '../store/types.ts';
import {
  guestError,
  MAX_LIST_PAGE_BYTES,
  type HostResult,
  type ScheduleView,
  type ScopedScheduleService,
} from '../../host-functions/types.ts';
import type { Clock } from '../clock.ts';

export function scheduleKey(pluginId: string, localId: string): string {
  return `${pluginId}/${localId}`;
}

export function isLive(s: ScheduleRecord | undefined): s is ScheduleRecord {
  return (
    s !== undefined && (s.state === 'active' || s.state === 'paused' || s.state === 'completed')
  );
}

/** An ISO time, or null for a value no `Date` can hold (a bad stored row must not throw). */
function isoOrNull(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  return new Date(ms).toISOString();
}

function parsedOrNull(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/**
 * The view of a stored retry policy: a fresh copy of the policy the scheduler applies (a text no
 * policy can be read from is one attempt there, and here).
 */
function retryView(text: string | null): ScheduleView['retry'] {
  if (text === null) return null;
  const p = retryFromText(text);
  return { maxAttempts: p.maxAttempts, backoff: { ...p.backoff }, on: [...p.on] };
}

/**
 * What a schedule looks like to its guest. Total: one odd stored row never throws.
 *
 * `retry`, `job` and `breaker` are the schedule's own settings (null when unset), not the
 * defaults they fall back to: a job contract's policy follows the plugin's latest discovery and
 * the breaker's default the tenant's quota, which a guest does not see and which can change
 * without the schedule changing (`dst` is different: its default comes from the pattern alone).
 * `failStreak` is the breaker's current count, so a guest can see how close a schedule is to
 * being paused, or why it was, before it resumes it.
 */
export function toView(s: ScheduleRecord): ScheduleView {
  const spec = s.spec;
  return {
    id: s.localId,
    origin: s.origin,
    cron: spec.kind === 'cron' ? spec.cron : null,
    timezone: spec.kind === 'cron' ? spec.timezone : null,
    dst: spec.kind === 'cron' ? { ...dstOf(spec) } : null,
    every: spec.kind === 'every' ? spec.every : null,
    at: spec.kind === 'at' ? spec.at : null,
    jitter: s.jitter,
    overlap: s.overlap,
    misfire: s.misfire,
    priority: s.priority,
    retry: retryView(s.retry),
    job: s.job,
    breaker: s.breakerAfter === null ? null : { afterFailures: s.breakerAfter },
    failStreak: s.failStreak,
    state: s.state as ScheduleView['state'],
    pauseNote: s.pauseNote,
    nextRunAt: s.state === 'active' ? isoOrNull(s.nextAt) : null,
    payload: parsedOrNull(s.payload),
    description: s.description,
  };
}

/**
 * JSON bytes of a view's bounded fields at their largest (id and job 128 characters, cron 200,
 * zone and jitter 64, the largest retry policy, breaker and count): 1,103 bytes measured
 * (test/unit/schedule-view.test.ts), rounded up.
 */
export const VIEW_FIXED_BYTES = 1_536;

/**
 * An upper bound of a view's JSON size without encoding it: the stored payload text (already
 * canonical JSON), free texts at their worst escaping (6 bytes per UTF-16 unit), and
 * `VIEW_FIXED_BYTES` for the bounded fields (id, cron, zone, times, policies).
 */
export function viewBytesBound(s: ScheduleRecord): number {
  return (
    (s.payload === null ? 4 : Buffer.byteLength(s.payload)) +
    6 * ((s.description?.length ?? 0) + (s.pauseNote?.length ?? 0)) +
    VIEW_FIXED_BYTES
  );
}

/** Rows read per store query while filling a page. */
const LIST_CHUNK = 16;

/**
 * A new record for a parsed declaration (state from `paused`, next time from now). `generation`:
 * the row's, when the caller knows it (a new row's is 1); the record has `patchedRecord`'s shape.
 */
export function recordFromDeclaration(
  pluginId: string,
  tenant: string,
  d: ParsedDeclaration,
  origin: ScheduleOrigin,
  now: number,
  previous?: ScheduleRecord,
  generation?: number,
): ScheduleRecord {
  const keepPaused = previous?.state === 'paused';
  const paused = keepPaused || d.paused;
  const nextAt = nextFireAfter(d.spec, now, now);
  return {
    key: scheduleKey(pluginId, d.id),
    pluginId,
    tenant,
    localId: d.id,
    origin,
    spec: d.spec,
    jitter: d.jitter,
    jitterMs: d.jitterMs,
    payload: d.payload,
    overlap: d.overlap,
    misfire: d.misfire,
    description: d.description,
    scope: d.scope,
    priority: d.priority,
    declHash: d.hash,
    state: paused ? 'paused' : nextAt === null ? 'completed' : 'active',
    pauseNote: keepPaused ? (previous?.pauseNote ?? null) : null,
    anchorAt: now,
    nextAt: paused ? null : nextAt,
    cursor: previous?.cursor ?? null,
    bufferedAt: null,
    createdAt: previous?.createdAt ?? now,
    updatedAt: now,
    generation,
    retry: d.retry,
    job: d.job,
    breakerAfter: d.breakerAfter,
    // A changed declaration keeps its count (a reload is no operator's resume).
    failStreak: previous?.failStreak ?? 0,
  };
}

/**
 * Every mutable field of a record, as a patch (identity fields, creation time and the store's
 * generation left out).
 */
export function patchOf(rec: ScheduleRecord): SchedulePatch {
  const { key, pluginId, tenant, localId, createdAt, generation, ...patch } = rec;
  return patch;
}

/**
 * A run of an every-host schedule (`scope: "host"`) changing schedules: refused with `phase`,
 * which ends the call (a contract violation, like any call outside its phases). Every host runs
 * such a tick, so its changes would be made once per host; on one host the rule is the same, so
 * a guest behaves alike on one host and on a cluster.
 */
function everyHostWrite(caller: CallerContext, fn: string): ReturnType<typeof guestError> | null {
  if (caller.phase !== 'run' || caller.everyHost !== true) return null;
  return guestError(
    'phase',
    `'${fn}' is not allowed in a run of a schedule that runs on every host (scope "host"); such a run may only read schedules`,
  );
}

export type OpResult =
  | { ok: true; schedule: ScheduleRecord }
  | { ok: false; code: 'not_found' | 'conflict'; message: string };

export interface ScheduleOpsDeps {
  readonly store: Store;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly quotas: (tenant: string) => TenantQuotas;
  /** Whether the plugin's last discovery registered job contract `name` (`schedule_create`'s `job`). */
  readonly jobExists?: (pluginId: string, name: string) => boolean;
}

export class ScheduleOps implements ScopedScheduleService {
  readonly #d: ScheduleOpsDeps;

  constructor(deps: ScheduleOpsDeps) {
    this.#d = deps;
  }

  // ---- by key (operators; guests come through the scoped methods below) ----

  pauseKey(key: string, note: string | null): OpResult {
    const s = this.#d.store.getSchedule(key);
    if (!isLive(s)) return notFound(key);
    if (s.state !== 'active') return { ok: true, schedule: s };
    const now = this.#d.clock.now();
    const patch = { state: 'paused' as const, pauseNote: note, nextAt: null, updatedAt: now };
    this.#d.store.updateSchedule(key, patch);
    this.#d.scheduler.remove(key);
    return { ok: true, schedule: { ...s, ...patch } };
  }

  resumeKey(key: string): OpResult {
    const s = this.#d.store.getSchedule(key);
    if (!isLive(s)) return notFound(key);
    if (s.state !== 'paused') return { ok: true, schedule: s };
    const now = this.#d.clock.now();
    const nextAt = nextFireAfter(s.spec, now, s.anchorAt);
    // A resume clears the breaker's count of failed ticks (docs/schedules.md).
    const patch = {
      state: nextAt === null ? ('completed' as const) : ('active' as const),
      pauseNote: null,
      nextAt,
      failStreak: 0,
      updatedAt: now,
    };
    this.#d.store.updateSchedule(key, patch);
    const updated = patchedRecord(s, patch);
    this.#d.scheduler.upsert(updated);
    return { ok: true, schedule: updated };
  }

  deleteKey(key: string): OpResult {
    const s = this.#d.store.getSchedule(key);
    if (!isLive(s)) return notFound(key);
    const now = this.#d.clock.now();
    const patch = { state: 'deleted' as const, nextAt: null, bufferedAt: null, updatedAt: now };
    this.#d.store.updateSchedule(key, patch);
    this.#d.scheduler.remove(key);
    return { ok: true, schedule: { ...s, ...patch } };
  }

  // ---- scoped to the calling plugin (host functions) ----

  create(caller: CallerContext, declaration: unknown): HostResult<ScheduleView> {
    const denied = everyHostWrite(caller, 'schedule_create');
    if (denied) return denied;
    const quotas = this.#d.quotas(caller.tenant);
    const now = this.#d.clock.now();
    const parsed = parseDeclaration(declaration, quotas, now);
    if (!parsed.ok)
      return guestError(parsed.issue.code, `${parsed.issue.field}: ${parsed.issue.message}`);
    const d = parsed.value;
    if (d.scope === 'host') {
      return guestError(
        'invalid_argument',
        '/scope: "host" is for declared schedules (the output of schedules(), which every host discovers); a schedule created at runtime runs once in the cluster',
      );
    }
    if (d.spec.kind === 'at' && d.spec.atMs <= now)
      return guestError('invalid_argument', '/at: is in the past');
    if (d.job !== null && !(this.#d.jobExists?.(caller.pluginId, d.job) ?? false))
      return guestError(
        'invalid_argument',
        `/job: names no job contract of this plugin ('${d.job}'; register it with jobs_register)`,
      );
    const key = scheduleKey(caller.pluginId, d.id);
    return this.#d.store.transaction(() => {
      const existing = this.#d.store.getSchedule(key);
      if (isLive(existing)) return guestError('conflict', `schedule '${d.id}' already exists`);
      // A kept count (store migration 0005), not a count of rows: creates stay O(1) each.
      const count = this.#d.store.countLiveSchedules(caller.tenant);
      if (count >= quotas.maxSchedules) {
        return guestError(
          'quota_exceeded',
          `tenant ${caller.tenant} already has ${count} schedules (limit ${quotas.maxSchedules})`,
        );
      }
      const rec = recordFromDeclaration(caller.pluginId, caller.tenant, d, 'runtime', now);
      if (existing) {
        // A deleted or retired row with this id: the new schedule takes its place.
        this.#d.store.updateSchedule(key, patchOf({ ...rec, cursor: null }));
      } else {
        this.#d.store.insertSchedule(rec);
      }
      this.#d.scheduler.upsert(rec);
      return { ok: toView(rec) };
    });
  }

  pause(caller: CallerContext, id: string, note: string | null): HostResult<ScheduleView> {
    const denied = everyHostWrite(caller, 'schedule_pause');
    if (denied) return denied;
    return asView(this.pauseKey(scheduleKey(caller.pluginId, id), note), id);
  }

  resume(caller: CallerContext, id: string): HostResult<ScheduleView> {
    const denied = everyHostWrite(caller, 'schedule_resume');
    if (denied) return denied;
    return asView(this.resumeKey(scheduleKey(caller.pluginId, id)), id);
  }

  delete(caller: CallerContext, id: string): HostResult<{ id: string; deleted: true }> {
    const denied = everyHostWrite(caller, 'schedule_delete');
    if (denied) return denied;
    const r = this.deleteKey(scheduleKey(caller.pluginId, id));
    return r.ok
      ? { ok: { id, deleted: true } }
      : guestError(r.code, `schedule '${id}' does not exist`);
  }

  get(caller: CallerContext, id: string): HostResult<ScheduleView> {
    const s = this.#d.store.getSchedule(scheduleKey(caller.pluginId, id));
    return isLive(s)
      ? { ok: toView(s) }
      : guestError('not_found', `schedule '${id}' does not exist`);
  }

  /**
   * A page of the caller's schedules in id order: at most `limit` of them and at most
   * `MAX_LIST_PAGE_BYTES` (but at least one); `next` is the id to pass as `after` for the rest.
   * Rows are read a chunk at a time, so a page of large payloads never reads far past itself.
   */
  list(
    caller: CallerContext,
    limit: number,
    after: string | null,
  ): HostResult<{ schedules: ScheduleView[]; next: string | null }> {
    const schedules: ScheduleView[] = [];
    let bytes = 0;
    let cursor = after;
    for (;;) {
      const want = Math.min(limit - schedules.length + 1, LIST_CHUNK);
      const rows = this.#d.store.listSchedules({
        pluginId: caller.pluginId,
        limit: want,
        ...(cursor === null ? {} : { after: cursor }),
      });
      for (const row of rows) {
        const size = viewBytesBound(row);
        const full =
          schedules.length === limit ||
          (schedules.length > 0 && bytes + size > MAX_LIST_PAGE_BYTES);
        if (full) return { ok: { schedules, next: schedules.at(-1)?.id ?? null } };
        schedules.push(toView(row));
        bytes += size;
      }
      if (rows.length < want) return { ok: { schedules, next: null } };
      cursor = rows.at(-1)?.localId ?? null;
    }
  }
}

function notFound(key: string): OpResult {
  return { ok: false, code: 'not_found', message: `schedule '${key}' does not exist` };
}

function asView(r: OpResult, id: string): HostResult<ScheduleView> {
  return r.ok ? { ok: toView(r.schedule) } : guestError(r.code, `schedule '${id}' does not exist`);
}
