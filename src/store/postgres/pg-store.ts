/**
 * The PostgreSQL store (docs/cluster.md): several hosts on one database, each owning some
 * tenants.
 *
 * Shape. A host reads and writes only the tenants it owns (a lease per tenant in `hg_shards`,
 * taken by src/cluster/), and while it owns one it is that tenant's only writer. So the store
 * keeps the owned tenants' rows in an in-memory mirror and writes every changed row to
 * PostgreSQL behind it (`WriteBehindStore`, ../write-behind.ts: dirty rows, one flush at a time,
 * `committed()`, retries). The mirror is not a cache
 * of shared data: nobody else writes an owned tenant's rows (operator commands are queued rows
 * that the owner applies), so it is the owner's state and PostgreSQL is its durable copy.
 *
 * Fencing. Every row carries the epoch of the tenant's lease it was written under. A flush is
 * one statement (`flushSql` in mirror.ts: one round trip, its own transaction): it locks the
 * lease rows (`hg_shards`, `FOR SHARE`) of the batch's tenants that this host still holds at the
 * epochs it thinks, upserts the rows of those tenants only, and records each other tenant in
 * `hg_fence_rejections` with its count of rows (which are dropped). Every upsert takes only rows
 * of tenants the lock returned, so a tenant's lease row is locked before any of its rows is
 * written. A takeover is an UPDATE of the lease row that bumps its epoch; if it
 * - committed before the statement started: the statement sees the new epoch (or owner), so the
 *   tenant is not locked and its rows are refused;
 * - is in progress (updated, not committed): `FOR SHARE` waits for it to end; committed, READ
 *   COMMITTED re-reads the row's newest version and checks owner and epoch again: refused; rolled
 *   back, the old row is locked: written;
 * - starts after the lock was taken: its UPDATE waits until the flush commits, so the rows land
 *   under the epoch then still current, and the new owner, which reads the tenant's rows only
 *   after its claim commits, finds them.
 * A batch that replaces job contracts (a plugin loaded: a plugin's contracts are deleted, then
 * inserted, which one statement cannot do to the same row) or deletes runs (retention: only the
 * tenant's owner prunes) is a transaction of several statements with the same steps: lock, drop
 * and count the fenced tenants' rows, write the rest (and delete the held tenants' runs).
 * Independently, the database's trigger `hg_fence()` refuses any row whose epoch is not current
 * (SQLSTATE HGF01). A fenced tenant's waiters reject with `HG_STORE_FENCED` (the scheduler then
 * does not call the guest) and the fence listener drops the tenant.
 *
 * Failures. A flush that fails for another reason (connection lost, database restarting) keeps
 * its rows dirty and is retried with backoff; its waiters reject with `HG_STORE_WRITE`, and the
 * write-error listener hears it (the host stops firing until a flush succeeds again). Run and
 * command ids come from blocks of 2^20 taken from a PostgreSQL sequence, so an insert never waits
 * for the database.
 */
import pg from 'pg';
import { HourglassError } from '../../errors.ts';
import { SCHEDULE_SELECT, scheduleFromRaw } from '../sqlite-store.ts';
import type {
  HostLease,
  LeaseClaim,
  LeaseResult,
  NewRun,
  OperatorAction,
  RunPruneStep,
  RunRecord,
  ScheduleRecord,
} from '../types.ts';
import { WriteBehindStore, type Batch, type Dirty } from '../write-behind.ts';
import {
  OPEN_RUN_STATUSES,
  choosePrunable,
  pruneWindow,
  type PruneRow,
  type PruneSelection,
} from '../retention.ts';
import {
  columnArrays,
  dropTenantRows,
  flushSql,
  importRows,
  pgExtra,
  recountTenant,
  tenantOfRow,
  upsertSql,
  type FlushPart,
} from './mirror.ts';
import { pgError } from './pg-errors.ts';
import { migrate } from './pg-schema.ts';
import { COMMANDS, CONTRACTS, PLUGIN_STATE, PLUGINS, RUNS, SCHEDULES, tenantOf } from './tables.ts';

