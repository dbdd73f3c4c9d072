/**
 * Parse, don't validate: a schedule declaration arrives as untrusted `unknown` (from a guest's
 * `schedules()` output or a `schedule_create` request) and leaves as a `ParsedDeclaration`, which
 * only this module can make. Everything downstream (reconcile, store, scheduler) takes parsed
 * declarations only.
 *
 * Bounds: every time a parsed declaration leads to is representable (intervals and jitter at
 * most 365 days, `at` and a cron's first fire within `HORIZON_YEARS`), so listing a schedule or
 * computing its next fire never fails for one declaration; cron validation does bounded work
 * (spec.ts); a payload is at most `MAX_JSON_DEPTH` deep, so encoding it never overflows the stack.
 */
import * as crypto from 'node:crypto';
import { boundedJsonText, compile, MAX_JSON_DEPTH } from '../validation.ts';
import {
  cronFirstFire,
  cronFor,
  defaultDst,
  type DstPolicy,
  type DstRepeated,
  type DstSkipped,
  HORIZON_YEARS,
  isValidTimeZone,
  MAX_INTERVAL_MS,
  minimumGapMs,
  parseDuration,
  rememberValidated,
  sharedSpec,
  specJson,
  type ScheduleSpec,
  validatedSpec,
} from './spec.ts';
import { breakerSchema, parseRetry, retrySchema, retryText, type RawRetry } from './retry.ts';

/**
 * SHA-256 in base64: the one-shot `crypto.hash` (Node ≥ 20.12; a third of `createHash`'s cost)
 * where there is one, `createHash` on Node 20.11 (the package's oldest).
 */
const sha256: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'base64')
    : (text) => crypto.createHash('sha256').update(text).digest('base64');

export const SCHEDULE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const MAX_DECLARATIONS = 1_000;

export type OverlapPolicy = 'skip' | 'buffer-one';
export type MisfirePolicy = 'skip' | 'run-once';
/**
 * Where a schedule's ticks run: once in the cluster (the default), or on every host of the
 * cluster with at most one run per host (`host`: see docs/cluster.md). On one host the two
 * are the same.
 */
export type ScheduleScope = 'cluster' | 'host';

declare const parsedBrand: unique symbol;

export interface ParsedDeclaration {
  readonly [parsedBrand]: true;
  readonly id: string;
  readonly spec: ScheduleSpec;
  readonly jitter: string | null;
  readonly jitterMs: number;
  /** The payload's JSON text, or null. */
  readonly payload: string | null;
  readonly overlap: OverlapPolicy;
  readonly misfire: MisfirePolicy;
  readonly paused: boolean;
  readonly description: string | null;
  readonly scope: ScheduleScope;
  /** 0..9, higher first among the tenant's waiting ticks (`DEFAULT_PRIORITY` when absent). */
  readonly priority: number;
  /** Its retry policy's canonical JSON text (src/schedule/retry.ts); null: none of its own. */
  readonly retry: string | null;
  /** The job contract it names (its retry policy is the default), or null. */
  readonly job: string | null;
  /** `breaker.afterFailures` (0: never pause); null: the tenant's default. */
  readonly breakerAfter: number | null;
  /**
   * Digest of the canonical text of everything above (`declarationText`): a changed hash means
   * a changed declaration. Stored with the row (`decl_hash`) and kept in memory with it.
   */
  readonly hash: string;
}

export interface DeclarationLimits {
  readonly minIntervalMs: number;
  readonly maxPayloadBytes: number;
}

export interface DeclarationIssue {
  readonly code: 'invalid_argument' | 'quota_exceeded';
  /** JSON pointer of the offending field, relative to the declaration. */
  readonly field: string;
  readonly message: string;
}

export type DeclarationResult = { ok: true; value: ParsedDeclaration } | DeclarationFailure;

type DeclarationFailure = { ok: false; issue: DeclarationIssue };

