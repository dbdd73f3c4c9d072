/**
 * The caches of src/schedule/spec.ts: answers equal croner's own, and each cache stays within
 * its bound when a (hostile) guest declares thousands of distinct patterns or zone spellings.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cron } from 'croner';
import { parseDeclaration } from '../../src/schedule/declaration.ts';
import {
  CRON_CACHE_MAX,
  GAP_CACHE_MAX,
  isValidTimeZone,
  minimumGapMs,
  nextFireAfter,
  specCacheSizes,
  ZONE_CACHE_MAX,
} from '../../src/schedule/spec.ts';

const NOW = Date.parse('2026-01-15T10:00:00Z');
const LIMITS = { minIntervalMs: 1000, maxPayloadBytes: 65_536 };

describe('spec caches', () => {
  test('the remembered next fire equals a fresh croner search, forwards and backwards', () => {
    const cases: [string, string][] = [
      ['*/5 * * * *', 'UTC'],
      ['30 2 * * *', 'Europe/Berlin'], // 02:30 does not exist on the spring-forward day
      ['0 9 * * 1-5', 'America/New_York'],
      ['*/7 * * * * *', 'Asia/Tokyo'],
    ];
    for (const [cron, timezone] of cases) {
      const fresh = new Cron(cron, { timezone, paused: true });
      const spec = { kind: 'cron', cron, timezone } as const;
      // Times that go forwards, repeat, fall inside a remembered span, and go back.
      const times = [NOW, NOW + 1, NOW + 299_999, NOW + 7_200_000, NOW - 86_400_000, NOW];
      for (let i = 0; i < 40; i++) times.push(Date.parse('2026-03-28T00:00:00Z') + i * 1_800_000);
      for (const at of times) {
        const want = fresh.nextRun(new Date(at))?.getTime() ?? null;
        assert.equal(nextFireAfter(spec, at, 0), want, `${cron} ${timezone} after ${at}`);
      }
    }
  });

  test('thousands of distinct cron patterns keep every cache within its bound', () => {
    const patterns = CRON_CACHE_MAX + 100;
    for (let i = 0; i < patterns; i++) {
      // Distinct texts with few distinct meanings: minute lists of the form "a,b".
      const cron = `${i % 60},${(i % 59) + 1} ${Math.floor(i / 60) % 24} * * *`;
      const r = parseDeclaration({ id: `s${i}`, cron }, LIMITS, NOW);
      assert.equal(r.ok, true);
      nextFireAfter({ kind: 'cron', cron, timezone: 'UTC' }, NOW, 0);
    }
    const sizes = specCacheSizes();
    assert.ok((sizes.cron as number) <= CRON_CACHE_MAX, `cron ${sizes.cron}`);
    assert.ok((sizes.horizon as number) <= CRON_CACHE_MAX, `horizon ${sizes.horizon}`);
    assert.ok((sizes.next as number) <= GAP_CACHE_MAX, `next ${sizes.next}`);
    assert.ok((sizes.gap as number) <= GAP_CACHE_MAX, `gap ${sizes.gap}`);
  });

  test('minimum gaps of many distinct patterns stay within the gap bound', () => {
    for (let i = 0; i < GAP_CACHE_MAX + 500; i++) {
      const cron = `${i % 60} ${Math.floor(i / 60) % 24} * * ${i % 7}`;
      assert.equal(minimumGapMs({ kind: 'cron', cron, timezone: 'UTC' }), 7 * 86_400_000);
    }
    const sizes = specCacheSizes();
    assert.ok((sizes.gap as number) <= GAP_CACHE_MAX);
    assert.ok((sizes.wallGaps as number) <= CRON_CACHE_MAX);
  });

  test('a timing text accepted before is reused only while its check still holds', () => {
    const at = (iso: string) => Date.parse(iso);
    // The same text twice: the same spec; the tenant's floor is applied to each declaration.
    const a = parseDeclaration({ id: 'a', cron: '*/5 * * * *' }, LIMITS, NOW);
    const b = parseDeclaration({ id: 'b', cron: '*/5 * * * *' }, LIMITS, NOW + 1);
    assert.ok(a.ok && b.ok);
    assert.equal(a.value.spec, b.value.spec);
    const floor = parseDeclaration(
      { id: 'c', cron: '*/5 * * * *' },
      { ...LIMITS, minIntervalMs: 600_000 },
      NOW + 2,
    );
    assert.equal(floor.ok, false);
    const every = parseDeclaration(
      { id: 'e', every: '1m' },
      { ...LIMITS, minIntervalMs: 120_000 },
      NOW,
    );
    assert.equal(every.ok, false);
    // A cron whose only fire (in 2026) has passed is refused, though it was accepted before.
    const once = '0 0 0 1 6 * 2026';
    assert.equal(
      parseDeclaration({ id: 'o', cron: once }, LIMITS, at('2026-01-15T10:00:00Z')).ok,
      true,
    );
    const late = parseDeclaration({ id: 'o', cron: once }, LIMITS, at('2026-07-01T00:00:00Z'));
    assert.equal(late.ok, false);
    assert.match(late.ok ? '' : late.issue.message, /does not fire within/);
    // The gap depends on no day: the same answer before and on a DST day (Berlin: 2026-03-29).
    const dst = '30 * * * *';
    const day = (iso: string) =>
      parseDeclaration({ id: 'd', cron: dst, timezone: 'Europe/Berlin' }, LIMITS, at(iso));
    assert.ok(day('2026-03-28T12:00:00Z').ok && day('2026-03-29T12:00:00Z').ok);
    assert.ok((specCacheSizes().validated as number) > 0);
  });

  test('zone spellings (every capitalisation is valid) stay within the zone bound', () => {
    const base = 'europe/berlin';
    let made = 0;
    for (let mask = 0; made < ZONE_CACHE_MAX + 500; mask++, made++) {
      const zone = [...base].map((c, i) => ((mask >> i) & 1 ? c.toUpperCase() : c)).join('');
      assert.equal(isValidTimeZone(zone), true, zone);
    }
    assert.ok((specCacheSizes().zones as number) <= ZONE_CACHE_MAX);
    assert.equal(isValidTimeZone('Not/AZone'), false);
    assert.equal(isValidTimeZone('Europe/Berlin'), true);
  });
});
