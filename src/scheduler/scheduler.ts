/**
 * The scheduler: one due-time queue and one timer for every schedule, the at-most-one gate,
 * overlap and misfire policies, per-tenant caps on runs in flight, retries and the breaker.
 *
 * Invariants (docs/design.md, "Every tick leaves a record", "Retries, at-most-one and overlap"):
 * - At most one run per schedule key exists at any time: a key is "busy" from the moment a
 *   tick is accepted (waiting for tenant capacity, or running) until its run is recorded, or,
 *   when its policy retries the run, until the tick's last attempt is recorded: a pending retry
 *   (a `waiting` row, trigger `retry`, due at its `started_at`) holds the key through its
 *   backoff, so ticks due meanwhile meet the overlap policy. It holds no tenant slot.
 * - The breaker counts ticks (a tick's last attempt), never attempts: a failed tick adds one to
 *   the schedule's `failStreak`, a success sets it to 0, and reaching the limit pauses the
 *   schedule like an operator's pause.
 * - Every tick leaves a record. A tick that runs has its run row; one that waits for a tenant
 *   slot has a `waiting` row from the moment it waits (so a crash, a stop or a reload cannot
 *   lose it); a buffered tick is `schedules.buffered_at`; a tick that does not run is recorded
 *   `skipped_overlap`, `skipped_misfire` (with the span of ticks it covers) or `cancelled`.
 *   Waiting rows and buffered ticks left by a previous process are taken up again at load, by
 *   the misfire policy.
 * - Each fire persists the next nominal time (and the tick's record) in one transaction, and the
 *   guest is called only once that transaction is durable (`Store.committed()`: with group
 *   commit, one commit covers every fire and outcome of a loop turn), so a crash can at worst
 *   lose a run's outcome (recorded `abandoned` on restart), never fire a tick twice.
 * - While the host owns a schedule, its record in memory (`#records`, kept by `upsert`,
 *   dropped by `remove`, a hold or an unload; cursors updated from each run's end) is the truth:
 *   a start, a trigger or a fire does not read the store: a fire's write of the next time is
 *   conditional on the stored row being active at the time memory holds (another writer that
 *   moved it wins: the write changes nothing, and the record is then read whole). A record the
 *   scheduler was not given whole (no `generation`: freshly created) is read once, when first
 *   needed.
 * - Next ticks come from nominal times: jitter only delays a fire, so it never swallows a
 *   tick. A fire later than the misfire grace + jitter coalesces the ticks it overran into one
 *   `skipped_misfire` record (no backlog replay, no silent loss).
 * - A timer callback never throws: store errors and throwing listeners become `onError`.
 * - Priorities (docs/schedules.md, "Priorities"): a tenant's waiting ticks start in priority
 *   order with aging (`PriorityWaiting`), not first come first served. Waiting rows taken up at
 *   a plugin's load are all queued before any starts, so their order holds across a restart.
 * - Fuel windows (docs/schedules.md, "Fuel windows"): `admit` is asked before a tick starts or
 *   waits, and before a waiting tick starts; a tick it refuses is recorded `quota_exhausted`.
 * - Backfill (src/schedule/backfill.ts, docs/schedules.md "Backfill"): a backfill tick is a
 *   `waiting` row (trigger `backfill`) from the moment it is queued. It starts only when its
 *   schedule is idle and its tenant has a free slot and no tick waiting (so below every
 *   priority, holding no place in the waiting list), at most one per `backfillIntervalMs` per
 *   schedule; while its fuel window is spent it waits (it is not recorded `quota_exhausted`).
 *   It holds the key like any run, but a live tick that comes due meanwhile is buffered behind
 *   it whatever the overlap policy (the live schedule never loses a tick to a backfill), and it
 *   neither retries nor counts toward the breaker. Pausing the schedule does not stop it
 *   (`cancelBackfill` does); deleting or retiring it cancels the ticks left.
 */
import type { Clock, TimerHandle } from '../clock.ts';
import {
  NO_RETRY,
  retries,
  retryDelayMs,
  retryFromText,
  type RetryPolicy,
} from '../schedule/retry.ts';
import { jitterFor, nextFireAfter } from '../schedule/spec.ts';
import type {
  RunRecord,
  RunStatus,
  RunTrigger,
  ScheduleRecord,
  ScheduleState,
  Store,
} from '../store/types.ts';
import { DueQueue } from './due-queue.ts';
import { patchedRecord } from '../store/schedule-record.ts';
import { PriorityWaiting } from './waiting-queue.ts';
import { MAX_PRIORITY } from '../schedule/declaration.ts';
import { DEFAULT_BACKFILL_INTERVAL_MS } from '../schedule/backfill.ts';
import {
  cancelReasonOf,
  newRun,
  notRunFinish,
  REASONS,
  RUNNING,
  WAITING,
  type CancelReason,
  type NotRunStatus,
} from './tick-records.ts';

export interface StartedRun {
  readonly runId: number;
  readonly schedule: ScheduleRecord;
  readonly scheduledAt: number;
  readonly firedAt: number;
  readonly trigger: RunTrigger;
  readonly attempt: number;
  /** A manual trigger's own payload (JSON text), instead of the schedule's; else null. */
  readonly payload: string | null;
}

/**
 * What a run's end changed in its schedule: the cursor it wrote (undefined: unchanged), and
 * the outcome recorded (undefined: none was, the host stopped first), which decides a retry and
 * the breaker's count.
 */
export interface RunEnd {
  readonly cursor?: string | null;
  readonly status?: RunStatus;
}

/** A failed run's tick gets another attempt (`SchedulerEvents.onRetrying`). */
export interface RetryScheduled {
  readonly schedule: ScheduleRecord;
  /** The failed run, and how it ended. */
  readonly runId: number;
  readonly status: RunStatus;
  /** The tick's nominal time (every attempt of a tick has the same). */
  readonly scheduledAt: number;
  /** The next attempt's number, its `waiting` row, and when it is due. */
  readonly attempt: number;
  readonly retryRunId: number;
  readonly dueAt: number;
}

/** Runs a started run to its end and records its outcome. Must not throw. */
export type RunExecutor = (run: StartedRun) => Promise<RunEnd | void>;

