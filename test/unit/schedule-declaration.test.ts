/** Unit tests for src/schedule/declaration.ts: parseDeclaration and parseDeclarationList. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  MAX_DECLARATIONS,
  parseDeclaration,
  parseDeclarationList,
  type DeclarationIssue,
  type DeclarationLimits,
  type DeclarationResult,
  type ParsedDeclaration,
} from '../../src/schedule/declaration.ts';

const NOW = Date.parse('2026-01-15T10:00:00Z');
const LIMITS: DeclarationLimits = { minIntervalMs: 1_000, maxPayloadBytes: 1_024 };

function ok(r: DeclarationResult): ParsedDeclaration {
  if (!r.ok) assert.fail(`expected ok, got ${JSON.stringify(r.issue)}`);
  return r.value;
}

function issue(r: DeclarationResult): DeclarationIssue {
  if (r.ok) assert.fail(`expected an issue, got ${JSON.stringify(r.value)}`);
  return r.issue;
}

function parse(input: unknown, limits: DeclarationLimits = LIMITS): DeclarationResult {
  return parseDeclaration(input, limits, NOW);
}

function assertIssue(
  input: unknown,
  code: DeclarationIssue['code'],
  field: string,
  limits: DeclarationLimits = LIMITS,
): void {
  const i = issue(parse(input, limits));
  assert.equal(i.code, code, `code for ${JSON.stringify(input)}`);
  assert.equal(i.field, field, `field for ${JSON.stringify(input)}`);
  assert.equal(typeof i.message, 'string');
  assert.ok(i.message.length > 0);
}

describe('parseDeclaration: accepted kinds', () => {
  test('cron defaults to UTC', () => {
    const d = ok(parse({ id: 'daily', cron: '0 9 * * *' }));
    assert.equal(d.id, 'daily');
    assert.deepEqual(d.spec, { kind: 'cron', cron: '0 9 * * *', timezone: 'UTC' });
  });

  test('cron with a time zone', () => {
    const d = ok(parse({ id: 'daily', cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' }));
    assert.deepEqual(d.spec, { kind: 'cron', cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' });
  });

  test('6-field cron', () => {
    const d = ok(parse({ id: 's', cron: '*/30 * * * * *' }));
    assert.equal(d.spec.kind, 'cron');
  });

  test('every', () => {
    const d = ok(parse({ id: 'poll', every: '1h30m' }));
    assert.deepEqual(d.spec, { kind: 'every', every: '1h30m', everyMs: 5_400_000 });
  });

  test('at, normalized to UTC ISO text', () => {
    const d = ok(parse({ id: 'once', at: '2026-02-01T12:00:00+01:00' }));
    assert.deepEqual(d.spec, {
      kind: 'at',
      at: '2026-02-01T11:00:00.000Z',
      atMs: Date.parse('2026-02-01T11:00:00Z'),
    });
    const z = ok(parse({ id: 'once', at: '2026-02-01T12:00Z' }));
    assert.equal(z.spec.kind === 'at' && z.spec.atMs, Date.parse('2026-02-01T12:00:00Z'));
  });

  test('at in the past is still a valid declaration', () => {
    ok(parse({ id: 'once', at: '2020-01-01T00:00:00Z' }));
  });

  test('defaults', () => {
    const d = ok(parse({ id: 'x', every: '1m' }));
    assert.equal(d.overlap, 'skip');
    assert.equal(d.misfire, 'skip');
    assert.equal(d.paused, false);
    assert.equal(d.jitter, null);
    assert.equal(d.jitterMs, 0);
    assert.equal(d.payload, null);
    assert.equal(d.description, null);
  });

  test('explicit options are kept', () => {
    const d = ok(
      parse({
        id: 'x',
        every: '1m',
        jitter: '10s',
        payload: { url: 'https://example.com', n: [1, 2] },
        overlap: 'buffer-one',
        misfire: 'run-once',
        paused: true,
        description: 'polls the thing',
      }),
    );
    assert.equal(d.jitter, '10s');
    assert.equal(d.jitterMs, 10_000);
    assert.equal(d.payload, JSON.stringify({ url: 'https://example.com', n: [1, 2] }));
    assert.equal(d.overlap, 'buffer-one');
    assert.equal(d.misfire, 'run-once');
    assert.equal(d.paused, true);
    assert.equal(d.description, 'polls the thing');
  });

  test('a null payload means no payload; scalar payloads are JSON text', () => {
    assert.equal(ok(parse({ id: 'x', every: '1m', payload: null })).payload, null);
    assert.equal(ok(parse({ id: 'x', every: '1m', payload: 0 })).payload, '0');
    assert.equal(ok(parse({ id: 'x', every: '1m', payload: 'hi' })).payload, '"hi"');
    assert.equal(ok(parse({ id: 'x', every: '1m', payload: false })).payload, 'false');
  });

  test('id pattern: allowed characters and length', () => {
    ok(parse({ id: 'a', every: '1m' }));
    ok(parse({ id: 'A0._:-z', every: '1m' }));
    ok(parse({ id: 'a'.repeat(128), every: '1m' }));
  });
});

