/**
 * The CLI on a PostgreSQL store (config `store.postgres`, or `HOURGLASS_POSTGRES_URL`).
 *
 * Reads (`schedules`, `runs`) go to PostgreSQL directly (src/store/postgres/pg-reads.ts): what the
 * hosts have committed, whichever host owns which tenant.
 *
 * Commands are queued in `operator_commands` with a `NOTIFY hg_commands` in the same
 * transaction, so the host owning the schedule's tenant applies it at once (it LISTENs; it also
 * polls every cluster tick, ≤ 1 s, in case a notification was lost). When a live host owns the
 * tenant, the CLI waits for the outcome the host writes back (polling the row: 2 ms, doubling to
 * 50 ms). When none does (no lease row, a free one, or one expired by the database's clock),
 * the command stays queued until a host takes the tenant (that host applies the commands it finds
 * pending), and the CLI says so. Unlike on SQLite, the CLI never changes a schedule itself: only
 * a tenant's owner writes its rows (its lease epoch fences every write), and a host that takes
 * the tenant later would not see a change made beside it.
 *
 * The database must already have the schema (a host migrates it when it starts); the CLI reads
 * the schema version and refuses a missing or newer one, and changes nothing else.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { PostgresConfig } from '../config/host-config.ts';
import { HourglassError } from '../errors.ts';
import { pgError } from '../store/postgres/pg-errors.ts';
import {
  getCommand,
  getPluginState,
  listPlugins,
  listRuns,
  getRun,
  getSchedule,
  listJobContracts,
  listSchedules,
  queueCommand,
  scheduleState,
  tenantOwner,
} from '../store/postgres/pg-reads.ts';
import { currentVersion, PG_SCHEMA_VERSION } from '../store/postgres/pg-schema.ts';
import { PG_TYPES, redactUrl } from '../store/postgres/pg-store.ts';
import { patchedRecord } from '../store/schedule-record.ts';
import { replicaOwner } from '../host/replica.ts';
import { tenantOf } from '../store/postgres/tables.ts';
import type { OperatorAction, OperatorCommand } from '../store/types.ts';
import { hostOutcome, type CommandOutcome, type OperatorStore } from './operator-store.ts';

/** How long a command waits for the owning host's outcome before the CLI gives up waiting. */
const WAIT_MS = 10_000;
const FIRST_POLL_MS = 2;
const MAX_POLL_MS = 50;

export interface PgCommandOutcome extends CommandOutcome {
  /** The queued row as last read (absent when nothing was queued). */
  readonly command?: OperatorCommand;
}

/**
 * Connects and checks the schema. The pool holds one connection unless told otherwise (the CLI
 * runs one query at a time; the HTTP API several).
 */
export async function openPgOperatorStore(
  pgc: PostgresConfig,
  opts: { readonly connections?: number } = {},
): Promise<OperatorStore> {
  const name = redactUrl(pgc.url);
  const pool = new pg.Pool({
    connectionString: pgc.url,
    max: opts.connections ?? 1,
    statement_timeout: pgc.statementTimeoutMs,
    connectionTimeoutMillis: 5_000,
    types: PG_TYPES,
  });
  pool.on('error', () => undefined);
  const wrap =
    <A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        throw pgError(err, name, what);
      }
    };
  try {
    await wrap('open', () => checkSchema(pool, name))();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return {
    // An every-host template fires nowhere itself (its copies, one per host, each have their
    // own next run: docs/cluster.md): no next run of its own to show.
    listSchedules: wrap('listing schedules', async (q) =>
      (await listSchedules(pool, q)).map((s) =>
        s.scope === 'host' && replicaOwner(s.tenant) === null
          ? patchedRecord(s, { nextAt: null })
          : s,
      ),
    ),
    getSchedule: wrap('reading a schedule', (key) => getSchedule(pool, key)),
    listRuns: wrap('listing runs', (q) => listRuns(pool, q)),
    getRun: wrap('reading a run', (id) => getRun(pool, id)),
    listJobContracts: wrap('listing job contracts', (pluginId) => listJobContracts(pool, pluginId)),
    listPlugins: wrap('listing plugins', () => listPlugins(pool)),
    getPluginState: wrap("reading a plugin's state", (pluginId) => getPluginState(pool, pluginId)),
    applyCommand: wrap('an operator command', (key, action, note) =>
      sendPgCommand(pool, key, action, note),
    ),
    close: () => pool.end(),
  };
}

async function checkSchema(pool: pg.Pool, name: string): Promise<void> {
  const c = await pool.connect();
  let version: number;
  try {
    version = await currentVersion(c);
  } finally {
    c.release();
  }
  if (version === 0)
    throw new HourglassError(
      'HG_STORE',
      `no Hourglass store in ${name} (start a host on it first, or pass --config / --store)`,
    );
  if (version > PG_SCHEMA_VERSION)
    throw new HourglassError(
      'HG_STORE_VERSION',
      `store '${name}' has schema version ${version}; this Hourglass knows up to ${PG_SCHEMA_VERSION}`,
    );
}

/** Queues a command for the tenant's owner and waits for its outcome (see the head comment). */
export async function sendPgCommand(
  pool: pg.Pool,
  key: string,
  action: OperatorAction,
  note: string | null,
  waitMs = WAIT_MS,
): Promise<PgCommandOutcome> {
  const tenant = tenantOf(key);
  const owner = await tenantOwner(pool, tenant);
  if (!owner) {
    // A plugin's state is cleared by the tenant's next owner (`clear_state` names no schedule).
    const state = action === 'clear_state' ? 'active' : await scheduleState(pool, key);
    if (state !== 'active' && state !== 'paused' && state !== 'completed')
      return {
        via: 'store',
        ok: false,
        code: 'not_found',
        message: `not_found: schedule '${key}' does not exist`,
      };
    const id = await queueCommand(pool, key, action, note, Date.now());
    return {
      via: 'queued',
      ok: true,
      message: `no host owns tenant ${tenant} now; the ${action} of ${key} is queued (command ${id}) until a host takes the tenant`,
      ...withCommand(await getCommand(pool, id)),
    };
  }
  const id = await queueCommand(pool, key, action, note, Date.now());
  const deadline = Date.now() + waitMs;
  let pause = FIRST_POLL_MS;
  for (;;) {
    const cmd = await getCommand(pool, id);
    if (cmd?.appliedAt != null && cmd.result)
      return { ...hostOutcome(cmd.result, action, key), command: cmd };
    if (Date.now() >= deadline) {
      const where = owner.pid === null ? '' : ` (pid ${owner.pid} on ${owner.hostName})`;
      return {
        via: 'host',
        ok: false,
        code: 'timed_out',
        message: `the host owning tenant ${tenant}${where} did not apply the command within ${waitMs} ms; it stays queued (command ${id})`,
        ...withCommand(cmd),
      };
    }
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
    pause = Math.min(pause * 2, MAX_POLL_MS);
  }
}

function withCommand(cmd: OperatorCommand | undefined): { command?: OperatorCommand } {
  return cmd ? { command: cmd } : {};
}
