/**
 * The embedded default store: better-sqlite3, WAL mode, numbered migrations tracked with
 * `PRAGMA user_version`. Synchronous by design: the scheduler runs on one thread, and a
 * synchronous store keeps every state change atomic with respect to the event loop.
 *
 * Another process (the CLI) may open the same file: WAL lets it read while the host writes, and
 * operator changes go through `operator_commands` so that the running host applies them.
 *
 * Failures: every error leaves as an `HourglassError` with an `HG_STORE*` code (sqlite-errors.ts).
 * A write the store cannot make (disk full, I/O error) is also told to the write-error listener,
 * because a failed group commit happens in a microtask where no caller would see it: SQLite then
 * rolls back the whole group, so the listener (the host) must treat it like a crash of those
 * writes (stop firing, retry, and reload its state from the store when writes succeed again).
 * The lease is the exception to group commit: taking and renewing it commit at once, so a
 * renewal that succeeds really is on disk.
 *
 * `temp_store = MEMORY`: statements that fire triggers (the live-schedule counts, migration
 * 0005) keep a statement journal; on disk, that was a temporary file per insert (half the cost of
 * writing a plugin's 1,000 schedules). The journals are small and live only for one statement.
 *
 * Schedule rows are inserted in multi-row statements and counted by the store, not by a trigger
 * per row (migration 0006), and read as arrays (`.raw()`) with their specs parsed once per
 * distinct text: writing and reading 100k rows is most of arming's and restart's cost.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { HourglassError } from '../errors.ts';
import { sharedSpec, specJson } from '../schedule/spec.ts';
import { pidAlive } from './process-alive.ts';
import { DeferredRows, type DeferredScope } from './deferred-rows.ts';
import {
  OPEN_RUN_STATUSES,
  choosePrunable,
  pruneWindow,
  type PruneRow,
  type PruneSelection,
} from './retention.ts';
import { assertStorePath, isStoreFailure, storeError } from './sqlite-errors.ts';
import type {
  HostLease,
  LeaseClaim,
  LeaseResult,
  JobContractRecord,
  NewRun,
  OperatorAction,
  OperatorCommand,
  PluginRecord,
  PluginStateRecord,
  RunFinish,
  RunPruneResult,
  RunPruneStep,
  RunQuery,
  RunRecord,
  SchedulePatch,
  ScheduleQuery,
  ScheduleRecord,
  ScheduleStateCount,
  Store,
} from './types.ts';

const NOT_ACTIVE = ['paused', 'completed', 'deleted', 'retired'] as const;

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

function loadMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 4)),
      name: f,
      sql: readFileSync(join(MIGRATIONS_DIR, f), 'utf8'),
    }));
}

type Row = Record<string, unknown>;

const SCHEDULE_COLUMNS: Record<keyof SchedulePatch, string> = {
  origin: 'origin',
  spec: 'spec',
  jitter: 'jitter',
  jitterMs: 'jitter_ms',
  payload: 'payload',
  overlap: 'overlap',
  misfire: 'misfire',
  description: 'description',
  declHash: 'decl_hash',
  scope: 'scope',
  priority: 'priority',
  state: 'state',
  pauseNote: 'pause_note',
  anchorAt: 'anchor_at',
  nextAt: 'next_at',
  cursor: 'cursor',
  bufferedAt: 'buffered_at',
  updatedAt: 'updated_at',
  retry: 'retry',
  job: 'job',
  breakerAfter: 'breaker_after',
  failStreak: 'fail_streak',
};

/** The columns of `schedules`, in the order `SELECT ${SCHEDULE_SELECT}` returns them. */
export const SCHEDULE_SELECT =
  'key, plugin_id, tenant, local_id, origin, spec, jitter, jitter_ms, payload, overlap, misfire, ' +
  'description, decl_hash, state, pause_note, anchor_at, next_at, cursor, buffered_at, created_at, ' +
  'updated_at, generation, scope, priority, retry, job, breaker_after, fail_streak';

/**
 * Texts many rows share (plugin ids, tenants, origins, states, policies), one copy each: every
 * cell read is a new string, and records read at a restart stay in memory (100k schedules kept
 * ~7 copies each, ~25 MB). Bounded: emptied when full.
 */
const shared = new Map<string, string>();
const SHARED_MAX = 10_000;

function sharedText<T extends string>(text: T): T {
  const known = shared.get(text);
  if (known !== undefined) return known as T;
  if (shared.size >= SHARED_MAX) shared.clear();
  shared.set(text, text);
  return text;
}

/** A schedule row read with `.raw()` (an array in `SCHEDULE_SELECT` order: no key per cell). */
export function scheduleFromRaw(r: unknown[]): ScheduleRecord {
  return {
    key: r[0] as string,
    pluginId: sharedText(r[1] as string),
    tenant: sharedText(r[2] as string),
    localId: r[3] as string,
    origin: sharedText(r[4] as ScheduleRecord['origin']),
    spec: sharedSpec(r[5] as string),
    jitter: r[6] as string | null,
    jitterMs: r[7] as number,
    payload: r[8] as string | null,
    overlap: sharedText(r[9] as ScheduleRecord['overlap']),
    misfire: sharedText(r[10] as ScheduleRecord['misfire']),
    description: r[11] as string | null,
    scope: sharedText(r[22] as ScheduleRecord['scope']),
    declHash: r[12] as string,
    state: sharedText(r[13] as ScheduleRecord['state']),
    pauseNote: r[14] as string | null,
    anchorAt: r[15] as number,
    nextAt: r[16] as number | null,
    cursor: r[17] as string | null,
    bufferedAt: r[18] as number | null,
    createdAt: r[19] as number,
    updatedAt: r[20] as number,
    generation: r[21] as number,
    priority: r[23] as number,
    retry: r[24] as string | null,
    job: r[25] as string | null,
    breakerAfter: r[26] === null ? null : Number(r[26]),
    failStreak: Number(r[27]),
  };
}

/** The 27 inserted columns of a record, in `insertSchedule`'s order (into `out`). */
function pushScheduleParams(out: unknown[], rec: ScheduleRecord): void {
  out.push(
    rec.key,
    rec.pluginId,
    rec.tenant,
    rec.localId,
    rec.origin,
    specJson(rec.spec),
    rec.jitter,
    rec.jitterMs,
    rec.payload,
    rec.overlap,
    rec.misfire,
    rec.description,
    rec.declHash,
    rec.state,
    rec.pauseNote,
    rec.anchorAt,
    rec.nextAt,
    rec.cursor,
    rec.bufferedAt,
    rec.createdAt,
    rec.updatedAt,
    rec.scope,
    rec.priority,
    rec.retry,
    rec.job,
    rec.breakerAfter,
    rec.failStreak,
  );
}