export interface PgStoreOptions {
  /** `postgres://user:password@host:port/database` */
  readonly url: string;
  /** Connections in the pool. @defaultValue 10 */
  readonly poolSize?: number;
  /** Server-side limit per statement. @defaultValue 10000 */
  readonly statementTimeoutMs?: number;
  /** The host's owner token (`hg_shards.owner`). */
  readonly owner: string;
}

/** Ids per block; blocks start above 2^40 so that ids PostgreSQL hands out itself never meet them. */
const ID_BLOCK = 2 ** 20;
const ID_BASE = 2 ** 40;
/** Finished runs and applied commands per tenant copied into the mirror when it is adopted. */
const MIRROR_HISTORY = 1_000;

/** bigint (int8) columns as numbers: every stored number is a time in ms, a count or an id < 2^53. */
export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * A connection that fails (the server restarted, a network reset) emits `error` on its client,
 * idle or checked out; unheard, that would end the process. The query in flight rejects, and
 * the pool replaces the client, so the event itself needs no action.
 */
export function guardPool(pool: pg.Pool): pg.Pool {
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}

export class PgStore extends WriteBehindStore {
  readonly name: string;
  readonly pool: pg.Pool;
  readonly owner: string;
  /** Tenants this host owns, with the epoch it owns each under. */
  readonly #epochs = new Map<string, number>();
  /** The epochs each flush in flight was sent under (`tenantFenced` compares). */
  #flushEpochs: ReadonlyMap<string, number> = new Map();
  #onFenced: ((tenant: string) => void) | null = null;
  #nextId = 0;
  #idEnd = 0;
  #nextBlock: Promise<void> | null = null;
  #spareBlock: [number, number] | null = null;
  /** Rows refused for a stale epoch, by this store. */
  fencedRows = 0;

