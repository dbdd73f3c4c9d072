/**
 * The scheduler: one due-time queue and one timer for every schedule, the at-most-one gate,
 * overlap and misfire policies, and per-tenant caps on runs in flight.
 *
 * Invariants:
 * - At most one run per schedule key exists at any time: a key is "busy" from the moment a
 *   tick is accepted (waiting for tenant capacity, or running) until its run is recorded.
 * - Every tick that does not run is recorded (`skipped_overlap`, `skipped_misfire`).
 * - The store is the source of truth: each fire persists the next nominal time before the run
 *   starts, so a crash can at worst lose a run's outcome (recorded `abandoned` on restart),
 *   never fire a tick twice.
 * - Late ticks coalesce: the next time is computed after max(nominal, now), so a host that was
 *   busy or a clock that jumped does not replay a backlog (misfire policy handles downtime).
 */
import type { Clock, TimerHandle } from '../clock.ts';
import { jitterFor, nextFireAfter } from '../schedule/spec.ts';
import type { NewRun, RunTrigger, ScheduleRecord, Store } from '../store/types.ts';
import { DueQueue } from './due-queue.ts';

export interface StartedRun {
  readonly runId: number;
  readonly schedule: ScheduleRecord;
  readonly scheduledAt: number;
  readonly firedAt: number;
  readonly trigger: RunTrigger;
  readonly attempt: number;
}

/** Runs a started run to its end and records its outcome. Must not throw. */
export type RunExecutor = (run: StartedRun) => Promise<void>;

export interface SchedulerEvents {
  onSkipped?(
    schedule: ScheduleRecord,
    status: 'skipped_overlap' | 'skipped_misfire',
    reason: string,
  ): void;
  onStarted?(run: StartedRun): void;
  /** A timer callback or a run's bookkeeping threw (e.g. a store write failed); never rethrown. */
  onError?(err: unknown, during: string): void;
}

export interface SchedulerOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly execute: RunExecutor;
  /** Per-tenant cap on runs in flight. */
  readonly maxRunsInFlight: (tenant: string) => number;
  /** A due tick more than this late at (re)start counts as missed. @defaultValue 1000 */
  readonly misfireGraceMs?: number;
  readonly events?: SchedulerEvents;
}

interface Pending {
  readonly key: string;
  readonly scheduledAt: number;
  readonly trigger: RunTrigger;
}

