/**
 * The `Store` is the single source of truth: plugins, schedules (declared and runtime-created,
 * with state, next fire time and cursor), job contracts and the run history. The scheduler
 * keeps an in-memory due queue derived from it and writes every change through it.
 *
 * The SQLite implementation is the embedded default (on a host, written by a thread of its own:
 * sqlite-writer/); the PostgreSQL one (postgres/pg-store.ts) lets several hosts share one
 * database, each owning some tenants (docs/cluster.md).
 */
import type { HourglassError } from '../errors.ts';
import type { MisfirePolicy, OverlapPolicy, ScheduleScope } from '../schedule/declaration.ts';
import type { ScheduleSpec } from '../schedule/spec.ts';

export type PluginStatus = 'loaded' | 'failed' | 'unloaded';

export interface PluginRecord {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly version: string;
  readonly manifestPath: string;
  readonly wasmSha256: string | null;
  readonly status: PluginStatus;
  readonly error: string | null;
  readonly updatedAt: number;
}

/**
 * A plugin's state: its Extism variables (src/sandbox/plugin-vars.ts), one row per plugin,
 * written whole. `vars` is JSON text, an array of `[key, base64 value]` pairs.
 */
export interface PluginStateRecord {
  readonly pluginId: string;
  readonly tenant: string;
  readonly vars: string;
  /** What the variables count against the plugin's `varBytes` (keys + values + 64 each). */
  readonly bytes: number;
  readonly updatedAt: number;
}

export type ScheduleOrigin = 'declared' | 'runtime';
/** `deleted` and `retired` schedules are kept for history but invisible to guests. */
export type ScheduleState = 'active' | 'paused' | 'completed' | 'deleted' | 'retired';

export interface ScheduleRecord {
  readonly key: string;
  readonly pluginId: string;
  readonly tenant: string;
  readonly localId: string;
  readonly origin: ScheduleOrigin;
  readonly spec: ScheduleSpec;
  readonly jitter: string | null;
  readonly jitterMs: number;
  readonly payload: string | null;
  readonly overlap: OverlapPolicy;
  readonly misfire: MisfirePolicy;
  readonly description: string | null;
  /** Once in the cluster, or on every host (a declared schedule only). */
  readonly scope: ScheduleScope;
  /**
   * Orders the tenant's ticks waiting for a run slot: 0..9, higher first, with aging
   * (docs/schedules.md, "Priorities"). @defaultValue 5
   */
  readonly priority: number;
  readonly declHash: string;
  readonly state: ScheduleState;
  readonly pauseNote: string | null;
  readonly anchorAt: number;
  readonly nextAt: number | null;
  readonly cursor: string | null;
  readonly bufferedAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * The schedule's incarnation, set on records read from the store: bumped by the store when a
   * deleted or retired schedule is re-created, so a run of the old incarnation cannot write its
   * cursor into the new one (`Store.writeCursor`).
   */
  readonly generation?: number;
  /**
   * The schedule's own retry policy (JSON text of a `RetryPolicy`, src/schedule/retry.ts), or
   * null: its job contract's (`job`), else no retry.
   */
  readonly retry: string | null;
  /** The job contract (`jobs_register`) the schedule names, or null. */
  readonly job: string | null;
  /** Failed ticks in a row that pause the schedule (0: never); null: the tenant's default. */
  readonly breakerAfter: number | null;
  /** Its failed ticks in a row so far (a tick that succeeds, or a resume, resets it). */
  readonly failStreak: number;
}

export type SchedulePatch = Partial<
  Omit<ScheduleRecord, 'key' | 'pluginId' | 'tenant' | 'localId' | 'createdAt' | 'generation'>
>;

export const RunStatuses = [
  'waiting',
  'running',
  'succeeded',
  'failed',
  'trapped',
  'out_of_fuel',
  'memory_limit',
  'timed_out',
  'stack_overflow',
  'host_call_denied',
  'worker_crashed',
  'skipped_overlap',
  'skipped_misfire',
  'abandoned',
  'cancelled',
  /** Not run: the tenant's fuel window was spent (docs/schedules.md, "Fuel windows"). */
  'quota_exhausted',
] as const;
export type RunStatus = (typeof RunStatuses)[number];
/** `retry`: a later attempt of a tick whose run failed (its row `waiting` until it is due). */
export type RunTrigger = 'schedule' | 'buffered' | 'catch_up' | 'manual' | 'retry' | 'backfill';

