/**
 * A store that keeps its rows in an in-memory mirror and writes them behind to a durable copy:
 * the shape the PostgreSQL store (postgres/pg-store.ts) and the threaded SQLite store
 * (sqlite-writer/) share.
 *
 * The mirror is a `SqliteStore` of its own (`mirrorStore`): the same code answers every
 * synchronous read and write of the `Store` interface, with the same semantics, on the
 * scheduler's thread and without I/O while its rows fit its cache. Each write marks its rows dirty; one flush per turn of the event loop (one at a time)
 * hands them to the subclass's `writeBatch`, which reads their current state and makes it
 * durable elsewhere (PostgreSQL; a writer thread that owns the SQLite file). `committed()`
 * resolves once the flush holding the writes made so far has committed, like SQLite's group
 * commit; the scheduler calls a guest only then.
 *
 * Images, not statements: a flush writes each changed row's current state, so writing the same
 * image twice (a retry) changes nothing, and several changes of one row in a burst cost one
 * write. A flush that fails keeps its rows dirty and is retried with backoff; its waiters reject
 * with the failure (`HG_STORE_WRITE`), and the write-error listener hears it (the host stops
 * firing until a flush succeeds again, `renewLease` throwing the failure meanwhile). Nothing the
 * host wrote is lost while the process lives.
 *
 * The mirror keeps every plugin, contract, schedule and open run, and the finished runs among
 * the latest `MIRROR_FINISHED_RUNS` run ids (the host's own reads); the whole history is in the
 * durable copy, which the CLI reads.
 */