export interface SchedulerEvents {
  onSkipped?(schedule: ScheduleRecord, status: NotRunStatus, reason: string): void;
  onStarted?(run: StartedRun): void;
  /** A failed run's tick will run again (its next attempt is persisted, due at `dueAt`). */
  onRetrying?(retry: RetryScheduled): void;
  /** The breaker paused `schedule` (its record says so) after `failures` failed ticks in a row. */
  onTripped?(schedule: ScheduleRecord, failures: number, note: string): void;
  /** A store error or a throwing listener inside the scheduler (never thrown from a timer). */
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
  /** After a failed fire, the timer is re-armed this much later. @defaultValue 1000 */
  readonly retryMs?: number;
  readonly events?: SchedulerEvents;
  /**
   * Whether this host fires a schedule (default: every one). In a cluster, the owner of a
   * tenant keeps its every-host schedules (`scope: "host"`) without firing them: each host fires
   * its own copies of them (src/host/replica.ts).
   */
  readonly firesHere?: (s: ScheduleRecord) => boolean;
  /**
   * A waiting tick's effective priority rises one level per this many ms waited, so the lowest
   * priority never starves (docs/schedules.md, "Priorities"). @defaultValue 60000
   */
  readonly agingMs?: (tenant: string) => number;
  /**
   * Whether the tenant may start a run now: null, or why not (its fuel window is spent); a tick
   * refused is recorded `quota_exhausted` (docs/schedules.md, "Fuel windows"). Default: always.
   */
  readonly admit?: (tenant: string, now: number) => string | null;
  /**
   * A schedule's retry policy when it has none of its own (`retry` null): its job contract's.
   * @defaultValue none (one attempt)
   */
  readonly jobRetry?: (s: ScheduleRecord) => RetryPolicy | undefined;
  /** The tenant's breaker: failed ticks in a row that pause a schedule (0: never). @defaultValue 0 */
  readonly breakerAfter?: (tenant: string) => number;
  /**
   * Least time between the starts of two backfill runs of one schedule.
   * @defaultValue `DEFAULT_BACKFILL_INTERVAL_MS` (1000)
   */
  readonly backfillIntervalMs?: number;
}

/** `SchedulerOptions.agingMs`'s default. */
export const DEFAULT_AGING_MS = 60_000;

interface Pending {
  readonly key: string;
  readonly pluginId: string;
  readonly scheduledAt: number;
  readonly trigger: RunTrigger;
  /** The incarnation the tick belongs to. */
  readonly generation: number | undefined;
  readonly coversUntil: number | null;
  /** A manual trigger's own payload (JSON text); null: the schedule's. */
  readonly payload: string | null;
  /** Its `waiting` row, once it waits. */
  runId: number | null;
  /** Its schedule's priority (0..9), read when the tick was accepted. */
  readonly priority: number;
  /** When it began waiting (a tick taken up at load: its `waiting` row's start). */
  readonly since: number;
  /** Which attempt of its tick it is (1, or more for a retry). */
  readonly attempt: number;
}

/** A backfill tick not started yet: its nominal time and its `waiting` row. */
interface BackfillTick {
  readonly scheduledAt: number;
  runId: number;
}

/** `#accept`'s and `#record`'s default (shared: a fire allocates no options object). */
const NO_EXTRA: {
  runId?: number;
  coversUntil?: number | null;
  payload?: string | null;
  since?: number;
} = Object.freeze({});