export interface RunRecord {
  readonly id: number;
  readonly scheduleKey: string;
  readonly pluginId: string;
  readonly tenant: string;
  readonly localId: string;
  readonly trigger: RunTrigger;
  readonly status: RunStatus;
  readonly reason: string | null;
  readonly scheduledAt: number;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly attempt: number;
  readonly error: string | null;
  readonly outputBytes: number | null;
  readonly fuelUsed: number | null;
  readonly fuelBudget: number | null;
  readonly result: string | null;
  /**
   * A record that accounts for a span of ticks (misfire records) covers the nominal ticks in
   * [scheduledAt, coversUntil]; null: its own tick only.
   */
  readonly coversUntil: number | null;
  /** The version of the plugin that ran it (its manifest's); null when nothing ran. */
  readonly pluginVersion: string | null;
  /** The SHA-256 of the module that ran it; null when nothing ran. */
  readonly wasmSha256: string | null;
  /**
   * The guest's last log lines in this run (`level: message`, one a line, at most
   * LOG_TAIL_LINES of LOG_TAIL_CHARS each; src/sandbox/in-thread-sandbox.ts); null: none.
   */
  readonly logTail: string | null;
}

export type NewRun = Omit<
  RunRecord,
  'id' | 'coversUntil' | 'pluginVersion' | 'wasmSha256' | 'logTail'
> & {
  readonly coversUntil?: number | null;
  readonly pluginVersion?: string | null;
  readonly wasmSha256?: string | null;
  readonly logTail?: string | null;
};
export type RunFinish = Pick<
  RunRecord,
  | 'status'
  | 'reason'
  | 'finishedAt'
  | 'error'
  | 'outputBytes'
  | 'fuelUsed'
  | 'fuelBudget'
  | 'result'
> &
  Partial<Pick<RunRecord, 'pluginVersion' | 'wasmSha256' | 'logTail'>>;

export interface JobContractRecord {
  readonly pluginId: string;
  readonly name: string;
  readonly contract: string;
  readonly updatedAt: number;
}

/**
 * `clear_state` names a plugin id (`<tenant>/<name>`) where the others name a schedule key; its
 * note is the one variable to clear (null: all).
 */
export type OperatorAction = 'pause' | 'resume' | 'trigger' | 'delete' | 'clear_state' | 'backfill';

export interface OperatorCommand {
  readonly id: number;
  readonly scheduleKey: string;
  readonly action: OperatorAction;
  /** The action's argument: a pause's note, or a trigger's payload (JSON text); else null. */
  readonly note: string | null;
  readonly createdAt: number;
  readonly appliedAt: number | null;
  readonly result: string | null;
}

/** One tenant's schedules in one state (`ScheduleRecords.countSchedulesByState`). */
export interface ScheduleStateCount {
  readonly tenant: string;
  readonly state: ScheduleState;
  readonly count: number;
}

export interface ScheduleQuery {
  readonly pluginId?: string;
  readonly tenant?: string;
  /** Only these states; default: every state but `deleted` and `retired`. */
  readonly states?: readonly ScheduleState[];
  /** Keyset pagination on local id (within a plugin) or key. */
  readonly after?: string;
  readonly limit?: number;
}

/** Where a page of runs ended: the last run listed (runs are listed newest first). */
export interface RunCursor {
  readonly startedAt: number;
  readonly id: number;
}

export interface RunQuery {
  readonly scheduleKey?: string;
  readonly pluginId?: string;
  readonly tenant?: string;
  readonly status?: RunStatus;
  /** Runs started at or after this time (ms since the epoch). */
  readonly since?: number;
  /** Runs started before this time (ms since the epoch). */
  readonly until?: number;
  /**
   * Keyset pagination: only runs listed after this one. SQLite orders runs by id (one host
   * takes ids in order); PostgreSQL by start time, then id (hosts take ids in blocks).
   */
  readonly before?: RunCursor;
  readonly limit?: number;
}

/**
 * One step of run-history retention for a tenant (src/store/retention.ts): at most `limit`
 * finished runs deleted, oldest first.
 */
export interface RunPruneStep {
  readonly tenant: string;
  /** Runs that started before this (ms since the epoch) go; null: no age limit. */
  readonly startedBefore: number | null;
  /** Runs beyond this many of the tenant go, oldest first; null: no count limit. */
  readonly maxRuns: number | null;
  /** The newest runs of each schedule that are always kept. */
  readonly keepPerSchedule: number;
  /** Most runs the step deletes. */
  readonly limit: number;
  /** Where the previous step of this round stopped; null: a round's first step. */
  readonly cursor: RunPruneCursor | null;
}

/** Where a prune round goes on: after this run (in the store's order), with the count's excess. */
export interface RunPruneCursor {
  readonly startedAt: number;
  readonly id: number;
  /** Runs still beyond the tenant's `maxRuns` (counted at the round's first step). */
  readonly excess: number;
}

export interface RunPruneResult {
  /** Runs deleted by this step (durable once it resolves). */
  readonly deleted: number;
  /** Where the next step goes on; null: this round is over for the tenant. */
  readonly cursor: RunPruneCursor | null;
}