const INSERT_SCHEDULE_COLUMNS = `INSERT INTO schedules (key, plugin_id, tenant, local_id, origin, spec, jitter, jitter_ms, payload, overlap,
           misfire, description, decl_hash, state, pause_note, anchor_at, next_at, cursor, buffered_at, created_at, updated_at, scope,
           priority, retry, job, breaker_after, fail_streak)
         VALUES `;
const ROW_PLACEHOLDERS = `(${Array.from({ length: 27 }, () => '?').join(', ')})`;
/** Rows per multi-row INSERT (27 parameters each; SQLite allows 32,766 per statement). */
const INSERT_BATCH = 50;
/**
 * Deferred rows written per turn of the event loop (~5-10 ms of main thread: what writing one
 * plugin's 1,000 declarations cost before they were deferred).
 */
const DEFERRED_CHUNK = 1_000;

/**
 * The condition of the runs' status index (`runs_not_succeeded`, migration 0008). SQLite uses a
 * partial index only for a query whose WHERE names its condition, so every query by status
 * other than 'succeeded' does, literally (test/unit/sqlite-store.test.ts checks the plans).
 */
export const NOT_SUCCEEDED = "status <> 'succeeded'";

/** The store's fixed queries of runs by status (exported for the plan test). */
export const RUN_QUERIES = {
  running: `SELECT * FROM runs WHERE status = 'running' AND ${NOT_SUCCEEDED} ORDER BY id`,
  abandon: `UPDATE runs SET status = 'abandoned', reason = @reason, finished_at = @now
    WHERE status = 'running' AND ${NOT_SUCCEEDED}`,
  listWaiting: `SELECT * FROM runs WHERE status = 'waiting' AND ${NOT_SUCCEEDED} AND plugin_id = ? ORDER BY id`,
} as const;

export function runFromRow(r: Row): RunRecord {
  return {
    id: r.id as number,
    scheduleKey: r.schedule_key as string,
    pluginId: r.plugin_id as string,
    tenant: r.tenant as string,
    localId: r.local_id as string,
    trigger: r.trigger as RunRecord['trigger'],
    status: r.status as RunRecord['status'],
    reason: r.reason as string | null,
    scheduledAt: r.scheduled_at as number,
    startedAt: r.started_at as number,
    finishedAt: r.finished_at as number | null,
    attempt: r.attempt as number,
    error: r.error as string | null,
    outputBytes: r.output_bytes as number | null,
    fuelUsed: r.fuel_used as number | null,
    fuelBudget: r.fuel_budget as number | null,
    result: r.result as string | null,
    coversUntil: (r.covers_until as number | null | undefined) ?? null,
    pluginVersion: (r.plugin_version as string | null | undefined) ?? null,
    wasmSha256: (r.wasm_sha256 as string | null | undefined) ?? null,
    logTail: (r.log_tail as string | null | undefined) ?? null,
  };
}

export function contractFromRow(r: Row): JobContractRecord {
  return {
    pluginId: r.plugin_id as string,
    name: r.name as string,
    contract: r.contract as string,
    updatedAt: r.updated_at as number,
  };
}

export function pluginFromRow(r: Row): PluginRecord {
  return {
    id: r.id as string,
    tenant: r.tenant as string,
    name: r.name as string,
    version: r.version as string,
    manifestPath: r.manifest_path as string,
    wasmSha256: r.wasm_sha256 as string | null,
    status: r.status as PluginRecord['status'],
    error: r.error as string | null,
    updatedAt: r.updated_at as number,
  };
}

export function pluginStateFromRow(r: Row): PluginStateRecord {
  return {
    pluginId: r.plugin_id as string,
    tenant: r.tenant as string,
    vars: r.vars as string,
    bytes: Number(r.bytes),
    updatedAt: Number(r.updated_at),
  };
}

export function commandFromRow(r: Row): OperatorCommand {
  return {
    id: r.id as number,
    scheduleKey: r.schedule_key as string,
    action: r.action as OperatorAction,
    note: r.note as string | null,
    createdAt: r.created_at as number,
    appliedAt: r.applied_at as number | null,
    result: r.result as string | null,
  };
}

function scheduleParams(rec: SchedulePatch): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(rec)) {
    const col = SCHEDULE_COLUMNS[k as keyof SchedulePatch];
    if (col) out[col] = k === 'spec' ? JSON.stringify(v) : v;
  }
  return out;
}

export interface SqliteStoreOptions {
  /** Open read-only-ish for a CLI: skip creating the folder. @defaultValue false */
  readonly mustExist?: boolean;
  /**
   * Group commit: writes made outside an explicit transaction join an implicit one that commits
   * in a microtask, once the code that made them (and the microtasks already queued) has run, so
   * a burst of writes in one task (a timer's due runs, a batch of finished runs) costs one
   * commit instead of one each. `transaction(fn)` inside a group stays atomic (a savepoint).
   * `committed()` tells when the open group is durable (the scheduler calls a guest only then).
   * Other connections see the writes a moment later; a process that dies before the microtask
   * loses them. For the host's event loop, not for a short-lived CLI. @defaultValue false
   */
  readonly groupCommit?: boolean;
  /**
   * Largest size of the database file (rounded up to whole pages); a write that would grow it
   * past this fails like a full disk (`HG_STORE_WRITE`, SQLite's `SQLITE_FULL`). @defaultValue no limit
   */
  readonly maxBytes?: number | null;
  /**
   * Told when rows of `insertSchedules(…, { deferred: true })` are written (inside the
   * transaction that writes them): a write-behind store's mirror marks them changed then.
   */
  readonly onDeferredWritten?: (recs: readonly ScheduleRecord[], from: number, to: number) => void;
}

/** A lease renewed this recently (by any version of Hourglass) blocks migrations. */
const MIGRATION_LIVE_MS = 30_000;

const NOTHING = (): void => undefined;

/** `committed()` when no group is open (shared: nothing to wait for). */
const DONE: Promise<void> = Promise.resolve();

