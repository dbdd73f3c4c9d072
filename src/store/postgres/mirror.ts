/**
 * Row images between the PostgreSQL store's in-memory mirror (a `SqliteStore` on `:memory:`)
 * and PostgreSQL: read the current rows of given keys from the mirror, build the upsert that
 * writes them to PostgreSQL with their tenant's epoch, and copy a tenant's rows from PostgreSQL
 * into the mirror when the host takes the tenant (and drop them when it gives it up).
 *
 * Images, not statements: a flush writes each changed row's current state, so writing the same
 * image twice (a retry after a lost connection) changes nothing, and several changes of one row
 * in a burst cost one write.
 */
import type Database from 'better-sqlite3';
import { CONTRACTS, tenantOf, type TableSpec } from './tables.ts';

export type RowImage = unknown[];

const selects = new WeakMap<Database.Database, Map<string, Database.Statement>>();

function selectOf(db: Database.Database, spec: TableSpec): Database.Statement {
  let m = selects.get(db);
  if (!m) selects.set(db, (m = new Map()));
  let st = m.get(spec.name);
  if (!st) {
    st = db
      .prepare(
        `SELECT ${spec.columns.map((c) => c[0]).join(', ')} FROM ${spec.name}
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

/**
 * `INSERT … SELECT * FROM unnest(…) ON CONFLICT DO UPDATE`: many rows in one statement, one
 * array parameter per column, then the `extra` columns (e.g. `epoch`, `tenant`).
 */
export function upsertSql(
  spec: TableSpec,
  extra: readonly (readonly [string, string])[],
  onConflict: 'update' | 'nothing' = 'update',
): string {
  const cols = [...spec.columns, ...extra];
  const names = cols.map((c) => c[0]);
  const arrays = cols.map((c, i) => `$${i + 1}::${c[1]}[]`).join(', ');
  const updates = names
    .filter((n) => n !== spec.key)
    .map((n) => `${n} = EXCLUDED.${n}`)
    .join(', ');
  const conflict = spec === CONTRACTS ? '(plugin_id, name)' : `(${spec.key})`;
  return (
    `INSERT INTO ${spec.name} (${names.join(', ')}) SELECT * FROM unnest(${arrays}) ` +
    (onConflict === 'update'
      ? `ON CONFLICT ${conflict} DO UPDATE SET ${updates}`
      : `ON CONFLICT ${conflict} DO NOTHING`)
  );
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

/** Index of the column that names a row's tenant (its own `tenant`, or the key's first segment). */
export function tenantOfRow(spec: TableSpec): (row: RowImage) => string {
  const t = spec.columns.findIndex((c) => c[0] === 'tenant');
  if (t >= 0) return (row) => row[t] as string;
  const k = spec.columns.findIndex(
    (c) => c[0] === (spec === CONTRACTS ? 'plugin_id' : 'schedule_key'),
  );
  return (row) => tenantOf(row[k] as string);
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
    `INSERT OR REPLACE INTO ${spec.name} (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
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
  db.prepare('DELETE FROM operator_commands WHERE substr(schedule_key, 1, ?) = ?').run(
    prefix.length,
    prefix,
  );
  db.prepare('DELETE FROM schedule_counts WHERE tenant = ?').run(tenant);
}
