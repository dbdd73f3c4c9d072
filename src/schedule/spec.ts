/**
 * When a schedule fires: cron (croner, on wall times) in an IANA time zone with a DST policy,
 * fixed intervals, and one-shot times, plus optional jitter.
 *
 * Design notes:
 * - Daylight-saving time is Hourglass's, not croner's (issue 14): croner matches a pattern
 *   against *wall times* only (a fixed UTC offset of 0, no zone), and `zonedNextAfter` places
 *   each wall time in the zone by comparing the zone's UTC offsets (Intl, one formatter per
 *   zone; offsets cached per zone and UTC day, the transition found by bisection). A wall time
 *   that does not exist (spring forward) is dropped (`skip`) or fires once at the jump
 *   (`run-once`); one that happens twice (fall back) fires at its first instant (`once`) or at
 *   both (`twice`). The defaults are the rules Hourglass had before (croner's): `run-once` /
 *   `once` for a fixed time (one value in each of second, minute and hour), `skip` / `twice`
 *   for every other pattern (`defaultDst`).
 *   A spec stores a policy only when it differs from its pattern's default, so old rows and
 *   declarations without `dst` keep their text and hash. docs/schedules.md has the cases;
 *   test/unit/dst-behaviour.test.ts and dst-policy.test.ts pin them (croner stays pinned).
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
 * - The minimum-interval check (`minimumGapMs`) reasons over the pattern (its smallest gap
 *   between wall times) and the zone's kinds of transition (wall time, shift) under the
 *   policy, not over a sample of fires, so its answer is the same on every day.
 * - A croner instance holds ~80 KB (its year table), so the cache keeps at most
 *   `CRON_CACHE_MAX` of them, least recently used first out. Per-schedule work at scale (100k
 *   schedules, few distinct patterns) is served from caches, each bounded so a guest declaring
 *   distinct patterns cannot grow memory: the last `nextRun` answer per pattern, zone and
 *   policy (the first fire after any time in [after, next) is `next`), the minimum gap per
 *   (pattern, zone, policy), a pattern's wall gaps, a zone's transitions and daily offsets, and
 *   the zone names found valid (no `Intl.DateTimeFormat` per check).
 */
import { Cron, CronPattern } from 'croner';

export type ScheduleSpec =
  | {
      readonly kind: 'cron';
      readonly cron: string;
      readonly timezone: string;
      /** Only when it differs from the pattern's default (`defaultDst`): old rows have none. */
      readonly dst?: DstPolicy;
    }
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
 * A croner calculator of wall times (no zone: a fixed offset of 0, which croner computes without
 * Intl, 5-6 times faster than with `timezone: "UTC"`); throws for an invalid pattern.
 */
export function wallCronFor(pattern: string): Cron {
  const key = `\u0001wall\u0000${pattern}`;
  return (
    recall(cronCache, key) ??
    remember(cronCache, key, new Cron(pattern, { utcOffset: 0, paused: true }))
  );
}

// ---- daylight-saving time: wall times that do not exist or happen twice (issue 14) ----

/** What a cron schedule does with a wall time that does not exist (spring forward). */
export type DstSkipped = 'skip' | 'run-once';
/** What a cron schedule does with a wall time that happens twice (fall back). */
export type DstRepeated = 'once' | 'twice';
export interface DstPolicy {
  readonly skipped: DstSkipped;
  readonly repeated: DstRepeated;
}

const FIXED_DEFAULT: DstPolicy = Object.freeze({ skipped: 'run-once', repeated: 'once' });
const WILDCARD_DEFAULT: DstPolicy = Object.freeze({ skipped: 'skip', repeated: 'twice' });

/**
 * The default policy of a pattern: the rules Hourglass followed before the policy existed
 * (croner's, measured and pinned by test/unit/dst-behaviour.test.ts; issue 14 makes them the
 * defaults). A fixed time, one value in each of second, minute and hour (`30 2 * * *`,
 * `0 30 2 * * *`, `@daily`), names one wall time a day: it runs once at the jump when that time
 * does not exist and once (the first occurrence) when it happens twice (`run-once` / `once`).
 * Any other pattern (a wildcard, step, range or list in second, minute or hour: `0 * * * *`,
 * `*\/15 2 * * *`, `30 2,14 * * *`, `0 0-23/2 * * *`; `@hourly`) runs on the clock as it is: a
 * time that does not exist is skipped and one that happens twice runs twice (`skip` / `twice`).
 */