/** Who holds the store: one host at a time (see `acquireLease`). */
export interface HostLease {
  /** A random token per `Host` instance (two hosts in one process differ). */
  readonly owner: string;
  readonly pid: number;
  /** The machine's host name (`os.hostname()`). */
  readonly hostName: string;
  /** When this holder took the lease. */
  readonly startedAt: number;
  /** Its last renewal; the lease is stale `staleMs` after it. */
  readonly heartbeatAt: number;
  /** Counts takeovers of the store (a fencing number); +1 each time another owner takes it. */
  readonly epoch: number;
}

export interface LeaseClaim {
  readonly owner: string;
  readonly pid: number;
  readonly hostName: string;
  readonly now: number;
  /** A lease whose heartbeat is older than this is free to take. */
  readonly staleMs: number;
  /**
   * Take the lease from this owner even if its heartbeat is recent: the caller has proved the
   * holder dead (its pid is gone on this machine). Still a compare-and-set: if another owner
   * took the lease meanwhile, the claim fails.
   */
  readonly replaceOwner?: string;
}

export type LeaseResult =
  | { readonly ok: true; readonly lease: HostLease }
  | { readonly ok: false; readonly holder: HostLease };

/** Plugins and the job contracts they registered. */
export interface PluginRecords {
  upsertPlugin(rec: PluginRecord): void;
  getPlugin(id: string): PluginRecord | undefined;
  listPlugins(): PluginRecord[];

  replaceJobContracts(pluginId: string, contracts: readonly JobContractRecord[]): void;
  listJobContracts(pluginId?: string): JobContractRecord[];

  /** A plugin's state (its variables), if it ever had any. */
  getPluginState(pluginId: string): PluginStateRecord | undefined;
  /** Writes a plugin's state whole (an empty `vars` array: cleared). */
  putPluginState(rec: PluginStateRecord): void;
}

/** Schedules: declared and runtime-created, their state, next time and cursor. */
export interface ScheduleRecords {
  getSchedule(key: string): ScheduleRecord | undefined;
  listSchedules(query?: ScheduleQuery): ScheduleRecord[];
  /**
   * Schedules that count against a tenant's quota (active, paused, completed), of the tenant or
   * of one of its plugins. Kept as counts, so this costs the same for 10 schedules or 100k.
   */
  countLiveSchedules(tenant: string, pluginId?: string): number;
  /**
   * The earliest stored `next_at` of each tenant's active schedules (tenants with none are
   * absent): the order a starting host loads tenants in, most urgent first.
   */
  earliestDueByTenant(): Map<string, number>;
  /**
   * How many schedules each tenant has in each state (states with none left out), for the
   * metrics. Cheap with many schedules: the live count is kept (`countLiveSchedules`), so only
   * the rows that are not `active` are counted. Optional: a store without it reports none.
   */
  countSchedulesByState?(): ScheduleStateCount[];
  insertSchedule(rec: ScheduleRecord): void;
  /**
   * Inserts many rows (a plugin's new declarations) with few statements; same as one by one.
   * `deferred`: the rows may be written later (they are declared rows, which the plugin's next
   * discovery derives again, so a crash before they are written loses nothing), but every read
   * and write through this store behaves as if they were written now (it writes them first when
   * it could see them), `committed()` resolves only once they are written, and `close()` writes
   * them. Another connection (the CLI's) sees them once written. A store may write them at once.
   */
  insertSchedules(recs: readonly ScheduleRecord[], opts?: { readonly deferred?: boolean }): void;
  updateSchedule(key: string, patch: SchedulePatch): void;
  /**
   * A fire moves an active schedule on from the tick at `from` (its next time) to `nextAt`
   * (null: `completed`), in one conditional statement; false (nothing written) when the stored
   * row is no longer active at `from` (another writer moved it): a fire's check without a read.
   */
  advanceSchedule(key: string, from: number, nextAt: number | null, now: number): boolean;
  /**
   * Writes a run's new cursor if the schedule is still the incarnation the run started from;
   * returns whether it was written.
   */
  writeCursor(key: string, generation: number, cursor: string | null, now: number): boolean;
}