interface RawDeclaration {
  id: string;
  cron?: string;
  timezone?: string;
  every?: string;
  at?: string;
  jitter?: string;
  dst?: { skipped?: DstSkipped; repeated?: DstRepeated };
  payload?: unknown;
  overlap?: OverlapPolicy;
  misfire?: MisfirePolicy;
  paused?: boolean;
  description?: string;
  scope?: ScheduleScope;
  priority?: number;
  retry?: RawRetry;
  job?: string;
  breaker?: { afterFailures: number };
}

/**
 * Schedule priorities (docs/schedules.md, "Priorities"): an integer in 0..9, higher first among
 * a tenant's ticks waiting for a run slot; a schedule that names none has 5.
 */
export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 9;
export const DEFAULT_PRIORITY = 5;

export const declarationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: { type: 'string', pattern: SCHEDULE_ID_PATTERN },
    cron: { type: 'string', minLength: 1, maxLength: 200 },
    timezone: { type: 'string', minLength: 1, maxLength: 64 },
    every: { type: 'string', minLength: 1, maxLength: 64 },
    at: { type: 'string', minLength: 1, maxLength: 64 },
    jitter: { type: 'string', minLength: 1, maxLength: 64 },
    dst: {
      type: 'object',
      additionalProperties: false,
      properties: {
        skipped: { type: 'string', enum: ['skip', 'run-once'] },
        repeated: { type: 'string', enum: ['once', 'twice'] },
      },
    },
    payload: {},
    overlap: { type: 'string', enum: ['skip', 'buffer-one'] },
    misfire: { type: 'string', enum: ['skip', 'run-once'] },
    paused: { type: 'boolean' },
    description: { type: 'string', maxLength: 500 },
    scope: { type: 'string', enum: ['cluster', 'host'] },
    priority: { type: 'integer', minimum: MIN_PRIORITY, maximum: MAX_PRIORITY },
    retry: retrySchema,
    job: { type: 'string', pattern: SCHEDULE_ID_PATTERN },
    breaker: breakerSchema,
  },
} as const;

const validateRaw = compile<RawDeclaration>(declarationSchema);

const ISO_WITH_OFFSET =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** ISO 8601 with an offset, and a real calendar time (Date.parse rolls 02-30 over to 03-02). */
function isCalendarTime(text: string): boolean {
  const m = ISO_WITH_OFFSET.exec(text);
  if (!m) return false;
  const [y, mo, d, h, mi, s, oh, om] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const daysInMonth = new Date(Date.UTC(y as number, mo as number, 0)).getUTCDate();
  return (
    (mo as number) >= 1 &&
    (mo as number) <= 12 &&
    (d as number) >= 1 &&
    (d as number) <= daysInMonth &&
    (h as number) <= 23 &&
    (mi as number) <= 59 &&
    (s as number) <= 59 &&
    (oh as number) <= 23 &&
    (om as number) <= 59
  );
}

/** The latest `at` time accepted at `nowMs`: the same calendar day, HORIZON_YEARS later. */
function latestAt(nowMs: number): number {
  const d = new Date(nowMs);
  d.setUTCFullYear(d.getUTCFullYear() + HORIZON_YEARS);
  return d.getTime();
}

function bad(field: string, message: string): DeclarationFailure {
  return { ok: false, issue: { code: 'invalid_argument', field, message } };
}

/** Parses one declaration. `nowMs` is used to sample cron gaps against the interval floor. */
export function parseDeclaration(
  input: unknown,
  limits: DeclarationLimits,
  nowMs: number,
): DeclarationResult {
  const r = parseOne(input, limits, nowMs);
  return 'issue' in r ? r : { ok: true, value: r };
}