export function defaultDst(pattern: string): DstPolicy {
  const text = pattern.trim();
  if (text.startsWith('@')) return /^@hourly$/i.test(text) ? WILDCARD_DEFAULT : FIXED_DEFAULT;
  const f = text.split(/\s+/);
  const timeFields = f.length === 5 ? f.slice(0, 2) : f.slice(0, 3);
  return timeFields.every((x) => /^\d+$/.test(x)) ? FIXED_DEFAULT : WILDCARD_DEFAULT;
}

/** A cron spec's policy: its own, or its pattern's default. */
export function dstOf(spec: { readonly cron: string; readonly dst?: DstPolicy }): DstPolicy {
  return spec.dst ?? defaultDst(spec.cron);
}

const DAY_MS = 86_400_000;
const WALL_TEXT = /^(\d+)\/(\d+)\/(\d+), (\d+):(\d+):(\d+)$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's UTC offset at instant `t` (ms; local wall time = t + offset), from Intl. */
function intlOffset(zone: string, t: number): number {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= ZONE_CACHE_MAX) formatters.clear();
    formatters.set(zone, f);
  }
  // `format` and a pattern: two to three times cheaper than `formatToParts` ("3/29/2026, 03:00:00").
  const m = WALL_TEXT.exec(f.format(new Date(t)));
  if (m === null) throw new Error(`unexpected date text for ${zone}`);
  const wall = Date.UTC(
    Number(m[3]),
    Number(m[1]) - 1,
    Number(m[2]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
  return wall - (t - (((t % 1000) + 1000) % 1000));
}

/**
 * A zone's offsets over one UTC day: one offset, or the day's transition (`at`, the first
 * instant of the new offset, found by bisection to the second). Assumes at most one transition
 * a UTC day (true of every zone's rules in use).
 */
type DayOffsets =
  | { readonly off: number }
  | { readonly before: number; readonly at: number; readonly after: number };
export const OFFSET_CACHE_MAX = 20_000;
const dayOffsets = new Map<string, DayOffsets>();

function offsetsOfDay(zone: string, day: number): DayOffsets {
  const key = `${zone}\u0000${day}`;
  const known = dayOffsets.get(key);
  if (known !== undefined) return known;
  const start = day * DAY_MS;
  const before = intlOffset(zone, start);
  const after = intlOffset(zone, start + DAY_MS);
  let v: DayOffsets;
  if (before === after) v = { off: before };
  else {
    let lo = start; // offset `before`
    let hi = start + DAY_MS; // offset `after`
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (intlOffset(zone, mid) === before) lo = mid;
      else hi = mid;
    }
    v = { before, at: hi, after };
  }
  if (dayOffsets.size >= OFFSET_CACHE_MAX) dayOffsets.clear();
  dayOffsets.set(key, v);
  return v;
}

/** The zone's UTC offset at instant `t` (ms). */
export function zoneOffset(zone: string, t: number): number {
  const d = offsetsOfDay(zone, Math.floor(t / DAY_MS));
  return 'off' in d ? d.off : t < d.at ? d.before : d.after;
}

/** The first instant after `a` (and at most `b`) whose offset differs from `a`'s. */
function transitionAfter(zone: string, a: number, b: number): number {
  for (let day = Math.floor(a / DAY_MS); day <= Math.floor(b / DAY_MS); day++) {
    const d = offsetsOfDay(zone, day);
    if (!('off' in d) && d.at > a) return d.at;
  }
  return b;
}

/**
 * The instants at which local wall time `w` (ms, a wall time read as UTC) happens in `zone`:
 * one; two (a repeated wall time, in order, with the offsets of each); or none (a skipped
 * wall time: `jump` is the transition, `end` the first wall time after the gap).
 */
type WallInstants =
  | { readonly kind: 'one'; readonly t: number }
  | { readonly kind: 'two'; readonly t1: number; readonly t2: number }
  | { readonly kind: 'gap'; readonly jump: number; readonly end: number };

function instantsOf(zone: string, w: number): WallInstants {
  const oPrev = zoneOffset(zone, w - DAY_MS);
  const oNext = zoneOffset(zone, w + DAY_MS);
  if (oPrev === oNext) return { kind: 'one', t: w - oPrev };
  const c1 = w - oPrev;
  const c2 = w - oNext;
  const ok1 = zoneOffset(zone, c1) === oPrev;
  const ok2 = zoneOffset(zone, c2) === oNext;
  if (ok1 && ok2) return { kind: 'two', t1: Math.min(c1, c2), t2: Math.max(c1, c2) };
  if (ok1) return { kind: 'one', t: c1 };
  if (ok2) return { kind: 'one', t: c2 };
  // A gap: the clock jumped from oPrev to oNext (> oPrev) at an instant between c2 and c1.
  const jump = transitionAfter(zone, c2, c1);
  return { kind: 'gap', jump, end: jump + oNext };
}