import type Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';
import { HourglassError } from '../errors.ts';
import { importRows, readImages, type RowImage } from './postgres/mirror.ts';
import {
  COMMANDS,
  CONTRACTS,
  PLUGINS,
  PLUGIN_STATE,
  RUNS,
  SCHEDULES,
  type TableSpec,
} from './postgres/tables.ts';
import type { PruneSelection } from './retention.ts';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.ts';
import type {
  HostLease,
  JobContractRecord,
  LeaseClaim,
  LeaseResult,
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

/** The first retry of a failed flush; doubles up to FLUSH_RETRY_MAX_MS. */
const FLUSH_RETRY_MS = 100;
const FLUSH_RETRY_MAX_MS = 2_000;
/** Finished runs the mirror keeps (the durable copy has them all). */
export const MIRROR_FINISHED_RUNS = 10_000;
/** How many runs are written between two prunes of the mirror's runs (`#pruneRuns`). */
const PRUNE_STEP = 32;
/**
 * The most finished runs one prune reads (`#pruneRuns`): a flush of 20,000 new runs pushes as
 * many out of the mirror's window at once, and deleting them in one turn held the scheduler's
 * thread for 12 ms, between that flush's commit and the start of the runs it carried.
 */
const PRUNE_MAX = 1_024;

interface Waiter {
  readonly tenant: string | undefined;
  resolve(): void;
  reject(err: unknown): void;
}

/** The keys of the rows changed since the last flush, per table. */
export interface Dirty {
  plugins: Set<string>;
  /** Plugin ids whose contracts were replaced (a plugin's contracts are written whole). */
  contracts: Set<string>;
  /** Plugin ids whose state (variables) changed (one row per plugin). */
  state: Set<string>;
  schedules: Set<string>;
  runs: Set<number>;
  /**
   * Those of `runs` this store inserted, whose rows are not in the durable copy yet (a flush
   * that fails gives them back): the durable side may insert them without looking first.
   */
  runsNew: Set<number>;
  /** Runs deleted by retention (`pruneRuns`): gone from the mirror, deleted by the flush. */
  runsGone: Set<number>;
  /** The tenants of `runsGone` (a shared store fences the deletes by tenant). */
  goneTenants: Set<string>;
  commands: Set<number>;
}

function emptyDirty(): Dirty {
  return {
    plugins: new Set(),
    contracts: new Set(),
    state: new Set(),
    schedules: new Set(),
    runs: new Set(),
    runsNew: new Set(),
    runsGone: new Set(),
    goneTenants: new Set(),
    commands: new Set(),
  };
}

function dirtySize(d: Dirty): number {
  return (
    d.plugins.size +
    d.contracts.size +
    d.state.size +
    d.schedules.size +
    d.runs.size +
    d.runsGone.size +
    d.commands.size
  );
}

/** Adds `from`'s keys to `into`'s (and returns `into`). */
function mergeDirty(into: Dirty, from: Dirty): Dirty {
  for (const k of Object.keys(from) as (keyof Dirty)[])
    for (const v of from[k] as Set<never>) (into[k] as Set<never>).add(v);
  return into;
}

/**
 * A flush in flight: its rows (those of its parts too), the waiters it settles (`committed()`
 * calls join it while it is the last), and whether it was sent behind another (`writeBatch`'s
 * `chained`).
 */
interface Flight {
  readonly dirty: Dirty;
  readonly waiters: Waiter[];
  readonly chained: boolean;
}

/** A flush whose first parts were sent during this turn (`streamRows`); its last part is not. */
interface OpenFlush {
  readonly dirty: Dirty;
  readonly chained: boolean;
}

/** A flush's rows: the current images of the dirty keys, table by table. */
export type Batch = readonly (readonly [TableSpec, RowImage[]])[];

/**
 * Pages of the mirror kept in memory (KiB): the rest of it lives in a temporary file (below).
 * Room for the hot rows of the benches and of a busy host (10k schedules, ~3 MB, and the
 * finished runs the mirror keeps, ~3 MB) with margin.
 */
export const MIRROR_CACHE_KIB = 8192;

/**
 * The mirror: the store's schema, without the runs' indexes by schedule, plugin and tenant. Those
 * serve reads of a long history (the CLI's, from the durable copy); the mirror holds at most
 * `MIRROR_FINISHED_RUNS` finished runs and its reads of runs by schedule or plugin (an
 * embedder's `listRuns`) scan them, while every run's insert and prune no longer updates two
 * indexes: 4 of the scheduler thread's ~32 µs per run in a burst.
 * Nor the open runs' status index (`runs_not_succeeded`): a run moved through three of its
 * entries (waiting, running, then out), ~1.3 µs of the ~25 µs a run of a burst costs the
 * scheduler's thread (bursts of 20k alternated in one process: 3-5% more runs/s without it).
 * What it served here is rare: the open runs at start and stop, and a plugin's waiting runs
 * when the scheduler takes the plugin up, which now scan the mirror's runs (~0.35 ms for 10k
 * rows: ~35 ms more at the start of a host with 100 plugins and a full mirror).
 *
 * It is SQLite's private temporary database (an empty file name), not `:memory:`: the same
 * pager and the same speed while it fits in `MIRROR_CACHE_KIB`, but pages beyond that spill to
 * a file SQLite creates in its temporary directory (SQLITE_TMPDIR, TMPDIR, /var/tmp, /tmp) and
 * unlinks at once, so a crash leaves nothing behind. On `:memory:` every page stays resident:
 * 100k schedules cost ~30 MB of RSS (issue 10: user RSS 303-340 MB against a goal of 300 MB;
 * ~285-300 MB spilled). Nothing is durable there (no sync, the rollback journal in memory): the
 * durable copy is the store's, and the mirror is rebuilt from it at every open. A spill that
 * cannot be written (a full temporary directory) fails that write with `HG_STORE_WRITE`, as a
 * full disk does.
 */
function mirrorStore(onDeferredWritten: SqliteStoreOptions['onDeferredWritten']): SqliteStore {
  const mirror = new SqliteStore('', { groupCommit: true, onDeferredWritten });
  const db = mirror.mirrorDatabase;
  db.pragma(`cache_size = -${MIRROR_CACHE_KIB}`);
  db.pragma('journal_mode = MEMORY');
  db.pragma('synchronous = OFF');
  db.exec(
    'DROP INDEX runs_schedule; DROP INDEX runs_plugin; DROP INDEX runs_tenant; DROP INDEX runs_not_succeeded',
  );
  return mirror;
}

export abstract class WriteBehindStore implements Store {
  /** Names the store in messages. */
  abstract readonly name: string;
  /** A failed flush keeps its rows, and flushes commit in order (`flushDepth`). */
  readonly writesKeptInOrder = true;
  protected readonly mirror = mirrorStore((recs, from, to) => {
    for (let i = from; i < to; i++) this.dirty.schedules.add((recs[i] as ScheduleRecord).key);
    this.touch();
  });
  /**
   * `insertSchedules(…, { deferred: true })` defers its rows in the mirror (which writes them
   * in chunks after the turn, or first when a read could see them) and marks them changed as
   * they are written. Off where the durable side drops a tenant's mirror rows directly (the
   * PostgreSQL store), which rows still deferred would outlive.
   */
  protected readonly deferSchedules: boolean = false;
  protected dirty = emptyDirty();
  /**
   * How many flushes may be in flight at once. More than one only where the durable side
   * applies them in order and refuses a flush sent behind one that failed (`writeBatch`'s
   * `chained`), so that a flush that commits still implies every earlier one did.
   */
  protected readonly flushDepth: number = 1;
  /**
   * Rows after which the writes of a turn start to go out before the turn ends, in parts of a
   * flush that the durable side applies in one transaction it commits only with the flush's last
   * part (`writePart`, `abandonParts`): a turn that writes thousands of rows (a burst of
   * triggers, a cron minute shared by many schedules) is written while it runs, not after.
   * What commits is still the mirror at a turn's end, so the durable copy never holds a state
   * from the middle of one. Infinity: never (the durable side cannot hold a flush open).
   */
  protected readonly streamRows: number = Infinity;
  /** Waiters for the next flush (writes not yet sent). */
  #waiters: Waiter[] = [];
  /** The flushes in flight, oldest first (answers come back in order). */
  readonly #inFlight: Flight[] = [];
  /** The flush this turn's parts went to (`streamRows`), until its last part is sent. */
  #open: OpenFlush | null = null;
  #flushQueued = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryMs = FLUSH_RETRY_MS;
  /** The last flush's failure, until a flush succeeds. */
  protected lastFailure: HourglassError | null = null;
  #onWriteError: ((err: HourglassError) => void) | null = null;
  #onCommit: ((seconds: number) => void) | null = null;
  protected closed = false;
  /** Runs written since the mirror was last pruned (`#pruneRuns`). */
  #runsSincePrune = 0;
  /** The newest run id this store inserted (`#pruneRuns`). */
  #newestRun = 0;
  /** Run ids below this were read by a prune (`#pruneRuns`). */
  #prunedBelow = 0;
  /** Runs below `#prunedBelow` written since the last prune: deleted at the next if finished. */
  #lateFinished: number[] = [];
  #pruneRange: Database.Statement | null = null;
  #pruneDelete: Database.Statement | null = null;

  /**
   * Makes the rows of `dirty` durable, with those of the parts sent for this flush if any
   * (`writePart`): reads their current state from the mirror at once (before returning the
   * promise: the flush's snapshot; `readBatch` as images), then writes it.
   * Resolves with the tenants whose rows the durable copy refused (this host no longer owns
   * them: their waiters reject with `HG_STORE_FENCED`); rejects, with an `HourglassError`, when
   * nothing was written.
   */
  protected abstract writeBatch(dirty: Dirty, chained: boolean): Promise<ReadonlySet<string>>;

  /**
   * Sends the current images of `dirty`'s rows as a part of the next flush: applied, not
   * committed, until that flush's last part (`writeBatch`) commits them with it. Answers
   * nothing: a part that fails fails its flush. Only called where `streamRows` is finite.
   */
  protected writePart(_dirty: Dirty, _chained: boolean): void {
    throw new Error(`store '${this.name}' cannot write a flush in parts`);
  }

  /** Tells the durable side to undo the parts it applied (`abandonParts`). */
  protected dropParts(): void {}

  /**
   * Undoes the parts sent this turn (their rows go out again with the next flush). The durable
   * side's transaction must not be left open under another operation (the lease, a command):
   * a subclass calls this before sending one.
   */
  protected abandonParts(): void {
    const open = this.#open;
    if (open === null) return;
    this.#open = null;
    mergeDirty(this.dirty, open.dirty);
    this.dropParts();
  }

  /** The current images of the dirty rows, table by table. */
  protected readBatch(dirty: Dirty): Batch {
    const db = this.mirror.mirrorDatabase;
    return [
      [PLUGINS, readImages(db, PLUGINS, dirty.plugins)],
      [CONTRACTS, readImages(db, CONTRACTS, dirty.contracts)],
      [PLUGIN_STATE, readImages(db, PLUGIN_STATE, dirty.state)],
      [SCHEDULES, readImages(db, SCHEDULES, dirty.schedules)],
      [RUNS, readImages(db, RUNS, dirty.runs)],
      [COMMANDS, readImages(db, COMMANDS, dirty.commands)],
    ];
  }

  /**
   * Retention's choice for one step (retention.ts), read from the durable copy (the whole
   * history; the mirror holds only the latest runs).
   */
  protected abstract selectPrunable(step: RunPruneStep): Promise<PruneSelection>;

  /** This host may prune `tenant` (a shared store: it owns the tenant). */
  protected ownsTenant(_tenant: string): boolean {
    return true;
  }

  /** A flush found that this host no longer owns `tenant` (after its waiters were rejected). */
  protected tenantFenced(_tenant: string): void {}

  /** Releases what the durable side holds (connections, a thread), after the last flush. */
  protected abstract closeDurable(): Promise<void>;

  // ---- flushing ----

  protected touch(): void {
    if (this.streamRows !== Infinity && dirtySize(this.dirty) >= this.streamRows) this.#sendPart();
    if (this.#flushQueued || this.closed) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#startFlush();
    });
  }

  /**
   * Sends the rows written so far this turn as a part of the next flush (`streamRows`). Not
   * inside a transaction of the mirror (it may still roll back), not while a failed flush waits
   * for its retry, and only when that flush could start now.
   */
  #sendPart(): void {
    if (this.closed || this.#retryTimer !== null || this.mirror.inExplicitTransaction) return;
    if (this.#open === null) {
      if (this.#inFlight.length >= this.flushDepth) return;
      this.#open = { dirty: emptyDirty(), chained: this.#inFlight.length > 0 };
    }
    const part = this.dirty;
    this.dirty = emptyDirty();
    mergeDirty(this.#open.dirty, part);
    this.writePart(part, this.#open.chained);
  }

  #startFlush(): void {
    // A flush begun in parts (`#sendPart`) ends here, at the end of the turn that sent them.
    let open = this.#open;
    if (open !== null && (this.closed || this.#retryTimer !== null)) {
      this.abandonParts();
      open = null;
    }
    if (open === null && (this.#inFlight.length >= this.flushDepth || this.#retryTimer !== null))
      return;
    this.#open = null;
    if (this.closed) {
      // The mirror is gone (a retry armed while closing must not read it): nothing is written.
      const waiters = this.#waiters;
      this.#waiters = [];
      const e = new HourglassError('HG_STORE', `store '${this.name}' is closed`);
      for (const w of waiters) w.reject(e);
      return;
    }
    const dirty = this.dirty;
    const waiters = this.#waiters;
    if (open === null && dirtySize(dirty) === 0) {
      this.#waiters = [];
      for (const w of waiters) w.resolve();
      return;
    }
    this.dirty = emptyDirty();
    this.#waiters = [];
    const flight =
      open === null
        ? { dirty, waiters, chained: this.#inFlight.length > 0 }
        : { dirty: mergeDirty(open.dirty, dirty), waiters, chained: open.chained };
    this.#inFlight.push(flight);
    void this.#runFlush(flight, dirty);
  }

  /**
   * Writes one batch (`last`: the rows not sent in its parts) and settles its waiters; then
   * starts the next flush if writes piled up.
   */
  async #runFlush({ dirty, waiters, chained }: Flight, last: Dirty): Promise<void> {
    let fenced: ReadonlySet<string> | null = null;
    let failure: HourglassError | null = null;
    const started = performance.now();
    try {
      fenced = await this.writeBatch(last, chained);
      try {
        this.#onCommit?.((performance.now() - started) / 1000);
      } catch {
        // A listener's failure must not become the store's.
      }
    } catch (err) {
      failure =
        err instanceof HourglassError
          ? err
          : new HourglassError(
              'HG_STORE_WRITE',
              `store '${this.name}': a flush failed: ${String(err)}`,
              {
                cause: err,
              },
            );
    }
    // Settled synchronously from here: a `committed()` call now joins a later flush.
    this.#inFlight.shift();
    if (fenced !== null) {
      this.#retryMs = FLUSH_RETRY_MS;
      this.lastFailure = null;
      for (const w of waiters) {
        if (w.tenant !== undefined && fenced.has(w.tenant))
          w.reject(
            new HourglassError(
              'HG_STORE_FENCED',
              `store '${this.name}': this host no longer owns tenant ${w.tenant}; its writes were refused`,
            ),
          );
        else w.resolve();
      }
      for (const t of fenced) {
        try {
          this.tenantFenced(t);
        } catch {
          // A listener's failure must not become the store's.
        }
      }
      this.#pruneRuns(dirty.runs);
    } else {
      const e = failure as HourglassError;
      this.lastFailure = e;
      // Keep the rows: the retry writes their images again (unchanged rows are harmless).
      mergeDirty(this.dirty, dirty);
      for (const w of waiters) w.reject(e);
      try {
        this.#onWriteError?.(e);
      } catch {
        // as above
      }
      // A flush behind this one fails too (`chained`); the first failure arms the retry.
      if (!this.closed && this.#retryTimer === null) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = null;
          this.#startFlush();
        }, this.#retryMs);
        this.#retryTimer.unref();
        this.#retryMs = Math.min(this.#retryMs * 2, FLUSH_RETRY_MAX_MS);
      }
      return;
    }
    if (dirtySize(this.dirty) > 0 || this.#waiters.length > 0) this.#startFlush();
  }

  /**
   * Finished runs older than the newest MIRROR_FINISHED_RUNS run ids leave the mirror once
   * written, a few at a time, after every PRUNE_STEP runs written: each id range is read once,
   * at most PRUNE_MAX finished rows a prune (`#prunedBelow` moves up), its finished rows
   * deleted, its open rows left. A row below that mark that a later flush wrote (an old run
   * that finished since) is deleted at the next prune.
   * Rows with writes not yet flushed, or in a flush in flight, stay (their flush reads them, or
   * reads them again if it fails; they come back the same way).
   * A prune costs about the rows it deletes: one turn never deletes thousands of rows, nor reads
   * the unflushed set, while fires wait behind it. (Runs imported below the mark, a tenant's
   * history adopted from another host, stay until they change or the tenant is dropped.)
   */
  #pruneRuns(flushed: ReadonlySet<number>): void {
    if (this.closed) return;
    for (const id of flushed) if (id < this.#prunedBelow) this.#lateFinished.push(id);
    this.#runsSincePrune += flushed.size;
    if (this.#runsSincePrune < PRUNE_STEP) return;
    this.#runsSincePrune = 0;
    const db = this.mirror.mirrorDatabase;
    const ids = this.#lateFinished;
    this.#lateFinished = [];
    const below = this.#newestRun - MIRROR_FINISHED_RUNS;
    if (below > this.#prunedBelow) {
      this.#pruneRange ??= db
        .prepare(
          `SELECT id FROM runs WHERE id >= ? AND id < ? AND status NOT IN ('running', 'waiting')
           ORDER BY id LIMIT ${PRUNE_MAX}`,
        )
        .pluck();
      const found = this.#pruneRange.all(this.#prunedBelow, below) as number[];
      for (const id of found) ids.push(id);
      // A full page: the rest of the range waits for the next prune.
      this.#prunedBelow = found.length === PRUNE_MAX ? (found.at(-1) as number) + 1 : below;
    }
    // A flush still in flight may fail and read its rows again.
    const gone = ids.filter(
      (id) =>
        !this.dirty.runs.has(id) &&
        !this.#open?.dirty.runs.has(id) &&
        !this.#inFlight.some((f) => f.dirty.runs.has(id)),
    );
    if (gone.length === 0) return;
    this.#pruneDelete ??= db.prepare(
      `DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))
         AND status NOT IN ('running', 'waiting')`,
    );
    this.#pruneDelete.run(JSON.stringify(gone));
  }

  /** Resolves once every write made so far is durable (of `scope.tenant`, if given). */
  committed(scope?: { readonly tenant?: string }): Promise<void> {
    // Rows the mirror still defers: written into it now (and so marked changed).
    if (this.mirror.deferredRows > 0) void this.mirror.committed().catch(() => undefined);
    const pending = dirtySize(this.dirty) > 0 || this.#flushQueued || this.#open !== null;
    const last = this.#inFlight.at(-1);
    if (!pending && last === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { tenant: scope?.tenant, resolve, reject };
      if (pending || this.#retryTimer !== null || last === undefined) this.#waiters.push(w);
      else last.waiters.push(w);
    });
  }

  setWriteErrorListener(listener: ((err: HourglassError) => void) | null): void {
    this.#onWriteError = listener;
  }

  /** Each flush that committed: from its start (images read) until the durable side answered. */
  setCommitListener(listener: ((seconds: number) => void) | null): void {
    this.#onCommit = listener;
  }

  /** Writes what is pending (once, if the durable side answers), then closes it. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#startFlush();
    }
    await this.committed().catch(() => undefined);
    this.closed = true;
    // The last flush failed (the durable side is gone): its rows are lost with the mirror; the
    // retry it armed must not run.
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    try {
      await this.closeDurable();
    } finally {
      this.mirror.close();
    }
  }

  // ---- the Store interface: the mirror answers, writes mark rows dirty ----

  transaction<T>(fn: () => T): T {
    return this.mirror.transaction(fn);
  }

  upsertPlugin(rec: PluginRecord): void {
    this.mirror.upsertPlugin(rec);
    this.dirty.plugins.add(rec.id);
    this.touch();
  }
  getPlugin(id: string): PluginRecord | undefined {
    return this.mirror.getPlugin(id);
  }
  listPlugins(): PluginRecord[] {
    return this.mirror.listPlugins();
  }

  replaceJobContracts(pluginId: string, contracts: readonly JobContractRecord[]): void {
    this.mirror.replaceJobContracts(pluginId, contracts);
    this.dirty.contracts.add(pluginId);
    this.touch();
  }
  listJobContracts(pluginId?: string): JobContractRecord[] {
    return this.mirror.listJobContracts(pluginId);
  }

  getPluginState(pluginId: string): PluginStateRecord | undefined {
    return this.mirror.getPluginState(pluginId);
  }

  putPluginState(rec: PluginStateRecord): void {
    this.mirror.putPluginState(rec);
    this.dirty.state.add(rec.pluginId);
    this.touch();
  }

  getSchedule(key: string): ScheduleRecord | undefined {
    return this.mirror.getSchedule(key);
  }
  listSchedules(query?: ScheduleQuery): ScheduleRecord[] {
    return this.mirror.listSchedules(query);
  }
  countLiveSchedules(tenant: string, pluginId?: string): number {
    return this.mirror.countLiveSchedules(tenant, pluginId);
  }
  earliestDueByTenant(): Map<string, number> {
    return this.mirror.earliestDueByTenant();
  }
  countSchedulesByState(): ScheduleStateCount[] {
    return this.mirror.countSchedulesByState();
  }
  insertSchedule(rec: ScheduleRecord): void {
    this.mirror.insertSchedule(rec);
    this.dirty.schedules.add(rec.key);
    this.touch();
  }
  /** Rows of `insertSchedules(…, { deferred: true })` the mirror has not written yet. */
  get deferredRows(): number {
    return this.mirror.deferredRows;
  }
  insertSchedules(recs: readonly ScheduleRecord[], opts?: { readonly deferred?: boolean }): void {
    if (this.deferSchedules && opts?.deferred === true) {
      this.mirror.insertSchedules(recs, opts); // marked changed as the mirror writes them
      return;
    }
    this.mirror.insertSchedules(recs);
    for (const r of recs) this.dirty.schedules.add(r.key);
    this.touch();
  }
  updateSchedule(key: string, patch: SchedulePatch): void {
    this.mirror.updateSchedule(key, patch);
    this.dirty.schedules.add(key);
    this.touch();
  }
  advanceSchedule(key: string, from: number, nextAt: number | null, now: number): boolean {
    const ok = this.mirror.advanceSchedule(key, from, nextAt, now);
    if (ok) {
      this.dirty.schedules.add(key);
      this.touch();
    }
    return ok;
  }
  writeCursor(key: string, generation: number, cursor: string | null, now: number): boolean {
    const ok = this.mirror.writeCursor(key, generation, cursor, now);
    if (ok) {
      this.dirty.schedules.add(key);
      this.touch();
    }
    return ok;
  }

  /** A new run's row in the mirror; returns its id (a store with its own ids overrides this). */
  protected insertRunRow(run: NewRun): number {
    return this.mirror.insertRun(run);
  }
  insertRun(run: NewRun): number {
    const id = this.insertRunRow(run);
    if (id > this.#newestRun) this.#newestRun = id;
    this.dirty.runs.add(id);
    this.dirty.runsNew.add(id);
    this.touch();
    return id;
  }
  finishRun(id: number, fin: RunFinish): boolean {
    const ok = this.mirror.finishRun(id, fin);
    if (ok) {
      this.dirty.runs.add(id);
      this.touch();
    }
    return ok;
  }
  restoreRun(run: RunRecord): boolean {
    const ok = this.mirror.restoreRun(run);
    if (ok) {
      this.dirty.runs.add(run.id);
      this.dirty.runsNew.add(run.id);
      this.touch();
    }
    return ok;
  }
  /**
   * Retention (docs/store.md, "Retention"): the durable side picks the runs (`selectPrunable`);
   * those with writes not yet durable (dirty, or in a flush in flight) stay for a later round;
   * the rest leave the mirror at once and are deleted in the durable copy by the next flush
   * (`Dirty.runsGone`), in order with every other write, fenced like them on a shared store.
   * A deleted run cannot become dirty again: its row is gone from the mirror.
   */
  async pruneRuns(step: RunPruneStep): Promise<RunPruneResult> {
    if (this.closed || !this.ownsTenant(step.tenant)) return { deleted: 0, cursor: null };
    const sel = await this.selectPrunable(step);
    if (this.closed || !this.ownsTenant(step.tenant)) return { deleted: 0, cursor: null };
    const ids = sel.ids.filter(
      (id) =>
        !this.dirty.runs.has(id) &&
        !this.#open?.dirty.runs.has(id) &&
        !this.#inFlight.some((f) => f.dirty.runs.has(id)),
    );
    if (ids.length > 0) {
      this.mirror.deleteRuns(ids);
      for (const id of ids) this.dirty.runsGone.add(id);
      this.dirty.goneTenants.add(step.tenant);
      this.touch();
      await this.committed({ tenant: step.tenant });
    }
    return { deleted: ids.length, cursor: sel.cursor };
  }

  getRun(id: number): RunRecord | undefined {
    return this.mirror.getRun(id);
  }
  listRuns(query?: RunQuery): RunRecord[] {
    return this.mirror.listRuns(query);
  }
  abandonRunning(now: number, reason: string): RunRecord[] {
    const runs = this.mirror.abandonRunning(now, reason);
    for (const r of runs) this.dirty.runs.add(r.id);
    if (runs.length > 0) this.touch();
    return runs;
  }
  startWaitingRun(id: number, startedAt: number): void {
    this.mirror.startWaitingRun(id, startedAt);
    this.dirty.runs.add(id);
    this.touch();
  }
  listWaitingRuns(pluginId: string): RunRecord[] {
    return this.mirror.listWaitingRuns(pluginId);
  }

  /** A command queued under `id` into the mirror (not dirty: the caller wrote it, or will). */
  protected importCommand(
    id: number,
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): void {
    importRows(this.mirror.mirrorDatabase, COMMANDS, [
      {
        id,
        schedule_key: scheduleKey,
        action,
        note,
        created_at: now,
        applied_at: null,
        result: null,
      },
    ]);
  }
  abstract enqueueCommand(
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): number;
  pendingCommands(): OperatorCommand[] {
    return this.mirror.pendingCommands();
  }
  completeCommand(id: number, result: string, now: number): void {
    this.mirror.completeCommand(id, result, now);
    this.dirty.commands.add(id);
    this.touch();
  }
  getCommand(id: number): OperatorCommand | undefined {
    return this.mirror.getCommand(id);
  }

  abstract acquireLease(claim: LeaseClaim): LeaseResult;
  abstract renewLease(owner: string, now: number): boolean;
  abstract releaseLease(owner: string): void;
  abstract readLease(): HostLease | undefined;
}
