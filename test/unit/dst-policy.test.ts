/**
 * The DST policy of cron schedules (issue 14): `nextFireAfter` against an independent oracle
 * across real transitions, and the minimum-interval check giving one answer on every day.
 *
 * The oracle walks real time minute by minute (or second by second), reads each instant's wall
 * time with Intl, and asks croner (in UTC, so on wall times) whether the pattern matches it: that
 * is every fire under `twice`; `once` keeps each wall time's first instant; wall times the
 * pattern matches that no instant shows (a spring-forward gap) fire at the jump under
 * `run-once`. Nothing here shares code with spec.ts's wall-time mapping.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { Cron } from 'croner';
import { parseDeclaration } from '../../src/schedule/declaration.ts';
import {
  defaultDst,
  minimumGapMs,
  nextFireAfter,
  specJson,
  type DstPolicy,
  type ScheduleSpec,
} from '../../src/schedule/spec.ts';

const ms = (iso: string): number => Date.parse(iso);
const POLICIES: DstPolicy[] = [
  { skipped: 'skip', repeated: 'once' },
  { skipped: 'skip', repeated: 'twice' },
  { skipped: 'run-once', repeated: 'once' },
  { skipped: 'run-once', repeated: 'twice' },
];

function wallOf(zone: string, t: number): number {
  const p: Record<string, number> = {};
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  for (const x of f.formatToParts(new Date(t))) if (x.type !== 'literal') p[x.type] = +x.value;
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
}

/** The oracle's fires in [from, to) (step: the pattern's finest field, 60 s or 1 s). */
function oracle(
  pattern: string,
  zone: string,
  policy: DstPolicy,
  from: number,
  to: number,
  step: number,
): number[] {
  const onWall = new Cron(pattern, { timezone: 'UTC', paused: true });
  const seen = new Map<number, number>(); // wall -> first instant
  const out = new Set<number>();
  const walls: number[] = [];
  let prevWall: number | null = null;
  for (let t = from; t < to; t += step) {
    const w = wallOf(zone, t);
    if (prevWall !== null && w - prevWall > step) {
      // The clock jumped: wall times (prevWall, w) do not exist; the jump is at t.
      for (let g = prevWall + step; g < w; g += step) {
        if (policy.skipped === 'run-once' && onWall.match(new Date(g))) out.add(t);
      }
    }
    prevWall = w;
    walls.push(w);
    if (!onWall.match(new Date(w))) continue;
    if (seen.has(w)) {
      if (policy.repeated === 'twice') out.add(t);
    } else {
      seen.set(w, t);
      out.add(t);
    }
  }
  return [...out].sort((a, b) => a - b);
}

function chained(spec: ScheduleSpec, from: number, to: number): number[] {
  const out: number[] = [];
  let t = from - 1;
  for (;;) {
    const n = nextFireAfter(spec, t, 0);
    if (n === null || n >= to) return out;
    assert.ok(n > t);
    out.push(n);
    t = n;
  }
}

const iso = (list: number[]): string[] => list.map((t) => new Date(t).toISOString());

interface Case {
  zone: string;
  from: string;
  to: string;
  patterns: string[];
}
// Windows around the 2026 transitions (a few hours either side).
const CASES: Case[] = [
  {
    zone: 'Europe/Berlin',
    from: '2026-03-28T22:00:00Z',
    to: '2026-03-29T05:00:00Z',
    patterns: [
      '30 2 * * *',
      '30 2,14 * * *',
      '0 0-23/2 * * *',
      '*/15 2 * * *',
      '0 * * * *',
      '0 2,3 * * *',
      '30 1,3 * * *',
    ],
  },
  {
    zone: 'Europe/Berlin',
    from: '2026-10-24T22:00:00Z',
    to: '2026-10-25T05:00:00Z',
    patterns: [
      '30 2 * * *',
      '30 2,14 * * *',
      '0 0-23/2 * * *',
      '*/15 2 * * *',
      '0 * * * *',
      '10 1,2 * * *',
      '50 1-3 * * *',
    ],
  },
  {
    zone: 'America/New_York',
    from: '2026-03-08T04:00:00Z',
    to: '2026-03-08T11:00:00Z',
    patterns: ['30 2 * * *', '30 2,14 * * *', '0 0-23/2 * * *', '*/20 2 * * *', '0 * * * *'],
  },
  {
    zone: 'America/New_York',
    from: '2026-11-01T03:00:00Z',
    to: '2026-11-01T10:00:00Z',
    patterns: ['30 1 * * *', '30 1,13 * * *', '0 1-23/2 * * *', '*/20 1 * * *', '0 * * * *'],
  },
  {
    zone: 'Australia/Lord_Howe',
    from: '2026-10-03T12:00:00Z',
    to: '2026-10-03T18:00:00Z',
    patterns: ['15 2 * * *', '15 2,14 * * *', '0 * * * *', '30 * * * *', '*/10 2 * * *'],
  },
  {
    zone: 'Australia/Lord_Howe',
    from: '2026-04-04T12:00:00Z',
    to: '2026-04-04T18:00:00Z',
    patterns: ['45 1 * * *', '45 1,13 * * *', '0 * * * *', '30 * * * *', '*/15 1 * * *'],
  },
];

