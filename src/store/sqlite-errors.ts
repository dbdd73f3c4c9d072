/**
 * Turns what better-sqlite3 throws into `HourglassError`s with a stable code, so that no store
 * failure reaches an operator or a caller without an `HG_` code:
 * - `HG_STORE_CORRUPT`: the file is damaged (`SQLITE_CORRUPT*`, `SQLITE_NOTADB`, a row that no
 *   longer parses), whatever the operation;
 * - `HG_STORE_WRITE`: a write failed for a reason outside the host's logic (disk full, I/O
 *   error, read-only file, lock held too long, out of memory): the host degrades and retries;
 * - `HG_STORE`: everything else (open failures, a constraint a bug violated, a closed store).
 * SQLite's own code stays in the message and the original error in `cause`.
 */
import { errorMessage, HourglassError, type ErrorCode } from '../errors.ts';

/**
 * Refuses a store path with a NUL byte (`HG_CONFIG_INVALID`): better-sqlite3 would silently cut
 * the path there and open another file. Checked before anything is opened or spawned.
 */
export function assertStorePath(path: string): void {
  if (path.includes('\0'))
    throw new HourglassError(
      'HG_CONFIG_INVALID',
      `store path contains a NUL byte: ${JSON.stringify(path)}`,
    );
}

/** SQLite result codes (primary, before `_`) that mean "the store cannot take writes now". */
const WRITE_FAILURES = new Set([
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_READONLY',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_NOMEM',
  'SQLITE_CANTOPEN',
  'SQLITE_PROTOCOL',
]);

/** The SQLite error code of `err` (e.g. `SQLITE_IOERR_WRITE`), if it is one. */
export function sqliteCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : null;
}

function primary(code: string): string {
  const i = code.indexOf('_', 'SQLITE_'.length);
  return i < 0 ? code : code.slice(0, i);
}

export function classify(err: unknown, write: boolean): ErrorCode {
  const code = sqliteCode(err);
  if (code === null) return err instanceof SyntaxError ? 'HG_STORE_CORRUPT' : 'HG_STORE';
  const p = primary(code);
  if (p === 'SQLITE_CORRUPT' || p === 'SQLITE_NOTADB') return 'HG_STORE_CORRUPT';
  if (write && WRITE_FAILURES.has(p)) return 'HG_STORE_WRITE';
  return 'HG_STORE';
}

/** Wraps `err` (an `HourglassError` passes through unchanged). */
export function storeError(err: unknown, path: string, what: string, write: boolean) {
  if (err instanceof HourglassError) return err;
  const code = sqliteCode(err);
  return new HourglassError(
    classify(err, write),
    `store '${path}': ${what} failed: ${code === null ? '' : `${code}: `}${errorMessage(err)}`,
    { cause: err },
  );
}

/** Codes that mean the store is failing (not the caller): the host reports them and retries. */
export function isStoreFailure(err: unknown): err is HourglassError {
  return (
    err instanceof HourglassError &&
    (err.code === 'HG_STORE_WRITE' || err.code === 'HG_STORE_CORRUPT')
  );
}
