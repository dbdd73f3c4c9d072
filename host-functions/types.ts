/**
 * The shape of a host function: its request schema, the capability it needs, the phases it is
 * allowed in, its static fuel cost, the fuel of the work a call caused, and a handler over the
 * caller's scoped services. One file per function in this folder; `registry.ts` dispatches.
 *
 * Answers are bounded before they are built: a single schedule's view is at most a payload
 * (tenant quota `maxPayloadBytes`, at most 1 MiB), its free texts (description, pause note) and
 * 1.5 KB of bounded fields (`VIEW_FIXED_BYTES`), and `schedule_list` stops a page at
 * `MAX_LIST_PAGE_BYTES`, far below the pool's 4 MiB host-call channel.
 */
import type { Capability } from '../src/capabilities.ts';
import type { CallerContext, Phase } from '../src/sandbox/types.ts';
import type { RawRetry, RetryPolicy } from '../src/schedule/retry.ts';

/** Error codes a guest can receive (docs/guest-abi.md). */
export const GuestErrorCodes = [
  'invalid_argument',
  'not_found',
  'conflict',
  'quota_exceeded',
  'phase',
  'capability',
  'too_large',
  'busy',
  'internal',
] as const;
export type GuestErrorCode = (typeof GuestErrorCodes)[number];

export type HostResult<T = unknown> =
  { ok: T } | { error: { code: GuestErrorCode; message: string } };

export function guestError(
  code: GuestErrorCode,
  message: string,
): { error: { code: GuestErrorCode; message: string } } {
  return { error: { code, message } };
}

/** What a schedule looks like to its guest. */
export interface ScheduleView {
  id: string;
  origin: 'declared' | 'runtime';
  cron: string | null;
  timezone: string | null;
  /** A cron schedule's DST policy (its own or its pattern's default); null for others. */
  dst: { skipped: 'skip' | 'run-once'; repeated: 'once' | 'twice' } | null;
  every: string | null;
  at: string | null;
  jitter: string | null;
  overlap: string;
  misfire: string;
  /** 0..9, higher first among the tenant's ticks waiting for a run slot (default 5). */
  priority: number;
  /**
   * The schedule's own retry policy with its defaults filled in; null when it has none (its job
   * contract's applies, else one attempt per tick).
   */
  retry: RetryPolicy | null;
  /** The job contract (`jobs_register`) it names, or null. */
  job: string | null;
  /** Its own breaker; null: the tenant's default (`breakerAfterFailures`). */
  breaker: { afterFailures: number } | null;
  /** Failed ticks in a row so far: the breaker's count (a success or a resume sets it to 0). */
  failStreak: number;
  state: 'active' | 'paused' | 'completed';
  pauseNote: string | null;
  nextRunAt: string | null;
  payload: unknown;
  description: string | null;
}

export interface JobContract {
  name: string;
  displayName?: string;
  description?: string;
  cron?: string;
  timezone?: string;
  concurrency?: number;
  timeoutMs?: number;
  input?: Record<string, unknown>;
  /** The retry policy of the schedules that name this contract (`job`) and have none of their own. */
  retry?: RawRetry;
}

/**
 * Operations on the calling plugin's own schedules. Implementations scope every id to the
 * caller's plugin, so another plugin's id is indistinguishable from a missing one.
 */
export interface ScopedScheduleService {
  create(caller: CallerContext, declaration: unknown): HostResult<ScheduleView>;
  pause(caller: CallerContext, id: string, note: string | null): HostResult<ScheduleView>;
  resume(caller: CallerContext, id: string): HostResult<ScheduleView>;
  delete(caller: CallerContext, id: string): HostResult<{ id: string; deleted: true }>;
  get(caller: CallerContext, id: string): HostResult<ScheduleView>;
  list(
    caller: CallerContext,
    limit: number,
    after: string | null,
  ): HostResult<{ schedules: ScheduleView[]; next: string | null }>;
}

export interface HostServices {
  readonly schedules: ScopedScheduleService;
  registerJob(caller: CallerContext, contract: JobContract): HostResult<{ name: string }>;
  /** Capabilities the caller's plugin was granted (asked for and allowed by its tenant). */
  granted(caller: CallerContext): ReadonlySet<Capability>;
}

/** A `schedule_list` page holds schedules up to this many JSON bytes (at least one). */
export const MAX_LIST_PAGE_BYTES = 64 * 1024;
/**
 * Fuel per schedule `schedule_list` reads: a row read, decoded, its payload parsed and encoded
 * again (~5 µs of host time for a small row; its bytes are charged one unit each on top).
 */
export const FUEL_PER_SCHEDULE_SCANNED = 5_000;
/**
 * Fuel per cron search a call causes (bounded to the horizon: ~50-150 µs of main thread).
 * `schedule_create` with a cron runs two (its first fire, and the gap sample against the
 * tenant's interval floor).
 */
export const FUEL_PER_CRON_SEARCH = 150_000;

export interface HostFunctionDef<Req> {
  readonly name: Capability;
  readonly phases: readonly Phase[];
  /** JSON schema of the request (ajv; additionalProperties false, bounded). */
  readonly schema: Record<string, unknown>;
  /**
   * Static fuel charged per call, on top of one unit per byte of request and answer. Priced
   * near what the call costs the host (a thread hop, validation, often a SQLite statement:
   * ~10-50 µs, the time a guest runs 10k-50k operators), so a guest cannot buy host work
   * cheaper than its own.
   */
  readonly fuelCost: number;
  /**
   * Fuel for the work one call caused beyond `fuelCost` (schedules scanned, crons searched),
   * from its request and result; charged after the call. @defaultValue none
   */
  readonly workFuel?: (request: Req, result: HostResult) => number;
  handle(services: HostServices, caller: CallerContext, request: Req): HostResult;
}

export function defineHostFunction<Req>(def: HostFunctionDef<Req>): HostFunctionDef<Req> {
  return Object.freeze(def);
}
