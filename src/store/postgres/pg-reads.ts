/**
 * What a process that owns no tenant (the CLI) does on a PostgreSQL store: read schedules, runs
 * and operator commands straight from PostgreSQL, and queue an operator command (the one write
 * anyone may make: `operator_commands` carries no epoch; the tenant's owner applies the command
 * and writes its outcome).
 *
 * Reads see what the owners have flushed (committed), not their in-memory mirrors: a row written
 * in the last turn of an owner's event loop may not show yet. Records are the Store's
 * (`ScheduleRecord`, `RunRecord`, `OperatorCommand`), built by the SQLite store's own row
 * mappers: the columns are the same (PostgreSQL adds `epoch`, which no record carries).
 *
 * Order. Schedules as in SQLite: by key, or by local id within a plugin, compared bytewise
 * (`COLLATE "C"`; SQLite's default) whatever the database's collation. Runs newest first by
 * `started_at DESC, id DESC`, not by id alone: a host takes run ids in blocks of 2^20, so ids of
 * runs recorded by different hosts are not in time order (a host still on an early block writes
 * ids below another's older runs). `started_at` is the recording host's clock, so across hosts the
 * order is as good as their clocks agree.
 */
import type pg from 'pg';
import {
  commandFromRow,
  contractFromRow,
  pluginFromRow,
  pluginStateFromRow,
  runFromRow,
  scheduleFromRaw,
  SCHEDULE_SELECT,
} from '../sqlite-store.ts';
import type {
  JobContractRecord,
  OperatorAction,
  OperatorCommand,
  PluginRecord,
  PluginStateRecord,
  RunQuery,
  RunRecord,
  ScheduleQuery,
  ScheduleRecord,
} from '../types.ts';

/** The channel hosts LISTEN on for queued commands (src/cluster/cluster.ts); payload: tenant. */
export const COMMANDS_CHANNEL = 'hg_commands';

/** `q` as SQLite's `listSchedules` reads it (default states: the live ones). */
export async function listSchedules(db: pg.Pool, q: ScheduleQuery = {}): Promise<ScheduleRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  if (q.pluginId !== undefined) where.push(`plugin_id = ${p(q.pluginId)}`);
  if (q.tenant !== undefined) where.push(`tenant = ${p(q.tenant)}`);
  where.push(`state = ANY(${p(q.states ?? ['active', 'paused', 'completed'])}::text[])`);
  const orderCol = q.pluginId !== undefined ? 'local_id' : 'key';
  if (q.after !== undefined) where.push(`${orderCol} COLLATE "C" > ${p(q.after)}`);
  const limit = q.limit === undefined ? '' : ` LIMIT ${p(q.limit)}`;
  const r = await db.query<unknown[]>({
    text: `SELECT ${SCHEDULE_SELECT} FROM schedules WHERE ${where.join(' AND ')}
           ORDER BY ${orderCol} COLLATE "C"${limit}`,
    values: params,
    rowMode: 'array',
  });
  return r.rows.map(scheduleFromRaw);
}

/** Every plugin row, by id (bytewise, as SQLite orders them). */
export async function listPlugins(db: pg.Pool): Promise<PluginRecord[]> {
  const r = await db.query<Record<string, unknown>>(
    `SELECT id, tenant, name, version, manifest_path, wasm_sha256, status, error, updated_at
     FROM plugins ORDER BY id COLLATE "C"`,
  );
  return r.rows.map(pluginFromRow);
}

/** Runs newest first (see the head comment), at most `q.limit` (default 100). */
export async function listRuns(db: pg.Pool, q: RunQuery = {}): Promise<RunRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  if (q.scheduleKey !== undefined) where.push(`schedule_key = ${p(q.scheduleKey)}`);
  if (q.pluginId !== undefined) where.push(`plugin_id = ${p(q.pluginId)}`);
  if (q.status !== undefined) where.push(`status = ${p(q.status)}`);
  if (q.tenant !== undefined) where.push(`tenant = ${p(q.tenant)}`);
  if (q.since !== undefined) where.push(`started_at >= ${p(q.since)}`);
  if (q.until !== undefined) where.push(`started_at < ${p(q.until)}`);
  if (q.before !== undefined)
    where.push(`(started_at, id) < (${p(q.before.startedAt)}, ${p(q.before.id)})`);
  const r = await db.query<Record<string, unknown>>(
    `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY started_at DESC, id DESC LIMIT ${p(q.limit ?? 100)}`,
    params,
  );
  return r.rows.map(runFromRow);
}