describe('parseDeclaration: rejections', () => {
  test('unknown property: the field pointer names it', () => {
    assertIssue({ id: 'x', every: '1m', bogus: 1 }, 'invalid_argument', '/bogus');
    assertIssue({ id: 'x', every: '1m', timeZone: 'UTC' }, 'invalid_argument', '/timeZone');
  });

  test('not an object', () => {
    for (const v of [null, undefined, 'x', 42, [], [{ id: 'x', every: '1m' }]]) {
      assert.equal(issue(parse(v)).code, 'invalid_argument', JSON.stringify(v));
    }
  });

  test('missing id', () => {
    assertIssue({ every: '1m' }, 'invalid_argument', '/id');
  });

  test('bad id pattern', () => {
    for (const id of ['', '-x', '.x', 'a b', 'a/b', 'ü', 'a'.repeat(129)]) {
      assertIssue({ id, every: '1m' }, 'invalid_argument', '/id');
    }
    assertIssue({ id: 5, every: '1m' }, 'invalid_argument', '/id');
  });

  test('none of cron/every/at', () => {
    assertIssue({ id: 'x' }, 'invalid_argument', '/');
    assertIssue({ id: 'x', jitter: '1s' }, 'invalid_argument', '/');
  });

  test('two or three of cron/every/at', () => {
    assertIssue({ id: 'x', cron: '0 9 * * *', every: '1m' }, 'invalid_argument', '/');
    assertIssue({ id: 'x', every: '1m', at: '2026-02-01T12:00:00Z' }, 'invalid_argument', '/');
    assertIssue(
      { id: 'x', cron: '0 9 * * *', at: '2026-02-01T12:00:00Z' },
      'invalid_argument',
      '/',
    );
    assertIssue(
      { id: 'x', cron: '0 9 * * *', every: '1m', at: '2026-02-01T12:00:00Z' },
      'invalid_argument',
      '/',
    );
  });

  test('timezone without cron', () => {
    assertIssue(
      { id: 'x', every: '1m', timezone: 'Europe/Berlin' },
      'invalid_argument',
      '/timezone',
    );
    assertIssue(
      { id: 'x', at: '2026-02-01T12:00:00Z', timezone: 'UTC' },
      'invalid_argument',
      '/timezone',
    );
  });

  test('invalid cron', () => {
    for (const c of [
      'nope',
      '* * *',
      '61 * * * *',
      '* 25 * * *',
      '* * * * * * * *',
      '0 9 * * mon-xyz',
    ]) {
      assertIssue({ id: 'x', cron: c }, 'invalid_argument', '/cron');
    }
    assertIssue({ id: 'x', cron: '' }, 'invalid_argument', '/cron');
  });

  test('unknown time zone', () => {
    assertIssue(
      { id: 'x', cron: '0 9 * * *', timezone: 'Mars/Olympus_Mons' },
      'invalid_argument',
      '/timezone',
    );
    assertIssue(
      { id: 'x', cron: '0 9 * * *', timezone: 'Europe/Berlinn' },
      'invalid_argument',
      '/timezone',
    );
  });

  test('bad duration for every', () => {
    for (const e of ['10', '1x', '0s', '1.5h', '-1m', 'soon']) {
      assertIssue({ id: 'x', every: e }, 'invalid_argument', '/every');
    }
  });

  test('bad duration for jitter', () => {
    for (const j of ['10', '1x', '0s']) {
      assertIssue({ id: 'x', every: '1m', jitter: j }, 'invalid_argument', '/jitter');
    }
  });

  test('bad at', () => {
    for (const a of [
      'tomorrow',
      '2026-02-01',
      '2026-02-01T12:00:00', // no offset
      '2026-02-01 12:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-02-01T25:00:00Z',
      '1767261600000',
    ]) {
      assertIssue({ id: 'x', at: a }, 'invalid_argument', '/at');
    }
  });

  test('an impossible calendar date in at is rejected', () => {
    assertIssue({ id: 'x', at: '2026-02-30T10:00:00Z' }, 'invalid_argument', '/at');
  });

  test('bad enum and type values', () => {
    assertIssue({ id: 'x', every: '1m', overlap: 'queue' }, 'invalid_argument', '/overlap');
    assertIssue({ id: 'x', every: '1m', misfire: 'all' }, 'invalid_argument', '/misfire');
    assertIssue({ id: 'x', every: '1m', paused: 'yes' }, 'invalid_argument', '/paused');
    assertIssue({ id: 'x', every: 60 }, 'invalid_argument', '/every');
    assertIssue(
      { id: 'x', every: '1m', description: 'd'.repeat(501) },
      'invalid_argument',
      '/description',
    );
  });
});