describe('nextFireAfter with a DST policy agrees with the oracle', () => {
  for (const c of CASES) {
    for (const pattern of c.patterns) {
      test(`${c.zone} ${c.from.slice(0, 10)} ${pattern}`, () => {
        for (const dst of POLICIES) {
          const spec: ScheduleSpec = { kind: 'cron', cron: pattern, timezone: c.zone, dst };
          const want = oracle(pattern, c.zone, dst, ms(c.from), ms(c.to), 60_000);
          assert.deepEqual(
            iso(chained(spec, ms(c.from), ms(c.to))),
            iso(want),
            JSON.stringify(dst),
          );
          // From any minute in the window (not only from a previous fire), the next fire is the
          // oracle's first after it.
          for (let t = ms(c.from); t < ms(c.to) - 3_600_000; t += 7 * 60_000 + 13_000) {
            const n = nextFireAfter(spec, t, 0);
            const o = want.find((x) => x > t);
            if (o !== undefined)
              assert.equal(n, o, `${JSON.stringify(dst)} after ${new Date(t).toISOString()}`);
          }
        }
      });
    }
  }

  test('every second across the Berlin fall-back, each policy', () => {
    for (const dst of POLICIES) {
      const spec: ScheduleSpec = {
        kind: 'cron',
        cron: '*/20 * 2 * * *',
        timezone: 'Europe/Berlin',
        dst,
      };
      const from = ms('2026-10-24T23:50:00Z');
      const to = ms('2026-10-25T02:10:00Z');
      assert.deepEqual(
        iso(chained(spec, from, to)),
        iso(oracle('*/20 * 2 * * *', 'Europe/Berlin', dst, from, to, 1_000)),
      );
    }
  });
});

describe('default policy', () => {
  test('a fixed time: run-once / once; a wildcard, step, range or list in s, m or h: skip / twice', () => {
    const fixed = { skipped: 'run-once', repeated: 'once' };
    const wild = { skipped: 'skip', repeated: 'twice' };
    for (const p of ['30 2 * * *', '0 30 2 * * *', '@daily', '0 3 * * 0L', '15 14 1 * *'])
      assert.deepEqual(defaultDst(p), fixed, p);
    for (const p of [
      '*/15 2 * * *',
      '0 * * * *',
      '0 */2 * * *',
      '* 30 2 * * *',
      '@hourly',
      '30 2,14 * * *',
      '0 0-23/2 * * *',
      '30 1-2 * * *',
    ])
      assert.deepEqual(defaultDst(p), wild, p);
  });
});

