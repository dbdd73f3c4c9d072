/**
 * When a schedule fires: cron (croner, with IANA time zones and DST handled by it), fixed
 * intervals, and one-shot times, plus optional jitter.
 *
 * Design notes:
 * - Croner is used only as a calculator (`nextRun`), never as a timer: the scheduler keeps one
 *   due-time queue and one timer for all schedules. Parsed patterns are cached by
 *   pattern + zone, because many schedules share a handful of patterns.
 * - Intervals are anchored (anchor + k·every), so they do not drift with run durations or
 *   restarts; the anchor is the schedule's creation time (or its last spec change).
 * - Jitter is deterministic per (schedule, nominal tick): a hash, not Math.random, so a restart
 *   computes the same due time and tests can predict it.
 */
import { Cron } from 'croner';

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

/** Parses "90s", "1h30m", "250ms". Returns null for anything else (or zero). */
export function parseDuration(text: string): number | null {
  if (!DURATION_RE.test(text)) return null;
  let total = 0;
  for (const m of text.matchAll(DURATION_PART_RE)) {
    total += Number(m[1]) * (DURATION_UNIT_MS[m[2] as string] as number);
  }
  return total > 0 && Number.isSafeInteger(total) ? total : null;
}

export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const cronCache = new Map<string, Cron>();
const CRON_CACHE_MAX = 10_000;

/** A croner calculator for a pattern; throws croner's error for an invalid pattern. */
export function cronFor(pattern: string, timezone: string): Cron {
  const key = `${timezone}\u0000${pattern}`;
  let c = cronCache.get(key);
  if (!c) {
    c = new Cron(pattern, { timezone, paused: true });
    if (cronCache.size >= CRON_CACHE_MAX) {
      const oldest = cronCache.keys().next().value;
      if (oldest !== undefined) cronCache.delete(oldest);
    }
    cronCache.set(key, c);
  }
  return c;
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
      const next = cronFor(spec.cron, spec.timezone).nextRun(new Date(afterMs));
      return next ? next.getTime() : null;
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

/** The smallest gap between consecutive fires (intervals: the interval; cron: sampled). */
export function minimumGapMs(spec: ScheduleSpec, fromMs: number): number | null {
  if (spec.kind === 'every') return spec.everyMs;
  if (spec.kind === 'at') return null;
  const runs = cronFor(spec.cron, spec.timezone).nextRuns(8, new Date(fromMs));
  let min: number | null = null;
  for (let i = 1; i < runs.length; i++) {
    const gap = (runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime();
    if (min === null || gap < min) min = gap;
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