interface GroupDone {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function groupDone(): GroupDone {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** SQLite's default `max_page_count`. */
const UNLIMITED_PAGES = 4_294_967_294;

function leaseFromRow(r: Row): HostLease {
  return {
    owner: r.owner as string,
    pid: r.pid as number,
    hostName: r.host_name as string,
    startedAt: r.started_at as number,
    heartbeatAt: r.heartbeat_at as number,
    epoch: r.epoch as number,
  };
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #stmts: ReturnType<SqliteStore['prepare']>;
  readonly #patchCache = new Map<string, Database.Statement>();
  /**
   * Listing statements by their SQL (one per combination of filters: a few hundred at most), so a
   * page of runs or schedules (the API's, the CLI's) is not compiled anew every time.
   */
  readonly #listCache = new Map<string, Database.Statement>();

  #listStatement(sql: string): Database.Statement {
    let stmt = this.#listCache.get(sql);
    if (!stmt) this.#listCache.set(sql, (stmt = this.#db.prepare(sql)));
    return stmt;
  }
  readonly #groupCommit: boolean;
  /** An implicit (group) transaction is open; a microtask commits it. */
  #grouped = false;
  /**
   * The open group's commit as one promise, made at the first `committed()` of the group and
   * shared by every caller (each run awaits it: no promise and waiter object per call).
   */
  #groupDone: GroupDone | null = null;
  /** Nesting depth of `transaction()` calls. */
  #depth = 0;
  /** A group commit that failed (and was rolled back), with no listener: thrown by the next write. */
  #groupError: unknown = null;
  #onWriteError: ((err: HourglassError) => void) | null = null;
  #onCommit: ((seconds: number) => void) | null = null;
  /** Rows of `insertSchedules(…, { deferred: true })` not yet written (deferred-rows.ts). */
  readonly #deferred = new DeferredRows();
  readonly #onDeferredWritten: SqliteStoreOptions['onDeferredWritten'];
  /** The pending background write of deferred rows (one chunk per turn of the event loop). */
  #deferredTimer: NodeJS.Immediate | null = null;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    assertStorePath(path);
    this.path = path;
    this.#groupCommit = opts.groupCommit ?? false;
    this.#onDeferredWritten = opts.onDeferredWritten;
    try {
      if (path !== ':memory:' && path !== '' && !opts.mustExist)
        mkdirSync(dirname(path), { recursive: true });
      this.#db = new Database(path, { fileMustExist: opts.mustExist ?? false });
    } catch (err) {
      throw storeError(err, path, 'open', false);
    }
    try {
      // Refuse a newer store before changing anything in it (even its journal mode).
      this.#checkVersion();
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('temp_store = MEMORY');
      this.#db.pragma('busy_timeout = 5000');
      this.#migrate();
      this.#stmts = this.prepare();
      if (opts.maxBytes != null) this.setMaxBytes(opts.maxBytes);
    } catch (err) {
      this.#db.close();
      throw storeError(err, path, 'open', false);
    }
  }

