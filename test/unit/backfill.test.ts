/**
 * The backfill plan's pure parts (src/schedule/backfill.ts): the span's ticks (the live
 * schedule's own nominal times, DST included), the request the host parses, and the cost
 * estimate's median and p95.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backfillTicks,
  checkTicks,
  estimateCost,
  parseBackfillRequest,
} from '../../src/schedule/backfill.ts';
import { nextFireAfter, type ScheduleSpec } from '../../src/schedule/spec.ts';
import type { RunRecord } from '../../src/store/types.ts';

const HOUR = 3_600_000;
const cron = (pattern: string, timezone = 'UTC'): { spec: ScheduleSpec; anchorAt: number } => ({
  spec: { kind: 'cron', cron: pattern, timezone } as ScheduleSpec,
  anchorAt: 0,
});

test('the ticks of a span are the schedule’s nominal times in [from, to], bounded', () => {
  const from = Date.parse('2026-01-01T00:00:00Z');
  const hourly = cron('0 * * * *');
  assert.deepEqual(backfillTicks(hourly, from, from + 3 * HOUR, 100), {
    ticks: [0, 1, 2, 3].map((h) => from + h * HOUR),
    more: false,
  });
  assert.deepEqual(backfillTicks(hourly, from + 1, from + 3 * HOUR - 1, 100).ticks, [
    from + HOUR,
    from + 2 * HOUR,
  ]);
  assert.deepEqual(backfillTicks(hourly, from, from + 10 * HOUR, 3), {
    ticks: [from, from + HOUR, from + 2 * HOUR],
    more: true,
  });
  const every = {
    spec: { kind: 'every', every: '15m', everyMs: 900_000 } as ScheduleSpec,
    anchorAt: from + 60_000,
  };
  assert.deepEqual(
    backfillTicks(every, from, from + HOUR, 100).ticks,
    [1, 2, 3].map((k) => from + 60_000 + k * 900_000),
  );
  const at = { spec: { kind: 'at', at: 'x', atMs: from + 5 } as ScheduleSpec, anchorAt: 0 };
  assert.deepEqual(backfillTicks(at, from, from + HOUR, 100).ticks, [from + 5]);
  assert.deepEqual(backfillTicks(at, from + 6, from + HOUR, 100).ticks, []);
});

test('across a spring-forward night the ticks are where the live schedule fires (DST policy)', () => {
  // Berlin, 2026-03-29: 02:00-03:00 does not exist. A fixed time runs once at the jump (the
  // default for a fixed time, run-once); the live schedule's `nextFireAfter` agrees.
  const s = cron('30 2 * * *', 'Europe/Berlin');
  const from = Date.parse('2026-03-27T12:00:00Z');
  const { ticks } = backfillTicks(s, from, Date.parse('2026-03-31T00:00:00Z'), 100);
  assert.deepEqual(
    ticks.map((t) => new Date(t).toISOString()),
    ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
  );
  let t = from;
  for (const tick of ticks) assert.equal((t = nextFireAfter(s.spec, t, 0) as number), tick);
  assert.equal(checkTicks(s, ticks, Date.parse('2026-04-01T00:00:00Z')), null);
});

test('the host checks every tick: a nominal time of the schedule, not in the future', () => {
  const s = cron('*/15 * * * *');
  const t = Date.parse('2026-01-01T10:15:00Z');
  assert.equal(checkTicks(s, [t, t + 900_000], t + 900_000), null);
  assert.match(checkTicks(s, [t + 1], t + HOUR) ?? '', /is not a tick of the schedule/);
  assert.match(checkTicks(s, [t + 900_000], t) ?? '', /is in the future/);
});

test('the request: ticks (deduplicated, sorted, bounded) or a cancel; anything else is refused', () => {
  assert.deepEqual(parseBackfillRequest('{"ticks":[3,1,3,2]}', 10), {
    kind: 'ticks',
    ticks: [1, 2, 3],
  });
  assert.deepEqual(parseBackfillRequest('{"cancel":true}', 10), { kind: 'cancel' });
  for (const bad of [
    null,
    'x',
    '[]',
    '{}',
    '{"ticks":[]}',
    '{"ticks":[1.5]}',
    '{"ticks":["1"]}',
    '{"ticks":[-1]}',
    '{"cancel":false}',
    '{"ticks":[1],"cancel":true}',
  ])
    assert.equal(typeof parseBackfillRequest(bad, 10), 'string', String(bad));
  assert.match(
    parseBackfillRequest(JSON.stringify({ ticks: [1, 2, 3] }), 2) as string,
    /3 ticks; a backfill may queue at most 2/,
  );
});

test('the estimate: median and p95 (nearest rank) of the fuel and duration of runs that ran', () => {
  const run = (fuelUsed: number | null, ms: number | null): RunRecord =>
    ({ fuelUsed, startedAt: 1000, finishedAt: ms === null ? null : 1000 + ms }) as RunRecord;
  assert.deepEqual(estimateCost([]), { runs: 0, fuel: null, durationMs: null });
  const runs = [...Array(20).keys()].map((i) => run((i + 1) * 10, 20 - i));
  runs.push(run(null, 5), run(99, null)); // a skipped record, a run still going: left out
  assert.deepEqual(estimateCost(runs), {
    runs: 20,
    fuel: { median: 100, p95: 190 },
    durationMs: { median: 10, p95: 19 },
  });
});
