/** Unit tests for src/schedule/spec.ts: durations, next fire times, gaps, jitter, time zones. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  isValidTimeZone,
  jitterFor,
  minimumGapMs,
  nextFireAfter,
  parseDuration,
  type ScheduleSpec,
} from '../../src/schedule/spec.ts';

const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
const cron = (pattern: string, timezone = 'UTC'): ScheduleSpec => ({
  kind: 'cron',
  cron: pattern,
  timezone,
});
const every = (text: string, everyMs: number): ScheduleSpec => ({
  kind: 'every',
  every: text,
  everyMs,
});
const at = (when: string): ScheduleSpec => ({ kind: 'at', at: when, atMs: ms(when) });

/** Small seeded PRNG so property checks are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseDuration', () => {
  test('parses single units', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('1d'), 86_400_000);
  });

  test('parses compound durations by summing the parts', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1s500ms'), 1_500);
    assert.equal(parseDuration('1d2h3m4s5ms'), 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5);
  });

  test('a zero part is allowed when the total is positive', () => {
    assert.equal(parseDuration('1h0m'), 3_600_000);
  });

  for (const bad of [
    '',
    '10',
    '1x',
    '0s',
    '0ms',
    '0h0m',
    's',
    '1.5h',
    '-1s',
    ' 1s',
    '1s ',
    '1 s',
    '1S',
    '1sec',
    'ms',
    '1h-30m',
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(parseDuration(bad), null);
    });
  }

  test('rejects totals that are not safe integers', () => {
    assert.equal(parseDuration('999999999d'), null);
  });
});

describe('isValidTimeZone', () => {
  test('accepts IANA zones and UTC', () => {
    for (const z of ['UTC', 'Etc/UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata']) {
      assert.equal(isValidTimeZone(z), true, z);
    }
  });

  test('rejects unknown zones', () => {
    for (const z of ['Mars/Olympus_Mons', 'Europe/Berlinn', 'Not a zone', '']) {
      assert.equal(isValidTimeZone(z), false, JSON.stringify(z));
    }
  });
});

describe('nextFireAfter: cron', () => {
  const nineBerlin = cron('0 9 * * *', 'Europe/Berlin');

  test('09:00 Europe/Berlin is 08:00Z in winter (CET, UTC+1)', () => {
    assert.equal(
      iso(nextFireAfter(nineBerlin, ms('2026-01-15T10:00:00Z'), 0)),
      '2026-01-16T08:00:00.000Z',
    );
    assert.equal(
      iso(nextFireAfter(nineBerlin, ms('2026-01-15T07:00:00Z'), 0)),
      '2026-01-15T08:00:00.000Z',
    );
  });

  test('09:00 Europe/Berlin is 07:00Z in summer (CEST, UTC+2)', () => {
    assert.equal(
      iso(nextFireAfter(nineBerlin, ms('2026-07-15T10:00:00Z'), 0)),
      '2026-07-16T07:00:00.000Z',
    );
    assert.equal(
      iso(nextFireAfter(nineBerlin, ms('2026-07-15T06:00:00Z'), 0)),
      '2026-07-15T07:00:00.000Z',
    );
  });

  test('the same pattern in UTC fires at 09:00Z', () => {
    assert.equal(
      iso(nextFireAfter(cron('0 9 * * *'), ms('2026-01-15T10:00:00Z'), 0)),
      '2026-01-16T09:00:00.000Z',
    );
  });

  test('is strictly after: at an exact fire time it returns the following one', () => {
    const fire = ms('2026-01-16T08:00:00Z');
    assert.equal(nextFireAfter(nineBerlin, fire - 1, 0), fire);
    assert.equal(iso(nextFireAfter(nineBerlin, fire, 0)), '2026-01-17T08:00:00.000Z');
    assert.equal(iso(nextFireAfter(nineBerlin, fire + 500, 0)), '2026-01-17T08:00:00.000Z');
  });

  test('strictly after also holds for every-minute patterns', () => {
    const t = ms('2026-01-15T10:05:00Z');
    assert.equal(nextFireAfter(cron('* * * * *'), t, 0), t + 60_000);
    assert.equal(nextFireAfter(cron('* * * * *'), t - 1, 0), t);
  });

  test('a time in the spring-forward gap (02:30 on 2026-03-29, Europe/Berlin) does not throw and is sane', () => {
    const spec = cron('30 2 * * *', 'Europe/Berlin');
    const after = ms('2026-03-28T12:00:00Z');
    const next = nextFireAfter(spec, after, 0);
    assert.ok(next !== null && Number.isFinite(next));
    assert.ok(next > after);
    // Fires some time on 29 March local time (not skipped to a later day, not before).
    assert.ok(
      next >= ms('2026-03-28T23:00:00Z') && next < ms('2026-03-29T22:00:00Z'),
      iso(next) ?? '',
    );
    // And the schedule carries on normally: 02:30 CEST = 00:30Z on the 30th.
    assert.equal(iso(nextFireAfter(spec, next, 0)), '2026-03-30T00:30:00.000Z');
  });

  test('a time that occurs twice (fall-back, 2026-10-25) fires once that day', () => {
    const spec = cron('30 2 * * *', 'Europe/Berlin');
    const first = nextFireAfter(spec, ms('2026-10-24T12:00:00Z'), 0);
    assert.ok(first !== null);
    const second = nextFireAfter(spec, first, 0);
    assert.ok(second !== null);
    assert.ok(
      first >= ms('2026-10-24T22:00:00Z') && first < ms('2026-10-25T23:00:00Z'),
      iso(first) ?? '',
    );
    assert.equal(iso(second), '2026-10-26T01:30:00.000Z');
  });

  test('6-field patterns have a seconds field', () => {
    const spec = cron('*/15 * * * * *');
    assert.equal(
      iso(nextFireAfter(spec, ms('2026-01-15T10:00:00Z'), 0)),
      '2026-01-15T10:00:15.000Z',
    );
    assert.equal(
      iso(nextFireAfter(spec, ms('2026-01-15T10:00:07Z'), 0)),
      '2026-01-15T10:00:15.000Z',
    );
    assert.equal(
      iso(nextFireAfter(spec, ms('2026-01-15T10:00:59.999Z'), 0)),
      '2026-01-15T10:01:00.000Z',
    );
    assert.equal(
      iso(nextFireAfter(cron('30 0 9 * * *', 'Europe/Berlin'), ms('2026-01-15T10:00:00Z'), 0)),
      '2026-01-16T08:00:30.000Z',
    );
  });

  test('ignores the anchor', () => {
    const after = ms('2026-01-15T10:00:00Z');
    assert.equal(
      nextFireAfter(nineBerlin, after, 0),
      nextFireAfter(nineBerlin, after, after - 12_345),
    );
  });

  test('a pattern that never matches returns null', () => {
    assert.equal(nextFireAfter(cron('0 0 30 2 *'), ms('2026-01-15T10:00:00Z'), 0), null);
  });
});