  /**
   * Caps the database file at `bytes` (null: no cap); writes past it fail with `HG_STORE_WRITE`
   * like a full disk. A cap below the current size holds the file at its current size.
   */
  setMaxBytes(bytes: number | null): void {
    this.#read(
      'set the size limit',
      () => {
        const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
        const pages = bytes === null ? UNLIMITED_PAGES : Math.max(1, Math.ceil(bytes / pageSize));
        this.#db.pragma(`max_page_count = ${pages}`);
      },
      null,
    );
  }

  /**
   * The connection itself, for the write-behind stores (write-behind.ts): their in-memory
   * mirror copies rows in and out by primary key, and the threaded store's writer
   * (sqlite-writer/) writes row images with it. Not for anything else.
   */
  get mirrorDatabase(): Database.Database {
    return this.#db;
  }

  /** Inside `transaction(fn)` (not only a group commit's implicit transaction). */
  get inExplicitTransaction(): boolean {
    return this.#depth > 0 || (this.#db.inTransaction && !this.#grouped);
  }

  /** Commits the open group now (nothing when none is open). */
  commitGroup(): void {
    this.#commitGroup();
  }

  setCommitListener(listener: ((seconds: number) => void) | null): void {
    this.#onCommit = listener;
  }

  #committedIn(ms: number): void {
    try {
      this.#onCommit?.(ms / 1000);
    } catch {
      // A listener's failure must not become the store's (the commit succeeded).
    }
  }

  setWriteErrorListener(listener: ((err: HourglassError) => void) | null): void {
    this.#onWriteError = listener;
  }

  /** A read: any failure leaves with an `HG_STORE*` code. */
  #read<T>(what: string, fn: () => T, scope?: DeferredScope | null): T {
    if (scope !== null && this.#deferred.size > 0) this.#writeDeferred(scope);
    try {
      return fn();
    } catch (err) {
      throw storeError(err, this.path, what, false);
    }
  }

  /** A write (joins the group commit): failures are coded and told to the listener. */
  /** `#change` of one statement without arguments, with no closure. */
  #exec(what: string, stmt: Database.Statement): void {
    try {
      this.#write();
      stmt.run();
    } catch (err) {
      throw this.#failed(storeError(err, this.path, what, true));
    }
  }

  #change<T>(what: string, fn: () => T, scope?: DeferredScope | null): T {
    if (scope !== null && this.#deferred.size > 0) this.#writeDeferred(scope);
    try {
      this.#write();
      return fn();
    } catch (err) {
      throw this.#failed(storeError(err, this.path, what, true));
    }
  }

  #failed(err: HourglassError): HourglassError {
    if (isStoreFailure(err) && this.#onWriteError) {
      try {
        this.#onWriteError(err);
      } catch {
        // A listener's failure must not turn into the store's.
      }
    }
    return err;
  }

  #checkVersion(): void {
    const latest = loadMigrations().at(-1)?.version ?? 0;
    const current = this.#db.pragma('user_version', { simple: true }) as number;
    if (current > latest) {
      throw new HourglassError(
        'HG_STORE_VERSION',
        `store '${this.path}' has schema version ${current}; this Hourglass knows up to ${latest}`,
      );
    }
  }

  #migrate(): void {
    const current = this.#db.pragma('user_version', { simple: true }) as number;
    const pending = loadMigrations().filter((m) => m.version > current);
    if (pending.length > 0 && current > 0) this.#refuseLiveHolder();
    for (const m of pending) {
      this.#db.transaction(() => {
        this.#db.exec(m.sql);
        this.#db.pragma(`user_version = ${m.version}`);
      })();
    }
  }

  /**
   * A newer Hourglass must not change the schema under a host that is running on the store (it
   * would be the second host, refused anyway once the lease is checked). Read before any
   * migration, so only columns every version has; a holder is live when it renewed within
   * `MIGRATION_LIVE_MS` and it is on another machine or its pid exists.
   */
  #refuseLiveHolder(): void {
    const r = this.#db.prepare('SELECT * FROM host_lease WHERE id = 1').get() as Row | undefined;
    if (!r) return;
    const pid = r.pid as number;
    const host = typeof r.host_name === 'string' && r.host_name !== '' ? r.host_name : hostname();
    const recent = Date.now() - (r.heartbeat_at as number) < MIGRATION_LIVE_MS;
    if (recent && (host !== hostname() || pidAlive(pid))) {
      throw new HourglassError(
        'HG_STORE_LEASE',
        `store '${this.path}' is in use by a running host (pid ${pid} on ${host}); stop it before opening the store with this version (its schema would change)`,
      );
    }
  }

  private prepare() {
    const db = this.#db;
    return {
      begin: db.prepare('BEGIN'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT hg_tx'),
      release: db.prepare('RELEASE hg_tx'),
      rollbackTo: db.prepare('ROLLBACK TO hg_tx'),
      upsertPlugin: db.prepare(
        `INSERT INTO plugins (id, tenant, name, version, manifest_path, wasm_sha256, status, error, updated_at)
         VALUES (@id, @tenant, @name, @version, @manifestPath, @wasmSha256, @status, @error, @updatedAt)
         ON CONFLICT(id) DO UPDATE SET tenant=excluded.tenant, name=excluded.name, version=excluded.version,
           manifest_path=excluded.manifest_path, wasm_sha256=excluded.wasm_sha256, status=excluded.status,
           error=excluded.error, updated_at=excluded.updated_at`,
      ),
      getPlugin: db.prepare('SELECT * FROM plugins WHERE id = ?'),
      getPluginState: db.prepare('SELECT * FROM plugin_state WHERE plugin_id = ?'),
      putPluginState: db.prepare(
        `INSERT INTO plugin_state (plugin_id, tenant, vars, bytes, updated_at)
         VALUES (@pluginId, @tenant, @vars, @bytes, @updatedAt)
         ON CONFLICT(plugin_id) DO UPDATE SET tenant=excluded.tenant, vars=excluded.vars,
           bytes=excluded.bytes, updated_at=excluded.updated_at`,
      ),
      listPlugins: db.prepare('SELECT * FROM plugins ORDER BY id'),
      deleteContracts: db.prepare('DELETE FROM job_contracts WHERE plugin_id = ?'),
      insertContract: db.prepare(
        'INSERT INTO job_contracts (plugin_id, name, contract, updated_at) VALUES (@pluginId, @name, @contract, @updatedAt)',
      ),
      listContracts: db.prepare('SELECT * FROM job_contracts ORDER BY plugin_id, name'),
      listContractsOf: db.prepare('SELECT * FROM job_contracts WHERE plugin_id = ? ORDER BY name'),
      getSchedule: db.prepare(`SELECT ${SCHEDULE_SELECT} FROM schedules WHERE key = ?`).raw(),
      // Counts kept by triggers (migration 0005): a point read, not a count of rows.
      countLive: db.prepare(
        'SELECT COALESCE(SUM(live), 0) AS n FROM schedule_counts WHERE tenant = ?',
      ),
      countLiveOf: db.prepare(
        'SELECT COALESCE(SUM(live), 0) AS n FROM schedule_counts WHERE tenant = ? AND plugin_id = ?',
      ),
      // Schedules by state (`countSchedulesByState`): the kept live counts per tenant, and a
      // count of one (tenant, state) range of the index for each state but `active`.
      liveByTenant: db
        .prepare('SELECT tenant, SUM(live) FROM schedule_counts GROUP BY tenant')
        .raw(),
      countInState: db
        .prepare('SELECT COUNT(*) FROM schedules WHERE tenant = ? AND state = ?')
        .pluck(),
      // One pass over the (tenant, state) index and the rows' next_at: ~10-25 ms at 100k rows,
      // once per start (an index with next_at would tax every fire's update instead).
      earliestDue: db
        .prepare(
          "SELECT tenant, MIN(next_at) FROM schedules WHERE state = 'active' AND next_at IS NOT NULL GROUP BY tenant",
        )
        .raw(),
      // Positional parameters: binding 21 named ones per row costs more than the insert itself
      // when a plugin's load writes 1,000 rows.
      insertSchedule: db.prepare(INSERT_SCHEDULE_COLUMNS + ROW_PLACEHOLDERS),
      // The live count of inserted rows (migration 0006: no insert trigger), in the same transaction.
      addLive: db.prepare(
        `INSERT INTO schedule_counts (tenant, plugin_id, live) VALUES (?, ?, ?)
         ON CONFLICT (tenant, plugin_id) DO UPDATE SET live = live + excluded.live`,
      ),
      // A plugin's new rows go in INSERT_BATCH at a time: one statement step per batch.
      insertSchedules: db.prepare(
        INSERT_SCHEDULE_COLUMNS +
          Array.from({ length: INSERT_BATCH }, () => ROW_PLACEHOLDERS).join(', '),
      ),
      // Positional parameters (insertRun, finishRun): one per run each, on the main thread;
      // named ones cost a copy of the record (its id or a default added) and a lookup per name.
      insertRun: db.prepare(
        `INSERT INTO runs (schedule_key, plugin_id, tenant, local_id, trigger, status, reason, scheduled_at, started_at,
           finished_at, attempt, error, output_bytes, fuel_used, fuel_budget, result, covers_until)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      restoreRun: db.prepare(
        `INSERT INTO runs (id, schedule_key, plugin_id, tenant, local_id, trigger, status, reason, scheduled_at,
           started_at, finished_at, attempt, error, output_bytes, fuel_used, fuel_budget, result, covers_until,
           plugin_version, wasm_sha256, log_tail)
         VALUES (@id, @scheduleKey, @pluginId, @tenant, @localId, @trigger, @status, @reason, @scheduledAt,
           @startedAt, @finishedAt, @attempt, @error, @outputBytes, @fuelUsed, @fuelBudget, @result, @coversUntil,
           @pluginVersion, @wasmSha256, @logTail)
         ON CONFLICT (id) DO NOTHING`,
      ),
      finishRun: db.prepare(
        `UPDATE runs SET status = ?, reason = ?, finished_at = ?, error = ?, output_bytes = ?, fuel_used = ?,
           fuel_budget = ?, result = ?, plugin_version = ?, wasm_sha256 = ?, log_tail = ? WHERE id = ?`,
      ),
      getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
      running: db.prepare(RUN_QUERIES.running),
      abandon: db.prepare(RUN_QUERIES.abandon),
      enqueue: db.prepare(
        'INSERT INTO operator_commands (schedule_key, action, note, created_at) VALUES (?, ?, ?, ?)',
      ),
      pending: db.prepare('SELECT * FROM operator_commands WHERE applied_at IS NULL ORDER BY id'),
      complete: db.prepare('UPDATE operator_commands SET applied_at = ?, result = ? WHERE id = ?'),
      getCommand: db.prepare('SELECT * FROM operator_commands WHERE id = ?'),
      // Compare-and-set: one statement, so no other connection can come between the check and
      // the write. A new owner gets a new started_at and epoch; the same owner keeps both.
      acquireLease: db.prepare(
        `INSERT INTO host_lease (id, owner, pid, host_name, started_at, heartbeat_at, epoch)
         VALUES (1, @owner, @pid, @hostName, @now, @now, 1)
         ON CONFLICT(id) DO UPDATE SET
           started_at = CASE WHEN owner = excluded.owner THEN started_at ELSE excluded.started_at END,
           epoch = CASE WHEN owner = excluded.owner THEN epoch ELSE epoch + 1 END,
           owner = excluded.owner, pid = excluded.pid, host_name = excluded.host_name,
           heartbeat_at = excluded.heartbeat_at
         WHERE owner = excluded.owner OR heartbeat_at < @staleBefore OR owner = @replaceOwner`,
      ),
      renewLease: db.prepare(
        'UPDATE host_lease SET heartbeat_at = @now WHERE id = 1 AND owner = @owner',
      ),
      releaseLease: db.prepare('DELETE FROM host_lease WHERE id = 1 AND owner = ?'),
      readLease: db.prepare('SELECT * FROM host_lease WHERE id = 1'),
    };
  }

  /** Before every write: joins (or opens) the group transaction when group commit is on. */
  #write(): void {
    if (this.#groupError !== null) {
      const err = this.#groupError;
      this.#groupError = null;
      throw err instanceof HourglassError
        ? err
        : new HourglassError('HG_STORE', `a group commit failed: ${String(err)}`, { cause: err });
    }
    if (!this.#groupCommit || this.#db.inTransaction) return;
    this.#stmts.begin.run();
    this.#grouped = true;
    queueMicrotask(() => this.#commitGroup());
  }

  /**
   * Resolves once everything written so far is committed (at once when no group is open);
   * rejects when the group holding those writes was rolled back.
   */
  committed(): Promise<void> {
    if (this.#deferred.size > 0) {
      try {
        this.#writeDeferred(undefined);
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    if (!this.#grouped) return DONE;
    return (this.#groupDone ??= groupDone()).promise;
  }

  #commitGroup(): void {
    if (!this.#grouped) return;
    this.#grouped = false;
    const done = this.#groupDone;
    this.#groupDone = null;
    if (!this.#db.open || !this.#db.inTransaction) {
      done?.resolve();
      return;
    }
    try {
      const started = performance.now();
      this.#stmts.commit.run();
      this.#committedIn(performance.now() - started);
      done?.resolve();
    } catch (err) {
      try {
        if (this.#db.inTransaction) this.#stmts.rollback.run();
      } catch {
        // SQLite rolls back by itself after most commit failures; nothing more to undo.
      }
      const wrapped = storeError(err, this.path, 'a group commit', true);
      done?.reject(wrapped);
      if (this.#onWriteError) this.#failed(wrapped);
      else this.#groupError = wrapped;
    }
  }

  /**
   * Runs one statement and commits it before returning: any pending group commits first, then
   * the statement in autocommit mode (a single statement is atomic: a compare-and-set).
   */
  #commitNow<T>(what: string, fn: () => T): T {
    this.#commitGroup();
    if (this.#db.open && this.#db.inTransaction) {
      throw new HourglassError(
        'HG_HOST_STATE',
        `store '${this.path}': ${what} inside a transaction`,
      );
    }
    try {
      return fn();
    } catch (err) {
      throw this.#failed(storeError(err, this.path, what, true));
    }
  }

  transaction<T>(fn: () => T): T {
    this.#change('a transaction', NOTHING, null);
    if (this.#depth > 0 || (this.#db.inTransaction && !this.#grouped)) return fn();
    // Rolled back: rows deferred inside are dropped, deferred rows written inside are pending again.
    const deferred = this.#deferred.snapshot();
    // Inside a group, a savepoint keeps `fn` atomic; otherwise a transaction of its own.
    // (Prepared statements: cheaper than building a `db.transaction(fn)` wrapper per call; and
    // no array or closure per call: this runs for every fire and every outcome.)
    const grouped = this.#grouped;
    const st = this.#stmts;
    this.#exec('a transaction', grouped ? st.savepoint : st.begin);
    this.#depth++;
    try {
      const result = fn();
      this.#exec('a commit', grouped ? st.release : st.commit);
      return result;
    } catch (err) {
      try {
        if (this.#db.inTransaction) {
          (grouped ? st.rollbackTo : st.rollback).run();
          if (grouped) st.release.run();
        }
      } catch {
        // SQLite already rolled back (e.g. after SQLITE_FULL): nothing left to undo.
      }
      this.#deferred.restore(deferred);
      throw err;
    } finally {
      this.#depth--;
    }
  }

  upsertPlugin(rec: PluginRecord): void {
    this.#change('upsertPlugin', () => this.#stmts.upsertPlugin.run(rec), null);
  }

  getPlugin(id: string): PluginRecord | undefined {
    return this.#read(
      'getPlugin',
      () => {
        const r = this.#stmts.getPlugin.get(id) as Row | undefined;
        return r ? pluginFromRow(r) : undefined;
      },
      null,
    );
  }

  listPlugins(): PluginRecord[] {
    return this.#read(
      'listPlugins',
      () => (this.#stmts.listPlugins.all() as Row[]).map(pluginFromRow),
      null,
    );
  }

  getPluginState(pluginId: string): PluginStateRecord | undefined {
    return this.#read(
      'getPluginState',
      () => {
        const r = this.#stmts.getPluginState.get(pluginId) as Row | undefined;
        return r ? pluginStateFromRow(r) : undefined;
      },
      null,
    );
  }

  putPluginState(rec: PluginStateRecord): void {
    this.#change('putPluginState', () => this.#stmts.putPluginState.run(rec), null);
  }

  replaceJobContracts(pluginId: string, contracts: readonly JobContractRecord[]): void {
    this.transaction(() =>
      this.#change(
        'replaceJobContracts',
        () => {
          this.#stmts.deleteContracts.run(pluginId);
          for (const c of contracts) this.#stmts.insertContract.run(c);
        },
        null,
      ),
    );
  }

  listJobContracts(pluginId?: string): JobContractRecord[] {
    return this.#read(
      'listJobContracts',
      () => {
        const rows = (
          pluginId === undefined
            ? this.#stmts.listContracts.all()
            : this.#stmts.listContractsOf.all(pluginId)
        ) as Row[];
        return rows.map(contractFromRow);
      },
      null,
    );
  }

  getSchedule(key: string): ScheduleRecord | undefined {
    return this.#read(
      'getSchedule',
      () => {
        const r = this.#stmts.getSchedule.get(key) as unknown[] | undefined;
        return r ? scheduleFromRaw(r) : undefined;
      },
      { key },
    );
  }

  listSchedules(q: ScheduleQuery = {}): ScheduleRecord[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.pluginId !== undefined) {
      where.push('plugin_id = ?');
      params.push(q.pluginId);
    }
    if (q.tenant !== undefined) {
      where.push('tenant = ?');
      params.push(q.tenant);
    }
    const states = q.states ?? ['active', 'paused', 'completed'];
    where.push(`state IN (${states.map(() => '?').join(', ')})`);
    params.push(...states);
    const orderCol = q.pluginId !== undefined ? 'local_id' : 'key';
    if (q.after !== undefined) {
      where.push(`${orderCol} > ?`);
      params.push(q.after);
    }
    let sql = `SELECT ${SCHEDULE_SELECT} FROM schedules WHERE ${where.join(' AND ')} ORDER BY ${orderCol}`;
    if (q.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(q.limit);
    }
    // Deferred rows this query could return are written first.
    const scope =
      q.pluginId !== undefined
        ? { pluginId: q.pluginId }
        : q.tenant !== undefined
          ? { tenant: q.tenant }
          : undefined;
    return this.#read(
      'listSchedules',
      () =>
        (
          this.#listStatement(sql)
            .raw()
            .all(...params) as unknown[][]
        ).map(scheduleFromRaw),
      scope,
    );
  }

  countLiveSchedules(tenant: string, pluginId?: string): number {
    return this.#read(
      'countLiveSchedules',
      () =>
        (
          (pluginId === undefined
            ? this.#stmts.countLive.get(tenant)
            : this.#stmts.countLiveOf.get(tenant, pluginId)) as { n: number }
        ).n,
      { tenant },
    );
  }

  earliestDueByTenant(): Map<string, number> {
    return this.#read('earliestDueByTenant', () => {
      const due = new Map<string, number>();
      for (const r of this.#stmts.earliestDue.all() as [string, number][]) due.set(r[0], r[1]);
      return due;
    });
  }

  /**
   * Per tenant: `active` is its kept live count less its paused and completed rows; the other
   * states are counted on the (tenant, state) index. Costs the rows not active (~12 ms for a
   * GROUP BY over 100k rows; ~0.5 ms this way when few are not active).
   */
  countSchedulesByState(): ScheduleStateCount[] {
    return this.#read('countSchedulesByState', () => {
      const out: ScheduleStateCount[] = [];
      const count = this.#stmts.countInState;
      for (const [tenant, live] of this.#stmts.liveByTenant.all() as [string, number][]) {
        let active = live;
        for (const state of NOT_ACTIVE) {
          const n = count.get(tenant, state) as number;
          if (state === 'paused' || state === 'completed') active -= n;
          if (n > 0) out.push({ tenant, state, count: n });
        }
        if (active > 0) out.push({ tenant, state: 'active', count: active });
      }
      return out;
    });
  }

  insertSchedule(rec: ScheduleRecord): void {
    const params: unknown[] = [];
    pushScheduleParams(params, rec);
    const live = rec.state === 'active' || rec.state === 'paused' || rec.state === 'completed';
    const write = () =>
      this.#change('insertSchedule', () => {
        this.#stmts.insertSchedule.run(params);
        if (live) this.#stmts.addLive.run(rec.tenant, rec.pluginId, 1);
      });
    // The row and its count together: a transaction of their own unless inside one already
    // (a `schedule_create` is). Deferred rows first, in their own: a failed insert (a duplicate
    // key) must not roll them back with it.
    if (this.#depth > 0) return write();
    if (this.#deferred.size > 0) this.#writeDeferred(undefined);
    this.transaction(write);
  }

  /**
   * Inserts rows INSERT_BATCH at a time, and adds the live ones to `schedule_counts` with one
   * update per tenant and plugin (migration 0006), all in one transaction. Deferred rows are
   * written later (deferred-rows.ts): one chunk of DEFERRED_CHUNK rows per turn of the event
   * loop, and at once before any read or write that could see them (of their plugin, tenant or
   * key; anything but plugins, contracts, runs read back, commands read and the lease writes
   * all of them), before `committed()` resolves and at `close()`.
   */
  insertSchedules(recs: readonly ScheduleRecord[], opts?: { readonly deferred?: boolean }): void {
    if (recs.length === 0) return;
    if (opts?.deferred === true) {
      this.#deferred.add(recs);
      this.#writeDeferredLater();
      return;
    }
    this.#writeDeferred(undefined);
    this.transaction(() => this.#insertRows(recs, 0, recs.length));
  }

  /** Rows deferred and not yet written. */
  get deferredRows(): number {
    return this.#deferred.size;
  }

  /** Writes deferred rows in `scope` (all when absent), at most `limit`, in one transaction. */
  #writeDeferred(scope: DeferredScope | undefined, limit = Infinity): void {
    if (!this.#deferred.has(scope)) return;
    this.transaction(() => {
      for (const [recs, from, to] of this.#deferred.take(scope, limit)) {
        this.#insertRows(recs, from, to);
        this.#onDeferredWritten?.(recs, from, to);
      }
    });
  }

  #writeDeferredLater(): void {
    if (this.#deferredTimer !== null) return;
    this.#deferredTimer = setImmediate(() => {
      this.#deferredTimer = null;
      if (!this.#db.open || this.#deferred.size === 0) return;
      try {
        this.#writeDeferred(undefined, DEFERRED_CHUNK);
      } catch {
        // Told to the write-error listener; the rows stay pending, and the next operation that
        // could see them writes them (and throws to its caller) instead of a retry loop here.
        return;
      }
      if (this.#deferred.size > 0) this.#writeDeferredLater();
    });
    this.#deferredTimer.unref();
  }

  /** `recs[from..to)`, as `insertSchedules` writes them (inside the caller's transaction). */
  #insertRows(recs: readonly ScheduleRecord[], from: number, to: number): void {
    this.#change(
      'insertSchedules',
      () => {
        const full = to - ((to - from) % INSERT_BATCH);
        const params: unknown[] = [];
        for (let i = from; i < full; i += INSERT_BATCH) {
          params.length = 0;
          for (let j = i; j < i + INSERT_BATCH; j++)
            pushScheduleParams(params, recs[j] as ScheduleRecord);
          this.#stmts.insertSchedules.run(params);
        }
        for (let i = full; i < to; i++) {
          params.length = 0;
          pushScheduleParams(params, recs[i] as ScheduleRecord);
          this.#stmts.insertSchedule.run(params);
        }
        // Live rows per tenant and plugin (one pair, for a plugin's load or a create).
        const live = new Map<string, [string, string, number]>();
        for (let i = from; i < to; i++) {
          const r = recs[i] as ScheduleRecord;
          if (r.state !== 'active' && r.state !== 'paused' && r.state !== 'completed') continue;
          const k = `${r.tenant}\0${r.pluginId}`;
          const e = live.get(k);
          if (e) e[2]++;
          else live.set(k, [r.tenant, r.pluginId, 1]);
        }
        for (const e of live.values()) this.#stmts.addLive.run(e);
      },
      null,
    );
  }

  updateSchedule(key: string, patch: SchedulePatch): void {
    const params = scheduleParams(patch);
    const cols = Object.keys(params).sort();
    if (cols.length === 0) return;
    this.#change(
      'updateSchedule',
      () => {
        const sig = cols.join(',');
        let stmt = this.#patchCache.get(sig);
        if (!stmt) {
          stmt = this.#db.prepare(
            `UPDATE schedules SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE key = @key`,
          );
          this.#patchCache.set(sig, stmt);
        }
        stmt.run({ ...params, key });
      },
      { key },
    );
  }

  insertRun(run: NewRun): number {
    if (this.#deferred.size > 0) this.#writeDeferred({ key: run.scheduleKey });
    try {
      this.#write();
      return Number(
        this.#stmts.insertRun.run(
          run.scheduleKey,
          run.pluginId,
          run.tenant,
          run.localId,
          run.trigger,
          run.status,
          run.reason,
          run.scheduledAt,
          run.startedAt,
          run.finishedAt,
          run.attempt,
          run.error,
          run.outputBytes,
          run.fuelUsed,
          run.fuelBudget,
          run.result,
          run.coversUntil ?? null,
        ).lastInsertRowid,
      );
    } catch (err) {
      throw this.#failed(storeError(err, this.path, 'insertRun', true));
    }
  }

  finishRun(id: number, fin: RunFinish): boolean {
    // `#change` inlined: no closure per call (once per run).
    try {
      this.#write();
      return (
        this.#stmts.finishRun.run(
          fin.status,
          fin.reason,
          fin.finishedAt,
          fin.error,
          fin.outputBytes,
          fin.fuelUsed,
          fin.fuelBudget,
          fin.result,
          fin.pluginVersion ?? null,
          fin.wasmSha256 ?? null,
          fin.logTail ?? null,
          id,
        ).changes > 0
      );
    } catch (err) {
      throw this.#failed(storeError(err, this.path, 'finishRun', true));
    }
  }

  restoreRun(run: RunRecord): boolean {
    return this.#change('restoreRun', () => this.#stmts.restoreRun.run(run).changes > 0, null);
  }

  getRun(id: number): RunRecord | undefined {
    return this.#read(
      'getRun',
      () => {
        const r = this.#stmts.getRun.get(id) as Row | undefined;
        return r ? runFromRow(r) : undefined;
      },
      null,
    );
  }

  listRuns(q: RunQuery = {}): RunRecord[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.scheduleKey !== undefined) {
      where.push('schedule_key = ?');
      params.push(q.scheduleKey);
    }
    if (q.pluginId !== undefined) {
      where.push('plugin_id = ?');
      params.push(q.pluginId);
    }
    if (q.status !== undefined) {
      // The status index is partial (migration 0008): its condition, named, lets SQLite use it.
      where.push(q.status === 'succeeded' ? 'status = ?' : `status = ? AND ${NOT_SUCCEEDED}`);
      params.push(q.status);
    }
    if (q.tenant !== undefined) {
      where.push('tenant = ?');
      params.push(q.tenant);
    }
    if (q.since !== undefined) {
      where.push('started_at >= ?');
      params.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('started_at < ?');
      params.push(q.until);
    }
    if (q.before !== undefined) {
      where.push('id < ?');
      params.push(q.before.id);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    params.push(q.limit ?? 100);
    return this.#read(
      'listRuns',
      () => (this.#listStatement(sql).all(...params) as Row[]).map(runFromRow),
      null,
    );
  }

  abandonRunning(now: number, reason: string): RunRecord[] {
    return this.transaction(() =>
      this.#change(
        'abandonRunning',
        () => {
          const rows = (this.#stmts.running.all() as Row[]).map(runFromRow);
          this.#stmts.abandon.run({ now, reason });
          return rows;
        },
        null,
      ),
    );
  }

  // ---- scheduler records (migration 0003) ----

  #schedStmts: {
    readonly advance: Database.Statement;
    readonly complete: Database.Statement;
    readonly startWaiting: Database.Statement;
    readonly listWaiting: Database.Statement;
    readonly writeCursor: Database.Statement;
  } | null = null;

  get #sched() {
    return (this.#schedStmts ??= {
      advance: this.#db.prepare(
        "UPDATE schedules SET next_at = ?, updated_at = ? WHERE key = ? AND state = 'active' AND next_at = ?",
      ),
      complete: this.#db.prepare(
        "UPDATE schedules SET next_at = NULL, state = 'completed', updated_at = ? WHERE key = ? AND state = 'active' AND next_at = ?",
      ),
      startWaiting: this.#db.prepare(
        "UPDATE runs SET status = 'running', started_at = ? WHERE id = ? AND status = 'waiting'",
      ),
      listWaiting: this.#db.prepare(RUN_QUERIES.listWaiting),
      writeCursor: this.#db.prepare(
        'UPDATE schedules SET cursor = ?, updated_at = ? WHERE key = ? AND generation = ?',
      ),
    });
  }

  advanceSchedule(key: string, from: number, nextAt: number | null, now: number): boolean {
    return this.#change(
      'advanceSchedule',
      () =>
        (nextAt === null
          ? this.#sched.complete.run(now, key, from)
          : this.#sched.advance.run(nextAt, now, key, from)
        ).changes > 0,
      { key },
    );
  }

  startWaitingRun(id: number, startedAt: number): void {
    this.#change('startWaitingRun', () => this.#sched.startWaiting.run(startedAt, id), null);
  }

  listWaitingRuns(pluginId: string): RunRecord[] {
    return this.#read(
      'listWaitingRuns',
      () => (this.#sched.listWaiting.all(pluginId) as Row[]).map(runFromRow),
      null,
    );
  }

  /**
   * Retention's choice for one step (retention.ts), read from this database's whole history:
   * the tenant's runs after the cursor, by id (index `runs_tenant`), and each schedule's newest
   * `keepPerSchedule` (index `runs_schedule`). The count's excess is counted at a round's first
   * step, and only when the tenant's id range is wider than `maxRuns` (a count of a million
   * index entries takes tens of milliseconds; the writer thread does it, or an inline store's
   * scheduler thread once per round). Needs the runs' indexes: not for a write-behind mirror.
   */
  selectPrunable(step: RunPruneStep): PruneSelection {
    return this.#read(
      'pruneRuns',
      () => {
        const excess = step.cursor?.excess ?? this.#runsOverCap(step.tenant, step.maxRuns);
        if (step.startedBefore === null && excess <= 0) return { ids: [], cursor: null };
        const rows = this.#listStatement(
          `SELECT id, schedule_key, status, started_at FROM runs
           WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`,
        ).all(step.tenant, step.cursor?.id ?? -1, pruneWindow(step)) as PruneRow[];
        const nth = this.#listStatement(
          'SELECT id FROM runs WHERE schedule_key = ? ORDER BY id DESC LIMIT 1 OFFSET ?',
        ).pluck();
        // A round's floors are kept for its later steps: a floor read earlier is at most the
        // current one (a schedule's new runs only raise it), so it keeps more, never less.
        if (step.cursor === null) this.#pruneFloors.clear();
        const floor = this.#pruneFloors;
        const kept = (r: PruneRow): boolean => {
          if (step.keepPerSchedule <= 0) return false;
          let f = floor.get(r.schedule_key);
          if (f === undefined) {
            // The schedule's Nth newest run; fewer than N runs: every one is kept.
            f = (nth.get(r.schedule_key, step.keepPerSchedule - 1) as number | undefined) ?? 0;
            floor.set(r.schedule_key, f);
          }
          return r.id >= f;
        };
        return choosePrunable(rows, step, excess, kept);
      },
      null,
    );
  }

  /** Each schedule's `keepPerSchedule`-th newest run id, read during the current prune round. */
  readonly #pruneFloors = new Map<string, number>();

  /** Runs of `tenant` beyond `maxRuns` (0 when within it, or no cap). */
  #runsOverCap(tenant: string, maxRuns: number | null): number {
    if (maxRuns === null) return 0;
    const range = this.#listStatement(
      'SELECT (SELECT MAX(id) FROM runs WHERE tenant = ?) - (SELECT MIN(id) FROM runs WHERE tenant = ?) + 1',
    ).pluck();
    const width = (range.get(tenant, tenant) as number | null) ?? 0;
    if (width <= maxRuns) return 0;
    const n = this.#listStatement('SELECT COUNT(*) FROM runs WHERE tenant = ?')
      .pluck()
      .get(tenant) as number;
    return Math.max(0, n - maxRuns);
  }

  /** Deletes the finished runs among `ids` (open ones stay); returns how many went. */
  deleteRuns(ids: readonly number[]): number {
    if (ids.length === 0) return 0;
    return this.#change(
      'pruneRuns',
      () =>
        this.#listStatement(
          `DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))
           AND status NOT IN (${OPEN_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`,
        ).run(JSON.stringify(ids)).changes,
      null,
    );
  }

  async pruneRuns(step: RunPruneStep): Promise<RunPruneResult> {
    const sel = this.selectPrunable(step);
    const deleted = this.deleteRuns(sel.ids);
    await this.committed();
    return { deleted, cursor: sel.cursor };
  }

  writeCursor(key: string, generation: number, cursor: string | null, now: number): boolean {
    return this.#change(
      'writeCursor',
      () => this.#sched.writeCursor.run(cursor, now, key, generation).changes > 0,
      { key },
    );
  }

  enqueueCommand(
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): number {
    return this.#change(
      'enqueueCommand',
      () => Number(this.#stmts.enqueue.run(scheduleKey, action, note, now).lastInsertRowid),
      null,
    );
  }

  pendingCommands(): OperatorCommand[] {
    return this.#read(
      'pendingCommands',
      () => (this.#stmts.pending.all() as Row[]).map(commandFromRow),
      null,
    );
  }

  completeCommand(id: number, result: string, now: number): void {
    this.#change('completeCommand', () => this.#stmts.complete.run(now, result, id), null);
  }

  getCommand(id: number): OperatorCommand | undefined {
    return this.#read(
      'getCommand',
      () => {
        const r = this.#stmts.getCommand.get(id) as Row | undefined;
        return r ? commandFromRow(r) : undefined;
      },
      null,
    );
  }

  acquireLease(claim: LeaseClaim): LeaseResult {
    const changed = this.#commitNow(
      'take the host lease',
      () =>
        this.#stmts.acquireLease.run({
          owner: claim.owner,
          pid: claim.pid,
          hostName: claim.hostName,
          now: claim.now,
          staleBefore: claim.now - claim.staleMs,
          replaceOwner: claim.replaceOwner ?? null,
        }).changes,
    );
    const lease = this.readLease();
    if (!lease) throw new HourglassError('HG_STORE', `store '${this.path}': the lease vanished`);
    return changed === 1 && lease.owner === claim.owner
      ? { ok: true, lease }
      : { ok: false, holder: lease };
  }

  renewLease(owner: string, now: number): boolean {
    return (
      this.#commitNow('renew the host lease', () => this.#stmts.renewLease.run({ owner, now }))
        .changes === 1
    );
  }

  releaseLease(owner: string): void {
    this.#commitNow('release the host lease', () => this.#stmts.releaseLease.run(owner));
  }

  readLease(): HostLease | undefined {
    return this.#read(
      'readLease',
      () => {
        const r = this.#stmts.readLease.get() as Row | undefined;
        return r ? leaseFromRow(r) : undefined;
      },
      null,
    );
  }

  close(): void {
    // Deferred rows are written before the file closes (a crash instead loses only rows that
    // the next discovery derives again).
    let failed: unknown = null;
    if (this.#deferredTimer !== null) clearImmediate(this.#deferredTimer);
    this.#deferredTimer = null;
    try {
      if (this.#db.open && this.#deferred.size > 0) this.#writeDeferred(undefined);
    } catch (err) {
      failed = err;
    }
    this.#commitGroup();
    if (this.#db.open) this.#db.close();
    if (failed !== null) throw failed;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