/** Zones with one offset for ever: croner alone (no wall-time mapping needed). */
const FIXED_ZONES = new Set(['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT', 'Etc/Universal', 'Etc/Zulu']);

/**
 * The first fire strictly after `afterMs` of `pattern` in `zone` under `policy`. The pattern is
 * matched against wall times by croner in UTC (no DST there); each wall time is then placed in
 * the zone: a wall time that does not exist is dropped (`skip`) or fires at the jump
 * (`run-once`); one that happens twice fires at its first instant (`once`) or at both (`twice`).
 * Instants only move forward and no instant is returned twice (wall times the policy maps to
 * one instant fire once).
 */
function zonedNextAfter(
  pattern: string,
  zone: string,
  policy: DstPolicy,
  afterMs: number,
): number | null {
  const wall = wallCronFor(pattern);
  // The earliest wall time whose instant may be after `afterMs` (an offset that falls within
  // the next day moves wall times back; see docs/schedules.md).
  const minOff = Math.min(zoneOffset(zone, afterMs), zoneOffset(zone, afterMs + DAY_MS));
  let from = afterMs + minOff - 1;
  for (let i = 0; i < 10_000; i++) {
    const w = wall.nextRun(new Date(from))?.getTime();
    if (w === undefined) return null;
    const at = instantsOf(zone, w);
    if (at.kind === 'one') {
      if (at.t > afterMs) return at.t;
      // Later wall times at this offset fire after `afterMs` only past afterMs + offset; but
      // not past the start of a repeated hour ahead (its second pass may be after `afterMs`).
      const o = w - at.t;
      let to = afterMs + o;
      if (o > minOff) {
        const t = transitionAfter(zone, afterMs, afterMs + DAY_MS);
        to = Math.min(to, t + zoneOffset(zone, t) - 1);
      }
      from = Math.max(w, to);
    } else if (at.kind === 'two') {
      if (at.t1 > afterMs) return at.t1;
      const oPrev = w - at.t1;
      // The wall time at which the first pass ends (the clock goes back).
      const end = transitionAfter(zone, at.t1, at.t2) + oPrev;
      if (policy.repeated === 'twice') {
        if (at.t2 > afterMs) {
          // A later wall time's first pass comes before this one's second pass.
          const w2 = wall.nextRun(new Date(Math.max(w, afterMs + oPrev)))?.getTime();
          return w2 !== undefined && w2 < end ? w2 - oPrev : at.t2;
        }
        from = Math.max(w, afterMs + (w - at.t2));
      } else {
        // First passes only: skip those at or before `afterMs`, up to the first pass's end.
        from = Math.max(w, Math.min(afterMs + oPrev, end - 1));
      }
    } else {
      if (policy.skipped === 'run-once' && at.jump > afterMs) return at.jump;
      from = Math.max(w, at.end - 1);
    }
  }
  return null;
}

/**
 * The first fire of (pattern, zone, DST policy) strictly after `afterMs`, or null. Memoised per
 * pattern, zone and policy: the first fire after any time in [after, next) is `next`, so
 * schedules that share a pattern (and the scheduler's fires of them) share one search.
 */
function cronNextAfter(
  pattern: string,
  timezone: string,
  dst: DstPolicy | undefined,
  afterMs: number,
): number | null {
  // The default policy is the pattern's: no part of the key (nor any work on a hit).
  const key =
    dst === undefined
      ? `${timezone}\u0000${pattern}`
      : `${timezone}\u0000${policyKey(dst)}\u0000${pattern}`;
  const known = nextCache.get(key);
  if (
    known !== undefined &&
    afterMs >= known.after &&
    (known.next === null || afterMs < known.next)
  )
    return known.next;
  const next = FIXED_ZONES.has(timezone)
    ? (wallCronFor(pattern).nextRun(new Date(afterMs))?.getTime() ?? null)
    : zonedNextAfter(pattern, timezone, dst ?? defaultDst(pattern), afterMs);
  nextCache.delete(key);
  remember(nextCache, key, { after: afterMs, next }, GAP_CACHE_MAX);
  return next;
}

