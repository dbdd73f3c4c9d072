/**
 * The PostgreSQL store's numbered migrations (`migrations/NNNN_name.sql`, applied in order, each
 * in its own transaction) and its version check: the schema version lives in `hg_meta`. Hosts
 * that start together migrate under an advisory lock, so exactly one applies each migration; a
 * database written by a newer Hourglass is refused (`HG_STORE_VERSION`) before anything changes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { HourglassError } from '../../errors.ts';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Any constant: the advisory lock every Hourglass host takes to migrate. */
const MIGRATION_LOCK = 0x48_47_4d_49; // "HGMI"

interface Migration {
  readonly version: number;
  readonly sql: string;
}

function migrations(): Migration[] {
  return readdirSync(DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), sql: readFileSync(join(DIR, f), 'utf8') }));
}

export const PG_SCHEMA_VERSION = migrations().at(-1)?.version ?? 0;

/** The schema version of the database (0: no Hourglass schema yet). */
export async function currentVersion(c: pg.ClientBase): Promise<number> {
  const t = await c.query<{ t: string | null }>("SELECT to_regclass('hg_meta')::text AS t");
  if (t.rows[0]?.t == null) return 0;
  const v = await c.query<{ value: string }>(
    "SELECT value FROM hg_meta WHERE key = 'schema_version'",
  );
  return Number(v.rows[0]?.value ?? 0);
}

/** Brings the database to this version's schema; refuses a newer one. */
export async function migrate(pool: pg.Pool, name: string): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      const current = await currentVersion(c);
      if (current > PG_SCHEMA_VERSION) {
        throw new HourglassError(
          'HG_STORE_VERSION',
          `store '${name}' has schema version ${current}; this Hourglass knows up to ${PG_SCHEMA_VERSION}`,
        );
      }
      for (const m of migrations().filter((x) => x.version > current)) {
        await c.query('BEGIN');
        try {
          await c.query(m.sql);
          await c.query(
            `INSERT INTO hg_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
            [String(m.version)],
          );
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    }
  } finally {
    c.release();
  }
}