describe('parseDeclaration: quotas', () => {
  test('every below the interval floor → quota_exceeded on /every', () => {
    assertIssue({ id: 'x', every: '500ms' }, 'quota_exceeded', '/every', {
      minIntervalMs: 1_000,
      maxPayloadBytes: 1_024,
    });
    assertIssue({ id: 'x', every: '4s' }, 'quota_exceeded', '/every', {
      minIntervalMs: 5_000,
      maxPayloadBytes: 1_024,
    });
  });

  test('every exactly at the floor is allowed', () => {
    ok(parse({ id: 'x', every: '5s' }, { minIntervalMs: 5_000, maxPayloadBytes: 1_024 }));
  });

  test('cron firing more often than the floor → quota_exceeded on /cron', () => {
    const limits = { minIntervalMs: 5_000, maxPayloadBytes: 1_024 };
    assertIssue({ id: 'x', cron: '* * * * * *' }, 'quota_exceeded', '/cron', limits);
    assertIssue({ id: 'x', cron: '*/2 * * * * *' }, 'quota_exceeded', '/cron', limits);
    assertIssue({ id: 'x', cron: '* * * * *' }, 'quota_exceeded', '/cron', {
      minIntervalMs: 120_000,
      maxPayloadBytes: 1_024,
    });
    ok(parse({ id: 'x', cron: '*/5 * * * * *' }, limits));
    ok(parse({ id: 'x', cron: '* * * * *' }, limits));
  });

  test('at is never subject to the floor', () => {
    ok(
      parse(
        { id: 'x', at: '2026-02-01T12:00:00Z' },
        { minIntervalMs: 86_400_000, maxPayloadBytes: 1_024 },
      ),
    );
  });

  test('payload over maxPayloadBytes → quota_exceeded on /payload; at the limit is fine', () => {
    const limits = { minIntervalMs: 1_000, maxPayloadBytes: 10 };
    ok(parse({ id: 'x', every: '1m', payload: 'abcdefgh' }, limits)); // "abcdefgh" = 10 bytes of JSON
    assertIssue(
      { id: 'x', every: '1m', payload: 'abcdefghi' },
      'quota_exceeded',
      '/payload',
      limits,
    );
    // Bytes, not characters: "éééé" is 2 + 4·2 = 10 bytes; one more é is 12.
    ok(parse({ id: 'x', every: '1m', payload: 'éééé' }, limits));
    assertIssue({ id: 'x', every: '1m', payload: 'ééééé' }, 'quota_exceeded', '/payload', limits);
    assertIssue(
      { id: 'x', every: '1m', payload: { a: 'b'.repeat(100) } },
      'quota_exceeded',
      '/payload',
      limits,
    );
  });
});