describe('nextFireAfter: every (anchored)', () => {
  const spec = every('100ms', 100);
  const anchor = 1_000;

  test('fires at anchor + k·every, strictly after', () => {
    assert.equal(nextFireAfter(spec, anchor, anchor), 1_100);
    assert.equal(nextFireAfter(spec, 1_001, anchor), 1_100);
    assert.equal(nextFireAfter(spec, 1_099, anchor), 1_100);
    assert.equal(nextFireAfter(spec, 1_100, anchor), 1_200);
    assert.equal(nextFireAfter(spec, 1_150, anchor), 1_200);
    assert.equal(nextFireAfter(spec, 10_999, anchor), 11_000);
  });

  test('before the anchor, the first fire is anchor + every', () => {
    assert.equal(nextFireAfter(spec, 999, anchor), 1_100);
    assert.equal(nextFireAfter(spec, 0, anchor), 1_100);
    assert.equal(nextFireAfter(spec, -5_000, anchor), 1_100);
  });

  test('does not drift: property over random anchors and times', () => {
    const rnd = mulberry32(42);
    const t0 = ms('2026-01-15T10:00:00Z');
    for (let i = 0; i < 2_000; i++) {
      const everyMs = 1 + Math.floor(rnd() * 86_400_000);
      const anchorMs = t0 + Math.floor(rnd() * 1e9);
      const afterMs = anchorMs + Math.floor(rnd() * 1e11);
      const next = nextFireAfter(every('x', everyMs), afterMs, anchorMs);
      assert.ok(next !== null);
      assert.ok(next > afterMs, `next ${next} not after ${afterMs}`);
      assert.ok(next - afterMs <= everyMs, 'skipped a tick');
      assert.equal((next - anchorMs) % everyMs, 0, 'not on the anchor grid');
    }
  });
});