/** A run row for a tick of `s` (attempt 1; outcome fields empty until it finishes). */
function newRun(
  s: ScheduleRecord,
  trigger: RunTrigger,
  scheduledAt: number,
  startedAt: number,
  state: Pick<NewRun, 'status' | 'reason' | 'finishedAt'>,
): NewRun {
  return {
    scheduleKey: s.key,
    pluginId: s.pluginId,
    tenant: s.tenant,
    localId: s.localId,
    trigger,
    scheduledAt,
    startedAt,
    attempt: 1,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
    ...state,
  };
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #queue = new DueQueue();
  readonly #byPlugin = new Map<string, Set<string>>();
  /** Keys with a run accepted (waiting or running). */
  readonly #busy = new Set<string>();
  readonly #inFlight = new Map<string, number>();
  readonly #waiting = new Map<string, Pending[]>();
  /** Ticks buffered by `buffer-one` (mirrors `schedules.buffered_at`). */
  readonly #buffered = new Map<string, number>();
  readonly #runs = new Set<Promise<void>>();
  #timer: TimerHandle | null = null;
  #timerAt = Infinity;
  #stopped = false;
  #suspended = false;

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
  }

  /** Schedules every live schedule of a (re)loaded plugin, applying misfire policies. */
  addPlugin(pluginId: string): void {
    const now = this.#o.clock.now();
    const grace = this.#o.misfireGraceMs ?? 1000;
    for (const rec of this.#o.store.listSchedules({ pluginId, states: ['active'] })) {
      let s = rec;
      if (s.bufferedAt !== null) {
        this.#o.store.updateSchedule(s.key, { bufferedAt: null, updatedAt: now });
        s = { ...s, bufferedAt: null };
      }
      if (s.nextAt !== null && s.nextAt + jitterFor(s.key, s.nextAt, s.jitterMs) < now - grace) {
        s = this.#misfire(s, now);
      }
      this.upsert(s);
    }
  }

  #misfire(s: ScheduleRecord, now: number): ScheduleRecord {
    const missedAt = s.nextAt as number;
    const next = nextFireAfter(s.spec, now, s.anchorAt);
    const patch = next === null ? { nextAt: null, state: 'completed' as const } : { nextAt: next };
    this.#o.store.updateSchedule(s.key, { ...patch, updatedAt: now });
    const updated: ScheduleRecord = { ...s, ...patch };
    if (s.misfire === 'run-once') {
      this.#accept(updated, missedAt, 'catch_up');
    } else {
      const reason = `tick of ${new Date(missedAt).toISOString()} (and any later ones) missed while the host was down`;
      this.#record(updated, missedAt, 'skipped_misfire', reason, 'schedule');
    }
    return updated;
  }

  /** (Re)schedules a schedule from its record: active with a next time → queued; else dropped. */
  upsert(s: ScheduleRecord): void {
    let keys = this.#byPlugin.get(s.pluginId);
    if (!keys) this.#byPlugin.set(s.pluginId, (keys = new Set()));
    keys.add(s.key);
    if (s.state !== 'active' || s.nextAt === null) {
      this.#queue.delete(s.key);
      return;
    }
    const dueAt = s.nextAt + jitterFor(s.key, s.nextAt, s.jitterMs);
    this.#queue.set(s.key, dueAt);
    this.#arm(dueAt);
  }

  remove(key: string): void {
    this.#queue.delete(key);
  }

  /** Stops scheduling a plugin's schedules (its running runs finish). */
  removePlugin(pluginId: string): void {
    for (const key of this.#byPlugin.get(pluginId) ?? []) this.#queue.delete(key);
    this.#byPlugin.delete(pluginId);
    for (const [tenant, list] of this.#waiting) {
      this.#waiting.set(
        tenant,
        list.filter((p) => {
          const keep = !p.key.startsWith(`${pluginId}/`);
          if (!keep) this.#busy.delete(p.key);
          return keep;
        }),
      );
    }
  }

  /** Runs a schedule now (operator or test), under the same at-most-one gate. */
  trigger(key: string): 'started' | 'skipped' | 'not_found' {
    const s = this.#o.store.getSchedule(key);
    if (
      !s ||
      s.state === 'deleted' ||
      s.state === 'retired' ||
      !this.#byPlugin.get(s.pluginId)?.has(key)
    )
      return 'not_found';
    return this.#accept(s, this.#o.clock.now(), 'manual') ? 'started' : 'skipped';
  }

  isBusy(key: string): boolean {
    return this.#busy.has(key);
  }

  /** Number of schedules in the due queue. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Resolves when no run is in flight or waiting. */
  async settle(): Promise<void> {
    while (this.#runs.size > 0) await Promise.allSettled([...this.#runs]);
  }

  /** Stops firing; in-flight runs go on (await `settle`). */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
    for (const list of this.#waiting.values()) for (const p of list) this.#busy.delete(p.key);
    this.#waiting.clear();
  }

  /**
   * Stops firing until `resume()` (the host calls it while the store cannot take writes or it
   * has lost its lease): no tick fires, no waiting tick starts; runs in flight go on.
   */
  suspend(): void {
    this.#suspended = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  /**
   * The store works again: the due queue is rebuilt from the store, as at a restart (ticks
   * missed meanwhile follow the misfire policy; writes a failed group commit rolled back are
   * not trusted from memory), and firing and starting resume. If that fails, it stays
   * suspended and reports `onError`.
   */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    if (this.#stopped) return;
    try {
      // Plugins stay known (`#byPlugin`) while their queue entries are rebuilt, so a resume
      // that fails part-way leaves nothing out of the next one.
      for (const [pluginId, keys] of [...this.#byPlugin]) {
        for (const key of keys) this.#queue.delete(key);
        this.addPlugin(pluginId);
      }
      for (const tenant of [...this.#waiting.keys()]) this.#drain(tenant);
    } catch (err) {
      this.#suspended = true;
      this.#timer?.cancel();
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#report(err, 'resume');
    }
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  /** Runs `fn`; what it throws goes to `onError` (a timer must never take the host down). */
  #guard(during: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#report(err, during);
    }
  }

  #report(err: unknown, during: string): void {
    try {
      this.#o.events?.onError?.(err, during);
    } catch {
      // A throwing listener must not escape a timer either.
    }
  }

  #arm(dueAt: number): void {
    if (this.#stopped || this.#suspended || dueAt >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = dueAt;
    this.#timer = this.#o.clock.setTimer(() => this.#onTimer(), dueAt - this.#o.clock.now());
  }

  #onTimer(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    if (this.#stopped || this.#suspended) return;
    const now = this.#o.clock.now();
    for (const { key, dueAt } of this.#queue.popDue(now)) {
      // A failed write may suspend firing part-way: the rest stay queued for `resume()`.
      if (this.#suspended) this.#queue.set(key, dueAt);
      else this.#guard(`firing ${key}`, () => this.#fire(key, now));
    }
    const next = this.#queue.peekTime();
    if (next !== null) this.#arm(next);
  }

  #fire(key: string, now: number): void {
    const s = this.#o.store.getSchedule(key);
    if (!s || s.state !== 'active' || s.nextAt === null) return;
    const scheduledAt = s.nextAt;
    const next = nextFireAfter(s.spec, Math.max(scheduledAt, now), s.anchorAt);
    const patch = next === null ? { nextAt: null, state: 'completed' as const } : { nextAt: next };
    this.#o.store.updateSchedule(key, { ...patch, updatedAt: now });
    const updated: ScheduleRecord = { ...s, ...patch };
    this.upsert(updated);
    this.#accept(updated, scheduledAt, 'schedule');
  }

  /** The at-most-one gate. Returns whether a run was started or queued. */
  #accept(s: ScheduleRecord, scheduledAt: number, trigger: RunTrigger): boolean {
    if (this.#busy.has(s.key)) {
      if (s.overlap === 'buffer-one' && !this.#buffered.has(s.key) && trigger !== 'manual') {
        this.#buffered.set(s.key, scheduledAt);
        this.#o.store.updateSchedule(s.key, {
          bufferedAt: scheduledAt,
          updatedAt: this.#o.clock.now(),
        });
        return true;
      }
      const why =
        s.overlap === 'buffer-one'
          ? 'previous run still in flight and one tick already buffered'
          : 'previous run still in flight';
      this.#record(s, scheduledAt, 'skipped_overlap', why, trigger);
      return false;
    }
    this.#busy.add(s.key);
    const pending: Pending = { key: s.key, scheduledAt, trigger };
    if ((this.#inFlight.get(s.tenant) ?? 0) >= this.#o.maxRunsInFlight(s.tenant)) {
      let list = this.#waiting.get(s.tenant);
      if (!list) this.#waiting.set(s.tenant, (list = []));
      list.push(pending);
      return true;
    }
    this.#start(s, pending);
    return true;
  }

  #record(
    s: ScheduleRecord,
    scheduledAt: number,
    status: 'skipped_overlap' | 'skipped_misfire',
    reason: string,
    trigger: RunTrigger,
  ): void {
    const now = this.#o.clock.now();
    this.#o.store.insertRun(
      newRun(s, trigger, scheduledAt, now, { status, reason, finishedAt: now }),
    );
    this.#o.events?.onSkipped?.(s, status, reason);
  }

  #start(s: ScheduleRecord, p: Pending): void {
    const now = this.#o.clock.now();
    let runId: number;
    try {
      runId = this.#o.store.insertRun(
        newRun(s, p.trigger, p.scheduledAt, now, {
          status: 'running',
          reason: null,
          finishedAt: null,
        }),
      );
    } catch (err) {
      // Not started: the key must not stay busy (every later tick would be skipped).
      this.#busy.delete(s.key);
      throw err;
    }
    this.#inFlight.set(s.tenant, (this.#inFlight.get(s.tenant) ?? 0) + 1);
    const run: StartedRun = {
      runId,
      schedule: s,
      scheduledAt: p.scheduledAt,
      firedAt: now,
      trigger: p.trigger,
      attempt: 1,
    };
    this.#o.events?.onStarted?.(run);
    const promise = this.#o
      .execute(run)
      .catch(() => undefined)
      .finally(() => {
        this.#runs.delete(promise);
        this.#guard(`finishing a run of ${s.key}`, () => this.#finished(s));
      });
    this.#runs.add(promise);
  }

  #finished(s: ScheduleRecord): void {
    this.#busy.delete(s.key);
    this.#inFlight.set(s.tenant, (this.#inFlight.get(s.tenant) ?? 1) - 1);
    const bufferedAt = this.#buffered.get(s.key);
    if (bufferedAt !== undefined) {
      this.#buffered.delete(s.key);
      this.#o.store.updateSchedule(s.key, { bufferedAt: null, updatedAt: this.#o.clock.now() });
      const fresh = this.#stopped ? undefined : this.#o.store.getSchedule(s.key);
      if (fresh?.state === 'active' && this.#byPlugin.get(s.pluginId)?.has(s.key)) {
        this.#accept({ ...fresh, bufferedAt: null }, bufferedAt, 'buffered');
      }
    }
    this.#drain(s.tenant);
  }

  #drain(tenant: string): void {
    const list = this.#waiting.get(tenant);
    while (
      !this.#suspended &&
      list &&
      list.length > 0 &&
      (this.#inFlight.get(tenant) ?? 0) < this.#o.maxRunsInFlight(tenant)
    ) {
      const p = list.shift() as Pending;
      const s = this.#o.store.getSchedule(p.key);
      if (!s || s.state === 'deleted' || s.state === 'retired') {
        this.#busy.delete(p.key);
        continue;
      }
      this.#start(s, p);
    }
  }
}