describe('parseDeclaration: hash', () => {
  const base = {
    id: 'a',
    cron: '0 9 * * *',
    timezone: 'Europe/Berlin',
    jitter: '10s',
    payload: { x: 1 },
    overlap: 'skip',
    misfire: 'skip',
    paused: false,
    description: 'd',
  };

  test('equal input gives an equal hash', () => {
    assert.equal(ok(parse(base)).hash, ok(parse(structuredClone(base))).hash);
  });

  test('property order of the declaration does not matter', () => {
    assert.equal(
      ok(parse({ every: '1m', id: 'a' })).hash,
      ok(parse({ id: 'a', every: '1m' })).hash,
    );
  });

  test('spelling out a default gives the same hash as omitting it', () => {
    assert.equal(
      ok(parse({ id: 'a', every: '1m' })).hash,
      ok(parse({ id: 'a', every: '1m', overlap: 'skip', misfire: 'skip', paused: false })).hash,
    );
  });

  test('priority: 0..9, default 5, which leaves the hash of older declarations alone', () => {
    const plain = ok(parse({ id: 'a', every: '1m' }));
    assert.equal(plain.priority, 5);
    assert.equal(plain.hash, ok(parse({ id: 'a', every: '1m', priority: 5 })).hash);
    assert.equal(ok(parse({ id: 'a', every: '1m', priority: 0 })).priority, 0);
    for (const bad of [-1, 10, 2.5, '3']) {
      const r = parse({ id: 'a', every: '1m', priority: bad });
      assert.equal(r.ok, false, `priority ${JSON.stringify(bad)} refused`);
      if (!r.ok) assert.equal(r.issue.field, '/priority');
    }
  });

  const changes: Record<string, unknown> = {
    id: 'b',
    cron: '0 10 * * *',
    timezone: 'America/New_York',
    jitter: '11s',
    payload: { x: 2 },
    overlap: 'buffer-one',
    misfire: 'run-once',
    paused: true,
    description: 'e',
    priority: 9,
  };
  for (const [field, value] of Object.entries(changes)) {
    test(`changes when ${field} changes`, () => {
      const h0 = ok(parse(base)).hash;
      const h1 = ok(parse({ ...base, [field]: value })).hash;
      assert.notEqual(h1, h0);
    });
  }

  test('changes when a field is added or removed', () => {
    const h0 = ok(parse(base)).hash;
    const { description: _d, ...noDescription } = base;
    const { payload: _p, ...noPayload } = base;
    const { jitter: _j, ...noJitter } = base;
    assert.notEqual(ok(parse(noDescription)).hash, h0);
    assert.notEqual(ok(parse(noPayload)).hash, h0);
    assert.notEqual(ok(parse(noJitter)).hash, h0);
  });

  test('changes when every or at changes, and across kinds', () => {
    const e1 = ok(parse({ id: 'a', every: '1m' })).hash;
    const e2 = ok(parse({ id: 'a', every: '2m' })).hash;
    const a1 = ok(parse({ id: 'a', at: '2026-02-01T12:00:00Z' })).hash;
    const a2 = ok(parse({ id: 'a', at: '2026-02-01T12:00:01Z' })).hash;
    const c1 = ok(parse({ id: 'a', cron: '* * * * *' })).hash;
    assert.equal(new Set([e1, e2, a1, a2, c1]).size, 5);
  });

  test('an explicit UTC time zone equals the default', () => {
    assert.equal(
      ok(parse({ id: 'a', cron: '0 9 * * *' })).hash,
      ok(parse({ id: 'a', cron: '0 9 * * *', timezone: 'UTC' })).hash,
    );
  });
});

