/**
 * The host's SQLite file, written by a thread of its own (`store.writer: "thread"`, the default;
 * `"inline"` is the scheduler's thread with group commit, see "Cost" below).
 *
 * Why. The scheduler's thread must not do file I/O. On a loaded disk a WAL append, a sync or an
 * automatic checkpoint inside a commit waits tens to hundreds of milliseconds behind other I/O
 * (kernel stacks in docs/design.md, "Store"); on the scheduler's thread that wait is every due
 * tick's lateness. A second connection for checkpoints only moves the wait.
 *
 * Shape. `WriteBehindStore` (../write-behind.ts): the host's rows live in an in-memory mirror
 * that answers every read and write synchronously; changed rows' images go to the writer thread
 * (writer-main.ts), which owns the file's connection and writes each flush in one transaction.
 * `committed()` resolves when the writer has committed it. The host is the file's only writer
 * (its lease), so the mirror is the host's state and the file its durable copy; the CLI and
 * other processes read the file and see a write within a flush's round trip.
 *
 * Opening. The writer opens and migrates the file; then this thread copies the rows into the
 * mirror with one `ATTACH` (plugins, contracts, plugin state, schedules and counts, open runs, pending
 * commands, and the latest finished runs and applied commands). If another connection committed
 * between that copy and this host taking the lease, the copy is made again.
 *
 * Synchronous operations (`acquireLease`, `readLease`, `enqueueCommand`) block this thread on
 * the writer (`Atomics.wait`); they are rare. Three others are asynchronous with respect to the
 * `Store` interface's synchronous signature, and documented as such:
 * - `renewLease` sends the renewal and answers with what the previous one found: a lease lost,
 *   or a renewal that failed, is reported at the next heartbeat (a heartbeat later than on the
 *   inline store; the lease stays 10 s stale at the least, so nothing else changes);
 * - `releaseLease` is done by `close()` after the last flush, so no write can follow it;
 * - `pendingCommands` answers from the mirror and asks the writer for newer commands, which the
 *   next poll finds (an operator command takes one poll interval longer).
 * A writer thread that dies fails every later write (`HG_STORE_WRITE`): the host stops firing,
 * as with a failing disk, and says so.
 *
 * Cost (measured, docs/store.md): fire lateness p99 falls several-fold on a busy disk (under
 * 1.2 ms against 10-13 ms at 1,000 fires/s). The mirror's writes and each flush's images cost the
 * scheduler's thread more CPU per run than group commit (a 20k burst at 0.6-0.7x the inline
 * runs/s: 3.1-3.3x BullMQ's on one 2-core VM, 2.35-2.77x on another, where inline made 3.98x;
 * docs/store.md), opening copies the file into the mirror (restart to first fire
 * ~0.55 s against ~0.3 s), and the mirror keeps up to `MIRROR_CACHE_KIB` of pages resident (the
 * rest spills to a temporary file: write-behind.ts).
 */
import type Database from 'better-sqlite3';
import {
  receiveMessageOnPort,
  Worker,
  MessageChannel,
  type MessagePort,
} from 'node:worker_threads';
import { HourglassError, type ErrorCode } from '../../errors.ts';
import { importRows } from '../postgres/mirror.ts';
import {
  columnsOf,
  COMMANDS,
  CONTRACTS,
  PLUGINS,
  PLUGIN_STATE,
  RUNS,
  SCHEDULES,
  tenantOf,
  type TableSpec,
} from '../postgres/tables.ts';
import type { PruneSelection } from '../retention.ts';
import type {
  HostLease,
  LeaseClaim,
  LeaseResult,
  RunPruneStep,
  OperatorAction,
  OperatorCommand,
} from '../types.ts';
import { MIRROR_FINISHED_RUNS, WriteBehindStore, type Dirty } from '../write-behind.ts';
import { assertStorePath } from '../sqlite-errors.ts';
import { NOT_SUCCEEDED, SqliteStore } from '../sqlite-store.ts';
import type {
  Answer,
  TableJson,
  WriteRequest,
  WriterAnswers,
  WriterData,
  WriterRequest,
} from './protocol.ts';

