/**
 * `hourglass backfill`'s plan: the ticks it would run and what they would cost
 * (src/schedule/backfill.ts), from the store's reads, whichever store the CLI talks to.
 */
import { HourglassError } from '../errors.ts';
import type { OperatorStore } from '../operator/operator-store.ts';
import {
  backfillTicks,
  estimateCost,
  ESTIMATE_RUNS,
  type CostEstimate,
} from '../schedule/backfill.ts';
import { isoOrDash } from './format.ts';

/** Runs of the schedule looked at for ticks that already succeeded. */
const SUCCEEDED_LOOKUP = 10_000;

export interface BackfillPlan {
  readonly key: string;
  readonly from: number;
  readonly to: number;
  /** The ticks to run, oldest first. */
  readonly ticks: readonly number[];
  /** Ticks of the span left out because a run of theirs succeeded (0 with `--all`). */
  readonly succeeded: number;
  readonly estimate: CostEstimate;
}

/** A `--from` / `--to` value: an ISO 8601 time or ms since the epoch. */
export function parseTime(text: string, option: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > 8.64e15)
    throw new HourglassError(
      'HG_CLI_USAGE',
      `--${option} must be an ISO 8601 time (2026-03-29T00:00:00Z) or ms since the epoch, got '${text}'`,
    );
  return ms;
}

export async function planBackfill(
  store: OperatorStore,
  key: string,
  span: { readonly from: number; readonly to: number; readonly all: boolean },
  maxTicks: number,
  now: number,
): Promise<BackfillPlan> {
  const { from, to } = span;
  if (from > to) throw new HourglassError('HG_CLI_USAGE', '--from is after --to');
  if (to > now)
    throw new HourglassError(
      'HG_CLI_USAGE',
      `--to ${isoOrDash(to)} is in the future: a backfill runs past ticks (the schedule runs the rest)`,
    );
  const s = await store.getSchedule(key);
  if (!s || s.state === 'deleted' || s.state === 'retired')
    throw new HourglassError(
      'HG_SCHEDULE_NOT_FOUND',
      `schedule '${key}' ${s ? `is ${s.state}` : 'does not exist'}`,
    );
  const span1 = backfillTicks(s, from, to, maxTicks * 2);
  let ticks = span1.ticks;
  let succeeded = 0;
  if (!span.all && ticks.length > 0) {
    const done = new Set<number>();
    for (const r of await store.listRuns({
      scheduleKey: key,
      status: 'succeeded',
      since: from,
      limit: SUCCEEDED_LOOKUP,
    }))
      done.add(r.scheduledAt);
    const left = ticks.filter((t) => !done.has(t));
    succeeded = ticks.length - left.length;
    ticks = left;
  }
  if (span1.more || ticks.length > maxTicks)
    throw new HourglassError(
      'HG_CLI_USAGE',
      `the span has ${span1.more ? `more than ${span1.ticks.length} ticks` : `${ticks.length} ticks to run`}; a backfill may queue at most ${maxTicks} (backfill.maxTicks): narrow --from / --to`,
    );
  const recent = await store.listRuns({ scheduleKey: key, limit: ESTIMATE_RUNS });
  return { key, from, to, ticks, succeeded, estimate: estimateCost(recent) };
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');

/** The plan as the operator reads it before saying yes. */
export function renderPlan(p: BackfillPlan, intervalMs: number): string {
  const lines = [
    `backfill ${p.key}: ${p.ticks.length} tick${p.ticks.length === 1 ? '' : 's'} from ${isoOrDash(p.from)} to ${isoOrDash(p.to)}` +
      (p.succeeded > 0
        ? ` (${p.succeeded} more already succeeded and are left out; --all runs them too)`
        : ''),
  ];
  const shown =
    p.ticks.length <= 20
      ? p.ticks.map((t) => `  ${isoOrDash(t)}`)
      : [
          ...p.ticks.slice(0, 10).map((t) => `  ${isoOrDash(t)}`),
          `  … ${p.ticks.length - 15} more …`,
          ...p.ticks.slice(-5).map((t) => `  ${isoOrDash(t)}`),
        ];
  lines.push(...shown);
  const e = p.estimate;
  const count = p.ticks.length;
  if (e.fuel === null || e.durationMs === null) {
    lines.push(
      'cost: unknown (the schedule has no finished run yet); each run is bounded by its plugin’s fuel limit and deadline',
    );
  } else {
    lines.push(
      `cost per run (from its last ${e.runs} runs): fuel median ${n(e.fuel.median)}, p95 ${n(e.fuel.p95)}; time median ${n(e.durationMs.median)} ms, p95 ${n(e.durationMs.p95)} ms`,
      `cost in all: fuel ${n(count * e.fuel.median)} (p95 ${n(count * e.fuel.p95)}); run time ${seconds(count * e.durationMs.median)} (p95 ${seconds(count * e.durationMs.p95)})`,
    );
  }
  const wall =
    Math.max(0, count - 1) * intervalMs + count * (e.durationMs ? e.durationMs.median : 0);
  lines.push(
    `rate: one run at a time, at most one per ${n(intervalMs)} ms, below every priority and never beside a live run: at least ${seconds(wall)} in all`,
  );
  return lines.join('\n');
}

function seconds(ms: number): string {
  if (ms < 1000) return `${n(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