const ALL_STATES: readonly ScheduleState[] = [
  'active',
  'paused',
  'completed',
  'deleted',
  'retired',
];

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #grace: number;
  readonly #firesHere: ((s: ScheduleRecord) => boolean) | null;
  readonly #queue = new DueQueue();
  /** The nominal time of each queued tick (its due time adds jitter). */
  readonly #nominal = new Map<string, number>();
  readonly #byPlugin = new Map<string, Set<string>>();
  /** Plugins being reloaded: nothing of theirs fires or starts until `addPlugin`. */
  readonly #held = new Set<string>();
  /** Keys with a run accepted (waiting or running). */
  readonly #busy = new Set<string>();
  readonly #inFlight = new Map<string, number>();
  readonly #waiting = new Map<string, PriorityWaiting<Pending>>();
  /** While a plugin's waiting rows are taken up at load: they queue, and start after. */
  #takingUp = false;
  /** The schedules the scheduler was given whole (see the head comment). */
  readonly #records = new Map<string, ScheduleRecord>();
  /** Ticks buffered by `buffer-one` (mirrors `schedules.buffered_at`). */
  readonly #buffered = new Map<string, number>();
  /**
   * Retries waiting for their backoff, by key (their keys stay busy), and when each is due. Each
   * has its `waiting` row (trigger `retry`, `started_at` its due time until it starts).
   */
  readonly #retrying = new Map<string, Pending>();
  readonly #retryDue = new Map<string, number>();
  readonly #retryQueue = new DueQueue();
  /**
   * Backfill ticks not started yet, by key, newest first (the oldest is popped next); each has
   * its `waiting` row (trigger `backfill`). `#backfillQueue`: when each key's next may start.
   */
  readonly #backfills = new Map<string, BackfillTick[]>();
  readonly #backfillQueue = new DueQueue();
  /** Keys whose run in flight is a backfill run (a live tick due meanwhile is buffered). */
  readonly #backfillRunning = new Set<string>();
  /** Runs in flight and their plugin. */
  readonly #runs = new Map<Promise<void>, string>();
  #timer: TimerHandle | null = null;
  #timerAt = Infinity;
  #stopped = false;
  #suspended = false;

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
    this.#firesHere = opts.firesHere ?? null;
    this.#grace = opts.misfireGraceMs ?? 1000;
  }

  // ---- plugins ----

  /**
   * Schedules every live schedule of a (re)loaded plugin: takes up ticks a previous process
   * left waiting or buffered, applies misfire policies to overdue ticks, and queues the rest.
   * Ends a reload's hold. `rows`: every schedule row of the plugin as it is in the store now
   * (the caller just wrote them, with nothing in between); read from the store when absent.
   */
  addPlugin(pluginId: string, rows?: ScheduleRecord[]): void {
    const now = this.#o.clock.now();
    this.#held.delete(pluginId);
    if (!this.#byPlugin.has(pluginId)) this.#byPlugin.set(pluginId, new Set());
    const known = new Set<number>();
    for (const list of this.#waiting.values())
      for (const p of list) if (p.runId !== null) known.add(p.runId);
    for (const p of this.#retrying.values()) if (p.runId !== null) known.add(p.runId);
    for (const list of this.#backfills.values()) for (const b of list) known.add(b.runId);
    // Queued all before any starts (`#takingUp`), so they start in priority order, not by age.
    this.#takingUp = true;
    try {
      const backfilled = new Set<string>();
      for (const row of this.#o.store.listWaitingRuns(pluginId)) {
        if (known.has(row.id)) continue;
        if (row.trigger === 'backfill') {
          if (this.#takeUpBackfill(row, now)) backfilled.add(row.scheduleKey);
        } else {
          this.#takeUpWaiting(row, now);
        }
      }
      for (const key of backfilled) this.#queueBackfill(key, now);
    } finally {
      this.#takingUp = false;
    }
    // One read of the plugin's rows (or none) serves both passes (taking up buffered ticks does
    // not change a row's state or next time, so the rows stay right for queueing).
    rows ??= this.#o.store.listSchedules({ pluginId, states: ALL_STATES });
    const keys = this.#byPlugin.get(pluginId) as Set<string>;
    for (let i = 0; i < rows.length; i++) {
      const s = rows[i] as ScheduleRecord;
      keys.add(s.key);
      if (s.bufferedAt !== null && !this.#busy.has(s.key)) {
        this.#takeUpBuffered(s, now, true);
        rows[i] = patchedRecord(s, { bufferedAt: null });
      } else if (s.bufferedAt !== null && this.#retrying.has(s.key)) {
        // Buffered behind a pending retry: taken up when the retried tick ends.
        this.#buffered.set(s.key, s.bufferedAt);
      }
    }
    this.#queueActive(rows, now, true);
    this.#armPending();
    this.#drainAll();
  }

  /** Queues a plugin's active schedules; overdue ticks follow the misfire policy. */
  #schedulePlugin(pluginId: string, now: number): void {
    this.#queueActive(this.#o.store.listSchedules({ pluginId, states: ['active'] }), now);
  }

  /** `known`: every row's key is in its plugin's set already (`addPlugin` added them). */
  #queueActive(rows: readonly ScheduleRecord[], now: number, known = false): void {
    // The timer is armed once, for the earliest (nothing fires while this loop runs).
    let earliest = Infinity;
    for (const rec of rows) {
      if (rec.state !== 'active' || (this.#firesHere !== null && !this.#firesHere(rec))) continue;
      let s = rec;
      if (
        s.nextAt !== null &&
        s.nextAt + jitterFor(s.key, s.nextAt, s.jitterMs) < now - this.#grace
      )
        s = this.#misfire(s, now);
      const dueAt = this.#place(s, known);
      if (dueAt < earliest) earliest = dueAt;
    }
    if (earliest < Infinity) this.#arm(earliest);
  }

  /** A `waiting` row from before a restart: runs again, or is recorded by the misfire policy. */
  #takeUpWaiting(row: RunRecord, now: number): void {
    const s = this.#o.store.getSchedule(row.scheduleKey);
    const cancel = cancelReasonOf(s?.state);
    if (!s || cancel) {
      this.#o.store.finishRun(row.id, notRunFinish('cancelled', cancel ?? 'deleted', now));
      return;
    }
    if (row.trigger === 'retry' && !this.#busy.has(s.key)) {
      // A pending retry: due at its row's `started_at` (at once if that has passed; the tick
      // was accepted before, so the misfire policy does not apply to it).
      this.#pendRetry(
        {
          key: s.key,
          pluginId: s.pluginId,
          scheduledAt: row.scheduledAt,
          trigger: 'retry',
          generation: undefined,
          coversUntil: null,
          payload: null,
          runId: row.id,
          attempt: row.attempt,
          priority: s.priority,
          // Due (and waiting for a slot, if it must) from its row's `started_at`.
          since: row.startedAt,
        },
        row.startedAt,
      );
      return;
    }
    const late =
      row.scheduledAt + jitterFor(s.key, row.scheduledAt, s.jitterMs) < now - this.#grace;
    if (late && s.misfire === 'skip') {
      const reason = REASONS.waitedTooLong(row.scheduledAt);
      this.#o.store.finishRun(row.id, notRunFinish('skipped_misfire', reason, now));
      this.#emitSkipped(s, 'skipped_misfire', reason);
      return;
    }
    this.#accept(s, row.scheduledAt, row.trigger, {
      runId: row.id,
      coversUntil: row.coversUntil,
      since: row.startedAt,
    });
  }

  /**
   * A buffered tick: runs (when its run ended in this process), or at (re)load follows the
   * misfire policy like a waiting tick; cancelled if its schedule no longer runs.
   */
  #takeUpBuffered(s: ScheduleRecord, now: number, atLoad: boolean): void {
    const at = s.bufferedAt as number;
    this.#buffered.delete(s.key);
    this.#o.store.updateSchedule(s.key, { bufferedAt: null, updatedAt: now });
    const fresh = patchedRecord(s, { bufferedAt: null });
    const cancel = cancelReasonOf(s.state);
    if (cancel) {
      this.#record(fresh, at, 'cancelled', cancel, 'buffered');
    } else if (
      atLoad &&
      s.misfire === 'skip' &&
      at + jitterFor(s.key, at, s.jitterMs) < now - this.#grace
    ) {
      this.#record(fresh, at, 'skipped_misfire', REASONS.waitedTooLong(at), 'buffered');
    } else {
      this.#accept(fresh, at, 'buffered');
    }
  }

  #misfire(s: ScheduleRecord, now: number): ScheduleRecord {
    const missedAt = s.nextAt as number;
    const next = nextFireAfter(s.spec, now, s.anchorAt);
    const patch = next === null ? { nextAt: null, state: 'completed' as const } : { nextAt: next };
    return this.#o.store.transaction(() => {
      this.#o.store.updateSchedule(s.key, { ...patch, updatedAt: now });
      const updated = patchedRecord(s, patch);
      if (s.misfire === 'run-once') {
        this.#accept(updated, missedAt, 'catch_up', { coversUntil: now });
      } else {
        // A one-shot declared after its time (src/host/reconcile.ts): its row is newer than it.
        const reason =
          s.spec.kind === 'at' && s.updatedAt >= missedAt
            ? REASONS.declaredLate(missedAt)
            : REASONS.downtime(missedAt);
        this.#record(updated, missedAt, 'skipped_misfire', reason, 'schedule', {
          coversUntil: now,
        });
      }
      return updated;
    });
  }

  /**
   * A reload begins: the plugin's schedules stop firing and its waiting ticks stop starting
   * (they stay accepted, with their records); `addPlugin` ends the hold.
   */
  holdPlugin(pluginId: string): void {
    this.#held.add(pluginId);
    // Their nominal times stay known: a schedule paused or deleted during the hold records
    // the tick it owed. Their records are read again: the reload rewrites them in the store.
    for (const key of this.#byPlugin.get(pluginId) ?? []) {
      this.#queue.delete(key);
      this.#records.delete(key);
    }
  }

  /**
   * Stops scheduling a plugin (unload): ticks it had accepted (queued past their nominal
   * time, waiting, buffered) are recorded `cancelled` (`unloaded`); its running runs finish.
   */
  removePlugin(pluginId: string): void {
    this.#held.delete(pluginId);
    for (const key of this.#byPlugin.get(pluginId) ?? []) {
      // A pending retry keeps its row: the plugin's next load (on this host or the tenant's
      // next owner) takes it up.
      if (this.#dropRetry(key)) this.#busy.delete(key);
      this.#dropBackfill(key);
      this.#cancelKey(key, 'unloaded');
    }
    this.#byPlugin.delete(pluginId);
  }

  // ---- schedules ----

  /** (Re)schedules a schedule from its record: active with a next time → queued; else dropped. */
  upsert(s: ScheduleRecord): void {
    const dueAt = this.#place(s);
    if (dueAt < Infinity) this.#arm(dueAt);
  }

  /**
   * `upsert` but for the timer: returns the due time queued (Infinity: none). `known`: the key
   * is in its plugin's set already.
   */
  #place(s: ScheduleRecord, known = false): number {
    if (!known) {
      let keys = this.#byPlugin.get(s.pluginId);
      if (!keys) this.#byPlugin.set(s.pluginId, (keys = new Set()));
      keys.add(s.key);
    }
    if (s.generation === undefined) this.#records.delete(s.key);
    else this.#records.set(s.key, s);
    if (
      s.state !== 'active' ||
      s.nextAt === null ||
      (this.#firesHere !== null && !this.#firesHere(s))
    ) {
      this.#queue.delete(s.key);
      this.#nominal.delete(s.key);
      return Infinity;
    }
    this.#nominal.set(s.key, s.nextAt);
    if (this.#held.has(s.pluginId)) {
      this.#queue.delete(s.key);
      return Infinity;
    }
    const dueAt = s.nextAt + jitterFor(s.key, s.nextAt, s.jitterMs);
    this.#queue.set(s.key, dueAt);
    return dueAt;
  }

  /**
   * The schedule was paused, deleted or retired (its record already says so): it stops
   * firing, and the ticks it had accepted are recorded `cancelled`: one queued past its nominal
   * time (waiting only for its jitter), one waiting for a tenant slot, one buffered.
   */
  remove(key: string): void {
    const s = this.#o.store.getSchedule(key);
    this.#cancelKey(key, cancelReasonOf(s?.state) ?? 'paused');
  }

  #cancelKey(key: string, reason: CancelReason): void {
    const now = this.#o.clock.now();
    const nominal = this.#nominal.get(key);
    this.#queue.delete(key);
    this.#nominal.delete(key);
    this.#records.delete(key);
    const s = this.#o.store.getSchedule(key);
    if (!s) return;
    // The queued tick's nominal time has passed (it waited for its jitter, or a reload's hold):
    // it, and any later tick up to now, never fired. One record covers them.
    if (nominal !== undefined && nominal <= now)
      this.#record(s, nominal, 'cancelled', reason, 'schedule', { coversUntil: now });
    const list = this.#waiting.get(s.tenant);
    const i = list?.find((p) => p.key === key) ?? null;
    if (list && i !== null) {
      const p = list.removeAt(i);
      this.#busy.delete(key);
      this.#cancelPending(s, p as Pending, reason);
    }
    const retry = this.#retrying.get(key);
    if (retry) {
      this.#dropRetry(key);
      this.#busy.delete(key);
      this.#cancelPending(s, retry, reason);
    }
    const bufferedAt = this.#buffered.get(key) ?? s.bufferedAt;
    if (bufferedAt !== null && bufferedAt !== undefined) {
      this.#buffered.delete(key);
      this.#o.store.updateSchedule(key, { bufferedAt: null, updatedAt: now });
      this.#record(s, bufferedAt, 'cancelled', reason, 'buffered');
    }
    if (reason === 'deleted' || reason === 'retired') this.#cancelBackfillOf(s, reason);
  }

  /** Runs a schedule now (operator or test), under the same at-most-one gate. */
  /**
   * Runs the schedule now (`manual`), under its at-most-one gate; `payload` (JSON text) instead
   * of the schedule's for this run only (a run that waits for a tenant slot keeps it in memory:
   * after a restart it runs with the schedule's).
   */
  trigger(key: string, payload: string | null = null): 'started' | 'skipped' | 'not_found' {
    const s = this.#recordOf(key);
    if (
      !s ||
      s.state === 'deleted' ||
      s.state === 'retired' ||
      this.#held.has(s.pluginId) ||
      !this.#byPlugin.get(s.pluginId)?.has(key) ||
      (this.#firesHere !== null && !this.#firesHere(s))
    )
      return 'not_found';
    return this.#accept(s, this.#o.clock.now(), 'manual', payload === null ? NO_EXTRA : { payload })
      ? 'started'
      : 'skipped';
  }

  /** The schedule's record: from memory, else read (and kept, while its plugin is not held). */
  #recordOf(key: string): ScheduleRecord | undefined {
    return this.#records.get(key) ?? this.#read(key);
  }

  #read(key: string): ScheduleRecord | undefined {
    const s = this.#o.store.getSchedule(key);
    if (s && this.#byPlugin.get(s.pluginId)?.has(key) && !this.#held.has(s.pluginId))
      this.#records.set(key, s);
    return s;
  }

  isBusy(key: string): boolean {
    return this.#busy.has(key);
  }

  /** Number of schedules in the due queue. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Resolves when no run (of `pluginId`, or of any plugin) is in flight. */
  async settle(pluginId?: string): Promise<void> {
    for (;;) {
      const runs = [...this.#runs].filter(([, p]) => pluginId === undefined || p === pluginId);
      if (runs.length === 0) return;
      await Promise.allSettled(runs.map(([r]) => r));
    }
  }

  // ---- lifecycle ----

  /**
   * Stops firing; in-flight runs go on (await `settle`). Ticks waiting for a tenant slot keep
   * their `waiting` rows and buffered ticks their `buffered_at`: the next start takes them up.
   */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
    for (const list of this.#waiting.values()) for (const p of list) this.#busy.delete(p.key);
    this.#waiting.clear();
    // Pending retries and backfill ticks keep their rows: the next start takes them up.
    for (const key of [...this.#retrying.keys()]) {
      this.#dropRetry(key);
      this.#busy.delete(key);
    }
    for (const key of [...this.#backfills.keys()]) this.#dropBackfill(key);
  }

  /** Stops firing and starting runs while the store fails (runs in flight go on). */
  suspend(): void {
    this.#suspended = true;
    this.#disarm();
  }

  /**
   * The store works again: the due queue is rebuilt from the store (ticks missed meanwhile
   * follow the misfire policy), waiting ticks whose rows were lost are written again, and
   * firing and starting resume.
   */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    if (this.#stopped) return;
    try {
      const now = this.#o.clock.now();
      // A rolled-back group may have undone what memory holds: records are read again.
      this.#records.clear();
      for (const list of this.#waiting.values()) {
        for (const p of list) {
          const row = p.runId === null ? undefined : this.#o.store.getRun(p.runId);
          if (row?.status !== 'waiting') {
            const s = this.#o.store.getSchedule(p.key);
            if (s) p.runId = this.#o.store.insertRun(this.#rowOf(s, p, now, 'waiting'));
          }
        }
      }
      for (const p of this.#retrying.values()) {
        const row = p.runId === null ? undefined : this.#o.store.getRun(p.runId);
        if (row?.status !== 'waiting') {
          const s = this.#o.store.getSchedule(p.key);
          const dueAt = this.#retryDue.get(p.key) ?? now;
          if (s) p.runId = this.#o.store.insertRun(this.#retryRow(s, p, dueAt));
        }
      }
      for (const [key, list] of this.#backfills) {
        const s = this.#o.store.getSchedule(key);
        for (const b of list)
          if (s && this.#o.store.getRun(b.runId)?.status !== 'waiting')
            b.runId = this.#o.store.insertRun(this.#backfillRow(s, b.scheduledAt, now));
      }
      this.#armPending();
      for (const pluginId of this.#byPlugin.keys())
        if (!this.#held.has(pluginId)) this.#schedulePlugin(pluginId, now);
      this.#drainAll();
    } catch (err) {
      this.#error(err, 'resume');
      this.#suspended = true;
    }
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  #disarm(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
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
    const due = this.#queue.popDue(now);
    for (let i = 0; i < due.length; i++) {
      const { key, dueAt } = due[i] as { key: string; dueAt: number };
      try {
        this.#fire(key, now);
      } catch (err) {
        // Nothing of the failed fire was written (one transaction): put it and the rest back.
        for (const d of due.slice(i)) this.#queue.set(d.key, d.dueAt);
        this.#error(err, `firing ${key} (due ${new Date(dueAt).toISOString()})`);
        if (!this.#stopped && !this.#suspended) {
          const retryAt = now + (this.#o.retryMs ?? 1000);
          this.#timerAt = retryAt;
          this.#timer = this.#o.clock.setTimer(() => this.#onTimer(), retryAt - now);
        }
        return;
      }
    }
    for (const { key } of this.#retryQueue.popDue(now)) {
      try {
        this.#startRetry(key);
      } catch (err) {
        this.#error(err, `starting a retry of ${key}`);
      }
    }
    for (const { key } of this.#backfillQueue.popDue(now)) {
      try {
        this.#startBackfill(key, now);
      } catch (err) {
        // Could not write its start: it tries again a period later.
        this.#backfillQueue.set(key, now + this.#backfillEvery());
        this.#error(err, `starting a backfill tick of ${key}`);
      }
    }
    const next = this.#queue.peekTime();
    if (next !== null) this.#arm(next);
    this.#armPending();
  }

  #fire(key: string, now: number): void {
    this.#nominal.delete(key);
    // Memory is the truth, unless another writer moved the stored time or state: the fire's
    // write is conditional on the stored row still being due at the time memory holds, so that
    // case shows as a write that changed nothing, and the store's record then wins (read whole).
    const mem = this.#records.get(key);
    if (mem && this.#fireFrom(mem, now)) return;
    const s = this.#read(key);
    if (s) this.#fireFrom(s, now);
  }

  /** Fires `s`'s due tick; false (nothing written or started) when the stored row moved. */
  #fireFrom(s: ScheduleRecord, now: number): boolean {
    if (s.state !== 'active' || s.nextAt === null) return false;
    if (this.#held.has(s.pluginId)) return true;
    const key = s.key;
    const scheduledAt = s.nextAt;
    if (scheduledAt + jitterFor(key, scheduledAt, s.jitterMs) > now) {
      // Not due by this record (the store's time, after another writer moved it): it fires
      // only when it is due.
      this.upsert(s);
      return true;
    }
    // Next ticks come from the nominal time; ticks the host overran by more than the grace
    // (+ jitter) are coalesced into one record.
    const cutoff = now - this.#grace - s.jitterMs;
    let next = nextFireAfter(s.spec, scheduledAt, s.anchorAt);
    let overranFrom: number | null = null;
    if (next !== null && next <= cutoff) {
      overranFrom = next;
      next = nextFireAfter(s.spec, cutoff, s.anchorAt);
    }
    const updated = patchedRecord(
      s,
      next === null ? { nextAt: null, state: 'completed' } : { nextAt: next },
    );
    const fired = this.#o.store.transaction(() => {
      if (!this.#o.store.advanceSchedule(key, scheduledAt, next, now)) return false;
      if (overranFrom !== null) {
        const reason = REASONS.late(overranFrom, cutoff, now - overranFrom);
        this.#record(updated, overranFrom, 'skipped_misfire', reason, 'schedule', {
          coversUntil: cutoff,
        });
      }
      // Last: it may start the run, which must not happen in a transaction that can still fail.
      this.#accept(updated, scheduledAt, 'schedule');
      return true;
    });
    if (fired) this.upsert(updated);
    return fired;
  }

  // ---- the gate ----

  /**
   * The at-most-one gate. Returns whether a run was started, queued or buffered. Writes first,
   * then changes memory, so a store error leaves the gate as it was.
   */
  #accept(
    s: ScheduleRecord,
    scheduledAt: number,
    trigger: RunTrigger,
    extra: {
      runId?: number;
      coversUntil?: number | null;
      payload?: string | null;
      since?: number;
    } = NO_EXTRA,
  ): boolean {
    const now = this.#o.clock.now();
    if (this.#busy.has(s.key)) {
      // Behind a backfill run, a live tick is buffered whatever the policy (it did not overlap
      // its own schedule's run).
      if (
        (s.overlap === 'buffer-one' || this.#backfillRunning.has(s.key)) &&
        !this.#buffered.has(s.key) &&
        trigger !== 'manual'
      ) {
        this.#o.store.transaction(() => {
          this.#o.store.updateSchedule(s.key, { bufferedAt: scheduledAt, updatedAt: now });
          // A taken-up waiting row is now accounted for by `buffered_at`.
          if (extra.runId !== undefined)
            this.#o.store.finishRun(
              extra.runId,
              notRunFinish('skipped_overlap', 'buffered again', now),
            );
        });
        this.#buffered.set(s.key, scheduledAt);
        return true;
      }
      const why = s.overlap === 'buffer-one' ? REASONS.overlapBuffered : REASONS.overlap;
      this.#record(s, scheduledAt, 'skipped_overlap', why, trigger, extra);
      return false;
    }
    const pending: Pending = {
      key: s.key,
      pluginId: s.pluginId,
      scheduledAt,
      trigger,
      generation: s.generation,
      coversUntil: extra.coversUntil ?? null,
      payload: extra.payload ?? null,
      runId: extra.runId ?? null,
      priority: s.priority,
      since: extra.since ?? now,
      attempt: 1,
    };
    const refused = this.#o.admit?.(s.tenant, now) ?? null;
    if (refused !== null) {
      this.#record(s, scheduledAt, 'quota_exhausted', refused, trigger, extra);
      return false;
    }
    if (
      this.#takingUp ||
      this.#suspended ||
      this.#held.has(s.pluginId) ||
      (this.#inFlight.get(s.tenant) ?? 0) >= this.#o.maxRunsInFlight(s.tenant)
    ) {
      if (pending.runId === null)
        pending.runId = this.#o.store.insertRun(this.#rowOf(s, pending, now, 'waiting'));
      this.#busy.add(s.key);
      this.#wait(s.tenant, pending);
      return true;
    }
    this.#start(s, pending);
    return true;
  }

  /** Queues an accepted tick (its `waiting` row written) for a slot of its tenant. */
  #wait(tenant: string, p: Pending): void {
    let list = this.#waiting.get(tenant);
    if (!list)
      this.#waiting.set(
        tenant,
        (list = new PriorityWaiting(
          MAX_PRIORITY + 1,
          this.#o.agingMs?.(tenant) ?? DEFAULT_AGING_MS,
        )),
      );
    list.push(p);
  }

  #rowOf(s: ScheduleRecord, p: Pending, now: number, status: 'waiting' | 'running') {
    const state = status === 'running' ? RUNNING : WAITING;
    return newRun(s, p.trigger, p.scheduledAt, now, state, p.coversUntil, p.attempt);
  }

  /** A pending retry's row: `waiting`, its `started_at` the time it is due until it starts. */
  #retryRow(s: ScheduleRecord, p: Pending, dueAt: number) {
    return newRun(s, 'retry', p.scheduledAt, dueAt, WAITING, null, p.attempt);
  }

  /** A terminal record for a tick that does not run (written over its waiting row, if any). */
  #record(
    s: ScheduleRecord,
    scheduledAt: number,
    status: NotRunStatus,
    reason: string,
    trigger: RunTrigger,
    extra: { runId?: number; coversUntil?: number | null } = NO_EXTRA,
  ): void {
    const now = this.#o.clock.now();
    if (extra.runId !== undefined) {
      this.#o.store.finishRun(extra.runId, notRunFinish(status, reason, now));
    } else {
      this.#o.store.insertRun(
        newRun(
          s,
          trigger,
          scheduledAt,
          now,
          { status, reason, finishedAt: now },
          extra.coversUntil ?? null,
        ),
      );
    }
    this.#emitSkipped(s, status, reason);
  }

  /** A terminal record for an accepted tick that will not run (over its waiting row, if any). */
  #recordPending(s: ScheduleRecord, p: Pending, status: NotRunStatus, reason: string): void {
    this.#record(s, p.scheduledAt, status, reason, p.trigger, {
      ...(p.runId === null ? {} : { runId: p.runId }),
      coversUntil: p.coversUntil,
    });
  }

  #cancelPending(s: ScheduleRecord, p: Pending, reason: CancelReason): void {
    this.#recordPending(s, p, 'cancelled', reason);
  }

  /**
   * An accepted tick (waiting, or a retry due) that the tenant's fuel window refuses: recorded
   * `quota_exhausted`, and its tick is over (its key freed, a tick buffered behind it taken up).
   */
  #refuse(s: ScheduleRecord, p: Pending, why: string): void {
    this.#recordPending(s, p, 'quota_exhausted', why);
    this.#busy.delete(p.key);
    this.#afterTick(s);
  }

  #start(s: ScheduleRecord, p: Pending): void {
    const now = this.#o.clock.now();
    let runId = p.runId;
    if (runId === null) runId = this.#o.store.insertRun(this.#rowOf(s, p, now, 'running'));
    else this.#o.store.startWaitingRun(runId, now);
    this.#busy.add(s.key);
    this.#inFlight.set(s.tenant, (this.#inFlight.get(s.tenant) ?? 0) + 1);
    const run: StartedRun = {
      runId,
      schedule: s,
      scheduledAt: p.scheduledAt,
      firedAt: now,
      trigger: p.trigger,
      attempt: p.attempt,
      payload: p.payload,
    };
    try {
      this.#o.events?.onStarted?.(run);
    } catch (err) {
      this.#error(err, 'run:started listener');
    }
    const promise: Promise<void> = this.#run(s, run).then((end) => {
      this.#runs.delete(promise);
      try {
        this.#finished(s, run, end);
      } catch (err) {
        this.#error(err, `finishing run ${runId}`);
      }
    });
    this.#runs.set(promise, s.pluginId);
  }

  /**
   * Calls the guest once the run's start is durable, and takes in its end (returned, undefined
   * when there is none to act on). Never rejects.
   */
  async #run(s: ScheduleRecord, run: StartedRun): Promise<RunEnd | void> {
    try {
      // The guest runs once its `running` row (and the fire's next time) is durable. A commit
      // that failed rolled them back: the run goes on, and its outcome is written whole.
      try {
        await this.#o.store.committed({ tenant: s.tenant });
      } catch (err) {
        // Another host owns the tenant now (a shared store refused this host's writes): the
        // tick is that host's to account for; calling the guest would run it twice.
        if ((err as { code?: unknown } | null)?.code === 'HG_STORE_FENCED') return;
        // Rolled back: the outcome is written whole (run-executor.ts).
      }
      const end = await this.#o.execute(run);
      this.#ended(s, end);
      return end;
    } catch (err) {
      this.#error(err, `run ${run.runId}`);
    }
  }

  /** Keeps the record in memory current with the cursor the run wrote (same incarnation only). */
  #ended(s: ScheduleRecord, end: RunEnd | void): void {
    if (!end || end.cursor === undefined) return;
    const rec = this.#records.get(s.key);
    if (rec && rec.generation === s.generation)
      this.#records.set(s.key, patchedRecord(rec, { cursor: end.cursor }));
  }

  #finished(s: ScheduleRecord, run: StartedRun, end: RunEnd | void): void {
    this.#inFlight.set(s.tenant, (this.#inFlight.get(s.tenant) ?? 1) - 1);
    const status = end ? end.status : undefined;
    if (run.trigger === 'backfill') {
      // A backfill run neither retries nor counts toward the breaker.
      this.#backfillRunning.delete(s.key);
      this.#busy.delete(s.key);
    } else if (status !== undefined) {
      // A retry keeps the key busy (its tick is not over): later ticks follow the overlap
      // policy meanwhile, and a buffered one waits for the tick's last attempt. A retry that
      // could not be written ends the tick (never a key left busy).
      let retried = false;
      if (status !== 'succeeded')
        try {
          retried = this.#retryAfter(s, run, status);
        } catch (err) {
          this.#error(err, `writing a retry of ${s.key} (the tick ends with run ${run.runId})`);
        }
      if (retried) {
        this.#drain(s.tenant);
        return;
      }
      this.#busy.delete(s.key);
      try {
        this.#tickEnded(s, status);
      } catch (err) {
        this.#error(err, `counting the failed ticks of ${s.key}`);
      }
    } else {
      this.#busy.delete(s.key);
    }
    this.#afterTick(s);
    this.#drain(s.tenant);
  }

  /** `s`'s tick is over (its key no longer busy): a tick buffered behind it is taken up. */
  #afterTick(s: ScheduleRecord): void {
    const bufferedAt = this.#buffered.get(s.key);
    if (bufferedAt === undefined) return;
    this.#buffered.delete(s.key);
    // Stopped or reloading: `buffered_at` stays in the store; the next `addPlugin` takes it up.
    if (!this.#stopped && !this.#held.has(s.pluginId)) {
      const fresh = this.#o.store.getSchedule(s.key);
      if (fresh && this.#byPlugin.get(s.pluginId)?.has(s.key))
        this.#takeUpBuffered(fresh, this.#o.clock.now(), false);
      else if (fresh) this.#cancelKey(s.key, 'unloaded');
    }
  }

  // ---- backfill ----

  /**
   * Queues backfill ticks of `key` (nominal times, checked by the caller: src/schedule/
   * backfill.ts), each as a `waiting` row with trigger `backfill`, written in one transaction.
   * The number queued; `pending` when the schedule still has a backfill going (one at a time:
   * cancel it first); `not_found` as for `trigger`, or when the schedule is deleted or retired.
   */
  backfill(key: string, ticks: readonly number[]): number | 'pending' | 'not_found' {
    const s = this.#recordOf(key);
    if (
      !s ||
      cancelReasonOf(s.state) === 'deleted' ||
      s.state === 'retired' ||
      this.#held.has(s.pluginId) ||
      !this.#byPlugin.get(s.pluginId)?.has(key) ||
      (this.#firesHere !== null && !this.#firesHere(s))
    )
      return 'not_found';
    if (this.#backfills.has(key)) return 'pending';
    const now = this.#o.clock.now();
    const list: BackfillTick[] = this.#o.store.transaction(() =>
      ticks.map((t) => ({
        scheduledAt: t,
        runId: this.#o.store.insertRun(this.#backfillRow(s, t, now)),
      })),
    );
    if (list.length === 0) return 0;
    this.#backfills.set(key, list);
    this.#queueBackfill(key, now);
    return list.length;
  }

  /** Backfill ticks of `key` not started yet. */
  backfillPending(key: string): number {
    return this.#backfills.get(key)?.length ?? 0;
  }

  /**
   * Cancels the backfill ticks of `key` not started yet (each recorded `cancelled`; a backfill
   * run in flight finishes); how many, or `not_found` as for `backfill`.
   */
  cancelBackfill(key: string): number | 'not_found' {
    const s = this.#recordOf(key);
    if (!s || !this.#byPlugin.get(s.pluginId)?.has(key) || this.#held.has(s.pluginId))
      return 'not_found';
    return this.#cancelBackfillOf(s, REASONS.backfillCancelled);
  }

  #cancelBackfillOf(s: ScheduleRecord, reason: string): number {
    const list = this.#backfills.get(s.key);
    if (!list) return 0;
    this.#dropBackfill(s.key);
    this.#o.store.transaction(() => {
      for (const b of list)
        this.#record(s, b.scheduledAt, 'cancelled', reason, 'backfill', { runId: b.runId });
    });
    return list.length;
  }

  /** Forgets `key`'s backfill ticks (their rows stay as they are). */
  #dropBackfill(key: string): void {
    this.#backfills.delete(key);
    this.#backfillQueue.delete(key);
  }

  /** A backfill tick's `waiting` row from before a (re)load; false: cancelled (no schedule). */
  #takeUpBackfill(row: RunRecord, now: number): boolean {
    const s = this.#o.store.getSchedule(row.scheduleKey);
    const cancel = cancelReasonOf(s?.state);
    if (!s || cancel === 'deleted' || cancel === 'retired') {
      this.#o.store.finishRun(row.id, notRunFinish('cancelled', cancel ?? 'deleted', now));
      return false;
    }
    let list = this.#backfills.get(s.key);
    if (!list) this.#backfills.set(s.key, (list = []));
    list.push({ scheduledAt: row.scheduledAt, runId: row.id });
    return true;
  }

  /** Orders `key`'s backfill ticks (the oldest popped next) and queues the next for `at`. */
  #queueBackfill(key: string, at: number): void {
    this.#backfills.get(key)?.sort((a, b) => b.scheduledAt - a.scheduledAt || b.runId - a.runId);
    this.#backfillQueue.set(key, at);
    this.#arm(at);
  }

  #backfillEvery(): number {
    return this.#o.backfillIntervalMs ?? DEFAULT_BACKFILL_INTERVAL_MS;
  }

  #backfillRow(s: ScheduleRecord, scheduledAt: number, now: number) {
    return newRun(s, 'backfill', scheduledAt, now, WAITING);
  }

  /**
   * `key`'s next backfill tick may start: it does when the schedule is idle and its tenant has
   * a free slot, no tick waiting and fuel left; else it tries again a period later.
   */
  #startBackfill(key: string, now: number): void {
    const list = this.#backfills.get(key);
    const b = list?.[list.length - 1];
    if (!list || !b) {
      this.#dropBackfill(key);
      return;
    }
    const s = this.#recordOf(key);
    const cancel = cancelReasonOf(s?.state);
    if (!s || cancel === 'deleted' || cancel === 'retired') {
      if (s) this.#cancelBackfillOf(s, cancel ?? 'deleted');
      else this.#dropBackfill(key);
      return;
    }
    const every = this.#backfillEvery();
    if (
      this.#busy.has(key) ||
      this.#suspended ||
      this.#held.has(s.pluginId) ||
      (this.#waiting.get(s.tenant)?.length ?? 0) > 0 ||
      (this.#inFlight.get(s.tenant) ?? 0) >= this.#o.maxRunsInFlight(s.tenant) ||
      (this.#o.admit?.(s.tenant, now) ?? null) !== null
    ) {
      this.#backfillQueue.set(key, now + every);
      return;
    }
    this.#start(s, {
      key,
      pluginId: s.pluginId,
      scheduledAt: b.scheduledAt,
      trigger: 'backfill',
      generation: s.generation,
      coversUntil: null,
      payload: null,
      runId: b.runId,
      priority: MAX_PRIORITY,
      since: now,
      attempt: 1,
    });
    this.#backfillRunning.add(key);
    list.pop();
    if (list.length > 0) this.#backfillQueue.set(key, now + every);
    else this.#dropBackfill(key);
  }

  // ---- retries and the breaker ----

  /** The retry policy of `s`: its own, else its job contract's, else one attempt. */
  #policyOf(s: ScheduleRecord): RetryPolicy {
    if (s.retry !== null) return retryFromText(s.retry);
    return (s.job !== null ? this.#o.jobRetry?.(s) : undefined) ?? NO_RETRY;
  }

  /**
   * Persists the next attempt of `run`'s tick if its policy retries `status`: a `waiting` row
   * (trigger `retry`) due after the backoff. False: the tick ends with this run.
   */
  #retryAfter(s: ScheduleRecord, run: StartedRun, status: RunStatus): boolean {
    const cur = this.#recordOf(s.key);
    if (
      !cur ||
      (cur.state !== 'active' && cur.state !== 'completed') ||
      (s.generation !== undefined && cur.generation !== s.generation) ||
      !this.#byPlugin.get(cur.pluginId)?.has(cur.key)
    )
      return false;
    const policy = this.#policyOf(cur);
    if (!retries(policy, status, run.attempt)) return false;
    const now = this.#o.clock.now();
    const dueAt = now + retryDelayMs(policy, cur.key, run.scheduledAt, run.attempt);
    const p: Pending = {
      key: cur.key,
      pluginId: cur.pluginId,
      scheduledAt: run.scheduledAt,
      trigger: 'retry',
      generation: cur.generation,
      coversUntil: null,
      payload: run.payload,
      runId: null,
      attempt: run.attempt + 1,
      priority: cur.priority,
      since: dueAt,
    };
    p.runId = this.#o.store.insertRun(this.#retryRow(cur, p, dueAt));
    this.#pendRetry(p, dueAt);
    const retry: RetryScheduled = {
      schedule: cur,
      runId: run.runId,
      status,
      scheduledAt: run.scheduledAt,
      attempt: p.attempt,
      retryRunId: p.runId,
      dueAt,
    };
    this.#guard('run:retrying listener', () => this.#o.events?.onRetrying?.(retry));
    return true;
  }

  /** Holds `p` (its row written) until `dueAt`; its key is busy meanwhile. */
  #pendRetry(p: Pending, dueAt: number): void {
    this.#busy.add(p.key);
    this.#retrying.set(p.key, p);
    this.#retryDue.set(p.key, dueAt);
    this.#retryQueue.set(p.key, dueAt);
    this.#arm(dueAt);
  }

  /** Forgets a pending retry (its row stays as it is); whether there was one. */
  #dropRetry(key: string): boolean {
    this.#retryQueue.delete(key);
    this.#retryDue.delete(key);
    return this.#retrying.delete(key);
  }

  /** Arms the timer for the earliest pending retry or backfill tick. */
  #armPending(): void {
    const next = this.#retryQueue.peekTime();
    if (next !== null) this.#arm(next);
    const backfill = this.#backfillQueue.peekTime();
    if (backfill !== null) this.#arm(backfill);
  }

  /** A retry's backoff is over: it runs (or waits for a tenant slot) under the held gate. */
  #startRetry(key: string): void {
    const p = this.#retrying.get(key);
    if (!p) return;
    this.#retrying.delete(key);
    this.#retryDue.delete(key);
    const s = this.#recordOf(key);
    const cancel =
      cancelReasonOf(s?.state) ??
      (p.generation !== undefined && s?.generation !== p.generation ? 'deleted' : null);
    if (!s || cancel) {
      this.#busy.delete(key);
      if (s) this.#cancelPending(s, p, cancel ?? 'deleted');
      return;
    }
    const refused = this.#o.admit?.(s.tenant, this.#o.clock.now()) ?? null;
    if (refused !== null) {
      this.#refuse(s, p, refused);
      return;
    }
    if (
      this.#suspended ||
      this.#held.has(s.pluginId) ||
      (this.#inFlight.get(s.tenant) ?? 0) >= this.#o.maxRunsInFlight(s.tenant)
    ) {
      this.#wait(s.tenant, p);
      return;
    }
    this.#start(s, p);
  }

  /**
   * A tick's last attempt ended `status`: a success sets the schedule's failed-tick count to 0;
   * a failure adds one, and pauses the schedule when the count reaches its breaker's limit.
   */
  #tickEnded(s: ScheduleRecord, status: RunStatus): void {
    const cur = this.#recordOf(s.key);
    if (!cur || (s.generation !== undefined && cur.generation !== s.generation)) return;
    const now = this.#o.clock.now();
    if (status === 'succeeded') {
      if (cur.failStreak === 0) return;
      this.#o.store.updateSchedule(cur.key, { failStreak: 0, updatedAt: now });
      this.#keep(patchedRecord(cur, { failStreak: 0, updatedAt: now }));
      return;
    }
    const failures = cur.failStreak + 1;
    const limit = cur.breakerAfter ?? this.#o.breakerAfter?.(cur.tenant) ?? 0;
    if (limit > 0 && failures >= limit && cur.state === 'active') {
      const note = REASONS.tripped(failures, limit, status);
      const patch = {
        state: 'paused' as const,
        pauseNote: note,
        nextAt: null,
        failStreak: failures,
        updatedAt: now,
      };
      this.#o.store.transaction(() => {
        this.#o.store.updateSchedule(cur.key, patch);
        this.#cancelKey(cur.key, 'paused');
      });
      const paused = patchedRecord(cur, patch);
      this.#guard('schedule:tripped listener', () =>
        this.#o.events?.onTripped?.(paused, failures, note),
      );
      return;
    }
    this.#o.store.updateSchedule(cur.key, { failStreak: failures, updatedAt: now });
    this.#keep(patchedRecord(cur, { failStreak: failures, updatedAt: now }));
  }

  /** Replaces a kept record (one not kept stays unkept: it is read when next needed). */
  #keep(rec: ScheduleRecord): void {
    if (this.#records.has(rec.key)) this.#records.set(rec.key, rec);
  }

  #drainAll(): void {
    for (const tenant of [...this.#waiting.keys()]) this.#drain(tenant);
  }

  /**
   * Starts waiting ticks (by priority with aging, `PriorityWaiting`) while the tenant has free
   * slots; with its fuel window spent, records them `quota_exhausted` instead.
   */
  #drain(tenant: string): void {
    if (this.#stopped || this.#suspended) return;
    const list = this.#waiting.get(tenant);
    if (!list) return;
    const now = this.#o.clock.now();
    const skip = this.#held.size === 0 ? undefined : (p: Pending) => this.#held.has(p.pluginId);
    while (list.length > 0 && (this.#inFlight.get(tenant) ?? 0) < this.#o.maxRunsInFlight(tenant)) {
      const i = list.next(now, skip);
      if (i === null) return;
      const p = list.at(i) as Pending;
      const s = this.#recordOf(p.key);
      const cancel =
        cancelReasonOf(s?.state) ??
        (p.generation !== undefined && s?.generation !== p.generation ? 'deleted' : null);
      try {
        if (!s || cancel) {
          if (s) this.#cancelPending(s, p, cancel ?? 'deleted');
          list.removeAt(i);
          this.#busy.delete(p.key);
          continue;
        }
        const refused = this.#o.admit?.(tenant, now) ?? null;
        if (refused !== null) {
          list.removeAt(i);
          this.#refuse(s, p, refused);
          continue;
        }
        list.removeAt(i);
        this.#busy.delete(p.key);
        this.#start(s, p);
      } catch (err) {
        // Could not write the start: the tick waits on (retried at the next finish or resume).
        if (list.at(i) !== p) list.insertAt(i, p);
        this.#busy.add(p.key);
        this.#error(err, `starting a waiting tick of ${p.key}`);
        return;
      }
    }
  }

  // ---- reporting ----

  #emitSkipped(s: ScheduleRecord, status: NotRunStatus, reason: string): void {
    this.#guard('schedule:skipped listener', () => this.#o.events?.onSkipped?.(s, status, reason));
  }

  #guard(during: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#error(err, during);
    }
  }

  #error(err: unknown, during: string): void {
    try {
      this.#o.events?.onError?.(err, during);
    } catch {
      // An error listener that throws has nowhere left to report to.
    }
  }
}