describe('nextFireAfter: at', () => {
  const spec = at('2026-02-01T12:00:00Z');

  test('returns the time when it is in the future', () => {
    assert.equal(
      nextFireAfter(spec, ms('2026-01-15T10:00:00Z'), 0),
      spec.kind === 'at' ? spec.atMs : NaN,
    );
    assert.equal(
      nextFireAfter(spec, ms('2026-02-01T11:59:59.999Z'), 0),
      ms('2026-02-01T12:00:00Z'),
    );
  });

  test('returns null once the time is reached or past', () => {
    assert.equal(nextFireAfter(spec, ms('2026-02-01T12:00:00Z'), 0), null);
    assert.equal(nextFireAfter(spec, ms('2026-03-01T00:00:00Z'), 0), null);
  });
});

describe('minimumGapMs', () => {
  test('every: the interval', () => {
    assert.equal(minimumGapMs(every('90s', 90_000)), 90_000);
  });

  test('at: null (fires once)', () => {
    assert.equal(minimumGapMs(at('2026-02-01T12:00:00Z')), null);
  });

  test('cron: the smallest gap the pattern can have (test/unit/dst-policy.test.ts: DST)', () => {
    assert.equal(minimumGapMs(cron('*/5 * * * *')), 300_000);
    assert.equal(minimumGapMs(cron('* * * * * *')), 1_000);
    assert.equal(minimumGapMs(cron('*/10 * * * * *')), 10_000);
    // 23 h: the spring-forward day (it was 24 h when sampled on a winter day).
    assert.equal(minimumGapMs(cron('0 9 * * *', 'Europe/Berlin')), 23 * 3_600_000);
    // Uneven gaps: 09:00 and 09:01 each day → the smaller one wins.
    assert.equal(minimumGapMs(cron('0,1 9 * * *')), 60_000);
  });

  test('cron that never fires: null', () => {
    assert.equal(minimumGapMs(cron('0 0 30 2 *')), null);
  });
});

describe('jitterFor', () => {
  test('is 0 when jitter is 0 (or negative)', () => {
    assert.equal(jitterFor('t/p/a', 1_000, 0), 0);
    assert.equal(jitterFor('t/p/a', 1_000, -5), 0);
  });

  test('is deterministic per (key, nominal time)', () => {
    for (let i = 0; i < 50; i++) {
      const t = 1_700_000_000_000 + i * 60_000;
      assert.equal(
        jitterFor('tenant/plugin/s1', t, 30_000),
        jitterFor('tenant/plugin/s1', t, 30_000),
      );
    }
  });

  test('stays in [0, jitter) and is an integer', () => {
    const rnd = mulberry32(7);
    for (let i = 0; i < 5_000; i++) {
      const jitter = 1 + Math.floor(rnd() * 100_000);
      const j = jitterFor(`k${i}`, Math.floor(rnd() * 2e12), jitter);
      assert.ok(Number.isInteger(j) && j >= 0 && j < jitter, `${j} not in [0, ${jitter})`);
    }
    for (let i = 0; i < 100; i++) assert.equal(jitterFor(`k${i}`, i, 1), 0);
  });

  test('varies with key and tick, and spreads over the range', () => {
    const values = new Set<number>();
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 2_000; i++) {
      const j = jitterFor('tenant/plugin/s1', 1_700_000_000_000 + i * 60_000, 1_000);
      values.add(j);
      min = Math.min(min, j);
      max = Math.max(max, j);
    }
    assert.ok(values.size > 500, `only ${values.size} distinct values`);
    assert.ok(min < 50 && max > 950, `range [${min}, ${max}]`);
    const byKey = new Set(
      Array.from({ length: 100 }, (_, i) => jitterFor(`key-${i}`, 1_700_000_000_000, 60_000)),
    );
    assert.ok(byKey.size > 90, `only ${byKey.size} distinct values across keys`);
  });
});