export interface ThreadedSqliteStoreOptions {
  /** As `SqliteStoreOptions.maxBytes`. */
  readonly maxBytes?: number | null;
  /**
   * Nice value of the writer thread (on Linux a nice value is per thread), so that when the
   * cores are short the scheduler's thread runs before it: a retention round's deletes, or a
   * burst's writes, then wait rather than the fires (docs/store.md, "The writer's priority").
   * Between the scheduler's thread (the process's own) and the pool's workers (10,
   * `WorkerPoolOptions.workerNice`): guest code yields to the writer in turn. Never below the
   * process's own nice value (0, or less than the process's, keeps the process's).
   * @defaultValue 5
   */
  readonly writerNice?: number;
}

/** `ThreadedSqliteStoreOptions.writerNice`'s default. */
export const WRITER_NICE = 5;

/** Applied operator commands copied into the mirror when it is loaded. */
const MIRROR_COMMANDS = 1_000;
/**
 * Rows after which a turn's writes go to the writer in parts (`WriteBehindStore.streamRows`):
 * a few milliseconds of the writer's work each, so a burst of thousands of runs is on its way to
 * the file while the turn that started them still runs.
 */
const STREAM_ROWS = 512;

/**
 * Young generation of the writer thread's JS heap (MB). By default V8 let it grow to 16 MB
 * semi-spaces while 100k schedule rows passed through at arming, and kept them committed:
 * ~7 MB more user RSS in the arming bench (medians of 5 runs, 288 MB against 281 MB). Its
 * young objects are a flush's row images and die with it: bursts of 20k runs, alternated,
 * ran at the same rate with the cap (16.7-17.1k runs/s) as without (16.5-17.9k).
 */
export const WRITER_YOUNG_GENERATION_MB = 6;

/** Longest wait for a synchronous answer (the writer's boot under tsx, a busy disk). */
const SYNC_TIMEOUT_MS = 60_000;

const WRITER_ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./writer-entry.js', import.meta.url)
  : new URL('./writer-main.js', import.meta.url);

export class ThreadedSqliteStore extends WriteBehindStore {
  /** The writer applies writes in order and refuses one chained behind a failure. */
  protected override readonly flushDepth = 4;
  /** The writer holds a transaction open across a write's parts (`WriteBehindStore.streamRows`). */
  protected override readonly streamRows = STREAM_ROWS;
  /** Declared rows are deferred in the mirror as the inline store defers them in the file. */
  protected override readonly deferSchedules = true;
  readonly name: string;
  readonly path: string;
  readonly #worker: Worker;
  readonly #signal: Int32Array;
  readonly #answers: MessagePort;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  /** Why the writer is gone (it exited or failed): every later request fails with this. */
  #dead: HourglassError | null = null;
  /** The owner whose lease `close()` releases after the last flush. */
  #release: string | null = null;
  #renewing = false;
  #leaseLost = false;
  #renewError: HourglassError | null = null;
  #fetchingCommands = false;
  #countsOf: Database.Statement | null = null;
  readonly #jsonOf = new Map<string, Database.Statement>();
  /**
   * A write failed: changed runs go out as whole images (`TableJson.partial`) until one
   * succeeds, so that a run the file lacks is inserted rather than failing every retry.
   */
  #wholeImages = false;
  /** Commands enqueued inside the outermost transaction in progress (null: none in progress). */
  #enqueued: number[] | null = null;
  /** The highest operator command id copied into the mirror. */
  #commandsSeen = 0;