/** `parseDeclaration` without the result's wrapper (a list makes one object less per entry). */
function parseOne(
  input: unknown,
  limits: DeclarationLimits,
  nowMs: number,
): ParsedDeclaration | DeclarationFailure {
  const raw = validateRaw(input);
  if (!raw.ok) return bad(raw.issue.field, raw.issue.problem);
  const d = raw.value;
  const kinds =
    (d.cron === undefined ? 0 : 1) + (d.every === undefined ? 0 : 1) + (d.at === undefined ? 0 : 1);
  if (kinds !== 1) {
    return bad('/', 'must have exactly one of "cron", "every" or "at"');
  }
  if (d.timezone !== undefined && d.cron === undefined) {
    return bad('/timezone', 'is only allowed with "cron"');
  }
  if (d.dst !== undefined && d.cron === undefined) {
    return bad('/dst', 'is only allowed with "cron"');
  }

  // A text accepted before (and still valid at `nowMs`) is not checked again (spec.ts), found
  // by the declaration's own strings (a key is built only for a cron with its own DST policy).
  const zone = d.cron === undefined ? '' : (d.timezone ?? 'UTC');
  const text =
    d.cron === undefined
      ? d.every
      : d.dst === undefined
        ? d.cron
        : `${d.cron}\u0000${d.dst.skipped ?? ''}/${d.dst.repeated ?? ''}`;
  const known = text === undefined ? undefined : validatedSpec(zone, text, nowMs);
  let spec: ScheduleSpec;
  let gap: number | null;
  if (known !== undefined) {
    spec = known.spec;
    gap = known.gap;
  } else {
    const checked = checkSpec(d, nowMs);
    if ('issue' in checked) return checked.issue;
    spec = sharedSpec(specText(checked.spec), checked.spec);
    gap = minimumGapMs(spec);
    if (text !== undefined) rememberValidated(zone, text, spec, gap, checked.firstFire);
  }
  if (gap !== null && gap < limits.minIntervalMs) {
    return {
      ok: false,
      issue: {
        code: 'quota_exceeded',
        field: spec.kind === 'cron' ? '/cron' : '/every',
        message: `fires every ${gap} ms, more often than the tenant's floor of ${limits.minIntervalMs} ms`,
      },
    };
  }

  let jitterMs = 0;
  if (d.jitter !== undefined) {
    const j = parseDuration(d.jitter);
    if (j === null) return bad('/jitter', `invalid duration '${d.jitter}'`);
    if (j > MAX_INTERVAL_MS)
      return bad('/jitter', `'${d.jitter}' is longer than the longest jitter, 365d`);
    jitterMs = j;
  }

  let payload: string | null = null;
  if (d.payload !== undefined && d.payload !== null) {
    const text = boundedJsonText(d.payload);
    if (text === null) return bad('/payload', `is nested deeper than ${MAX_JSON_DEPTH} levels`);
    const size = Buffer.byteLength(text);
    if (size > limits.maxPayloadBytes) {
      return {
        ok: false,
        issue: {
          code: 'quota_exceeded',
          field: '/payload',
          message: `is ${size} bytes, over the tenant's limit of ${limits.maxPayloadBytes}`,
        },
      };
    }
    payload = text;
  }

  let retry: string | null = null;
  if (d.retry !== undefined) {
    const r = parseRetry(d.retry);
    if (!r.ok) return bad(r.field, r.message);
    retry = retryText(r.value);
  }

  const value = {
    id: d.id,
    spec,
    jitter: d.jitter ?? null,
    jitterMs,
    payload,
    overlap: d.overlap ?? 'skip',
    misfire: d.misfire ?? 'skip',
    paused: d.paused ?? false,
    description: d.description ?? null,
    scope: d.scope ?? 'cluster',
    priority: d.priority ?? DEFAULT_PRIORITY,
    retry,
    job: d.job ?? null,
    breakerAfter: d.breaker?.afterFailures ?? null,
    hash: '',
  };
  value.hash = sha256(declarationText(value));
  return value as unknown as ParsedDeclaration;
}

