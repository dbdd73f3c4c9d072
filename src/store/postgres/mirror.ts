/**
 * Row images between the PostgreSQL store's mirror (a `SqliteStore`, write-behind.ts) and
 * PostgreSQL: read the current rows of given keys from the mirror, build the upsert that
 * writes them to PostgreSQL with their tenant's epoch (and the flush that writes a whole batch
 * in one statement, `flushSql`), and copy a tenant's rows from PostgreSQL into the mirror when
 * the host takes the tenant (and drop them when it gives it up).
 *
 * Images, not statements: a flush writes each changed row's current state, so writing the same
 * image twice (a retry after a lost connection) changes nothing, and several changes of one row
 * in a burst cost one write.
 */
import type Database from 'better-sqlite3';
import { COMMANDS, CONTRACTS, columnsOf, tenantOf, type TableSpec } from './tables.ts';

export type RowImage = unknown[];

const selects = new WeakMap<Database.Database, Map<string, Database.Statement>>();

function selectOf(db: Database.Database, spec: TableSpec): Database.Statement {
  let m = selects.get(db);
  if (!m) selects.set(db, (m = new Map()));
  let st = m.get(spec.name);
  if (!st) {
    st = db
      .prepare(
        `SELECT ${columnsOf(spec)} FROM ${spec.name}
         WHERE ${spec.key} IN (SELECT value FROM json_each(?))`,
      )
      .raw();
    m.set(spec.name, st);
  }
  return st;
}

/** The mirror's current rows with these keys (absent keys: no row, e.g. a rolled-back insert). */
export function readImages(
  db: Database.Database,
  spec: TableSpec,
  keys: Iterable<unknown>,
): RowImage[] {
  const list = [...keys];
  if (list.length === 0) return [];
  return selectOf(db, spec).all(JSON.stringify(list)) as RowImage[];
}

export interface UpsertOptions {
  /** On a key already present: update the row (the default) or keep it. */
  readonly onConflict?: 'update' | 'nothing';
  /** Parameters before the statement's own arrays (they are `$offset+1`, …). @defaultValue 0 */
  readonly offset?: number;
  /** Only the rows for which this holds; it names them `r` (`r.<column>`, see `tenantSql`). */
  readonly where?: string;
}

/**
 * `INSERT … SELECT * FROM unnest(…) ON CONFLICT DO UPDATE`: many rows in one statement, one
 * array parameter per column, then the `extra` columns (e.g. `epoch`, `tenant`).
 */
export function upsertSql(
  spec: TableSpec,
  extra: readonly (readonly [string, string])[],
  opts: UpsertOptions = {},
): string {
  const cols = [...spec.columns, ...extra];
  const names = cols.map((c) => c[0]);
  const offset = opts.offset ?? 0;
  const arrays = cols.map((c, i) => `$${offset + i + 1}::${c[1]}[]`).join(', ');
  const updates = names
    .filter((n) => n !== spec.key)
    .map((n) => `${n} = EXCLUDED.${n}`)
    .join(', ');
  const conflict = spec === CONTRACTS ? '(plugin_id, name)' : `(${spec.key})`;
  const rows =
    opts.where === undefined
      ? `SELECT * FROM unnest(${arrays})`
      : `SELECT * FROM unnest(${arrays}) AS r(${names.join(', ')}) WHERE ${opts.where}`;
  return (
    `INSERT INTO ${spec.name} (${names.join(', ')}) ${rows} ` +
    ((opts.onConflict ?? 'update') === 'update'
      ? `ON CONFLICT ${conflict} DO UPDATE SET ${updates}`
      : `ON CONFLICT ${conflict} DO NOTHING`)
  );
}

/** A table's part of a one-statement flush (`flushSql`): the extra columns its rows carry. */
export interface FlushPart {
  readonly spec: TableSpec;
  readonly extra: readonly (readonly [string, string])[];
}

/** Parameters of `flushSql` before the parts' arrays. */
const FLUSH_PARAMS = 4;

/**
 * A flush as one statement (one round trip, its own transaction; the fencing argument is in
 * pg-store.ts). Parameters: `$1` the batch's tenants, `$2` the epoch this host holds each under,
 * `$3` the owner, `$4` each tenant's rows in the batch; then each part's arrays (`columnArrays`)
 * in order. `lease` locks (`FOR SHARE`) the lease rows of the tenants this host still holds at
 * those epochs; each part upserts only its rows of tenants in `lease` (so `lease` is read, and
 * its rows locked, before a row is written); `refused` records in `hg_fence_rejections` each
 * tenant not in `lease`, with its count of rows; the statement returns those tenants.
 */
