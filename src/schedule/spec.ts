/**
 * When a schedule fires: cron (croner, with IANA time zones and DST handled by it), fixed
 * intervals, and one-shot times, plus optional jitter.
 *
 * Design notes:
 * - Croner's daylight-saving rules are Hourglass's (fixed-time jobs run once at a spring-forward
 *   jump and once in a repeated hour; other jobs skip a missing time and repeat a doubled one):
 *   croner is pinned to an exact version, and docs/schedules.md lists the cases that
 *   test/unit/dst-behaviour.test.ts pins. There is no per-schedule DST policy yet (issue 14).
 * - Croner is used only as a calculator (`nextRun`), never as a timer: the scheduler keeps one
 *   due-time queue and one timer for all schedules. Parsed patterns are cached by
 *   pattern + zone, because many schedules share a handful of patterns.
 * - Intervals are anchored (anchor + k·every), so they do not drift with run durations or
 *   restarts; the anchor is the schedule's creation time (or its last spec change).
 * - Jitter is deterministic per (schedule, nominal tick): a hash, not Math.random, so a restart
 *   computes the same due time and tests can predict it.
 * - Bounded work and representable times. Croner searches up to the year 3000 for a pattern that
 *   never fires (`0 0 31 2 *`: 2-20 ms of main thread per search). Validation therefore searches
 *   a copy of the pattern whose year field is cut to the next `HORIZON_YEARS` years (about as
 *   costly as an ordinary search, ~0.1 ms): a cron must fire within that horizon, intervals and
 *   jitter are at most `MAX_INTERVAL_MS` (365 days) and a one-shot `at` at most the horizon
 *   ahead, so every next time the host computes is a representable date.
 * - A croner instance holds ~80 KB (its year table), so the cache keeps at most
 *   `CRON_CACHE_MAX` of them, least recently used first out. Per-schedule work at scale (100k
 *   schedules, few distinct patterns) is served from caches, each bounded so a guest declaring
 *   distinct patterns cannot grow memory: the last `nextRun` answer per pattern and zone (the
 *   first fire after any time in [after, next) is `next`), the sampled minimum gap per (pattern,
 *   zone, UTC day), and the zone names found valid (no `Intl.DateTimeFormat` per check).
 */
import { Cron, CronPattern } from 'croner';

export type ScheduleSpec =
  | { readonly kind: 'cron'; readonly cron: string; readonly timezone: string }
  | { readonly kind: 'every'; readonly every: string; readonly everyMs: number }
  | { readonly kind: 'at'; readonly at: string; readonly atMs: number };

const DURATION_UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION_RE = /^(?:\d{1,9}(?:ms|s|m|h|d))+$/;
const DURATION_PART_RE = /(\d{1,9})(ms|s|m|h|d)/g;

/**
 * Durations parsed before (a plugin's 1,000 intervals have few distinct texts), bounded like the
 * other caches here: emptied when full.
 */
const durations = new Map<string, number | null>();
const DURATION_CACHE_MAX = 2_000;

/** Parses "90s", "1h30m", "250ms". Returns null for anything else (or zero). */
export function parseDuration(text: string): number | null {
  const known = durations.get(text);
  if (known !== undefined) return known;
  let total: number | null = 0;
  if (!DURATION_RE.test(text)) total = null;
  else {
    for (const m of text.matchAll(DURATION_PART_RE)) {
      total += Number(m[1]) * (DURATION_UNIT_MS[m[2] as string] as number);
    }
    if (!(total > 0 && Number.isSafeInteger(total))) total = null;
  }
  if (text.length <= 64) {
    if (durations.size >= DURATION_CACHE_MAX) durations.clear();
    durations.set(text, total);
  }
  return total;
}

/** Most zone names remembered as valid (IANA has ~600 names and aliases). */
export const ZONE_CACHE_MAX = 2_000;
const validZones = new Set<string>();

/**
 * Whether `zone` is an IANA time zone. A zone found valid is remembered (bounded: the set is
 * emptied when full), so the common case builds no `Intl.DateTimeFormat`; an unknown zone is
 * checked again each time (it is refused, so it costs its caller once).
 */