/** The run history, and the ticks waiting for a tenant slot (`waiting` runs). */
export interface RunRecords {
  insertRun(run: NewRun): number;
  /** Writes a run's outcome; false when there is no run `id` (its start was rolled back). */
  finishRun(id: number, fin: RunFinish): boolean;
  /**
   * Writes a run's whole record under its id, if no row has that id (its start's commit was
   * rolled back); false, writing nothing, when the row exists.
   */
  restoreRun(run: RunRecord): boolean;
  getRun(id: number): RunRecord | undefined;
  listRuns(query?: RunQuery): RunRecord[];
  /** Marks every `running` run as `abandoned` (after a crash or restart); returns them. */
  abandonRunning(now: number, reason: string): RunRecord[];
  /** A `waiting` run (a tick that waited for a tenant slot) starts: it becomes `running`. */
  startWaitingRun(id: number, startedAt: number): void;
  /** The plugin's `waiting` runs, oldest first (found at (re)start). */
  listWaitingRuns(pluginId: string): RunRecord[];
  /**
   * One step of retention (docs/store.md, "Retention"): deletes at most `step.limit` of the
   * tenant's finished runs, from the whole history (the durable copy's), through the same path
   * as the store's other writes; resolves once the deletes are durable. A store shared by
   * several hosts prunes only a tenant this host owns (nothing otherwise), fenced by its epoch.
   */
  pruneRuns(step: RunPruneStep): Promise<RunPruneResult>;
}

/** Operator commands queued by another process (a CLI, another host), applied by the owner. */
export interface CommandQueue {
  enqueueCommand(
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): number;
  pendingCommands(): OperatorCommand[];
  completeCommand(id: number, result: string, now: number): void;
  getCommand(id: number): OperatorCommand | undefined;
}

/** The host lease (SQLite: one host per store; PostgreSQL: always granted, see pg-store.ts). */
export interface HostLeaseRecords {
  /**
   * Takes the lease by compare-and-set in one transaction: it succeeds when there is no lease,
   * the lease is stale, it is `claim.owner`'s own, or it is `claim.replaceOwner`'s. Otherwise
   * it returns the live holder. Commits before it returns (never left in a group commit).
   */
  acquireLease(claim: LeaseClaim): LeaseResult;
  /** Renews `owner`'s lease; false when `owner` no longer holds it. Commits before it returns. */
  renewLease(owner: string, now: number): boolean;
  /** Gives up the lease if `owner` holds it (never another owner's). */
  releaseLease(owner: string): void;
  readLease(): HostLease | undefined;
}

/**
 * The whole store, split by concern above. Synchronous by design (the scheduler's state changes
 * are atomic with respect to the event loop); durability is asynchronous (`committed()`), which
 * is what lets a store write behind (SQLite's group commit, PostgreSQL's flushes).
 */
export interface Store
  extends PluginRecords, ScheduleRecords, RunRecords, CommandQueue, HostLeaseRecords {
  /** Runs `fn` atomically (nested calls join the outer transaction). */
  transaction<T>(fn: () => T): T;

  /**
   * Tells `listener` of every write the store could not make (`HG_STORE_WRITE`, e.g. disk full,
   * or `HG_STORE_CORRUPT`), including a group commit that was rolled back, which no caller sees
   * throw. `null` removes it. Optional: a store without it is watched through its errors only.
   */
  setWriteErrorListener?(listener: ((err: HourglassError) => void) | null): void;

  /**
   * Tells `listener` how long each commit that succeeded took, in seconds: a group commit's
   * `COMMIT` (SQLite written inline), or a flush from its start until the durable copy has
   * committed it (the writer thread, PostgreSQL). One listener; `null` removes it. Optional.
   */
  setCommitListener?(listener: ((seconds: number) => void) | null): void;

  /**
   * Resolves once every write made so far is durable (a store that commits each write before
   * returning resolves at once); rejects when they were rolled back (a failed group commit).
   * `scope.tenant`: only that tenant's writes matter to the caller; a store shared by several
   * hosts rejects with `HG_STORE_FENCED` when this host no longer owns the tenant (its writes
   * were refused), and the caller must then not act on them (e.g. call the guest).
   */
  committed(scope?: { readonly tenant?: string }): Promise<void>;

  /**
   * True when a write, once made, stays made while the process lives (a failed flush keeps it
   * and writes it again; nothing rolls it back) and durability comes in order (a `committed()`
   * that resolves covers every earlier write). A caller may then act on a write before it is
   * durable whenever its next durable step waits for a later `committed()`: a run's slot is
   * released once its outcome is written, since the next run's start waits for the commit that
   * carries both (one round trip to the durable copy per run, not two). Absent: false (SQLite's
   * group commit rolls a failed group back).
   */
  readonly writesKeptInOrder?: boolean;

  /**
   * The fuel used by the tenant's runs started at or after `since`, summed by the durable copy
   * (fuel windows: a cluster host counts a tenant's window from it when it takes the tenant
   * over, since its own copy holds only the tenant's latest runs). Optional: without it the
   * count is summed from `listRuns`.
   */
  fuelUsedSince?(tenant: string, since: number): Promise<number>;

  /** Closes the store; a store with writes to send resolves once they are sent (or failed). */
  close(): void | Promise<void>;
}