/**
 * The last answer of `nextFireAfter` per cron spec object (the first fire after any time in
 * [after, next) is `next`): weak, so an entry lives only as long as its spec, which a record
 * or the shared-spec cache holds (one small object per live cron spec).
 */
const nextBySpec = new WeakMap<
  ScheduleSpec,
  { readonly after: number; readonly next: number | null }
>();

const policyKey = (p: DstPolicy): string =>
  (p.skipped === 'skip' ? 's' : 'r') + (p.repeated === 'once' ? 'o' : 't');

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
 * Specs a declaration check accepted, by their declared text (an interval's text; a cron's zone,
 * pattern and DST policy), with the minimum gap it found: a plugin's 1,000 declarations over a
 * few texts are checked once per text (issue 10; per declaration, the zone, croner's pattern
 * cache, the first-fire and gap caches each cost a lookup under a key built for it, and the
 * spec's JSON text was built to find the shared spec). What the check depends on is kept with
 * the entry: a cron's entry serves until its first fire found then (that fire is still within
 * the horizon); the gap depends on no day (`minimumGapMs`). Only accepted texts are kept (a
 * refusal is worked out again, with its message); bounded like the others: emptied when full.
 */
interface Validated {
  readonly spec: ScheduleSpec;
  readonly gap: number | null;
  /** Serves while `nowMs` is below this (Infinity: always). */
  readonly until: number;
}
/**
 * By zone (a cron's; `''`, which no zone is, for intervals), then by the declared text (an
 * interval's; a cron's pattern, with its DST policy appended when it has one): looked up with
 * the declaration's own strings, so a hit builds no key (a key built per declaration cost a
 * string and its hash each). `validatedCount` entries in all, emptied when full.
 */
const validatedSpecs = new Map<string, Map<string, Validated>>();
let validatedCount = 0;
export const VALIDATED_CACHE_MAX = 4_096;

/**
 * The remembered accepted spec for (`zone`, `text`) at `nowMs`, if it still serves: `zone` is
 * `''` for an interval (`text` its `every`), a cron's zone otherwise (`text` its pattern, and
 * `\u0000skipped/repeated` of its `dst` when it declares one).
 */
export function validatedSpec(zone: string, text: string, nowMs: number): Validated | undefined {
  const v = validatedSpecs.get(zone)?.get(text);
  if (v === undefined || nowMs >= v.until) return undefined;
  return v;
}