export function isValidTimeZone(zone: string): boolean {
  if (validZones.has(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    return false;
  }
  if (validZones.size >= ZONE_CACHE_MAX) validZones.clear();
  validZones.add(zone);
  return true;
}

/** The longest interval (and jitter) a schedule may declare: 365 days. */
export const MAX_INTERVAL_MS = 365 * 86_400_000;
/** A cron must fire, and an `at` time must fall, within this many years from now. */
export const HORIZON_YEARS = 5;

/** Most croner instances kept (~80 KB each, so ~40 MB). */
export const CRON_CACHE_MAX = 500;
const cronCache = new Map<string, Cron>();
const horizonCache = new Map<string, string | null>();
/** The last `nextRun` answer per croner key: one search serves every schedule of a pattern. */
const nextCache = new Map<string, { readonly after: number; readonly next: number | null }>();
/** Sampled minimum gaps per (zone, UTC day, pattern); numbers, so more of them are kept. */
export const GAP_CACHE_MAX = 2_000;
const gapCache = new Map<string, number | null>();

function remember<V>(cache: Map<string, V>, key: string, value: V, max = CRON_CACHE_MAX): V {
  if (cache.size >= max) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
  return value;
}

function recall<V>(cache: Map<string, V>, key: string): V | undefined {
  const v = cache.get(key);
  if (v !== undefined) {
    // Most recently used last: eviction takes the least recently used.
    cache.delete(key);
    cache.set(key, v);
  }
  return v;
}

/** A croner calculator for a pattern; throws croner's error for an invalid pattern. */
export function cronFor(pattern: string, timezone: string): Cron {
  const key = `${timezone}\u0000${pattern}`;
  return (
    recall(cronCache, key) ??
    remember(cronCache, key, new Cron(pattern, { timezone, paused: true }))
  );
}

/**
 * The first fire of the croner for (pattern, zone) strictly after `afterMs`, or null. Memoised
 * per pattern and zone: the first fire after any time in [after, next) is `next`, so schedules
 * that share a pattern (and the scheduler's fires of them) share one croner search.
 */
function cronNextAfter(pattern: string, timezone: string, afterMs: number): number | null {
  const key = `${timezone}\u0000${pattern}`;
  const known = nextCache.get(key);
  if (
    known !== undefined &&
    afterMs >= known.after &&
    (known.next === null || afterMs < known.next)
  )
    return known.next;
  const next = cronFor(pattern, timezone).nextRun(new Date(afterMs))?.getTime() ?? null;
  nextCache.delete(key);
  remember(nextCache, key, { after: afterMs, next }, GAP_CACHE_MAX);
  return next;
}

/**
 * One spec object per distinct spec (100k schedules have few: an interval's text, a cron and
 * zone), by its JSON text, which is remembered with it: declarations and rows read from the
 * store share them (specs are never mutated: records are replaced), and writing a row does not
 * encode its spec again. Bounded: emptied when full (a spec not shared is still correct).
 */
const sharedSpecs = new Map<string, ScheduleSpec>();
const specTexts = new WeakMap<ScheduleSpec, string>();
export const SPEC_CACHE_MAX = 4_096;

/** The shared spec for `text` (its JSON): `spec` (or `text` parsed) when there is none yet. */
export function sharedSpec(text: string, spec?: ScheduleSpec): ScheduleSpec {
  let s = sharedSpecs.get(text);
  if (s === undefined) {
    s = spec ?? (JSON.parse(text) as ScheduleSpec);
    if (sharedSpecs.size >= SPEC_CACHE_MAX) sharedSpecs.clear();
    sharedSpecs.set(text, s);
    specTexts.set(s, text);
  }
  return s;
}

/** A spec's JSON text (`JSON.stringify`; remembered for a shared spec). */
export function specJson(spec: ScheduleSpec): string {
  return specTexts.get(spec) ?? JSON.stringify(spec);
}

/**
 * Specs a declaration check accepted, by their declared text (an interval's text; a cron's zone
 * and pattern), with the minimum gap it found: a plugin's 1,000 declarations over a few texts
 * are checked once per text (issue 10; per declaration, the zone, croner's pattern cache, the
 * first-fire and gap caches each cost a lookup under a key built for it, and the spec's JSON
 * text was built to find the shared spec). What the check depends on is kept with the entry: a
 * cron's entry serves until its first fire found then (that fire is still within the horizon)
 * and only on the same UTC day (the gap sample is per day). Only accepted texts are kept (a
 * refusal is worked out again, with its message); bounded like the others: emptied when full.
 */
interface Validated {
  readonly spec: ScheduleSpec;
  readonly gap: number | null;
  /** Serves while `nowMs` is below this (Infinity: always). */
  readonly until: number;
  /** The UTC day start it serves (NaN: any day). */
  readonly day: number;
}
const validatedSpecs = new Map<string, Validated>();
export const VALIDATED_CACHE_MAX = 4_096;

const utcDayStart = (ms: number): number => ms - (((ms % 86_400_000) + 86_400_000) % 86_400_000);

/** The remembered accepted spec for `key` at `nowMs`, if it still serves. */
export function validatedSpec(key: string, nowMs: number): Validated | undefined {
  const v = validatedSpecs.get(key);
  if (v === undefined || nowMs >= v.until) return undefined;
  if (!Number.isNaN(v.day) && v.day !== utcDayStart(nowMs)) return undefined;
  return v;
}

/** Remembers an accepted spec (see `validatedSpec`); `firstFire`: a cron's, null otherwise. */
export function rememberValidated(
  key: string,
  spec: ScheduleSpec,
  gap: number | null,
  firstFire: number | null,
  nowMs: number,
): void {
  if (spec.kind === 'at' || key.length > 300) return;
  if (validatedSpecs.size >= VALIDATED_CACHE_MAX) validatedSpecs.clear();
  validatedSpecs.set(
    key,
    spec.kind === 'cron'
      ? { spec, gap, until: firstFire ?? -Infinity, day: utcDayStart(nowMs) }
      : { spec, gap, until: Infinity, day: NaN },
  );
}

/** Entries in the module's caches (for tests of their bounds). */
export function specCacheSizes(): Record<string, number> {
  return {
    cron: cronCache.size,
    horizon: horizonCache.size,
    next: nextCache.size,
    gap: gapCache.size,
    zones: validZones.size,
    specs: sharedSpecs.size,
    validated: validatedSpecs.size,
  };
}

/**
 * The pattern with its year field cut to [year of `fromMs` - 1, + HORIZON_YEARS] (the years
 * the pattern allows in that range), or null when it allows none. Throws for an invalid pattern.
 */
function horizonPattern(pattern: string, timezone: string, fromMs: number): string | null {
  const year = new Date(fromMs).getUTCFullYear();
  const key = `${timezone}\u0000${year}\u0000${pattern}`;
  const known = recall(horizonCache, key);
  if (known !== undefined) return known;
  const parsed = new CronPattern(pattern, timezone);
  const fields = parsed.pattern.trim().split(/\s+/);
  if (fields.length === 5) fields.unshift('0');
  const years: number[] = [];
  for (let y = year - 1; y <= year + HORIZON_YEARS; y++) {
    if (parsed.starYear || parsed.year[y] === 1) years.push(y);
  }
  fields[6] = years.join(',');
  return remember(horizonCache, key, years.length === 0 ? null : fields.join(' '));
}

/** A calculator that only finds fires within the horizon; null if none can exist. */
function horizonCron(pattern: string, timezone: string, fromMs: number): Cron | null {
  const bounded = horizonPattern(pattern, timezone, fromMs);
  return bounded === null ? null : cronFor(bounded, timezone);
}

/**
 * The first fire of a cron pattern after `fromMs` within `HORIZON_YEARS`, or null if there is
 * none (the pattern never fires, or too rarely). Bounded work: validation uses this, never an
 * open-ended search. Throws croner's error for an invalid pattern.
 */
export function cronFirstFire(pattern: string, timezone: string, fromMs: number): number | null {
  const bounded = horizonPattern(pattern, timezone, fromMs);
  return bounded === null ? null : cronNextAfter(bounded, timezone, fromMs);
}

/**
 * The first nominal fire time strictly after `afterMs`, or null if the schedule never fires
 * again. `anchorMs` anchors intervals.
 */
export function nextFireAfter(
  spec: ScheduleSpec,
  afterMs: number,
  anchorMs: number,
): number | null {
  switch (spec.kind) {
    case 'cron':
      return cronNextAfter(spec.cron, spec.timezone, afterMs);
    case 'every': {
      if (afterMs < anchorMs) return anchorMs + spec.everyMs;
      const k = Math.floor((afterMs - anchorMs) / spec.everyMs) + 1;
      return anchorMs + k * spec.everyMs;
    }
    case 'at':
      return spec.atMs > afterMs ? spec.atMs : null;
  }
}

/**
 * The smallest gap between consecutive fires (intervals: the interval; cron: sampled over the
 * next 8 fires within the horizon from the start of `fromMs`'s UTC day, so the search is
 * bounded). A cron's sample depends only on (pattern, zone, day), so it is computed once per
 * distinct pattern and zone a day and remembered (bounded, `GAP_CACHE_MAX`).
 */
export function minimumGapMs(spec: ScheduleSpec, fromMs: number): number | null {
  if (spec.kind === 'every') return spec.everyMs;
  if (spec.kind === 'at') return null;
  const dayStart = utcDayStart(fromMs);
  const key = `${spec.timezone}\u0000${dayStart}\u0000${spec.cron}`;
  const known = recall(gapCache, key);
  if (known !== undefined) return known;
  const cron = horizonCron(spec.cron, spec.timezone, dayStart);
  let min: number | null = null;
  if (cron !== null) {
    const runs = cron.nextRuns(8, new Date(dayStart));
    for (let i = 1; i < runs.length; i++) {
      const gap = (runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime();
      if (min === null || gap < min) min = gap;
    }
  }
  return remember(gapCache, key, min, GAP_CACHE_MAX);
}

/** Deterministic jitter in [0, jitterMs) for one tick of one schedule (FNV-1a). */
export function jitterFor(scheduleKey: string, nominalMs: number, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  let h = 0x811c9dc5;
  const text = `${scheduleKey}@${nominalMs}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % jitterMs;
}
