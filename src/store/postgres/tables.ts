/**
 * The tables the PostgreSQL store copies between its in-memory mirror (SQLite, same columns as
 * the SQLite store) and PostgreSQL, described once: their columns with PostgreSQL types, and the
 * key rows are found by. PostgreSQL's tables add `epoch` (and `tenant` where SQLite has none);
 * everything else is the same column for column, so a row image moves unchanged.
 */

export interface TableSpec {
  readonly name: string;
  /** Columns shared by both databases, with their PostgreSQL array types for `unnest`. */
  readonly columns: readonly (readonly [name: string, pgType: string])[];
  /** The primary key, a column of `columns`. */
  readonly key: string;
  /**
   * The columns a row's later writes may change (the others are written once, with the row);
   * absent: any. An upsert of an existing row sets only these, so it leaves the indexes on the
   * others alone.
   */
  readonly updatable?: readonly string[];
}

const T = 'text';
const B = 'bigint';

export const PLUGINS: TableSpec = {
  name: 'plugins',
  key: 'id',
  columns: [
    ['id', T],
    ['tenant', T],
    ['name', T],
    ['version', T],
    ['manifest_path', T],
    ['wasm_sha256', T],
    ['status', T],
    ['error', T],
    ['updated_at', B],
  ],
};

export const SCHEDULES: TableSpec = {
  name: 'schedules',
  key: 'key',
  columns: [
    ['key', T],
    ['plugin_id', T],
    ['tenant', T],
    ['local_id', T],
    ['origin', T],
    ['spec', T],
    ['jitter', T],
    ['jitter_ms', B],
    ['payload', T],
    ['overlap', T],
    ['misfire', T],
    ['description', T],
    ['decl_hash', T],
    ['state', T],
    ['pause_note', T],
    ['anchor_at', B],
    ['next_at', B],
    ['cursor', T],
    ['buffered_at', B],
    ['created_at', B],
    ['updated_at', B],
    ['generation', B],
    ['scope', T],
    ['priority', 'integer'],
    ['retry', T],
    ['job', T],
    ['breaker_after', B],
    ['fail_streak', B],
  ],
};

export const RUNS: TableSpec = {
  name: 'runs',
  key: 'id',
  columns: [
    ['id', B],
    ['schedule_key', T],
    ['plugin_id', T],
    ['tenant', T],
    ['local_id', T],
    ['trigger', T],
    ['status', T],
    ['reason', T],
    ['scheduled_at', B],
    ['started_at', B],
    ['finished_at', B],
    ['attempt', 'integer'],
    ['error', T],
    ['output_bytes', B],
    ['fuel_used', B],
    ['fuel_budget', B],
    ['result', T],
    ['covers_until', B],
    ['plugin_version', T],
    ['wasm_sha256', T],
    ['log_tail', T],
  ],
  // A run's start (`waiting` → `running`) and its outcome; nothing else changes a run row.
  updatable: [
    'status',
    'reason',
    'started_at',
    'finished_at',
    'error',
    'output_bytes',
    'fuel_used',
    'fuel_budget',
    'result',
    'plugin_version',
    'wasm_sha256',
    'log_tail',
  ],
};

/** Plugin state (Extism variables), one row per plugin written whole: a plain image per change. */
export const PLUGIN_STATE: TableSpec = {
  name: 'plugin_state',
  key: 'plugin_id',
  columns: [
    ['plugin_id', T],
    ['tenant', T],
    ['vars', T],
    ['bytes', B],
    ['updated_at', B],
  ],
};

/** Job contracts: PostgreSQL adds `tenant` (the plugin id's first segment) for fencing. */
export const CONTRACTS: TableSpec = {
  name: 'job_contracts',
  key: 'plugin_id',
  columns: [
    ['plugin_id', T],
    ['name', T],
    ['contract', T],
    ['updated_at', B],
  ],
};

/** Operator commands: the owner writes only their outcome (`tenant` is generated in PostgreSQL). */
export const COMMANDS: TableSpec = {
  name: 'operator_commands',
  key: 'id',
  columns: [
    ['id', B],
    ['schedule_key', T],
    ['action', T],
    ['note', T],
    ['created_at', B],
    ['applied_at', B],
    ['result', T],
  ],
};

/** A table's column names, comma-separated, in the spec's order (for SELECT and INSERT lists). */
export function columnsOf(spec: TableSpec): string {
  return spec.columns.map((c) => c[0]).join(', ');
}

/** The tenant of a plugin id (`<tenant>/<name>`) or schedule key (`<tenant>/<plugin>/<id>`). */
export function tenantOf(id: string): string {
  const i = id.indexOf('/');
  return i < 0 ? id : id.slice(0, i);
}
