/**
 * What Hourglass does by default across real daylight-saving transitions: the default DST
 * policy (issue 14; test/unit/dst-policy.test.ts covers each policy value). These expectations
 * were written before the policy existed, when croner's rules applied, and are kept unchanged:
 * the defaults are those rules (docs/schedules.md, "Daylight-saving time"). Every fire is
 * computed through Hourglass's own next-fire function, `nextFireAfter` (the one the scheduler
 * chains from each nominal tick), from explicit instants, never the real clock, and asserted as
 * exact UTC instants. croner stays pinned to an exact version (checked below): it computes the
 * wall times.
 *
 * - A fixed-time job (one value in each of second, minute and hour) whose wall time does not
 *   exist runs once at the jump; whose wall time happens twice runs once, at the first
 *   occurrence.
 * - Any other job (wildcard, step, range or list in second, minute or hour: `30 2,14 * * *`,
 *   `0 0-23/2 * * *`, `0 * * * *`) skips a time that does not exist and runs on both
 *   occurrences of a time that happens twice.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { cronFirstFire, nextFireAfter, type ScheduleSpec } from '../../src/schedule/spec.ts';

const ms = (iso: string): number => Date.parse(iso);

/**
 * The fires of `pattern` in `timezone` strictly after `afterIso` and before `untilIso`, chained
 * as the scheduler chains them (each next fire is the first strictly after the previous one).
 */
function fires(pattern: string, timezone: string, afterIso: string, untilIso: string): string[] {
  const spec: ScheduleSpec = { kind: 'cron', cron: pattern, timezone };
  const until = ms(untilIso);
  const out: string[] = [];
  let t = ms(afterIso);
  for (;;) {
    const next = nextFireAfter(spec, t, 0);
    if (next === null || next >= until) return out;
    assert.ok(next > t, 'fires move forward');
    out.push(new Date(next).toISOString());
    t = next;
  }
}

/** The zone's UTC offset at an instant, as Intl names it ("GMT+01:00"). */
function offsetAt(timezone: string, iso: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    timeZoneName: 'longOffset',
  }).formatToParts(new Date(iso));
  return parts.find((p) => p.type === 'timeZoneName')?.value ?? '';
}

/** Asserts the zone changes offset exactly at `atIso` (the test data's transitions are real). */
function assertTransition(timezone: string, atIso: string, before: string, after: string): void {
  assert.equal(offsetAt(timezone, new Date(ms(atIso) - 1).toISOString()), before);
  assert.equal(offsetAt(timezone, atIso), after);
}

/** Every gap between consecutive fires, in minutes. */
function gapsMinutes(list: readonly string[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < list.length; i++) {
    gaps.push((ms(list[i] as string) - ms(list[i - 1] as string)) / 60_000);
  }
  return gaps;
}

describe('croner is pinned', () => {
  test('package.json names the exact installed croner version (no caret or range)', () => {
    const root = new URL('../../', import.meta.url);
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const installed = JSON.parse(
      readFileSync(new URL('node_modules/croner/package.json', root), 'utf8'),
    ) as { version: string };
    assert.match(pkg.dependencies['croner'] ?? '', /^\d+\.\d+\.\d+$/);
    assert.equal(pkg.dependencies['croner'], installed.version);
  });
});