/** One run by id. */
export async function getRun(db: pg.Pool, id: number): Promise<RunRecord | undefined> {
  const r = await db.query<Record<string, unknown>>('SELECT * FROM runs WHERE id = $1', [id]);
  return r.rows[0] ? runFromRow(r.rows[0]) : undefined;
}

/** One schedule by key, in any state. */
export async function getSchedule(db: pg.Pool, key: string): Promise<ScheduleRecord | undefined> {
  const r = await db.query<unknown[]>({
    text: `SELECT ${SCHEDULE_SELECT} FROM schedules WHERE key = $1`,
    values: [key],
    rowMode: 'array',
  });
  return r.rows[0] ? scheduleFromRaw(r.rows[0]) : undefined;
}

/** Job contracts (of one plugin), by plugin id then name. */
export async function listJobContracts(
  db: pg.Pool,
  pluginId?: string,
): Promise<JobContractRecord[]> {
  const r = await db.query<Record<string, unknown>>(
    `SELECT plugin_id, name, contract, updated_at FROM job_contracts
     ${pluginId === undefined ? '' : 'WHERE plugin_id = $1'}
     ORDER BY plugin_id COLLATE "C", name COLLATE "C"`,
    pluginId === undefined ? [] : [pluginId],
  );
  return r.rows.map(contractFromRow);
}

/** A plugin's state (its Extism variables), if it has a row. */
export async function getPluginState(
  db: pg.Pool,
  pluginId: string,
): Promise<PluginStateRecord | undefined> {
  const r = await db.query<Record<string, unknown>>(
    'SELECT plugin_id, tenant, vars, bytes, updated_at FROM plugin_state WHERE plugin_id = $1',
    [pluginId],
  );
  return r.rows[0] ? pluginStateFromRow(r.rows[0]) : undefined;
}

/** The state of a schedule's row, if it has one. */
export async function scheduleState(
  db: pg.Pool,
  key: string,
): Promise<ScheduleRecord['state'] | undefined> {
  const r = await db.query<{ state: ScheduleRecord['state'] }>(
    'SELECT state FROM schedules WHERE key = $1',
    [key],
  );
  return r.rows[0]?.state;
}

/** The live owner of a tenant (its lease held and not expired by the database's clock). */
export interface TenantOwner {
  readonly owner: string;
  readonly pid: number | null;
  readonly hostName: string | null;
}

export async function tenantOwner(db: pg.Pool, tenant: string): Promise<TenantOwner | undefined> {
  const r = await db.query<{ owner: string; pid: number | null; host_name: string | null }>(
    `SELECT s.owner, h.pid, h.host_name FROM hg_shards s LEFT JOIN hg_hosts h ON h.owner = s.owner
     WHERE s.tenant = $1 AND s.owner IS NOT NULL AND s.expires_at >= now()`,
    [tenant],
  );
  const row = r.rows[0];
  return row && { owner: row.owner, pid: row.pid, hostName: row.host_name };
}

/**
 * Queues a command and wakes the hosts (`NOTIFY`, delivered when the statement commits: one
 * statement, so one transaction and one round trip). Returns its id (below 2^40: hosts' ids
 * come from blocks above it).
 */
export async function queueCommand(
  db: pg.Pool,
  key: string,
  action: OperatorAction,
  note: string | null,
  now: number,
): Promise<number> {
  const r = await db.query<{ id: number }>(
    `WITH c AS (INSERT INTO operator_commands (schedule_key, action, note, created_at)
                VALUES ($1, $2, $3, $4) RETURNING id, tenant)
     SELECT c.id, pg_notify($5, c.tenant) FROM c`,
    [key, action, note, now, COMMANDS_CHANNEL],
  );
  return (r.rows[0] as { id: number }).id;
}

export async function getCommand(db: pg.Pool, id: number): Promise<OperatorCommand | undefined> {
  const r = await db.query<Record<string, unknown>>(
    'SELECT * FROM operator_commands WHERE id = $1',
    [id],
  );
  return r.rows[0] && commandFromRow(r.rows[0]);
}
