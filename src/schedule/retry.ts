/**
 * Retry policies and the breaker's settings (docs/schedules.md, "Retries and the breaker").
 *
 * A policy comes from a declaration or `schedule_create` (`retry`), or else from the job
 * contract the schedule names (`job`, a `jobs_register` contract's `retry`); with neither, a
 * tick has one attempt. Parsed here (bounds, defaults, refused outcomes) and stored as the JSON
 * text of the normalized policy (`ScheduleRecord.retry`).
 *
 * Backoff is exponential with full jitter: the delay before attempt n+1 is a number in
 * [0, min(capMs, baseMs·2^(n-1))]. The draw is deterministic (`retryDelayMs`: a hash of the key,
 * the tick's nominal time and the attempt, like `jitterFor`), so a test can compute it, and two
 * hosts that take up the same tick agree; the spread across schedules is what jitter is for.
 *
 * Never retried: `out_of_fuel`, `memory_limit` (they would fail again the same way) and
 * `host_call_denied` (a grant, not luck, decides it); a policy that lists them is refused.
 */
import * as crypto from 'node:crypto';

/** Outcomes a policy may retry. */
export const RETRYABLE_OUTCOMES = [
  'failed',
  'trapped',
  'timed_out',
  'stack_overflow',
  'worker_crashed',
] as const;
export type RetryOutcome = (typeof RETRYABLE_OUTCOMES)[number];
/** Outcomes no policy may retry (a policy naming one is refused). */
export const NEVER_RETRIED = ['out_of_fuel', 'memory_limit', 'host_call_denied'] as const;

export const DEFAULT_RETRY_ON: readonly RetryOutcome[] = ['failed', 'trapped', 'timed_out'];
/** Most attempts of one tick (the first included). */
export const MAX_ATTEMPTS = 10;
/** Longest backoff bound (`capMs`): one hour. */
export const MAX_BACKOFF_MS = 3_600_000;
export const DEFAULT_BASE_MS = 1_000;
export const DEFAULT_CAP_MS = 60_000;
/** Most failed ticks in a row a breaker may wait for. */
export const MAX_BREAKER_AFTER = 1_000;

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
  readonly on: readonly RetryOutcome[];
}

/** One attempt: what a tick gets with no policy. */
export const NO_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 1,
  backoff: Object.freeze({ baseMs: DEFAULT_BASE_MS, capMs: DEFAULT_CAP_MS }),
  on: DEFAULT_RETRY_ON,
});

/** The JSON schema of a `retry` field (declarations, `schedule_create`, job contracts). */
export const retrySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['maxAttempts'],
  properties: {
    maxAttempts: { type: 'integer', minimum: 1, maximum: MAX_ATTEMPTS },
    backoff: {
      type: 'object',
      additionalProperties: false,
      properties: {
        baseMs: { type: 'integer', minimum: 1, maximum: MAX_BACKOFF_MS },
        capMs: { type: 'integer', minimum: 1, maximum: MAX_BACKOFF_MS },
      },
    },
    // Any string here: the outcomes named below get a message of their own (`parseRetry`).
    on: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'string', maxLength: 32 } },
  },
} as const;

/** The JSON schema of a `breaker` field. */
export const breakerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['afterFailures'],
  properties: {
    afterFailures: { type: 'integer', minimum: 0, maximum: MAX_BREAKER_AFTER },
  },
} as const;

export interface RawRetry {
  maxAttempts: number;
  backoff?: { baseMs?: number; capMs?: number };
  on?: string[];
}

/** A `retry` field already checked against `retrySchema`: defaults filled in, rules checked. */
export function parseRetry(
  raw: RawRetry,
): { ok: true; value: RetryPolicy } | { ok: false; field: string; message: string } {
  const baseMs = raw.backoff?.baseMs ?? DEFAULT_BASE_MS;
  const capMs = raw.backoff?.capMs ?? Math.max(DEFAULT_CAP_MS, baseMs);
  if (capMs < baseMs)
    return {
      ok: false,
      field: '/retry/backoff/capMs',
      message: `is ${capMs}, less than baseMs (${baseMs})`,
    };
  const on: RetryOutcome[] = [];
  for (const [i, o] of (raw.on ?? DEFAULT_RETRY_ON).entries()) {
    if ((NEVER_RETRIED as readonly string[]).includes(o))
      return {
        ok: false,
        field: `/retry/on/${i}`,
        message: `'${o}' is never retried (it would fail again the same way)`,
      };
    if (!(RETRYABLE_OUTCOMES as readonly string[]).includes(o))
      return {
        ok: false,
        field: `/retry/on/${i}`,
        message: `'${o}' is not a retryable outcome (one of ${RETRYABLE_OUTCOMES.join(', ')})`,
      };
    if (!on.includes(o as RetryOutcome)) on.push(o as RetryOutcome);
  }
  return { ok: true, value: { maxAttempts: raw.maxAttempts, backoff: { baseMs, capMs }, on } };
}

/** The policy's canonical JSON text (what the store holds), fields in a fixed order. */
export function retryText(p: RetryPolicy): string {
  return (
    `{"maxAttempts":${p.maxAttempts},"backoff":{"baseMs":${p.backoff.baseMs},` +
    `"capMs":${p.backoff.capMs}},"on":${JSON.stringify(p.on)}}`
  );
}

const parsedTexts = new Map<string, RetryPolicy>();

/** The policy a stored text holds (texts are few: remembered); NO_RETRY for a bad one. */
export function retryFromText(text: string): RetryPolicy {
  let p = parsedTexts.get(text);
  if (p === undefined) {
    try {
      const raw = JSON.parse(text) as RawRetry;
      const r = parseRetry(raw);
      p = r.ok && Number.isInteger(raw.maxAttempts) ? r.value : NO_RETRY;
    } catch {
      p = NO_RETRY;
    }
    if (parsedTexts.size >= 1_000) parsedTexts.clear();
    parsedTexts.set(text, p);
  }
  return p;
}

/** Whether a run that ended `status` at `attempt` gets another attempt under `p`. */
export function retries(p: RetryPolicy, status: string, attempt: number): boolean {
  return attempt < p.maxAttempts && (p.on as readonly string[]).includes(status);
}

/** The bound of the delay before attempt `attempt + 1`: min(cap, base·2^(attempt-1)). */
export function backoffBoundMs(p: RetryPolicy, attempt: number): number {
  return Math.min(p.backoff.capMs, p.backoff.baseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * The delay before attempt `attempt + 1` of the tick of `key` at `scheduledAt`: full jitter,
 * a number in [0, backoffBoundMs], drawn from a hash of the three (deterministic).
 */
export function retryDelayMs(
  p: RetryPolicy,
  key: string,
  scheduledAt: number,
  attempt: number,
): number {
  const bound = backoffBoundMs(p, attempt);
  const h = crypto.createHash('sha256').update(`${key}\u0000${scheduledAt}\u0000${attempt}`);
  const n = h.digest().readUInt32BE(0);
  return Math.floor((n / 0x1_0000_0000) * (bound + 1));
}