/** Remembers an accepted spec under `validatedSpec`'s key; `firstFire`: a cron's, null otherwise. */
export function rememberValidated(
  zone: string,
  text: string,
  spec: ScheduleSpec,
  gap: number | null,
  firstFire: number | null,
): void {
  if (spec.kind === 'at' || zone.length + text.length > 300) return;
  if (validatedCount >= VALIDATED_CACHE_MAX) {
    validatedSpecs.clear();
    validatedCount = 0;
  }
  let byText = validatedSpecs.get(zone);
  if (byText === undefined) validatedSpecs.set(zone, (byText = new Map()));
  if (!byText.has(text)) validatedCount++;
  byText.set(
    text,
    spec.kind === 'cron'
      ? { spec, gap, until: firstFire ?? -Infinity }
      : { spec, gap, until: Infinity },
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
    validated: validatedCount,
    wallGaps: wallGaps.size,
    zoneTransitions: zoneTransitionCache.size,
    dayOffsets: dayOffsets.size,
    formatters: formatters.size,
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

/**
 * The first fire of a cron pattern after `fromMs` within `HORIZON_YEARS`, or null if there is
 * none (the pattern never fires, or too rarely). Bounded work: validation uses this, never an
 * open-ended search. Throws croner's error for an invalid pattern.
 */
export function cronFirstFire(
  pattern: string,
  timezone: string,
  fromMs: number,
  dst?: DstPolicy,
): number | null {
  const bounded = horizonPattern(pattern, timezone, fromMs);
  return bounded === null
    ? null
    : cronNextAfter(bounded, timezone, dst ?? defaultDst(pattern), fromMs);
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
    case 'cron': {
      // `cronNextAfter`'s memo, but found by the spec object (shared by the schedules of a
      // spec: see `sharedSpec`), with no key text built per call.
      const known = nextBySpec.get(spec);
      if (
        known !== undefined &&
        afterMs >= known.after &&
        (known.next === null || afterMs < known.next)
      )
        return known.next;
      const next = cronNextAfter(spec.cron, spec.timezone, spec.dst, afterMs);
      nextBySpec.set(spec, { after: afterMs, next });
      return next;
    }
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
 * The smallest gap between consecutive fires a schedule can ever have (intervals: the interval;
 * one-shots: null), the same answer on every day (issue 14: it used to sample the next 8 fires,
 * so it depended on the day it ran). For a cron in a zone, the smaller of:
 * - the pattern's smallest gap between consecutive wall times (`wallGap`: within a day, from
 *   its second, minute and hour sets; across midnight, from the closest matching days);
 * - the gaps around each kind of transition the zone has (`zoneTransitions`: its wall time and
 *   shift), under the schedule's DST policy (`transitionGap`), assuming the transition falls on
 *   a day the pattern fires (a fire on the day before or after counts through the midnight gap
 *   shortened by a spring-forward shift).
 * Cached per (zone, policy, pattern): arming 100k schedules over few patterns costs a lookup
 * each. Null: the pattern fires at most once (or never).
 */
export function minimumGapMs(spec: ScheduleSpec): number | null {
  if (spec.kind === 'every') return spec.everyMs;
  if (spec.kind === 'at') return null;
  const policy = dstOf(spec);
  const key = `${spec.timezone}\u0000${policyKey(policy)}\u0000${spec.cron}`;
  const known = recall(gapCache, key);
  if (known !== undefined) return known;
  const wall = wallGap(spec.cron);
  let min = wall.within;
  const lower = (g: number | null): void => {
    if (g !== null && g > 0 && (min === null || g < min)) min = g;
  };
  lower(wall.across);
  if (!FIXED_ZONES.has(spec.timezone)) {
    for (const tr of zoneTransitions(spec.timezone)) {
      // A spring-forward gap between a day's last fire and the next matching day's first.
      if (
        wall.across !== null &&
        tr.shift > 0 &&
        (wall.days > 1 || tr.at + tr.shift > wall.last || tr.at < wall.first)
      )
        lower(wall.across - tr.shift);
      lower(transitionGap(wall.anyDay, tr, policy));
    }
  }
  return remember(gapCache, key, min, GAP_CACHE_MAX);
}

interface WallGap {
  /** Smallest gap between two fires of one day (ms), null: one time of day. */
  readonly within: number | null;
  /** Smallest gap from a day's last fire to the next matching day's first (ms), null: none. */
  readonly across: number | null;
  /** The pattern with every day matching (its times of day only). */
  readonly anyDay: string;
  /** The closest matching days (days; Infinity: fewer than two found). */
  readonly days: number;
  /** A matching day's first and last fire (ms into the day). */
  readonly first: number;
  readonly last: number;
}
const wallGaps = new Map<string, WallGap>();

/** The smallest gap between consecutive wall times of a pattern; throws for an invalid one. */
function wallGap(pattern: string): WallGap {
  const known = recall(wallGaps, pattern);
  if (known !== undefined) return known;
  const p = new CronPattern(pattern, 'UTC');
  const ones = (a: readonly number[]): number[] => a.flatMap((v, i) => (v !== 0 ? [i] : []));
  const minStep = (a: readonly number[]): number | null => {
    let m: number | null = null;
    for (let i = 1; i < a.length; i++) {
      const d = (a[i] as number) - (a[i - 1] as number);
      if (m === null || d < m) m = d;
    }
    return m;
  };
  const secs = ones(p.second);
  const mins = ones(p.minute);
  const hours = ones(p.hour);
  const first = (a: number[]): number => a[0] as number;
  const last = (a: number[]): number => a[a.length - 1] as number;
  // Within a day (seconds): consecutive seconds, minutes (from a minute's last second to the
  // next minute's first) and hours (likewise).
  const candidates: number[] = [];
  const s1 = minStep(secs);
  if (s1 !== null) candidates.push(s1);
  const m1 = minStep(mins);
  if (m1 !== null) candidates.push(m1 * 60 - (last(secs) - first(secs)));
  const h1 = minStep(hours);
  if (h1 !== null)
    candidates.push(h1 * 3600 - (last(mins) * 60 + last(secs) - (first(mins) * 60 + first(secs))));
  const firstOfDay = first(hours) * 3600 + first(mins) * 60 + first(secs);
  const lastOfDay = last(hours) * 3600 + last(mins) * 60 + last(secs);
  const span = lastOfDay - firstOfDay;
  const fields = p.pattern.trim().split(/\s+/);
  if (fields.length === 5) fields.unshift('0');
  // The closest matching days: 1 when every day of a month matches; else found from the first
  // matching days after a fixed date (the same answer on every day).
  let days: number | null = 1;
  if (!(p.starDOM && p.starDOW)) {
    const dayPattern = ['0', '0', '0', ...fields.slice(3)].join(' ');
    const runs = wallCronFor(dayPattern).nextRuns(24, new Date(Date.UTC(1999, 11, 31, 12)));
    days = null;
    for (let i = 1; i < runs.length; i++) {
      const d = Math.round(
        ((runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime()) / DAY_MS,
      );
      if (days === null || d < days) days = d;
    }
  }
  const v: WallGap = {
    within: candidates.length === 0 ? null : Math.min(...candidates) * 1000,
    across: days === null ? null : (days * 86_400 - span) * 1000,
    anyDay: [...fields.slice(0, 3), '*', '*', '*'].join(' '),
    days: days ?? Infinity,
    first: firstOfDay * 1000,
    last: lastOfDay * 1000,
  };
  return remember(wallGaps, pattern, v);
}

/** A kind of transition: its wall time of day on the clock before it (ms), and its shift. */
interface Transition {
  readonly at: number;
  /** New offset minus old (ms): positive springs forward, negative falls back. */
  readonly shift: number;
}
const zoneTransitionCache = new Map<string, readonly Transition[]>();
/** The years whose transitions count (fixed, so the answer does not move with the clock). */
export const TRANSITION_YEARS = [2025, 2035] as const;

/**
 * The distinct kinds of transition of a zone in `TRANSITION_YEARS`: offsets sampled every 28
 * days (~260 Intl calls, a few ms once per zone; two transitions less than 28 days apart, which
 * no zone has in those years, would go unseen), each change bisected to the second.
 */
export function zoneTransitions(zone: string): readonly Transition[] {
  const known = recall(zoneTransitionCache, zone);
  if (known !== undefined) return known;
  const out: Transition[] = [];
  const seen = new Set<string>();
  const end = Date.UTC(TRANSITION_YEARS[1], 0, 1);
  const week = 28 * DAY_MS;
  let t = Date.UTC(TRANSITION_YEARS[0], 0, 1);
  let off = intlOffset(zone, t);
  for (; t < end; t += week) {
    const next = intlOffset(zone, t + week);
    if (next === off) continue;
    let lo = t;
    let hi = t + week;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (intlOffset(zone, mid) === off) lo = mid;
      else hi = mid;
    }
    const at = (((hi + off) % DAY_MS) + DAY_MS) % DAY_MS;
    const k = `${at}/${next - off}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push({ at, shift: next - off });
    }
    off = next;
  }
  return remember(zoneTransitionCache, zone, out, ZONE_CACHE_MAX);
}

/**
 * The smallest gap between fires of one day around a transition (null: none), in wall time on
 * a reference day: a spring-forward shift removes the wall times [at, at + shift) (skipped, or
 * fired once at the jump); a fall-back shift repeats [at + shift, at) (first pass only, or
 * both). Fires of the day before or after are left to the midnight gap (`minimumGapMs`).
 */
function transitionGap(anyDay: string, tr: Transition, policy: DstPolicy): number | null {
  const cron = wallCronFor(anyDay);
  const day = Date.UTC(2001, 0, 10);
  const x = day + tr.at;
  const sameDay = (t: number | undefined): t is number =>
    t !== undefined && t >= day && t < day + DAY_MS;
  const prev = (t: number): number | undefined => cron.previousRuns(1, new Date(t))[0]?.getTime();
  const next = (t: number): number | undefined => cron.nextRun(new Date(t - 1))?.getTime();
  const a = prev(x);
  let min: number | null = null;
  const lower = (g: number): void => {
    if (g > 0 && (min === null || g < min)) min = g;
  };
  if (tr.shift > 0) {
    const b = next(x + tr.shift);
    const g = next(x);
    const inGap = g !== undefined && g < x + tr.shift;
    if (policy.skipped === 'run-once' && inGap) {
      // The gap's wall times fire once at the jump (x, on the old clock).
      if (sameDay(a)) lower(x - a);
      const after = b === x + tr.shift ? next(b + 1) : b;
      if (sameDay(after)) lower(after - tr.shift - x);
    } else if (sameDay(a) && sameDay(b)) lower(b - tr.shift - a);
  } else if (tr.shift < 0) {
    const e = -tr.shift;
    // The first fire after the first pass: in the second pass (`twice`) or after it (`once`).
    const f = next(policy.repeated === 'twice' ? x - e : x);
    if (sameDay(a) && sameDay(f)) lower(f + e - a);
  }
  return min;
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
