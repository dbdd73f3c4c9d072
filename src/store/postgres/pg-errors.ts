/**
 * What node-postgres throws, as `HourglassError`s with stable codes (the SQLite store's rules,
 * sqlite-errors.ts, for PostgreSQL):
 * - `HG_STORE_FENCED`: a write carried a stale lease epoch (hg_fence(), SQLSTATE `HGF01`);
 * - `HG_STORE_WRITE`: the database cannot take writes now (connection refused or lost, server
 *   shutting down, out of space, statement timeout, serialization failure): the host retries;
 * - `HG_STORE`: everything else (a bug's constraint violation, bad SQL).
 */
import { errorMessage, HourglassError, type ErrorCode } from '../../errors.ts';

/** SQLSTATE of a stale-epoch refusal (raised by hg_fence()). */
export const FENCE_SQLSTATE = 'HGF01';

/** SQLSTATE classes and codes that mean "the database is unavailable or overloaded". */
const TRANSIENT_CLASSES = ['08', '53', '57', '58', '40'];
const TRANSIENT_CODES = new Set(['55P03', '57014']);

export function pgCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

export function classifyPg(err: unknown): ErrorCode {
  const code = pgCode(err);
  if (code === FENCE_SQLSTATE) return 'HG_STORE_FENCED';
  if (code === null) return 'HG_STORE_WRITE'; // socket errors, "Connection terminated", timeouts
  if (/^[A-Z]+$/.test(code)) return 'HG_STORE_WRITE'; // ECONNREFUSED, ECONNRESET, ETIMEDOUT
  if (TRANSIENT_CODES.has(code) || TRANSIENT_CLASSES.includes(code.slice(0, 2)))
    return 'HG_STORE_WRITE';
  return 'HG_STORE';
}

export function pgError(err: unknown, name: string, what: string): HourglassError {
  if (err instanceof HourglassError) return err;
  const code = pgCode(err);
  return new HourglassError(
    classifyPg(err),
    `store '${name}': ${what} failed: ${code === null ? '' : `${code}: `}${errorMessage(err)}`,
    { cause: err },
  );
}