describe('parseDeclarationList', () => {
  test('parses every entry, in order', () => {
    const r = parseDeclarationList(
      [
        { id: 'b', every: '1m' },
        { id: 'a', cron: '0 9 * * *' },
        { id: 'c', at: '2026-02-01T12:00:00Z' },
      ],
      LIMITS,
      NOW,
    );
    assert.ok(r.ok);
    assert.deepEqual(
      r.value.map((d) => [d.id, d.spec.kind]),
      [
        ['b', 'every'],
        ['a', 'cron'],
        ['c', 'at'],
      ],
    );
  });

  test('an empty list is fine', () => {
    const r = parseDeclarationList([], LIMITS, NOW);
    assert.ok(r.ok);
    assert.deepEqual(r.value, []);
  });

  test('non-array input', () => {
    for (const v of [{ id: 'a', every: '1m' }, null, undefined, 'x', 3]) {
      const r = parseDeclarationList(v, LIMITS, NOW);
      assert.ok(!r.ok, JSON.stringify(v));
      assert.equal(r.index, -1);
      assert.equal(r.id, null);
      assert.equal(r.issue.code, 'invalid_argument');
      assert.equal(r.issue.field, '/');
    }
  });

  test(`more than ${MAX_DECLARATIONS} declarations`, () => {
    const list = Array.from({ length: MAX_DECLARATIONS + 1 }, (_, i) => ({
      id: `s${i}`,
      every: '1m',
    }));
    const r = parseDeclarationList(list, LIMITS, NOW);
    assert.ok(!r.ok);
    assert.equal(r.index, -1);
    assert.equal(r.issue.code, 'invalid_argument');
    assert.ok(parseDeclarationList(list.slice(1), LIMITS, NOW).ok);
  });

  test('duplicate ids: the index and id of the second occurrence', () => {
    const r = parseDeclarationList(
      [
        { id: 'a', every: '1m' },
        { id: 'b', every: '1m' },
        { id: 'a', cron: '0 9 * * *' },
      ],
      LIMITS,
      NOW,
    );
    assert.ok(!r.ok);
    assert.equal(r.index, 2);
    assert.equal(r.id, 'a');
    assert.equal(r.issue.code, 'invalid_argument');
    assert.equal(r.issue.field, '/id');
  });

  test('an invalid entry: its index, its id and the entry-relative field', () => {
    const r = parseDeclarationList(
      [
        { id: 'a', every: '1m' },
        { id: 'b', every: '1m', bogus: true },
      ],
      LIMITS,
      NOW,
    );
    assert.ok(!r.ok);
    assert.equal(r.index, 1);
    assert.equal(r.id, 'b');
    assert.equal(r.issue.field, '/bogus');
  });

  test('an entry without a string id reports id null', () => {
    const r = parseDeclarationList([{ id: 'a', every: '1m' }, { every: '1m' }, 'x'], LIMITS, NOW);
    assert.ok(!r.ok);
    assert.equal(r.index, 1);
    assert.equal(r.id, null);
    assert.equal(r.issue.field, '/id');
  });

  test('quota issues keep their code in a list', () => {
    const r = parseDeclarationList([{ id: 'a', every: '100ms' }], LIMITS, NOW);
    assert.ok(!r.ok);
    assert.equal(r.index, 0);
    assert.equal(r.id, 'a');
    assert.equal(r.issue.code, 'quota_exceeded');
    assert.equal(r.issue.field, '/every');
  });
});

test('a cron pattern that never fires is refused', () => {
  assertIssue({ id: 'feb30', cron: '0 0 30 2 *' }, 'invalid_argument', '/cron');
});