  constructor(path: string, opts: ThreadedSqliteStoreOptions = {}) {
    super();
    assertStorePath(path);
    this.path = path;
    this.name = path;
    const signal = new SharedArrayBuffer(4);
    this.#signal = new Int32Array(signal);
    const { port1, port2 } = new MessageChannel();
    this.#answers = port1;
    const data: WriterData = {
      path,
      maxBytes: opts.maxBytes ?? null,
      signal,
      port: port2,
      nice: opts.writerNice ?? WRITER_NICE,
    };
    this.#worker = new Worker(WRITER_ENTRY, {
      workerData: data,
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: WRITER_YOUNG_GENERATION_MB },
    });
    this.#worker.unref();
    this.#worker.on('message', (a: Answer) => this.#answered(a));
    this.#worker.on('error', (err) =>
      this.#died(`the store's writer thread failed: ${String(err)}`),
    );
    this.#worker.on('exit', (code) => this.#died(`the store's writer thread exited (${code})`));
    try {
      this.#call({ op: 'open' });
      this.#load();
    } catch (err) {
      this.mirror.close();
      void this.#worker.terminate();
      throw err;
    }
  }

  // ---- talking to the writer ----

  #died(why: string): void {
    if (this.#dead) return;
    this.#dead = new HourglassError('HG_STORE_WRITE', `store '${this.path}': ${why}`);
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
  }

  #answered(a: Answer): void {
    const p = this.#pending.get(a.id);
    if (!p) return;
    this.#pending.delete(a.id);
    if ('error' in a) p.reject(new HourglassError(a.error.code as ErrorCode, a.error.message));
    else p.resolve(a.ok);
  }

  #request<R extends WriterRequest>(req: R): Promise<WriterAnswers[R['op']]> {
    if (this.#dead) return Promise.reject(this.#dead);
    // Nothing else runs inside the transaction of a write's parts.
    if (req.op !== 'write') this.abandonParts();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ ...req, id, sync: false });
    });
  }

  /** Blocks this thread until the writer answers (rare operations only). */
  #call<R extends WriterRequest>(req: R): WriterAnswers[R['op']] {
    if (this.#dead) throw this.#dead;
    this.abandonParts();
    const id = this.#nextId++;
    Atomics.store(this.#signal, 0, 0);
    this.#worker.postMessage({ ...req, id, sync: true });
    const end = Date.now() + SYNC_TIMEOUT_MS;
    for (;;) {
      Atomics.wait(this.#signal, 0, 0, 1_000);
      const m = receiveMessageOnPort(this.#answers);
      if (m) {
        const a = m.message as Answer;
        if ('error' in a) throw new HourglassError(a.error.code as ErrorCode, a.error.message);
        return a.ok as WriterAnswers[R['op']];
      }
      if (Date.now() > end || this.#worker.threadId < 0) {
        this.#died(`the store's writer thread did not answer '${req.op}' in ${SYNC_TIMEOUT_MS} ms`);
        throw this.#dead as unknown as HourglassError;
      }
    }
  }

  /** Copies the file's rows into the mirror (replacing what it held). */
  #load(): void {
    const db = this.mirror.mirrorDatabase;
    this.mirror.commitGroup(); // ATTACH is refused inside a transaction
    db.prepare('ATTACH DATABASE ? AS disk').run(this.path);
    try {
      db.transaction(() => {
        for (const t of [
          'plugins',
          'job_contracts',
          'plugin_state',
          'schedules',
          'schedule_counts',
          'runs',
          'operator_commands',
        ])
          db.exec(`DELETE FROM main.${t}`);
        db.exec('DELETE FROM main.sqlite_sequence');
        for (const spec of [PLUGINS, CONTRACTS, PLUGIN_STATE, SCHEDULES])
          db.exec(
            `INSERT INTO main.${spec.name} (${columnsOf(spec)}) SELECT ${columnsOf(spec)} FROM disk.${spec.name}`,
          );
        db.exec(
          'INSERT INTO main.schedule_counts (tenant, plugin_id, live) SELECT tenant, plugin_id, live FROM disk.schedule_counts',
        );
        const runs = columnsOf(RUNS);
        db.exec(
          `INSERT INTO main.runs (${runs})
             SELECT ${runs} FROM disk.runs WHERE status IN ('running', 'waiting') AND ${NOT_SUCCEEDED}
             UNION ALL SELECT * FROM (SELECT ${runs} FROM disk.runs
               WHERE status NOT IN ('running', 'waiting') ORDER BY id DESC LIMIT ${MIRROR_FINISHED_RUNS})`,
        );
        const cmds = columnsOf(COMMANDS);
        db.exec(
          `INSERT INTO main.operator_commands (${cmds})
             SELECT ${cmds} FROM disk.operator_commands WHERE applied_at IS NULL
             UNION ALL SELECT * FROM (SELECT ${cmds} FROM disk.operator_commands
               WHERE applied_at IS NOT NULL ORDER BY id DESC LIMIT ${MIRROR_COMMANDS})`,
        );
        db.exec(
          'INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM disk.sqlite_sequence',
        );
      })();
      const max = db.prepare('SELECT MAX(id) AS m FROM main.operator_commands').get() as {
        m: number | null;
      };
      this.#commandsSeen = max.m ?? 0;
    } finally {
      db.exec('DETACH DATABASE disk');
    }
  }

  /** As `SqliteStore.setMaxBytes` (on the writer's connection). */
  setMaxBytes(bytes: number | null): void {
    this.#call({ op: 'maxBytes', bytes });
  }

  // ---- flushing ----

  /**
   * Reads the dirty rows as JSON text, built by SQLite (one text per table: no object per row or
   * cell on this thread, and a text crosses to the writer as one copy, where row images would be
   * serialized cell by cell).
   */
  #rows(dirty: Dirty): Pick<WriteRequest, 'tables' | 'contractPlugins' | 'counts' | 'deletedRuns'> {
    const tables: TableJson[] = [];
    for (const [spec, keys] of [
      [PLUGINS, dirty.plugins],
      [CONTRACTS, dirty.contracts],
      [PLUGIN_STATE, dirty.state],
      [SCHEDULES, dirty.schedules],
      [RUNS, dirty.runs],
      [COMMANDS, dirty.commands],
    ] as const) {
      if (keys.size === 0) continue;
      const columns = spec.columns.map((c) => c[0]);
      let rest: Iterable<string | number> = keys;
      if (spec === RUNS && dirty.runsNew.size > 0) {
        tables.push({
          table: spec.name,
          columns,
          inserted: true,
          json: this.#json(spec, dirty.runsNew),
        });
        if (dirty.runsNew.size === keys.size) continue;
        rest = [...dirty.runs].filter((id) => !dirty.runsNew.has(id));
      }
      const { updatable } = spec;
      if (updatable === undefined)
        tables.push({ table: spec.name, columns, json: this.#json(spec, rest) });
      else if (this.#wholeImages)
        tables.push({ table: spec.name, columns, updatable, json: this.#json(spec, rest) });
      else {
        // A run's start and its outcome: the columns they change, not its whole image (half
        // the JSON to build here and to parse in the writer).
        const some = [spec.key, ...updatable];
        const json = this.#json(spec, rest, some);
        tables.push({ table: spec.name, columns: some, updatable, partial: true, json });
      }
    }
    let counts: string | null = null;
    if (dirty.schedules.size > 0) {
      const tenants = new Set<string>();
      for (const k of dirty.schedules) tenants.add(tenantOf(k));
      this.#countsOf ??= this.mirror.mirrorDatabase
        .prepare(
          `SELECT json_group_array(json_array(tenant, plugin_id, live)) FROM schedule_counts
           WHERE tenant IN (SELECT value FROM json_each(?))`,
        )
        .pluck();
      counts = this.#countsOf.get(JSON.stringify([...tenants])) as string;
    }
    return {
      tables,
      contractPlugins: [...dirty.contracts],
      counts,
      deletedRuns: [...dirty.runsGone],
    };
  }

  /** Retention's choice, read by the writer from the file (the whole history). */
  protected selectPrunable(step: RunPruneStep): Promise<PruneSelection> {
    return this.#request({ op: 'prunable', step });
  }

  /** Sends the dirty rows; the writer commits them with the parts sent before (if any). */
  protected writeBatch(dirty: Dirty, chained: boolean): Promise<ReadonlySet<string>> {
    return this.#request({ op: 'write', chained, ...this.#rows(dirty) }).then(
      () => {
        this.#wholeImages = false;
        return NOTHING_FENCED;
      },
      (err: unknown) => {
        this.#wholeImages = true;
        throw err;
      },
    );
  }

  /** A part of the next write: the writer applies it in a transaction it leaves open. */
  protected override writePart(dirty: Dirty, chained: boolean): void {
    if (this.#dead) return; // the write that ends it fails
    this.#worker.postMessage({ op: 'part', chained, ...this.#rows(dirty), id: 0, sync: false });
  }

  protected override dropParts(): void {
    if (!this.#dead) this.#worker.postMessage({ op: 'abort', id: 0, sync: false });
  }

  /**
   * The current rows of `keys` in `spec`'s table, as one JSON array of arrays: every column in
   * order, or only `some` (one list per table).
   */
  #json(spec: TableSpec, keys: Iterable<string | number>, some?: readonly string[]): string {
    const name = some === undefined ? spec.name : `${spec.name} (some)`;
    let st = this.#jsonOf.get(name);
    if (!st) {
      st = this.mirror.mirrorDatabase
        .prepare(
          `SELECT json_group_array(json_array(${some?.join(', ') ?? columnsOf(spec)}))
           FROM ${spec.name} WHERE ${spec.key} IN (SELECT value FROM json_each(?))`,
        )
        .pluck();
      this.#jsonOf.set(name, st);
    }
    return st.get(JSON.stringify([...keys])) as string;
  }

  protected async closeDurable(): Promise<void> {
    try {
      if (this.#release !== null && !this.#dead)
        this.#call({ op: 'release', owner: this.#release });
      if (!this.#dead) await this.#request({ op: 'close' });
    } finally {
      await this.#worker.terminate();
    }
  }

  // ---- operator commands ----

  /**
   * Queued in the file at once (its id is the file's, as a CLI's command's is) and copied into
   * the mirror. Inside a transaction that then throws, the command is taken out of the file again
   * (`transaction`), so it is never applied.
   */
  enqueueCommand(
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): number {
    const id = this.#call({ op: 'enqueue', key: scheduleKey, action, note, now });
    this.importCommand(id, scheduleKey, action, note, now);
    this.#enqueued?.push(id);
    return id;
  }

  transaction<T>(fn: () => T): T {
    if (this.#enqueued !== null) return super.transaction(fn);
    this.#enqueued = [];
    try {
      return super.transaction(fn);
    } catch (err) {
      if (this.#enqueued.length > 0) this.#call({ op: 'dequeue', ids: this.#enqueued });
      throw err;
    } finally {
      this.#enqueued = null;
    }
  }

  /** The mirror's pending commands; asks the writer for newer ones (the next poll finds them). */
  pendingCommands(): OperatorCommand[] {
    if (!this.#fetchingCommands && !this.#dead && !this.closed) {
      this.#fetchingCommands = true;
      this.#request({ op: 'commands', after: this.#commandsSeen })
        .then((rows) => {
          if (this.closed) return;
          const fresh = rows.filter((r) => !this.mirror.getCommand(r.id as number));
          importRows(this.mirror.mirrorDatabase, COMMANDS, fresh);
          for (const r of rows) this.#commandsSeen = Math.max(this.#commandsSeen, r.id as number);
        })
        .catch(() => undefined)
        .finally(() => (this.#fetchingCommands = false));
    }
    return super.pendingCommands();
  }

  // ---- the host lease (one host per file), kept by the writer ----

  acquireLease(claim: LeaseClaim): LeaseResult {
    const { result, changed } = this.#call({ op: 'acquire', claim });
    if (result.ok) {
      // Another connection wrote since the mirror was copied: copy it again.
      if (changed) this.#load();
      this.#release = null;
      this.#leaseLost = false;
    }
    return result;
  }

  /** Asynchronous: sends a renewal and answers with what the previous one found (module comment). */
  renewLease(owner: string, now: number): boolean {
    if (this.lastFailure) throw this.lastFailure;
    if (this.#renewError) {
      const e = this.#renewError;
      this.#renewError = null;
      throw e;
    }
    if (this.#leaseLost) return false;
    if (!this.#renewing) {
      this.#renewing = true;
      this.#request({ op: 'renew', owner, now })
        .then(
          (held) => {
            if (!held) this.#leaseLost = true;
          },
          (err: unknown) => {
            this.#renewError = err as HourglassError;
          },
        )
        .finally(() => (this.#renewing = false));
    }
    return true;
  }

  /** Done by `close()`, after the last flush (module comment). */
  releaseLease(owner: string): void {
    this.#release = owner;
  }

  readLease(): HostLease | undefined {
    return this.#call({ op: 'readLease' }) ?? undefined;
  }
}

/**
 * The host's SQLite store as configured: threaded (the default), or inline with group commit
 * (`store.writer: "inline"`; always for `:memory:`, which a second thread cannot share).
 */
export function openSqliteStore(config: {
  readonly path: string;
  readonly maxBytes: number | null;
  readonly writer: 'thread' | 'inline';
}): SqliteStore | ThreadedSqliteStore {
  return config.writer === 'inline' || config.path === ':memory:'
    ? new SqliteStore(config.path, { groupCommit: true, maxBytes: config.maxBytes })
    : new ThreadedSqliteStore(config.path, { maxBytes: config.maxBytes });
}

const NOTHING_FENCED: ReadonlySet<string> = new Set();
