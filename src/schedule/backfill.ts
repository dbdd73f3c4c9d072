/**
 * Costed backfill (docs/schedules.md, "Backfill"): the ticks of a schedule in a past span, what
 * running them again would cost, and the request the host queues them from.
 *
 * How a backfill goes:
 * 1. `hourglass backfill KEY --from T1 --to T2` lists the span's nominal ticks (`backfillTicks`),
 *    by default without the ticks that already have a `succeeded` run (`--all` keeps them), and
 *    their cost estimated from the schedule's run history (`estimateCost`: median and p95 of the
 *    fuel and the duration of its recent runs). It asks before it queues them (or `--yes`).
 * 2. The exact list it showed is sent to the host that serves the schedule (operator action
 *    `backfill`, `{"ticks": [...]}`): what the operator confirmed is what runs, even if a run
 *    succeeded in between. The host checks every tick against the schedule (`checkTicks`: a
 *    real nominal time, not in the future) and queues them as `waiting` runs with trigger
 *    `backfill`, so a restart or the tenant's next owner takes them up.
 * 3. The scheduler runs them oldest first, one at a time and at most one per
 *    `backfill.intervalMs`, only while the schedule is idle and its tenant has a free slot and
 *    no tick waiting for one (below every priority), never beside a live run: a live tick that
 *    comes due during a backfill run is buffered behind it and runs next.
 */
import type { RunRecord } from '../store/types.ts';
import { nextFireAfter, type ScheduleSpec } from './spec.ts';

/** `backfill.maxTicks`'s default: most ticks one backfill may queue. */
export const DEFAULT_BACKFILL_MAX_TICKS = 10_000;
/** `backfill.intervalMs`'s default: at most one backfill run per schedule per second. */
export const DEFAULT_BACKFILL_INTERVAL_MS = 1_000;
/** Most recent runs of the schedule the estimate looks at. */
export const ESTIMATE_RUNS = 100;

/** The operator action's argument (JSON text): the ticks to queue, or a cancel. */
export type BackfillRequest =
  { readonly kind: 'ticks'; readonly ticks: readonly number[] } | { readonly kind: 'cancel' };

interface Timed {
  readonly spec: ScheduleSpec;
  readonly anchorAt: number;
}

/**
 * The nominal ticks of `s` in [fromMs, toMs], oldest first, at most `limit` (`more`: the span
 * has others after them).
 */
export function backfillTicks(
  s: Timed,
  fromMs: number,
  toMs: number,
  limit: number,
): { ticks: number[]; more: boolean } {
  const ticks: number[] = [];
  let t = nextFireAfter(s.spec, fromMs - 1, s.anchorAt);
  while (t !== null && t <= toMs) {
    if (ticks.length === limit) return { ticks, more: true };
    ticks.push(t);
    t = nextFireAfter(s.spec, t, s.anchorAt);
  }
  return { ticks, more: false };
}

/** Parses the action's argument; a message (for an `invalid` answer) when it is not one. */
export function parseBackfillRequest(
  text: string | null,
  maxTicks: number,
): BackfillRequest | string {
  if (text === null) return 'a backfill needs {"ticks": [...]} or {"cancel": true}';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'the backfill request is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return 'a backfill needs {"ticks": [...]} or {"cancel": true}';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && o.cancel === true) return { kind: 'cancel' };
  if (keys.length !== 1 || !Array.isArray(o.ticks))
    return 'a backfill needs {"ticks": [...]} or {"cancel": true}';
  const ticks = o.ticks as unknown[];
  if (ticks.length === 0) return 'no ticks to backfill';
  if (ticks.length > maxTicks)
    return `${ticks.length} ticks; a backfill may queue at most ${maxTicks} (backfill.maxTicks)`;
  for (const t of ticks)
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0)
      return `ticks must be times in ms since the epoch, got ${JSON.stringify(t)}`;
  return { kind: 'ticks', ticks: [...new Set(ticks as number[])].sort((a, b) => a - b) };
}

/** Null when every tick is a nominal time of `s` at or before `now`; else what is wrong. */
export function checkTicks(s: Timed, ticks: readonly number[], now: number): string | null {
  for (const t of ticks) {
    if (t > now)
      return `tick ${iso(t)} is in the future (a backfill runs past ticks; the schedule runs the rest)`;
    if (nextFireAfter(s.spec, t - 1, s.anchorAt) !== t)
      return `${iso(t)} is not a tick of the schedule`;
  }
  return null;
}

export interface Spread {
  readonly median: number;
  readonly p95: number;
}

/** What one backfill run is expected to cost, from the schedule's recent runs. */
export interface CostEstimate {
  /** Runs the figures come from (recent runs that ran and ended); 0: no history. */
  readonly runs: number;
  readonly fuel: Spread | null;
  readonly durationMs: Spread | null;
}

/** Median and p95 (nearest rank) of the fuel and duration of the runs that ran and ended. */
export function estimateCost(runs: readonly RunRecord[]): CostEstimate {
  const fuel: number[] = [];
  const ms: number[] = [];
  for (const r of runs) {
    if (r.fuelUsed === null || r.finishedAt === null) continue;
    fuel.push(r.fuelUsed);
    ms.push(Math.max(0, r.finishedAt - r.startedAt));
  }
  return { runs: fuel.length, fuel: spread(fuel), durationMs: spread(ms) };
}

function spread(xs: number[]): Spread | null {
  if (xs.length === 0) return null;
  xs.sort((a, b) => a - b);
  const rank = (p: number) => xs[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)] as number;
  return { median: rank(0.5), p95: rank(0.95) };
}

const iso = (ms: number) => new Date(ms).toISOString();
