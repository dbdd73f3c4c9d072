/**
 * The embedded default store: better-sqlite3, WAL mode, numbered migrations tracked with
 * `PRAGMA user_version`. Synchronous by design: the scheduler runs on one thread, and a
 * synchronous store keeps every state change atomic with respect to the event loop.
 *
 * Another process (the CLI) may open the same file: WAL lets it read while the host writes, and
 * operator changes go through `operator_commands` so that the running host applies them.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HourglassError } from '../errors.ts';
import type { ScheduleSpec } from '../schedule/spec.ts';
import type {
  HostLease,
  JobContractRecord,
  NewRun,
  OperatorAction,
  OperatorCommand,
  PluginRecord,
  RunFinish,
  RunQuery,
  RunRecord,
  SchedulePatch,
  ScheduleQuery,
  ScheduleRecord,
  Store,
} from './types.ts';

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
  state: 'state',
  pauseNote: 'pause_note',
  anchorAt: 'anchor_at',
  nextAt: 'next_at',
  cursor: 'cursor',
  bufferedAt: 'buffered_at',
  updatedAt: 'updated_at',
};

function scheduleFromRow(r: Row): ScheduleRecord {
  return {
    key: r.key as string,
    pluginId: r.plugin_id as string,
    tenant: r.tenant as string,
    localId: r.local_id as string,
    origin: r.origin as ScheduleRecord['origin'],
    spec: JSON.parse(r.spec as string) as ScheduleSpec,
    jitter: r.jitter as string | null,
    jitterMs: r.jitter_ms as number,
    payload: r.payload as string | null,
    overlap: r.overlap as ScheduleRecord['overlap'],
    misfire: r.misfire as ScheduleRecord['misfire'],
    description: r.description as string | null,
    declHash: r.decl_hash as string,
    state: r.state as ScheduleRecord['state'],
    pauseNote: r.pause_note as string | null,
    anchorAt: r.anchor_at as number,
    nextAt: r.next_at as number | null,
    cursor: r.cursor as string | null,
    bufferedAt: r.buffered_at as number | null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    generation: r.generation as number,
  };
}

function runFromRow(r: Row): RunRecord {
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
  };
}

function pluginFromRow(r: Row): PluginRecord {
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

function commandFromRow(r: Row): OperatorCommand {
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
   * Other connections see the writes a moment later; a process that dies before the microtask
   * loses them. For the host's event loop, not for a short-lived CLI. @defaultValue false
   */
  readonly groupCommit?: boolean;
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #stmts: ReturnType<SqliteStore['prepare']>;
  readonly #patchCache = new Map<string, Database.Statement>();
  readonly #groupCommit: boolean;
  /** An implicit (group) transaction is open; a microtask commits it. */
  #grouped = false;
  /** Nesting depth of `transaction()` calls. */
  #depth = 0;
  /** A group commit that failed (and was rolled back): thrown by the next write. */
  #groupError: unknown = null;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    this.path = path;
    this.#groupCommit = opts.groupCommit ?? false;
    try {
      if (path !== ':memory:' && !opts.mustExist) mkdirSync(dirname(path), { recursive: true });
      this.#db = new Database(path, { fileMustExist: opts.mustExist ?? false });
    } catch (err) {
      throw new HourglassError(
        'HG_STORE',
        `cannot open store '${path}': ${(err as Error).message}`,
        { cause: err },
      );
    }
    try {
      // Refuse a newer store before changing anything in it (even its journal mode).
      this.#checkVersion();
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('busy_timeout = 5000');
      this.#migrate();
    } catch (err) {
      this.#db.close();
      if (err instanceof HourglassError) throw err;
      throw new HourglassError(
        'HG_STORE',
        `cannot open store '${path}': ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.#stmts = this.prepare();
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
    for (const m of loadMigrations()) {
      if (m.version <= current) continue;
      this.#db.transaction(() => {
        this.#db.exec(m.sql);
        this.#db.pragma(`user_version = ${m.version}`);
      })();
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
      listPlugins: db.prepare('SELECT * FROM plugins ORDER BY id'),
      deleteContracts: db.prepare('DELETE FROM job_contracts WHERE plugin_id = ?'),
      insertContract: db.prepare(
        'INSERT INTO job_contracts (plugin_id, name, contract, updated_at) VALUES (@pluginId, @name, @contract, @updatedAt)',
      ),
      listContracts: db.prepare('SELECT * FROM job_contracts ORDER BY plugin_id, name'),
      listContractsOf: db.prepare('SELECT * FROM job_contracts WHERE plugin_id = ? ORDER BY name'),
      getSchedule: db.prepare('SELECT * FROM schedules WHERE key = ?'),
      countLive: db.prepare(
        "SELECT COUNT(*) AS n FROM schedules WHERE tenant = ? AND state IN ('active', 'paused', 'completed')",
      ),
      insertSchedule: db.prepare(
        `INSERT INTO schedules (key, plugin_id, tenant, local_id, origin, spec, jitter, jitter_ms, payload, overlap,
           misfire, description, decl_hash, state, pause_note, anchor_at, next_at, cursor, buffered_at, created_at, updated_at)
         VALUES (@key, @plugin_id, @tenant, @local_id, @origin, @spec, @jitter, @jitter_ms, @payload, @overlap,
           @misfire, @description, @decl_hash, @state, @pause_note, @anchor_at, @next_at, @cursor, @buffered_at,
           @created_at, @updated_at)`,
      ),
      insertRun: db.prepare(
        `INSERT INTO runs (schedule_key, plugin_id, tenant, local_id, trigger, status, reason, scheduled_at, started_at,
           finished_at, attempt, error, output_bytes, fuel_used, fuel_budget, result, covers_until)
         VALUES (@scheduleKey, @pluginId, @tenant, @localId, @trigger, @status, @reason, @scheduledAt, @startedAt,
           @finishedAt, @attempt, @error, @outputBytes, @fuelUsed, @fuelBudget, @result, @coversUntil)`,
      ),
      finishRun: db.prepare(
        `UPDATE runs SET status=@status, reason=@reason, finished_at=@finishedAt, error=@error,
           output_bytes=@outputBytes, fuel_used=@fuelUsed, fuel_budget=@fuelBudget, result=@result WHERE id=@id`,
      ),
      getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
      running: db.prepare("SELECT * FROM runs WHERE status = 'running' ORDER BY id"),
      abandon: db.prepare(
        "UPDATE runs SET status='abandoned', reason=@reason, finished_at=@now WHERE status='running'",
      ),
      enqueue: db.prepare(
        'INSERT INTO operator_commands (schedule_key, action, note, created_at) VALUES (?, ?, ?, ?)',
      ),
      pending: db.prepare('SELECT * FROM operator_commands WHERE applied_at IS NULL ORDER BY id'),
      complete: db.prepare('UPDATE operator_commands SET applied_at = ?, result = ? WHERE id = ?'),
      getCommand: db.prepare('SELECT * FROM operator_commands WHERE id = ?'),
      writeLease: db.prepare(
        `INSERT INTO host_lease (id, pid, started_at, heartbeat_at) VALUES (1, @pid, @startedAt, @heartbeatAt)
         ON CONFLICT(id) DO UPDATE SET pid=excluded.pid, started_at=excluded.started_at, heartbeat_at=excluded.heartbeat_at`,
      ),
      clearLease: db.prepare('DELETE FROM host_lease'),
      readLease: db.prepare('SELECT * FROM host_lease WHERE id = 1'),
    };
  }

  /** Before every write: joins (or opens) the group transaction when group commit is on. */
  #write(): void {
    if (this.#groupError !== null) {
      const err = this.#groupError;
      this.#groupError = null;
      throw new HourglassError('HG_STORE', `a group commit failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!this.#groupCommit || this.#db.inTransaction) return;
    this.#stmts.begin.run();
    this.#grouped = true;
    queueMicrotask(() => this.#commitGroup());
  }

  #commitGroup(): void {
    if (!this.#grouped) return;
    this.#grouped = false;
    if (!this.#db.open || !this.#db.inTransaction) return;
    try {
      this.#stmts.commit.run();
    } catch (err) {
      if (this.#db.inTransaction) this.#stmts.rollback.run();
      this.#groupError = err;
    }
  }

  transaction<T>(fn: () => T): T {
    this.#write();
    if (this.#depth > 0 || (this.#db.inTransaction && !this.#grouped)) return fn();
    // Inside a group, a savepoint keeps `fn` atomic; otherwise a transaction of its own.
    // (Prepared statements: cheaper than building a `db.transaction(fn)` wrapper per call.)
    const [open, close, undo] = this.#grouped
      ? [this.#stmts.savepoint, this.#stmts.release, this.#stmts.rollbackTo]
      : [this.#stmts.begin, this.#stmts.commit, this.#stmts.rollback];
    open.run();
    this.#depth++;
    try {
      const result = fn();
      close.run();
      return result;
    } catch (err) {
      if (this.#db.inTransaction) {
        undo.run();
        if (this.#grouped) this.#stmts.release.run();
      }
      throw err;
    } finally {
      this.#depth--;
    }
  }

  upsertPlugin(rec: PluginRecord): void {
    this.#write();
    this.#stmts.upsertPlugin.run(rec);
  }

  getPlugin(id: string): PluginRecord | undefined {
    const r = this.#stmts.getPlugin.get(id) as Row | undefined;
    return r ? pluginFromRow(r) : undefined;
  }

  listPlugins(): PluginRecord[] {
    return (this.#stmts.listPlugins.all() as Row[]).map(pluginFromRow);
  }

  replaceJobContracts(pluginId: string, contracts: readonly JobContractRecord[]): void {
    this.transaction(() => {
      this.#stmts.deleteContracts.run(pluginId);
      for (const c of contracts) this.#stmts.insertContract.run(c);
    });
  }

  listJobContracts(pluginId?: string): JobContractRecord[] {
    const rows = (
      pluginId === undefined
        ? this.#stmts.listContracts.all()
        : this.#stmts.listContractsOf.all(pluginId)
    ) as Row[];
    return rows.map((r) => ({
      pluginId: r.plugin_id as string,
      name: r.name as string,
      contract: r.contract as string,
      updatedAt: r.updated_at as number,
    }));
  }

  getSchedule(key: string): ScheduleRecord | undefined {
    const r = this.#stmts.getSchedule.get(key) as Row | undefined;
    return r ? scheduleFromRow(r) : undefined;
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
    let sql = `SELECT * FROM schedules WHERE ${where.join(' AND ')} ORDER BY ${orderCol}`;
    if (q.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(q.limit);
    }
    return (this.#db.prepare(sql).all(...params) as Row[]).map(scheduleFromRow);
  }

  countLiveSchedules(tenant: string): number {
    return (this.#stmts.countLive.get(tenant) as { n: number }).n;
  }

  insertSchedule(rec: ScheduleRecord): void {
    this.#write();
    this.#stmts.insertSchedule.run({
      ...scheduleParams(rec),
      key: rec.key,
      plugin_id: rec.pluginId,
      tenant: rec.tenant,
      local_id: rec.localId,
      created_at: rec.createdAt,
    });
  }

  updateSchedule(key: string, patch: SchedulePatch): void {
    const params = scheduleParams(patch);
    const cols = Object.keys(params).sort();
    if (cols.length === 0) return;
    this.#write();
    const sig = cols.join(',');
    let stmt = this.#patchCache.get(sig);
    if (!stmt) {
      stmt = this.#db.prepare(
        `UPDATE schedules SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE key = @key`,
      );
      this.#patchCache.set(sig, stmt);
    }
    stmt.run({ ...params, key });
  }

  insertRun(run: NewRun): number {
    this.#write();
    return Number(this.#stmts.insertRun.run({ coversUntil: null, ...run }).lastInsertRowid);
  }

  finishRun(id: number, fin: RunFinish): void {
    this.#write();
    this.#stmts.finishRun.run({ ...fin, id });
  }

  getRun(id: number): RunRecord | undefined {
    const r = this.#stmts.getRun.get(id) as Row | undefined;
    return r ? runFromRow(r) : undefined;
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
      where.push('status = ?');
      params.push(q.status);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    params.push(q.limit ?? 100);
    return (this.#db.prepare(sql).all(...params) as Row[]).map(runFromRow);
  }

  abandonRunning(now: number, reason: string): RunRecord[] {
    return this.transaction(() => {
      const rows = (this.#stmts.running.all() as Row[]).map(runFromRow);
      this.#stmts.abandon.run({ now, reason });
      return rows;
    });
  }

  // ---- scheduler records (migration 0003) ----

  #schedStmts: {
    readonly startWaiting: Database.Statement;
    readonly listWaiting: Database.Statement;
    readonly writeCursor: Database.Statement;
  } | null = null;

  get #sched() {
    return (this.#schedStmts ??= {
      startWaiting: this.#db.prepare(
        "UPDATE runs SET status = 'running', started_at = ? WHERE id = ? AND status = 'waiting'",
      ),
      listWaiting: this.#db.prepare(
        "SELECT * FROM runs WHERE status = 'waiting' AND plugin_id = ? ORDER BY id",
      ),
      writeCursor: this.#db.prepare(
        'UPDATE schedules SET cursor = ?, updated_at = ? WHERE key = ? AND generation = ?',
      ),
    });
  }

  startWaitingRun(id: number, startedAt: number): void {
    this.#write();
    this.#sched.startWaiting.run(startedAt, id);
  }

  listWaitingRuns(pluginId: string): RunRecord[] {
    return (this.#sched.listWaiting.all(pluginId) as Row[]).map(runFromRow);
  }

  writeCursor(key: string, generation: number, cursor: string | null, now: number): boolean {
    this.#write();
    return this.#sched.writeCursor.run(cursor, now, key, generation).changes > 0;
  }

  enqueueCommand(
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): number {
    this.#write();
    return Number(this.#stmts.enqueue.run(scheduleKey, action, note, now).lastInsertRowid);
  }

  pendingCommands(): OperatorCommand[] {
    return (this.#stmts.pending.all() as Row[]).map(commandFromRow);
  }

  completeCommand(id: number, result: string, now: number): void {
    this.#write();
    this.#stmts.complete.run(now, result, id);
  }

  getCommand(id: number): OperatorCommand | undefined {
    const r = this.#stmts.getCommand.get(id) as Row | undefined;
    return r ? commandFromRow(r) : undefined;
  }

  writeLease(lease: HostLease | null): void {
    this.#write();
    if (lease) this.#stmts.writeLease.run(lease);
    else this.#stmts.clearLease.run();
  }

  readLease(): HostLease | undefined {
    const r = this.#stmts.readLease.get() as Row | undefined;
    return r
      ? {
          pid: r.pid as number,
          startedAt: r.started_at as number,
          heartbeatAt: r.heartbeat_at as number,
        }
      : undefined;
  }

  close(): void {
    this.#commitGroup();
    if (this.#db.open) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