export function flushSql(parts: readonly FlushPart[]): string {
  const ctes = [
    `lease AS MATERIALIZED (SELECT s.tenant FROM hg_shards s
       JOIN unnest($1::text[], $2::bigint[]) AS b(tenant, epoch)
         ON s.tenant = b.tenant AND s.epoch = b.epoch
       WHERE s.owner = $3 FOR SHARE OF s)`,
  ];
  let offset = FLUSH_PARAMS;
  parts.forEach((p, i) => {
    const where = `${tenantSql(p.spec)} IN (SELECT tenant FROM lease)`;
    ctes.push(`w${i} AS (${upsertSql(p.spec, p.extra, { offset, where })})`);
    offset += p.spec.columns.length + p.extra.length;
  });
  ctes.push(
    `refused AS (INSERT INTO hg_fence_rejections (tenant, owner, epoch, rows)
       SELECT b.tenant, $3, b.epoch, b.rows
       FROM unnest($1::text[], $2::bigint[], $4::integer[]) AS b(tenant, epoch, rows)
       WHERE b.tenant NOT IN (SELECT tenant FROM lease)
       RETURNING tenant)`,
  );
  return `WITH ${ctes.join(',\n')}\nSELECT tenant FROM refused`;
}

/** Column arrays (one per column, then one per extra value function) for `upsertSql`. */
export function columnArrays(
  spec: TableSpec,
  rows: readonly RowImage[],
  extra: readonly ((row: RowImage) => unknown)[],
): unknown[][] {
  const n = spec.columns.length;
  const out: unknown[][] = Array.from({ length: n + extra.length }, () => []);
  for (const r of rows) {
    for (let i = 0; i < n; i++) (out[i] as unknown[]).push(r[i] ?? null);
    for (let j = 0; j < extra.length; j++)
      (out[n + j] as unknown[]).push((extra[j] as (row: RowImage) => unknown)(r));
  }
  return out;
}

/** A row's tenant: its own `tenant` column, or the key's first segment (contracts, commands). */
export function tenantOfRow(spec: TableSpec): (row: RowImage) => string {
  const t = spec.columns.findIndex((c) => c[0] === 'tenant');
  if (t >= 0) return (row) => row[t] as string;
  const k = spec.columns.findIndex((c) => c[0] === tenantKeyOf(spec));
  return (row) => tenantOf(row[k] as string);
}

/** `tenantOfRow` in SQL, for `upsertSql`'s `where` (rows named `r`; `split_part` as `tenantOf`). */
export function tenantSql(spec: TableSpec): string {
  return spec.columns.some((c) => c[0] === 'tenant')
    ? 'r.tenant'
    : `split_part(r.${tenantKeyOf(spec)}, '/', 1)`;
}

function tenantKeyOf(spec: TableSpec): string {
  return spec === CONTRACTS ? 'plugin_id' : 'schedule_key';
}

/**
 * What PostgreSQL adds to a table's rows, for `upsertSql` and `columnArrays`: the epoch the
 * row's tenant is held under (and `tenant` for contracts); commands carry neither (their
 * `tenant` is a generated column).
 */
export function pgExtra(
  spec: TableSpec,
  epochOf: (tenant: string) => number,
): { columns: readonly (readonly [string, string])[]; values: ((row: RowImage) => unknown)[] } {
  if (spec === COMMANDS) return { columns: [], values: [] };
  const tenant = tenantOfRow(spec);
  const epoch = (r: RowImage): number => epochOf(tenant(r));
  if (spec === CONTRACTS)
    return {
      columns: [
        ['tenant', 'text'],
        ['epoch', 'bigint'],
      ],
      values: [tenant, epoch],
    };
  return { columns: [['epoch', 'bigint']], values: [epoch] };
}

/** Rows (as objects with the spec's column names) into the mirror, replacing rows with their key. */
export function importRows(
  db: Database.Database,
  spec: TableSpec,
  rows: readonly Record<string, unknown>[],
): void {
  if (rows.length === 0) return;
  const names = spec.columns.map((c) => c[0]);
  const st = db.prepare(
    `INSERT OR REPLACE INTO ${spec.name} (${columnsOf(spec)}) VALUES (${names.map(() => '?').join(', ')})`,
  );
  for (const r of rows) st.run(names.map((n) => r[n] ?? null));
}

/** Recounts a tenant's live schedules in the mirror (after its rows were copied in or out). */
export function recountTenant(db: Database.Database, tenant: string): void {
  db.prepare('DELETE FROM schedule_counts WHERE tenant = ?').run(tenant);
  db.prepare(
    `INSERT INTO schedule_counts (tenant, plugin_id, live)
     SELECT tenant, plugin_id, COUNT(*) FROM schedules
     WHERE tenant = ? AND state IN ('active', 'paused', 'completed') GROUP BY tenant, plugin_id`,
  ).run(tenant);
}

/** Removes every row of a tenant from the mirror. */
export function dropTenantRows(db: Database.Database, tenant: string): void {
  const prefix = `${tenant}/`;
  db.prepare('DELETE FROM runs WHERE tenant = ?').run(tenant);
  db.prepare('DELETE FROM schedules WHERE tenant = ?').run(tenant);
  db.prepare('DELETE FROM job_contracts WHERE substr(plugin_id, 1, ?) = ?').run(
    prefix.length,
    prefix,
  );
  db.prepare('DELETE FROM plugins WHERE tenant = ?').run(tenant);
  db.prepare('DELETE FROM plugin_state WHERE tenant = ?').run(tenant);
  db.prepare('DELETE FROM operator_commands WHERE substr(schedule_key, 1, ?) = ?').run(
    prefix.length,
    prefix,
  );
  db.prepare('DELETE FROM schedule_counts WHERE tenant = ?').run(tenant);
}