  private constructor(opts: PgStoreOptions) {
    super();
    this.name = redactUrl(opts.url);
    this.owner = opts.owner;
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      statement_timeout: opts.statementTimeoutMs ?? 10_000,
      connectionTimeoutMillis: 5_000,
      types: PG_TYPES,
    });
    guardPool(this.pool);
  }

  /** Connects, migrates (under an advisory lock) and takes a first block of ids. */
  static async open(opts: PgStoreOptions): Promise<PgStore> {
    const store = new PgStore(opts);
    try {
      await migrate(store.pool, store.name);
      await store.#takeBlock();
      store.#useSpare();
      return store;
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      throw pgError(err, store.name, 'open');
    }
  }

  // ---- ownership (src/cluster/ decides; the store only loads, fences and forgets) ----

  /** The tenants this host owns, with their epochs. */
  get owned(): ReadonlyMap<string, number> {
    return this.#epochs;
  }

  /** Called when a flush found that this host no longer owns `tenant`. */
  setFenceListener(listener: ((tenant: string) => void) | null): void {
    this.#onFenced = listener;
  }

  /**
   * The host now owns `tenant` under `epoch` (its lease was just taken): copies the tenant's
   * rows from PostgreSQL into the mirror, in one snapshot: plugins, contracts, plugin state, schedules, open
   * runs and pending commands, and the latest `MIRROR_HISTORY` finished runs and applied commands
   * (the host's own reads; the rest of the history is read from PostgreSQL by the CLI).
   */
  async adoptTenant(tenant: string, epoch: number): Promise<void> {
    const c = await this.pool.connect();
    const rows: Record<string, unknown>[][] = [];
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      for (const sql of [
        'SELECT * FROM plugins WHERE tenant = $1',
        'SELECT * FROM job_contracts WHERE tenant = $1',
        'SELECT * FROM plugin_state WHERE tenant = $1',
        'SELECT * FROM schedules WHERE tenant = $1',
        `SELECT * FROM runs WHERE tenant = $1 AND status IN ('running', 'waiting')
         UNION ALL (SELECT * FROM runs WHERE tenant = $1 AND status NOT IN ('running', 'waiting')
                    ORDER BY id DESC LIMIT ${MIRROR_HISTORY})`,
        `SELECT * FROM operator_commands WHERE tenant = $1 AND applied_at IS NULL
         UNION ALL (SELECT * FROM operator_commands WHERE tenant = $1 AND applied_at IS NOT NULL
                    ORDER BY id DESC LIMIT ${MIRROR_HISTORY})`,
      ])
        rows.push((await c.query(sql, [tenant])).rows);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw pgError(err, this.name, `load tenant ${tenant}`);
    } finally {
      c.release();
    }
    const db = this.mirror.mirrorDatabase;
    this.#epochs.set(tenant, epoch);
    const specs = [PLUGINS, CONTRACTS, PLUGIN_STATE, SCHEDULES, RUNS, COMMANDS];
    db.transaction(() => {
      dropTenantRows(db, tenant);
      specs.forEach((spec, i) => importRows(db, spec, rows[i] ?? []));
      recountTenant(db, tenant);
    })();
  }

  /**
   * The fuel of the tenant's runs started at or after `since`, from PostgreSQL (index
   * `runs_tenant`): every host's flushed runs, not only the mirror's latest ones.
   */
  async fuelUsedSince(tenant: string, since: number): Promise<number> {
    try {
      const r = await this.pool.query<{ used: string | null }>(
        'SELECT SUM(fuel_used)::text AS used FROM runs WHERE tenant = $1 AND started_at >= $2',
        [tenant, since],
      );
      return Number(r.rows[0]?.used ?? 0);
    } catch (err) {
      throw pgError(err, this.name, `sum the fuel of tenant ${tenant}`);
    }
  }

  /**
   * Records the tenant's runs left `running` (by its previous owner, or this host before a
   * restart) as `abandoned`; returns them. Called once the tenant is adopted.
   */
  abandonTenantRuns(tenant: string, now: number, reason: string): RunRecord[] {
    const db = this.mirror.mirrorDatabase;
    const ids = (
      db.prepare("SELECT id FROM runs WHERE tenant = ? AND status = 'running'").all(tenant) as {
        id: number;
      }[]
    ).map((r) => r.id);
    if (ids.length === 0) return [];
    db.prepare(
      "UPDATE runs SET status = 'abandoned', reason = ?, finished_at = ? WHERE tenant = ? AND status = 'running'",
    ).run(reason, now, tenant);
    for (const id of ids) this.dirty.runs.add(id);
    this.touch();
    return ids.map((id) => this.mirror.getRun(id) as RunRecord);
  }

  /** The host no longer owns `tenant`: forgets its rows and unsent writes (nothing is written). */
  dropTenant(tenant: string): void {
    this.#epochs.delete(tenant);
    const d = this.dirty;
    for (const set of [d.plugins, d.contracts, d.state, d.schedules] as Set<string>[])
      for (const k of set) if (tenantOf(k) === tenant) set.delete(k);
    const db = this.mirror.mirrorDatabase;
    for (const id of d.runs) {
      const r = this.mirror.getRun(id);
      if (r && r.tenant === tenant) {
        d.runs.delete(id);
        d.runsNew.delete(id);
      }
    }
    for (const id of d.commands) {
      const cmd = this.mirror.getCommand(id);
      if (cmd && tenantOf(cmd.scheduleKey) === tenant) d.commands.delete(id);
    }
    db.transaction(() => dropTenantRows(db, tenant))();
  }

  /**
   * Copies operator commands queued in PostgreSQL for owned tenants (by any host or CLI) into
   * the mirror, where `pendingCommands()` finds them; returns how many were new.
   */
  async fetchCommands(): Promise<number> {
    const tenants = [...this.#epochs.keys()];
    if (tenants.length === 0) return 0;
    let rows: Record<string, unknown>[];
    try {
      rows = (
        await this.pool.query(
          'SELECT * FROM operator_commands WHERE applied_at IS NULL AND tenant = ANY($1) ORDER BY id',
          [tenants],
        )
      ).rows;
    } catch (err) {
      throw pgError(err, this.name, 'read operator commands');
    }
    const db = this.mirror.mirrorDatabase;
    const fresh = rows.filter(
      (r) =>
        this.#epochs.has(tenantOf(r.schedule_key as string)) &&
        !this.mirror.getCommand(r.id as number),
    );
    importRows(db, COMMANDS, fresh);
    return fresh.length;
  }

  /**
   * The every-host templates of `tenants` (declared rows with `scope = 'host'`, in any state),
   * as their owners committed them: what each host's replica copies follow (src/host/replica.ts).
   */
  async hostScopedTemplates(tenants: readonly string[]): Promise<ScheduleRecord[]> {
    try {
      const r = await this.pool.query<unknown[]>({
        text: `SELECT ${SCHEDULE_SELECT} FROM schedules
               WHERE tenant = ANY($1) AND scope = 'host' AND origin = 'declared' ORDER BY key`,
        values: [tenants],
        rowMode: 'array',
      });
      return r.rows.map(scheduleFromRaw);
    } catch (err) {
      throw pgError(err, this.name, 'read every-host schedules');
    }
  }

  /**
   * Closes an adopted replica shard whose host is gone: retires its live copies (their open
   * runs were recorded `abandoned` by `abandonTenantRuns`). The caller commits and drops it.
   */
  retireReplicaCopies(shard: string, now: number): number {
    const live = this.mirror.listSchedules({
      tenant: shard,
      states: ['active', 'paused', 'completed'],
    });
    for (const s of live)
      this.updateSchedule(s.key, {
        state: 'retired',
        nextAt: null,
        bufferedAt: null,
        updatedAt: now,
      });
    return live.length;
  }

  // ---- ids ----

  async #takeBlock(): Promise<void> {
    const r = await this.pool.query<{ b: number }>("SELECT nextval('hg_ids') AS b");
    const start = ID_BASE + (r.rows[0] as { b: number }).b * ID_BLOCK;
    this.#spareBlock = [start, start + ID_BLOCK];
  }

  #useSpare(): void {
    const b = this.#spareBlock as [number, number];
    this.#spareBlock = null;
    [this.#nextId, this.#idEnd] = b;
  }

  #newId(): number {
    if (this.#nextId >= this.#idEnd) {
      if (!this.#spareBlock)
        throw new HourglassError('HG_STORE_WRITE', `store '${this.name}': no ids on hand yet`);
      this.#useSpare();
    }
    // Half a block left: fetch the next one in the background.
    if (
      this.#spareBlock === null &&
      this.#nextBlock === null &&
      this.#idEnd - this.#nextId < ID_BLOCK / 2
    ) {
      this.#nextBlock = this.#takeBlock()
        .catch(() => undefined)
        .finally(() => (this.#nextBlock = null));
    }
    return this.#nextId++;
  }

  // ---- flushing (the base's loop; this writes a batch with its fencing) ----

  protected async writeBatch(dirty: Dirty): Promise<ReadonlySet<string>> {
    const batch = this.readBatch(dirty);
    const epochs = new Map(this.#epochs);
    this.#flushEpochs = epochs;
    try {
      return await this.#write(batch, dirty.contracts, epochs, dirty);
    } catch (err) {
      throw pgError(err, this.name, 'a flush');
    }
  }

  /** Each schedule's `keepPerSchedule`-th newest run (null: fewer), read this prune round. */
  readonly #pruneFloors = new Map<string, { started_at: number; id: number } | null>();

  protected override ownsTenant(tenant: string): boolean {
    return this.#epochs.has(tenant);
  }

  /**
   * Retention's choice (retention.ts) from PostgreSQL's whole history: the tenant's runs by start
   * time, then id (index `runs_tenant`), and each schedule's newest `keepPerSchedule` in the
   * same order (index `runs_schedule`), one statement for the window's schedules.
   */
  protected async selectPrunable(step: RunPruneStep): Promise<PruneSelection> {
    try {
      let excess = step.cursor?.excess ?? 0;
      if (step.cursor === null && step.maxRuns !== null) {
        const n = await this.pool.query<{ n: number }>(
          'SELECT count(*)::int8 AS n FROM runs WHERE tenant = $1',
          [step.tenant],
        );
        excess = Math.max(0, (n.rows[0]?.n ?? 0) - step.maxRuns);
      }
      if (step.startedBefore === null && excess <= 0) return { ids: [], cursor: null };
      const rows = (
        await this.pool.query<PruneRow>(
          `SELECT id, schedule_key, status, started_at FROM runs
           WHERE tenant = $1 AND (started_at, id) > ($2, $3)
           ORDER BY started_at, id LIMIT $4`,
          [step.tenant, step.cursor?.startedAt ?? -1, step.cursor?.id ?? -1, pruneWindow(step)],
        )
      ).rows;
      // A round's floors are kept for its later steps (as SqliteStore's: an earlier floor is
      // at most the current one, so it keeps more, never less).
      if (step.cursor === null) this.#pruneFloors.clear();
      const floor = this.#pruneFloors;
      if (step.keepPerSchedule > 0 && rows.length > 0) {
        const keys = [...new Set(rows.map((r) => r.schedule_key))].filter((k) => !floor.has(k));
        const r =
          keys.length === 0
            ? { rows: [] }
            : await this.pool.query<{
                key: string;
                started_at: number | null;
                id: number | null;
              }>(
                `SELECT k.key, t.started_at, t.id FROM unnest($1::text[]) AS k(key)
           LEFT JOIN LATERAL (SELECT started_at, id FROM runs WHERE schedule_key = k.key
                              ORDER BY started_at DESC, id DESC OFFSET $2 LIMIT 1) t ON true`,
                [keys, step.keepPerSchedule - 1],
              );
        for (const f of r.rows)
          floor.set(f.key, f.id === null ? null : { started_at: f.started_at as number, id: f.id });
      }
      const kept = (row: PruneRow): boolean => {
        if (step.keepPerSchedule <= 0) return false;
        const f = floor.get(row.schedule_key);
        // Fewer than N runs (or none read): every one is kept.
        if (f === null || f === undefined) return true;
        return row.started_at > f.started_at || (row.started_at === f.started_at && row.id >= f.id);
      };
      return choosePrunable(rows, step, excess, kept);
    } catch (err) {
      throw pgError(err, this.name, `prune runs of ${step.tenant}`);
    }
  }

  protected tenantFenced(tenant: string): void {
    if (this.#epochs.get(tenant) === this.#flushEpochs.get(tenant)) this.#epochs.delete(tenant);
    this.#onFenced?.(tenant);
  }

  /**
   * Writes a batch with its fencing (the module comment): one statement (`flushSql`) unless it
   * replaces job contracts, which needs a transaction of several (`#writeContracts`). Returns
   * the tenants whose rows were refused.
   */
  async #write(
    batch: Batch,
    contractPlugins: ReadonlySet<string>,
    epochs: ReadonlyMap<string, number>,
    gone: Pick<Dirty, 'runsGone' | 'goneTenants'>,
  ): Promise<Set<string>> {
    const epochOf = (t: string): number => epochs.get(t) ?? 0;
    if (contractPlugins.size > 0 || gone.runsGone.size > 0)
      return this.#writeContracts(batch, contractPlugins, epochOf, gone);
    const rowsOf = new Map<string, number>();
    const parts: FlushPart[] = [];
    const arrays: unknown[][] = [];
    for (const [spec, rows] of batch) {
      if (rows.length === 0) continue;
      const tenant = tenantOfRow(spec);
      for (const r of rows) rowsOf.set(tenant(r), (rowsOf.get(tenant(r)) ?? 0) + 1);
      const extra = pgExtra(spec, epochOf);
      parts.push({ spec, extra: extra.columns });
      arrays.push(...columnArrays(spec, rows, extra.values));
    }
    if (parts.length === 0) return new Set();
    const tenants = [...rowsOf.keys()];
    const c = await this.pool.connect();
    try {
      const r = await c.query<{ tenant: string }>(flushSql(parts), [
        tenants,
        tenants.map(epochOf),
        this.owner,
        tenants.map((t) => rowsOf.get(t)),
        ...arrays,
      ]);
      const fenced = new Set(r.rows.map((x) => x.tenant));
      for (const t of fenced) this.fencedRows += rowsOf.get(t) ?? 0;
      return fenced;
    } finally {
      c.release();
    }
  }

  /**
   * A batch that replaces job contracts (a plugin loaded), or deletes runs (retention,
   * `Dirty.runsGone`): one transaction of several statements, as contracts are replaced per
   * plugin (delete its rows, then insert the images), which one statement cannot do to the same
   * row. Lock the tenants' leases, drop fenced tenants' rows, write the rest, delete the runs
   * of the tenants still held (a delete fires no `hg_fence()`: the lock is its fence).
   */
  async #writeContracts(
    batch: Batch,
    contractPlugins: ReadonlySet<string>,
    epochOf: (tenant: string) => number,
    gone: Pick<Dirty, 'runsGone' | 'goneTenants'>,
  ): Promise<Set<string>> {
    const tenants = new Set<string>(gone.goneTenants);
    for (const [spec, rows] of batch) {
      const t = tenantOfRow(spec);
      for (const r of rows) tenants.add(t(r));
    }
    for (const p of contractPlugins) tenants.add(tenantOf(p));
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const leases = await c.query<{ tenant: string; owner: string | null; epoch: number }>(
        'SELECT tenant, owner, epoch FROM hg_shards WHERE tenant = ANY($1) FOR SHARE',
        [[...tenants]],
      );
      const live = new Set<string>();
      for (const l of leases.rows)
        if (l.owner === this.owner && epochOf(l.tenant) === l.epoch) live.add(l.tenant);
      const fenced = new Set([...tenants].filter((t) => !live.has(t)));
      const refused = new Map<string, number>();
      const plugins = [...contractPlugins].filter((p) => live.has(tenantOf(p)));
      if (plugins.length > 0)
        await c.query('DELETE FROM job_contracts WHERE plugin_id = ANY($1)', [plugins]);
      for (const [spec, all] of batch) {
        const tenant = tenantOfRow(spec);
        const rows = all.filter((r) => {
          const t = tenant(r);
          if (live.has(t)) return true;
          refused.set(t, (refused.get(t) ?? 0) + 1);
          return false;
        });
        if (rows.length === 0) continue;
        const extra = pgExtra(spec, epochOf);
        await c.query(upsertSql(spec, extra.columns), columnArrays(spec, rows, extra.values));
      }
      // Retention's deletes (`pruneRuns`): only of tenants still held at this host's epoch.
      if (gone.runsGone.size > 0)
        await c.query(
          'DELETE FROM runs WHERE id = ANY($1) AND tenant = ANY($2) AND status <> ALL($3)',
          [[...gone.runsGone], [...live], OPEN_RUN_STATUSES],
        );
      for (const [t, n] of refused)
        await c.query(
          'INSERT INTO hg_fence_rejections (tenant, owner, epoch, rows) VALUES ($1, $2, $3, $4)',
          [t, this.owner, epochOf(t), n],
        );
      await c.query('COMMIT');
      for (const n of refused.values()) this.fencedRows += n;
      return fenced;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  // ---- the Store interface where it differs from the base's ----

  /** Ids from this host's block (so an insert never waits for the database). */
  protected insertRunRow(run: NewRun): number {
    const id = this.#newId();
    this.mirror.restoreRun({
      ...run,
      id,
      coversUntil: run.coversUntil ?? null,
      pluginVersion: run.pluginVersion ?? null,
      wasmSha256: run.wasmSha256 ?? null,
      logTail: run.logTail ?? null,
    });
    return id;
  }

  enqueueCommand(
    scheduleKey: string,
    action: OperatorAction,
    note: string | null,
    now: number,
  ): number {
    const id = this.#newId();
    this.importCommand(id, scheduleKey, action, note, now);
    this.dirty.commands.add(id);
    this.touch();
    return id;
  }

  // ---- the host lease: on PostgreSQL, hosts hold tenants (src/cluster/), not the store ----

  /** Always granted: several hosts share a PostgreSQL store (tenant leases decide who fires what). */
  acquireLease(claim: LeaseClaim): LeaseResult {
    return this.mirror.acquireLease(claim);
  }
  /** Fails (throws the last flush's error) while PostgreSQL does not take this host's writes. */
  renewLease(owner: string, now: number): boolean {
    if (this.lastFailure) throw this.lastFailure;
    return this.mirror.renewLease(owner, now);
  }
  releaseLease(owner: string): void {
    this.mirror.releaseLease(owner);
  }
  readLease(): HostLease | undefined {
    return this.mirror.readLease();
  }

  protected async closeDurable(): Promise<void> {
    await this.#nextBlock?.catch(() => undefined);
    await this.pool.end();
  }
}