/** The checks of a declaration's timing fields (cron, zone, interval, one-shot time). */
function checkSpec(
  d: RawDeclaration,
  nowMs: number,
): { spec: ScheduleSpec; firstFire: number | null } | { issue: DeclarationFailure } {
  if (d.cron !== undefined) {
    const timezone = d.timezone ?? 'UTC';
    if (!isValidTimeZone(timezone))
      return { issue: bad('/timezone', `unknown time zone '${timezone}'`) };
    let firstFire: number | null;
    // Only a policy that differs from the pattern's default is kept (so the spec's text, and
    // the declaration's hash, of a declaration without `dst` are what they were before it).
    const def = defaultDst(d.cron);
    const policy: DstPolicy = {
      skipped: d.dst?.skipped ?? def.skipped,
      repeated: d.dst?.repeated ?? def.repeated,
    };
    const own = policy.skipped !== def.skipped || policy.repeated !== def.repeated;
    try {
      cronFor(d.cron, timezone);
      firstFire = cronFirstFire(d.cron, timezone, nowMs, policy);
    } catch (err) {
      return { issue: bad('/cron', `invalid cron '${d.cron}': ${(err as Error).message}`) };
    }
    if (firstFire === null) {
      return {
        issue: bad(
          '/cron',
          `cron '${d.cron}' does not fire within ${HORIZON_YEARS} years (it never fires, or too rarely)`,
        ),
      };
    }
    return {
      spec: own
        ? { kind: 'cron', cron: d.cron, timezone, dst: policy }
        : { kind: 'cron', cron: d.cron, timezone },
      firstFire,
    };
  }
  if (d.every !== undefined) {
    const everyMs = parseDuration(d.every);
    if (everyMs === null)
      return { issue: bad('/every', `invalid duration '${d.every}' (e.g. "90s", "1h30m")`) };
    if (everyMs > MAX_INTERVAL_MS)
      return { issue: bad('/every', `'${d.every}' is longer than the longest interval, 365d`) };
    return { spec: { kind: 'every', every: d.every, everyMs }, firstFire: null };
  }
  const at = d.at as string;
  const atMs = isCalendarTime(at) ? Date.parse(at) : NaN;
  if (!Number.isFinite(atMs))
    return { issue: bad('/at', `invalid time '${at}' (ISO 8601 with offset)`) };
  if (atMs > latestAt(nowMs))
    return { issue: bad('/at', `'${at}' is more than ${HORIZON_YEARS} years ahead`) };
  return { spec: { kind: 'at', at: new Date(atMs).toISOString(), atMs }, firstFire: null };
}

/**
 * Whether a stored row's `decl_hash` is this declaration's. Rows written before 0.2 (issue 10)
 * hold the canonical text itself (~200 bytes a row, in the store and in memory) rather than its
 * 44-character digest; such a row (its hash begins with `{`: a digest never does) compares by the
 * text, so an upgrade changes no schedule, and the row takes the digest with its next change.
 */
export function sameDeclaration(stored: string, d: ParsedDeclaration): boolean {
  return stored === d.hash || (stored.charCodeAt(0) === 0x7b && stored === declarationText(d));
}

/** `JSON.stringify(spec)`, from its parts. */
function specText(sp: ScheduleSpec): string {
  return sp.kind === 'cron'
    ? `{"kind":"cron","cron":${JSON.stringify(sp.cron)},"timezone":${JSON.stringify(sp.timezone)}` +
        (sp.dst === undefined
          ? '}'
          : `,"dst":{"skipped":"${sp.dst.skipped}","repeated":"${sp.dst.repeated}"}}`)
    : sp.kind === 'every'
      ? `{"kind":"every","every":${JSON.stringify(sp.every)},"everyMs":${sp.everyMs}}`
      : `{"kind":"at","at":${JSON.stringify(sp.at)},"atMs":${sp.atMs}}`;
}

/**
 * The canonical text after the spec when every later field has its default (most declarations:
 * no jitter, payload, description, retry, job or breaker; default policies, scope, priority).
 */
const DEFAULT_TAIL =
  ',"jitter":null,"jitterMs":0,"payload":null,"overlap":"skip","misfire":"skip","paused":false,"description":null}';