describe('minimumGapMs: the same answer on every day', () => {
  const cron = (c: string, timezone: string, dst?: DstPolicy): ScheduleSpec => ({
    kind: 'cron',
    cron: c,
    timezone,
    ...(dst ? { dst } : {}),
  });

  test('30 1,3 * * * in Berlin: 60 min (the spring night), whatever the day', () => {
    // The old sample of the next 8 fires said 120 min on 20 March and 60 on 28 March.
    assert.equal(minimumGapMs(cron('30 1,3 * * *', 'Europe/Berlin')), 60 * 60_000);
    // Real fires on the spring night are 60 min apart: the floor is not a fiction.
    const spec = cron('30 1,3 * * *', 'Europe/Berlin');
    const a = nextFireAfter(spec, ms('2026-03-29T00:00:00Z'), 0) as number;
    const b = nextFireAfter(spec, a, 0) as number;
    assert.equal(b - a, 60 * 60_000);
  });

  test('Lord Howe shifts by 30 minutes: 30 1,3 * * * is 90 min at least, once a repeated time', () => {
    const onceEach = { skipped: 'run-once', repeated: 'once' } as const;
    assert.equal(minimumGapMs(cron('30 1,3 * * *', 'Australia/Lord_Howe', onceEach)), 90 * 60_000);
    // Its default (a list: skip / twice) runs the repeated 01:30 twice, 30 minutes apart.
    assert.equal(minimumGapMs(cron('30 1,3 * * *', 'Australia/Lord_Howe')), 30 * 60_000);
    // 30 * * * * repeats 01:30 after 30 minutes under `twice` (its default), and under `once`
    // still has the spring night's 30 minutes (01:30 +10:30, then 02:30 +11).
    assert.equal(minimumGapMs(cron('30 * * * *', 'Australia/Lord_Howe')), 30 * 60_000);
    assert.equal(
      minimumGapMs(
        cron('30 * * * *', 'Australia/Lord_Howe', { skipped: 'skip', repeated: 'once' }),
      ),
      30 * 60_000,
    );
    // 15 * * * *: the missing 02:15 skipped (its default) leaves 60 min; run at the jump
    // (02:30 +11) it comes 45 min before 03:15.
    assert.equal(minimumGapMs(cron('15 * * * *', 'Australia/Lord_Howe')), 60 * 60_000);
    assert.equal(
      minimumGapMs(
        cron('15 * * * *', 'Australia/Lord_Howe', { skipped: 'run-once', repeated: 'twice' }),
      ),
      45 * 60_000,
    );
  });

  test('a fixed time in a zone with DST: 23 h; weekly: 7 d - 1 h; UTC: 24 h', () => {
    assert.equal(minimumGapMs(cron('0 9 * * *', 'Europe/Berlin')), 23 * 3_600_000);
    assert.equal(minimumGapMs(cron('0 9 * * 1', 'Europe/Berlin')), (7 * 24 - 1) * 3_600_000);
    assert.equal(minimumGapMs(cron('0 9 * * *', 'UTC')), 24 * 3_600_000);
    assert.equal(minimumGapMs(cron('0 9 * * *', 'Asia/Tokyo')), 24 * 3_600_000);
  });

  test('run-once moves a skipped fire to the jump: 0,30 1,2 Berlin fires 30 min apart', () => {
    // 01:30 CET, then 02:00/02:30 (missing) at 03:00 CEST: 30 real minutes.
    assert.equal(minimumGapMs(cron('0,30 1,2 * * *', 'Europe/Berlin')), 30 * 60_000);
    assert.equal(
      minimumGapMs(
        cron('40 1,2 * * *', 'Europe/Berlin', { skipped: 'run-once', repeated: 'once' }),
      ),
      20 * 60_000,
    );
    assert.equal(
      minimumGapMs(cron('40 1,2 * * *', 'Europe/Berlin', { skipped: 'skip', repeated: 'once' })),
      60 * 60_000,
    );
  });

  test('twice: a repeated 02:30 comes back after 60 min in Berlin', () => {
    assert.equal(
      minimumGapMs(cron('30 2 * * *', 'Europe/Berlin', { skipped: 'run-once', repeated: 'twice' })),
      60 * 60_000,
    );
    assert.equal(minimumGapMs(cron('30 2 * * *', 'Europe/Berlin')), 23 * 3_600_000);
  });
});

