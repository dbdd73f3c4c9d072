/**
 * Host errors. Every error the host raises carries a stable `code` (documented in
 * docs/errors.md; a unit test keeps the two in step). Tests and callers match on `code`,
 * never on message text. Guest outcomes are values, not exceptions (see sandbox/outcome.ts).
 */

import { FuelErrorCodes } from './fuel/errors.ts';

export const ErrorCodes = {
  HG_CONFIG_INVALID: 'the host config file is missing, not JSON, or does not match its schema',
  HG_MANIFEST_INVALID: 'a plugin manifest is missing, not JSON, or does not match its schema',
  HG_PLUGIN_DUPLICATE: 'two plugins with the same name in one tenant',
  HG_PLUGIN_LOAD: 'a plugin could not be loaded (wasm unreadable, does not compile or instantiate)',
  HG_PLUGIN_INIT_FUEL:
    "a plugin's init (start function, then _initialize or _start) ran out of its fuel budget (limits.fuel.discovery)",
  HG_DISCOVERY_FAILED: "the guest's schedules() call failed or returned invalid declarations",
  HG_DECLARATION_INVALID: 'a schedule declaration is invalid (cron, time zone, interval, ids)',
  HG_QUOTA_EXCEEDED: 'a tenant quota would be exceeded',
  HG_SCHEDULE_NOT_FOUND: 'no schedule with that id',
  HG_SCHEDULE_CONFLICT: 'a schedule with that id already exists',
  HG_STATE_NOT_FOUND: 'no state for that plugin (not loaded on the host, and nothing stored)',
  HG_STORE: 'the store failed (open, migrate, read or write)',
  HG_STORE_VERSION: 'the store was written by a newer version of Hourglass',
  HG_STORE_CORRUPT: 'the store file is damaged or not a Hourglass store',
  HG_STORE_WRITE: 'a write to the store failed (disk full, I/O error, read-only, busy)',
  HG_STORE_LEASE: 'another live host holds the store, or this host lost its lease',
  HG_STORE_FENCED:
    "a write was refused: this host no longer owns the tenant (its lease's epoch is stale)",
  HG_HOST_STATE: 'the host was used in the wrong state (e.g. registration after start)',
  HG_CLI_USAGE: 'a CLI command was called with bad arguments',
  HG_BACKFILL_REFUSED:
    "the host refused a backfill (a tick that is not the schedule's, or a backfill already going)",
  HG_PLUGIN_TOO_COMPLEX:
    'a plugin module is larger, or nests blocks deeper, than the loader instruments (refused before instrumenting)',
  HG_SANDBOX_BOOT:
    'the sandbox worker threads failed to boot, again and again (respawned with backoff, then given up)',
  HG_API_UNAUTHORIZED: 'an API request without a valid token',
  HG_API_FORBIDDEN:
    "an API request outside its token's scope (a tenant token on an operator route)",
  HG_API_NOT_FOUND: 'no such record (or not one the token may see)',
  HG_API_BAD_REQUEST: "an API request that does not match the route's schema",
  HG_API_CONFLICT: "an action the schedule's state refuses (e.g. resuming a deleted schedule)",
  HG_API_RELOAD_FAILED:
    "a plugin's new version was refused (its load, discovery or declarations failed); the old one serves on",
  HG_API_UPLOAD_REFUSED:
    "an uploaded plugin version was refused (hourglass check's reasons, the tenant's capabilities or caps, or its load)",
  HG_API_RATE_LIMITED: "too many requests for the token's rate limit",
  HG_API_UNAVAILABLE: 'the host cannot answer now (stopping, or the store is failing)',
  // The fuel instrumenter's own codes (`FuelError`; `hourglass instrument` prints them, and a
  // plugin load that fails on one is HG_PLUGIN_LOAD with the FuelError as its cause).
  ...FuelErrorCodes,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class HourglassError extends Error {
  readonly code: ErrorCode;
  /** The plugin the error is about, when there is one ("<tenant>/<name>"). */
  readonly pluginId: string | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; pluginId?: string }) {
    super(message, options);
    this.name = 'HourglassError';
    this.code = code;
    this.pluginId = options?.pluginId;
  }
}

/** Config and manifest errors name the file, the field (JSON pointer) and the problem. */
export class ConfigError extends HourglassError {
  readonly file: string;
  readonly field: string;
  constructor(
    code: 'HG_CONFIG_INVALID' | 'HG_MANIFEST_INVALID',
    file: string,
    field: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${file}: ${field || '(root)'}: ${problem}`, options);
    this.name = 'ConfigError';
    this.file = file;
    this.field = field;
  }
}

export function isHourglassError(err: unknown): err is HourglassError {
  return err instanceof HourglassError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