describe('Europe/Berlin (CET/CEST)', () => {
  const Z = 'Europe/Berlin';

  test('the 2026 transitions are where this file assumes', () => {
    // 29 March 02:00 CET -> 03:00 CEST; 25 October 03:00 CEST -> 02:00 CET.
    assertTransition(Z, '2026-03-29T01:00:00Z', 'GMT+01:00', 'GMT+02:00');
    assertTransition(Z, '2026-10-25T01:00:00Z', 'GMT+02:00', 'GMT+01:00');
  });

  test('spring forward: a fixed-time job in the skipped hour runs once, at the jump (03:00)', () => {
    assert.deepEqual(fires('30 2 * * *', Z, '2026-03-27T12:00:00Z', '2026-03-31T12:00:00Z'), [
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: 02:30 does not exist
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
    // 02:00 (the first missing minute) and 03:00 (the first after the gap) fire at one instant.
    assert.deepEqual(fires('0 2 * * *', Z, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z'), [
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:00:00.000Z',
    ]);
    assert.deepEqual(fires('0 3 * * *', Z, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z'), [
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T01:00:00.000Z',
    ]);
  });

  test('fall back: a fixed-time job in the repeated hour runs once, at the first occurrence', () => {
    assert.deepEqual(fires('30 2 * * *', Z, '2026-10-23T12:00:00Z', '2026-10-27T12:00:00Z'), [
      '2026-10-24T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first 02:30; not again at 01:30Z (CET)
      '2026-10-26T01:30:00.000Z', // 02:30 CET
      '2026-10-27T01:30:00.000Z',
    ]);
  });

  test('a listed hour skips the missing 02:30 and runs the repeated one twice', () => {
    assert.deepEqual(fires('30 2,14 * * *', Z, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z'), [
      '2026-03-28T13:30:00.000Z', // 14:30 CET
      '2026-03-29T12:30:00.000Z', // 14:30 CEST: no 02:30 that night, and none at 03:00
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
    assert.deepEqual(fires('30 2,14 * * *', Z, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z'), [
      '2026-10-24T12:30:00.000Z', // 14:30 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T01:30:00.000Z', // 02:30 CET: the repeated 02:30 runs again
      '2026-10-25T13:30:00.000Z', // 14:30 CET
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });

  test('a stepped hour skips the missing 02:00 and runs the repeated one twice', () => {
    assert.deepEqual(fires('0 0-23/2 * * *', Z, '2026-03-28T20:00:00Z', '2026-03-29T05:00:00Z'), [
      '2026-03-28T21:00:00.000Z', // 22:00 CET
      '2026-03-28T23:00:00.000Z', // 00:00 CET
      '2026-03-29T02:00:00.000Z', // 04:00 CEST: 02:00 skipped, nothing at 03:00
      '2026-03-29T04:00:00.000Z', // 06:00 CEST
    ]);
    assert.deepEqual(fires('0 0-23/2 * * *', Z, '2026-10-24T20:00:00Z', '2026-10-25T06:00:00Z'), [
      '2026-10-24T22:00:00.000Z', // 00:00 CEST
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T01:00:00.000Z', // 02:00 CET (one hour later)
      '2026-10-25T03:00:00.000Z', // 04:00 CET
      '2026-10-25T05:00:00.000Z', // 06:00 CET
    ]);
  });

  test('a minute step inside the hour: none in the skipped hour, both passes of the repeated', () => {
    assert.deepEqual(fires('*/15 2 * * *', Z, '2026-03-28T12:00:00Z', '2026-03-30T00:30:00Z'), [
      '2026-03-30T00:00:00.000Z', // nothing on 29 March
      '2026-03-30T00:15:00.000Z',
    ]);
    assert.deepEqual(fires('*/15 2 * * *', Z, '2026-10-24T12:00:00Z', '2026-10-25T12:00:00Z'), [
      '2026-10-25T00:00:00.000Z', // 02:00-02:45 CEST
      '2026-10-25T00:15:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T00:45:00.000Z',
      '2026-10-25T01:00:00.000Z', // 02:00-02:45 CET
      '2026-10-25T01:15:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-25T01:45:00.000Z',
    ]);
  });

  test('every hour: 23 fires on the 23-hour day, 25 on the 25-hour day, always 60 min apart', () => {
    // Local midnight to local midnight.
    const spring = fires('0 * * * *', Z, '2026-03-28T22:59:59Z', '2026-03-29T22:00:00Z');
    assert.equal(spring.length, 23);
    assert.equal(spring[0], '2026-03-28T23:00:00.000Z');
    assert.equal(spring[22], '2026-03-29T21:00:00.000Z');
    assert.ok(gapsMinutes(spring).every((g) => g === 60));
    const fall = fires('0 * * * *', Z, '2026-10-24T21:59:59Z', '2026-10-25T23:00:00Z');
    assert.equal(fall.length, 25);
    assert.equal(fall[0], '2026-10-24T22:00:00.000Z');
    assert.equal(fall[24], '2026-10-25T22:00:00.000Z');
    assert.ok(gapsMinutes(fall).every((g) => g === 60));
  });

  test('L in day of week: the last Sunday of March and October are the transition days', () => {
    assert.deepEqual(fires('30 2 * * 0L', Z, '2026-02-01T00:00:00Z', '2026-11-01T00:00:00Z'), [
      '2026-02-22T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: at the jump
      '2026-04-26T00:30:00.000Z',
      '2026-05-31T00:30:00.000Z',
      '2026-06-28T00:30:00.000Z',
      '2026-07-26T00:30:00.000Z',
      '2026-08-30T00:30:00.000Z',
      '2026-09-27T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first occurrence only
    ]);
  });

  test('L in day of month: the last day of each month, on both sides of the change', () => {
    assert.deepEqual(fires('0 12 L * *', Z, '2026-01-01T00:00:00Z', '2026-05-01T00:00:00Z'), [
      '2026-01-31T11:00:00.000Z',
      '2026-02-28T11:00:00.000Z',
      '2026-03-31T10:00:00.000Z', // CEST from 29 March
      '2026-04-30T10:00:00.000Z',
    ]);
  });

  test('W: the weekday nearest the 15th, within the month', () => {
    assert.deepEqual(fires('0 9 15W * *', Z, '2026-07-01T00:00:00Z', '2026-12-01T00:00:00Z'), [
      '2026-07-15T07:00:00.000Z', // Wednesday
      '2026-08-14T07:00:00.000Z', // the 15th is a Saturday: Friday
      '2026-09-15T07:00:00.000Z',
      '2026-10-15T07:00:00.000Z',
      '2026-11-16T08:00:00.000Z', // the 15th is a Sunday: Monday, CET
    ]);
  });

  test('29 February: the next fire is in 2028, then 2032', () => {
    assert.deepEqual(fires('0 12 29 2 *', Z, '2026-03-01T00:00:00Z', '2033-01-01T00:00:00Z'), [
      '2028-02-29T11:00:00.000Z',
      '2032-02-29T11:00:00.000Z',
    ]);
    // Declaration checks use the bounded search: it finds the same first fire.
    assert.equal(
      cronFirstFire('0 12 29 2 *', Z, ms('2026-03-01T00:00:00Z')),
      ms('2028-02-29T11:00:00Z'),
    );
  });
});

describe('America/New_York (EST/EDT)', () => {
  const Z = 'America/New_York';

  test('the 2026 transitions are where this file assumes', () => {
    // 8 March 02:00 EST -> 03:00 EDT; 1 November 02:00 EDT -> 01:00 EST.
    assertTransition(Z, '2026-03-08T07:00:00Z', 'GMT-05:00', 'GMT-04:00');
    assertTransition(Z, '2026-11-01T06:00:00Z', 'GMT-04:00', 'GMT-05:00');
  });

  test('spring forward: 02:30 runs once at 03:00 EDT', () => {
    assert.deepEqual(fires('30 2 * * *', Z, '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z'), [
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
    ]);
  });

  test('fall back: 01:30 runs once, at the first (EDT) occurrence', () => {
    assert.deepEqual(fires('30 1 * * *', Z, '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z'), [
      '2026-10-31T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT; not again at 06:30Z (EST)
      '2026-11-02T06:30:00.000Z', // 01:30 EST
    ]);
  });

  test('listed hours: the missing 02:30 is skipped, the repeated 01:30 runs twice', () => {
    assert.deepEqual(fires('30 2,14 * * *', Z, '2026-03-07T20:00:00Z', '2026-03-09T12:00:00Z'), [
      '2026-03-08T18:30:00.000Z', // 14:30 EDT; no fire that night
      '2026-03-09T06:30:00.000Z',
    ]);
    assert.deepEqual(fires('30 1,13 * * *', Z, '2026-10-31T20:00:00Z', '2026-11-02T12:00:00Z'), [
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T06:30:00.000Z', // 01:30 EST
      '2026-11-01T18:30:00.000Z', // 13:30 EST
      '2026-11-02T06:30:00.000Z',
    ]);
  });

  test('stepped hours: 02:00 skipped (next is 04:00 EDT), the repeated 01:00 runs twice', () => {
    assert.deepEqual(fires('0 0-23/2 * * *', Z, '2026-03-08T04:00:00Z', '2026-03-08T11:00:00Z'), [
      '2026-03-08T05:00:00.000Z', // 00:00 EST
      '2026-03-08T08:00:00.000Z', // 04:00 EDT
      '2026-03-08T10:00:00.000Z', // 06:00 EDT
    ]);
    assert.deepEqual(fires('0 1-23/2 * * *', Z, '2026-11-01T03:00:00Z', '2026-11-01T11:00:00Z'), [
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T08:00:00.000Z', // 03:00 EST
      '2026-11-01T10:00:00.000Z', // 05:00 EST
    ]);
  });

  test('every hour: 23 and 25 fires on the transition days', () => {
    const spring = fires('0 * * * *', Z, '2026-03-08T04:59:59Z', '2026-03-09T04:00:00Z');
    assert.equal(spring.length, 23);
    assert.ok(gapsMinutes(spring).every((g) => g === 60));
    const fall = fires('0 * * * *', Z, '2026-11-01T03:59:59Z', '2026-11-02T05:00:00Z');
    assert.equal(fall.length, 25);
    assert.ok(gapsMinutes(fall).every((g) => g === 60));
  });

  test('#: the second Sunday of March is the spring transition, the first of November the fall', () => {
    assert.deepEqual(fires('30 2 * * 0#2', Z, '2026-02-01T00:00:00Z', '2026-05-01T00:00:00Z'), [
      '2026-02-08T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT: at the jump
      '2026-04-12T06:30:00.000Z', // 02:30 EDT
    ]);
    assert.deepEqual(fires('30 1 * * 0#1', Z, '2026-10-01T00:00:00Z', '2026-12-01T00:00:00Z'), [
      '2026-10-04T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT, once
    ]);
  });
});

describe('Australia/Lord_Howe (30-minute shift)', () => {
  const Z = 'Australia/Lord_Howe';

  test('the 2026 transitions are where this file assumes', () => {
    // 5 April 02:00 (+11) -> 01:30 (+10:30); 4 October 02:00 (+10:30) -> 02:30 (+11).
    assertTransition(Z, '2026-04-04T15:00:00Z', 'GMT+11:00', 'GMT+10:30');
    assertTransition(Z, '2026-10-03T15:30:00Z', 'GMT+10:30', 'GMT+11:00');
  });

  test('spring forward: 02:15 does not exist and runs once at 02:30', () => {
    assert.deepEqual(fires('15 2 * * *', Z, '2026-10-02T12:00:00Z', '2026-10-05T12:00:00Z'), [
      '2026-10-02T15:45:00.000Z', // 02:15 +10:30
      '2026-10-03T15:30:00.000Z', // 02:30 +11: at the jump
      '2026-10-04T15:15:00.000Z', // 02:15 +11
    ]);
  });

  test('fall back: 01:45 happens twice and runs once, at the first occurrence', () => {
    assert.deepEqual(fires('45 1 * * *', Z, '2026-04-03T12:00:00Z', '2026-04-06T12:00:00Z'), [
      '2026-04-03T14:45:00.000Z', // 01:45 +11
      '2026-04-04T14:45:00.000Z', // 01:45 +11; not again at 15:15Z (+10:30)
      '2026-04-05T15:15:00.000Z', // 01:45 +10:30
    ]);
  });

  test('a listed hour skips the missing 02:15', () => {
    assert.deepEqual(fires('15 2,14 * * *', Z, '2026-10-03T02:00:00Z', '2026-10-05T00:00:00Z'), [
      '2026-10-03T03:45:00.000Z', // 14:15 +10:30
      '2026-10-04T03:15:00.000Z', // 14:15 +11: no 02:15 that night
      '2026-10-04T15:15:00.000Z',
    ]);
  });

  test('a minute step in the repeated half hour runs on both passes', () => {
    assert.deepEqual(fires('*/15 1 * * *', Z, '2026-04-04T12:00:00Z', '2026-04-05T12:00:00Z'), [
      '2026-04-04T14:00:00.000Z', // 01:00 +11
      '2026-04-04T14:15:00.000Z',
      '2026-04-04T14:30:00.000Z', // 01:30 +11
      '2026-04-04T14:45:00.000Z',
      '2026-04-04T15:00:00.000Z', // 01:30 +10:30 (the same UTC minute the clock went back)
      '2026-04-04T15:15:00.000Z', // 01:45 +10:30
    ]);
  });

  test('every hour on the hour: 24 fires on the 24.5-hour day, 23 on the 23.5-hour day', () => {
    // The repeated half hour (01:30-02:00) holds no :00; the skipped one (02:00-02:30) does.
    const fall = fires('0 * * * *', Z, '2026-04-04T12:59:59Z', '2026-04-05T13:30:00Z');
    assert.equal(fall.length, 24);
    assert.deepEqual(
      gapsMinutes(fall).filter((g) => g !== 60),
      [90],
    ); // 01:00 +11 -> 02:00 +10:30
    const spring = fires('0 * * * *', Z, '2026-10-03T13:29:59Z', '2026-10-04T13:00:00Z');
    assert.equal(spring.length, 23);
    assert.deepEqual(
      gapsMinutes(spring).filter((g) => g !== 60),
      [90],
    ); // 01:00 -> 03:00 +11
  });

  test('every hour at :30: 25 fires on the 24.5-hour day, 24 on the 23.5-hour day', () => {
    const fall = fires('30 * * * *', Z, '2026-04-04T12:59:59Z', '2026-04-05T13:30:00Z');
    assert.equal(fall.length, 25);
    assert.deepEqual(
      gapsMinutes(fall).filter((g) => g !== 60),
      [30],
    ); // 01:30 twice
    const spring = fires('30 * * * *', Z, '2026-10-03T13:29:59Z', '2026-10-04T13:00:00Z');
    assert.equal(spring.length, 24);
    assert.deepEqual(
      gapsMinutes(spring).filter((g) => g !== 60),
      [30],
    ); // 01:30 -> 02:30 +11
  });
});

describe('Pacific/Chatham (+12:45/+13:45)', () => {
  const Z = 'Pacific/Chatham';

  test('the 2026 transitions are where this file assumes', () => {
    // 5 April 03:45 (+13:45) -> 02:45 (+12:45); 27 September 02:45 (+12:45) -> 03:45 (+13:45).
    assertTransition(Z, '2026-04-04T14:00:00Z', 'GMT+13:45', 'GMT+12:45');
    assertTransition(Z, '2026-09-26T14:00:00Z', 'GMT+12:45', 'GMT+13:45');
  });

  test('spring forward: 03:00 does not exist and runs once at 03:45', () => {
    assert.deepEqual(fires('0 3 * * *', Z, '2026-09-25T12:00:00Z', '2026-09-28T12:00:00Z'), [
      '2026-09-25T14:15:00.000Z', // 03:00 +12:45
      '2026-09-26T14:00:00.000Z', // 03:45 +13:45: at the jump
      '2026-09-27T13:15:00.000Z', // 03:00 +13:45
    ]);
  });

  test('fall back: 03:00 happens twice and runs once, at the first occurrence', () => {
    assert.deepEqual(fires('0 3 * * *', Z, '2026-04-03T12:00:00Z', '2026-04-06T12:00:00Z'), [
      '2026-04-03T13:15:00.000Z', // 03:00 +13:45
      '2026-04-04T13:15:00.000Z', // 03:00 +13:45; not again at 14:15Z (+12:45)
      '2026-04-05T14:15:00.000Z', // 03:00 +12:45
    ]);
  });

  test('a listed hour skips the missing 03:00 and runs the repeated one twice', () => {
    assert.deepEqual(fires('0 3,15 * * *', Z, '2026-09-26T00:00:00Z', '2026-09-28T00:00:00Z'), [
      '2026-09-26T02:15:00.000Z', // 15:00 +12:45
      '2026-09-27T01:15:00.000Z', // 15:00 +13:45: no 03:00 that night
      '2026-09-27T13:15:00.000Z',
    ]);
    assert.deepEqual(fires('0 3,15 * * *', Z, '2026-04-04T00:00:00Z', '2026-04-05T12:00:00Z'), [
      '2026-04-04T01:15:00.000Z', // 15:00 +13:45
      '2026-04-04T13:15:00.000Z', // 03:00 +13:45
      '2026-04-04T14:15:00.000Z', // 03:00 +12:45
      '2026-04-05T02:15:00.000Z', // 15:00 +12:45
    ]);
  });

  test('every hour: 23 and 25 fires on the transition days, at :15 UTC', () => {
    const spring = fires('0 * * * *', Z, '2026-09-26T11:14:59Z', '2026-09-27T10:15:00Z');
    assert.equal(spring.length, 23);
    assert.ok(spring.every((t) => t.slice(13) === ':15:00.000Z'));
    const fall = fires('0 * * * *', Z, '2026-04-04T10:14:59Z', '2026-04-05T11:15:00Z');
    assert.equal(fall.length, 25);
    assert.ok(gapsMinutes(fall).every((g) => g === 60));
  });

  test('29 February at noon in a +13:45 summer', () => {
    assert.deepEqual(fires('0 12 29 2 *', Z, '2026-03-01T00:00:00Z', '2033-01-01T00:00:00Z'), [
      '2028-02-28T22:15:00.000Z',
      '2032-02-28T22:15:00.000Z',
    ]);
  });
});

describe('America/Sao_Paulo (no DST since 2019)', () => {
  const Z = 'America/Sao_Paulo';

  test('the offset is -03:00 all year', () => {
    for (const month of ['01', '04', '07', '10', '11', '12']) {
      assert.equal(offsetAt(Z, `2026-${month}-15T12:00:00Z`), 'GMT-03:00');
    }
  });

  test('midnight fires every day of 2026 at 03:00 UTC, none skipped (1 November included)', () => {
    const midnights = fires('0 0 * * *', Z, '2026-01-01T02:59:59Z', '2027-01-01T03:00:00Z');
    assert.equal(midnights.length, 365);
    assert.equal(midnights[0], '2026-01-01T03:00:00.000Z');
    assert.ok(gapsMinutes(midnights).every((g) => g === 24 * 60));
    // Brazil's DST began at 00:00 on the first Sunday of November until 2018.
    assert.ok(midnights.includes('2026-11-01T03:00:00.000Z'));
  });
});