describe('declarations: dst field, hash, and one answer on every day', () => {
  const LIMITS = { minIntervalMs: 1_000, maxPayloadBytes: 65_536 };
  const DAY = 86_400_000;

  test('30 1,3 * * * in Berlin: refused at a 90-min floor and accepted at 60 on every day of 2026', () => {
    // The clock: each day of the year at 10:00 UTC (the check ran on the host's clock).
    const start = ms('2026-01-01T10:00:00Z');
    for (let day = 0; day < 365; day++) {
      const now = start + day * DAY;
      const decl = { id: 'b', cron: '30 1,3 * * *', timezone: 'Europe/Berlin' };
      const refused = parseDeclaration(decl, { ...LIMITS, minIntervalMs: 90 * 60_000 }, now);
      assert.equal(refused.ok, false, new Date(now).toISOString());
      if (!refused.ok) assert.match(refused.issue.message, /fires every 3600000 ms/);
      assert.equal(parseDeclaration(decl, { ...LIMITS, minIntervalMs: 60 * 60_000 }, now).ok, true);
    }
  });

  test('Lord Howe: the same pattern is 90 min apart at least, on every day', () => {
    const start = ms('2026-01-01T10:00:00Z');
    for (let day = 0; day < 365; day += 3) {
      const now = start + day * DAY;
      const decl = {
        id: 'l',
        cron: '30 1,3 * * *',
        timezone: 'Australia/Lord_Howe',
        dst: { skipped: 'run-once', repeated: 'once' },
      };
      assert.equal(parseDeclaration(decl, { ...LIMITS, minIntervalMs: 90 * 60_000 }, now).ok, true);
      assert.equal(
        parseDeclaration(decl, { ...LIMITS, minIntervalMs: 91 * 60_000 }, now).ok,
        false,
      );
    }
  });

  test('no dst (or the default spelled out): the spec and hash are what they were', () => {
    const now = ms('2026-03-01T00:00:00Z');
    const plain = parseDeclaration(
      { id: 'a', cron: '30 2 * * *', timezone: 'Europe/Berlin' },
      LIMITS,
      now,
    );
    const spelled = parseDeclaration(
      {
        id: 'a',
        cron: '30 2 * * *',
        timezone: 'Europe/Berlin',
        dst: { skipped: 'run-once', repeated: 'once' },
      },
      LIMITS,
      now,
    );
    const own = parseDeclaration(
      { id: 'a', cron: '30 2 * * *', timezone: 'Europe/Berlin', dst: { skipped: 'skip' } },
      LIMITS,
      now,
    );
    assert.ok(plain.ok && spelled.ok && own.ok);
    assert.equal(
      specJson(plain.value.spec),
      '{"kind":"cron","cron":"30 2 * * *","timezone":"Europe/Berlin"}',
    );
    assert.equal(spelled.value.hash, plain.value.hash);
    assert.notEqual(own.value.hash, plain.value.hash);
    // The hash of a declaration without dst, as c28f200 (before this field) computed it.
    const text =
      '{"id":"a","spec":{"kind":"cron","cron":"30 2 * * *","timezone":"Europe/Berlin"},"jitter":null,' +
      '"jitterMs":0,"payload":null,"overlap":"skip","misfire":"skip","paused":false,"description":null}';
    assert.equal(plain.value.hash, createHash('sha256').update(text).digest('base64'));
    // The policy is stored whole, in JSON.stringify's order, and read back from it.
    const json = specJson(own.value.spec);
    assert.equal(json, JSON.stringify(own.value.spec));
    assert.deepEqual(JSON.parse(json).dst, { skipped: 'skip', repeated: 'once' });
  });

  test('dst is validated: known values only, only with cron', () => {
    const now = ms('2026-03-01T00:00:00Z');
    const bad = (d: unknown): string => {
      const r = parseDeclaration(d, LIMITS, now);
      assert.equal(r.ok, false);
      return r.ok ? '' : `${r.issue.field} ${r.issue.message}`;
    };
    assert.match(
      bad({ id: 'a', cron: '30 2 * * *', dst: { skipped: 'later' } }),
      /^\/dst\/skipped/,
    );
    assert.match(
      bad({ id: 'a', cron: '30 2 * * *', dst: { repeated: 'thrice' } }),
      /^\/dst\/repeated/,
    );
    assert.match(bad({ id: 'a', cron: '30 2 * * *', dst: { other: 1 } }), /^\/dst/);
    assert.match(bad({ id: 'a', cron: '30 2 * * *', dst: 'skip' }), /^\/dst/);
    assert.match(
      bad({ id: 'a', every: '1h', dst: { skipped: 'skip' } }),
      /^\/dst is only allowed with "cron"/,
    );
  });
});
