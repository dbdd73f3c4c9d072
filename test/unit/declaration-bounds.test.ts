/**
 * Unit tests for the bounds on declarations (issue 9 items 5, 12, 13): representable times
 * (intervals and jitter at most 365 days, `at` and a cron's first fire within the horizon),
 * bounded cron validation, and JSON depth.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDeclaration, type DeclarationResult } from '../../src/schedule/declaration.ts';
import {
  cronFirstFire,
  cronFor,
  HORIZON_YEARS,
  MAX_INTERVAL_MS,
  minimumGapMs,
} from '../../src/schedule/spec.ts';
import {
  boundedJsonText,
  jsonTooDeepAt,
  MAX_JSON_DEPTH,
  parseGuestJson,
} from '../../src/validation.ts';

const NOW = Date.parse('2026-01-15T10:00:00Z');
const LIMITS = { minIntervalMs: 1_000, maxPayloadBytes: 1_048_576 };
const parse = (input: unknown, now = NOW): DeclarationResult =>
  parseDeclaration(input, LIMITS, now);

function refused(r: DeclarationResult, field: string): string {
  if (r.ok) assert.fail(`expected a refusal of ${field}, got ${JSON.stringify(r.value)}`);
  assert.equal(r.issue.code, 'invalid_argument');
  assert.equal(r.issue.field, field);
  return r.issue.message;
}

function accepted(r: DeclarationResult): void {
  if (!r.ok) assert.fail(`expected ok, got ${JSON.stringify(r.issue)}`);
}

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('intervals and jitter are at most a year', () => {
  test('every: 365d is the longest; 366d and 99999999d are refused', () => {
    assert.equal(MAX_INTERVAL_MS, 365 * 86_400_000);
    accepted(parse({ id: 'a', every: '365d' }));
    accepted(parse({ id: 'a', every: '364d23h59m59s999ms' }));
    assert.match(refused(parse({ id: 'a', every: '366d' }), '/every'), /365d/);
    refused(parse({ id: 'a', every: '99999999d' }), '/every');
    refused(parse({ id: 'a', every: '8760h1ms' }), '/every');
  });

  test('jitter: 365d is the longest', () => {
    accepted(parse({ id: 'a', every: '365d', jitter: '365d' }));
    refused(parse({ id: 'a', every: '1h', jitter: '99999999d' }), '/jitter');
  });
});

describe('at is within the horizon', () => {
  test(`up to ${HORIZON_YEARS} years ahead is accepted, later is refused`, () => {
    accepted(parse({ id: 'a', at: '2031-01-15T10:00:00Z' }));
    refused(parse({ id: 'a', at: '2031-01-15T10:00:01Z' }), '/at');
    refused(parse({ id: 'a', at: '9999-12-31T23:59:59Z' }), '/at');
  });

  test('a past at is still a valid declaration (discovery completes it)', () => {
    accepted(parse({ id: 'a', at: '2020-01-01T00:00:00Z' }));
    accepted(parse({ id: 'a', at: '0001-01-01T00:00:00Z' }));
  });
});

describe('cron validation is a bounded search', () => {
  test('patterns that never fire are refused as invalid_argument', () => {
    for (const cron of ['0 0 31 2 *', '0 0 30 2 *', '0 0 31 4,6,9,11 *', '0 0 0 31 2 * *']) {
      assert.match(refused(parse({ id: 'a', cron }), '/cron'), /does not fire within 5 years/);
    }
  });

  test('a pattern whose first fire is past the horizon is refused; inside it, accepted', () => {
    // A year field (7-field pattern): fires once, in 2040.
    refused(parse({ id: 'a', cron: '0 0 0 1 1 * 2040' }), '/cron');
    accepted(parse({ id: 'a', cron: '0 0 0 1 1 * 2040' }, Date.parse('2036-03-01T00:00:00Z')));
    // Feb 29 that is also a Monday ('+' = both): 2044, then 2072.
    refused(parse({ id: 'a', cron: '0 0 29 2 +1' }), '/cron');
    accepted(parse({ id: 'a', cron: '0 0 29 2 +1' }, Date.parse('2043-06-01T00:00:00Z')));
    assert.equal(
      cronFirstFire('0 0 29 2 +1', 'UTC', Date.parse('2043-06-01T00:00:00Z')),
      Date.parse('2044-02-29T00:00:00Z'),
    );
  });

  test('sparse but regular patterns are accepted: leap days, yearly, nicknames, time zones', () => {
    accepted(parse({ id: 'a', cron: '0 0 29 2 *' }));
    accepted(parse({ id: 'a', cron: '@yearly' }));
    accepted(parse({ id: 'a', cron: '0 0 1 1 *', timezone: 'Pacific/Kiritimati' }));
    accepted(parse({ id: 'a', cron: '0 0 31 12 *', timezone: 'Pacific/Pago_Pago' }));
    assert.equal(cronFirstFire('0 0 29 2 *', 'UTC', NOW), Date.parse('2028-02-29T00:00:00Z'));
  });

  test('the bounded search agrees with croner within the horizon', () => {
    for (const cron of ['*/5 * * * *', '0 9 * * 1-5', '0 0 L * *', '0 0 * * 5#3', '30 2 * * *']) {
      for (const zone of ['UTC', 'Europe/Berlin', 'America/New_York']) {
        const open = cronFor(cron, zone).nextRun(new Date(NOW))?.getTime() ?? null;
        assert.equal(cronFirstFire(cron, zone, NOW), open, `${cron} ${zone}`);
      }
    }
  });

  test('the gap sample is bounded too (a never-firing pattern has no gap)', () => {
    assert.equal(minimumGapMs({ kind: 'cron', cron: '0 0 31 2 *', timezone: 'UTC' }), null);
    assert.equal(
      minimumGapMs({ kind: 'cron', cron: '0 0 1 1 *', timezone: 'UTC' }),
      365 * 86_400_000,
    );
  });

  test('an invalid pattern is still refused with croner’s reason', () => {
    assert.match(refused(parse({ id: 'a', cron: '61 * * * *' }), '/cron'), /invalid cron/);
  });
});

describe('JSON depth', () => {
  test(`text deeper than ${MAX_JSON_DEPTH} levels is refused before parsing`, () => {
    assert.equal(jsonTooDeepAt(deep(MAX_JSON_DEPTH)), -1);
    assert.equal(jsonTooDeepAt(deep(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH);
    assert.throws(() => parseGuestJson(deep(10_000)), SyntaxError);
    assert.deepEqual(parseGuestJson('{"a":[1,{"b":2}]}'), { a: [1, { b: 2 }] });
  });

  test('brackets inside strings (and escaped quotes) do not count', () => {
    const text = JSON.stringify({ s: '['.repeat(1_000) + '\\"{{{', t: ['"[['] });
    assert.equal(jsonTooDeepAt(text), -1);
    assert.deepEqual(parseGuestJson(text), JSON.parse(text));
  });

  test('a payload value 10,000 levels deep is invalid_argument, not an exception', () => {
    const value = JSON.parse(deep(10_000)) as unknown;
    assert.equal(boundedJsonText(value), null);
    assert.match(refused(parse({ id: 'a', every: '1h', payload: value }), '/payload'), /64/);
    accepted(parse({ id: 'a', every: '1h', payload: JSON.parse(deep(MAX_JSON_DEPTH)) }));
  });
});