/** `JSON.stringify` of a string or null. */
function jsonOrNull(text: string | null): string {
  return text === null ? 'null' : JSON.stringify(text);
}

/**
 * The declaration's canonical text: exactly `JSON.stringify` of its fields in declaration order
 * (what earlier versions stored as the hash: see `sameDeclaration`), built from the parts' own
 * encodings, which costs a third of encoding the object (its nested spec included).
 */
function declarationText(v: Omit<ParsedDeclaration, 'hash' | typeof parsedBrand>): string {
  // An id matches SCHEDULE_ID_PATTERN, whose characters JSON never escapes: its JSON is itself
  // in quotes.
  const head = `{"id":"${v.id}","spec":${specJson(v.spec)}`;
  if (
    v.jitter === null &&
    v.jitterMs === 0 &&
    v.payload === null &&
    v.overlap === 'skip' &&
    v.misfire === 'skip' &&
    !v.paused &&
    v.description === null &&
    v.scope !== 'host' &&
    v.priority === DEFAULT_PRIORITY &&
    v.retry === null &&
    v.job === null &&
    v.breakerAfter === null
  )
    return head + DEFAULT_TAIL;
  return (
    `${head},"jitter":${jsonOrNull(v.jitter)},` +
    `"jitterMs":${v.jitterMs},"payload":${jsonOrNull(v.payload)},"overlap":"${v.overlap}",` +
    `"misfire":"${v.misfire}","paused":${v.paused},"description":${jsonOrNull(v.description)}` +
    // Only when not the default: the hashes of declarations written before scopes existed hold.
    `${v.scope === 'host' ? ',"scope":"host"' : ''}` +
    // Likewise: a declaration without a priority (or with the default) keeps its hash.
    `${v.priority === DEFAULT_PRIORITY ? '' : `,"priority":${v.priority}`}` +
    // Likewise for retries, job contracts and the breaker.
    `${v.retry === null ? '' : `,"retry":${v.retry}`}${v.job === null ? '' : `,"job":${JSON.stringify(v.job)}`}` +
    `${v.breakerAfter === null ? '' : `,"breakerAfter":${v.breakerAfter}`}}`
  );
}

/** A refused entry's `id` when it has a string one (for the error), else null. */
function idOf(item: unknown): string | null {
  return typeof item === 'object' &&
    item !== null &&
    typeof (item as { id?: unknown }).id === 'string'
    ? (item as { id: string }).id
    : null;
}

/** Parses a `schedules()` array: each entry, and ids unique within the plugin. */
export function parseDeclarationList(
  input: unknown,
  limits: DeclarationLimits,
  nowMs: number,
):
  | { ok: true; value: ParsedDeclaration[] }
  | { ok: false; index: number; id: string | null; issue: DeclarationIssue } {
  if (!Array.isArray(input)) {
    return {
      ok: false,
      index: -1,
      id: null,
      issue: {
        code: 'invalid_argument',
        field: '/',
        message: 'must be a JSON array of declarations',
      },
    };
  }
  if (input.length > MAX_DECLARATIONS) {
    return {
      ok: false,
      index: -1,
      id: null,
      issue: {
        code: 'invalid_argument',
        field: '/',
        message: `has ${input.length} declarations, more than ${MAX_DECLARATIONS}`,
      },
    };
  }
  const seen = new Set<string>();
  const out: ParsedDeclaration[] = [];
  for (let i = 0; i < input.length; i++) {
    const item: unknown = input[i];
    const r = parseOne(item, limits, nowMs);
    if ('issue' in r) return { ok: false, index: i, id: idOf(item), issue: r.issue };
    if (seen.has(r.id)) {
      return {
        ok: false,
        index: i,
        id: r.id,
        issue: {
          code: 'invalid_argument',
          field: '/id',
          message: `duplicate schedule id '${r.id}'`,
        },
      };
    }
    seen.add(r.id);
    out.push(r);
  }
  return { ok: true, value: out };
}
