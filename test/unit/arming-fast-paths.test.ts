/**
 * The arming fast paths (issue 10): a declaration's hash is a digest, and a row stored by an
 * earlier version (its hash the `JSON.stringify` text of the declaration) still compares equal
 * to it, through `sameDeclaration` and through `reconcile` (an upgrade changes no schedule);
 * cached duration parsing answers as parsing does; the store's per-tenant earliest due time (a
 * starting host's load order).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { reconcile } from '../../src/host/reconcile.ts';
import {
  parseDeclaration,
  sameDeclaration,
  type ParsedDeclaration,
} from '../../src/schedule/declaration.ts';
import {
  nextFireAfter,
  parseDuration,
  sharedSpec,
  SPEC_CACHE_MAX,
  specCacheSizes,
  specJson,
} from '../../src/schedule/spec.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { ScheduleRecord, ScheduleState } from '../../src/store/types.ts';
import { scheduleRow } from './schedule-row.ts';

const NOW = Date.parse('2026-01-15T10:00:00Z');
const LIMITS = { minIntervalMs: 1_000, maxPayloadBytes: 4_096 };

/** What earlier versions stored as the hash: the fields, in order, through JSON.stringify. */
function storedHash(d: ParsedDeclaration): string {
  return JSON.stringify({
    id: d.id,
    spec: d.spec,
    jitter: d.jitter,
    jitterMs: d.jitterMs,
    payload: d.payload,
    overlap: d.overlap,
    misfire: d.misfire,
    paused: d.paused,
    description: d.description,
  });
}

function parsed(input: Record<string, unknown>): ParsedDeclaration {
  const r = parseDeclaration(input, LIMITS, NOW);
  if (!r.ok) assert.fail(JSON.stringify(r.issue));
  return r.value;
}

describe('declaration hash', () => {
  const inputs: Record<string, unknown>[] = [
    { id: 'a', every: '10m' },
    { id: 'b.c:d-e_f', every: '1h30m', jitter: '5s', overlap: 'buffer-one', misfire: 'run-once' },
    { id: 'c', cron: '*/5 * * * *' },
    { id: 'd', cron: '0 9 * * 1-5', timezone: 'America/New_York', paused: true },
    { id: 'e', at: '2026-03-01T12:00:00.5+01:00' },
    {
      id: 'f',
      every: '1m',
      payload: { q: 'a "quoted"\\ \n text', n: [1, 2.5, -0, null], u: 'ü\u2028😀' },
    },
    { id: 'g', every: '1m', payload: 'just a string', description: 'tab\t"quote" \u0001 ünï' },
    { id: 'h', every: '1m', payload: null, description: '' },
  ];
  for (const input of inputs) {
    test(`a digest; the stored text of earlier versions compares equal: ${JSON.stringify(input)}`, () => {
      const d = parsed(input);
      assert.match(d.hash, /^[A-Za-z0-9+/]{43}=$/);
      assert.ok(sameDeclaration(d.hash, d));
      assert.ok(sameDeclaration(storedHash(d), d));
      // Any other declaration's text or digest does not.
      const other = parsed({ ...input, description: 'changed' });
      assert.ok(!sameDeclaration(storedHash(other), d));
      assert.ok(!sameDeclaration(other.hash, d));
    });
  }

  test('reconcile leaves a row stored with the text hash unchanged', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-hash-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = new SqliteStore(join(dir, 'hourglass.db'));
    try {
      const decls = [parsed({ id: 'a', every: '10m' }), parsed({ id: 'b', every: '20m' })];
      const first = reconcile(store, 't/p', 't', decls, NOW);
      assert.deepEqual(first.created, ['a', 'b']);
      // As an earlier version stored them.
      for (const d of decls)
        store.updateSchedule(`t/p/${d.id}`, { declHash: storedHash(d), updatedAt: NOW });
      const again = reconcile(store, 't/p', 't', decls, NOW + 1_000);
      assert.deepEqual(again.unchanged, ['a', 'b']);
      assert.deepEqual([...again.created, ...again.updated, ...again.retired], []);
      // A changed declaration is updated, and its row takes the digest.
      const changed = [decls[0] as ParsedDeclaration, parsed({ id: 'b', every: '30m' })];
      const third = reconcile(store, 't/p', 't', changed, NOW + 2_000);
      assert.deepEqual(third.updated, ['b']);
      assert.equal(store.getSchedule('t/p/b')?.declHash, changed[1]?.hash);
    } finally {
      store.close();
    }
  });
});

describe('declaration checks served from the validated-spec cache', () => {
  test('defaults spelled out hash as left out (the canonical text has one default tail)', () => {
    const left = parsed({ id: 'i', every: '1m' });
    const spelled = parsed({
      id: 'i',
      every: '1m',
      overlap: 'skip',
      misfire: 'skip',
      paused: false,
      scope: 'cluster',
      priority: 5,
    });
    assert.equal(spelled.hash, left.hash);
    assert.ok(sameDeclaration(storedHash(left), spelled));
  });

  test('an interval text and a cron pattern, and a cron with and without its own DST policy, are told apart', () => {
    // Accepted as an interval first: the same text as a cron is still checked (and refused).
    assert.equal(parseDeclaration({ id: 'a', every: '5m' }, LIMITS, NOW).ok, true);
    const asCron = parseDeclaration({ id: 'a', cron: '5m' }, LIMITS, NOW);
    assert.equal(asCron.ok, false);
    assert.equal(asCron.ok ? '' : asCron.issue.field, '/cron');
    // One pattern and zone: with a policy of its own, with the default spelled out, without.
    const own = parsed({
      id: 'b',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      dst: { skipped: 'skip' },
    });
    const spelledDefault = parsed({
      id: 'b',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      dst: { skipped: 'run-once', repeated: 'once' },
    });
    const none = parsed({ id: 'b', cron: '30 2 * * *', timezone: 'Europe/Berlin' });
    assert.deepEqual(own.spec, {
      kind: 'cron',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      dst: { skipped: 'skip', repeated: 'once' },
    });
    assert.deepEqual(none.spec, { kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin' });
    assert.equal(spelledDefault.spec, none.spec);
    assert.notEqual(own.hash, none.hash);
    // Another zone is another entry.
    const tokyo = parsed({ id: 'b', cron: '30 2 * * *', timezone: 'Asia/Tokyo' });
    assert.equal((tokyo.spec as { timezone: string }).timezone, 'Asia/Tokyo');
  });

  test("a cron spec's memoised next fire answers as a search does, for times in any order", () => {
    const d = parsed({ id: 'n', cron: '*/7 * * * *', timezone: 'America/New_York' });
    const twin = parsed({ id: 'n2', cron: '*/7 * * * *', timezone: 'America/New_York' });
    assert.equal(d.spec, twin.spec);
    const times = [NOW, NOW + 1, NOW + 419_999, NOW + 420_000, NOW - 60_000, NOW + 86_400_000, NOW];
    for (const t of times) {
      const memo = nextFireAfter(d.spec, t, t);
      // A spec object of its own (no memo of the shared one) searches.
      const fresh = nextFireAfter({ ...d.spec }, t, t);
      assert.equal(memo, fresh, new Date(t).toISOString());
      assert.ok(memo !== null && memo > t && new Date(memo).getUTCMinutes() % 7 === 0);
    }
  });
});

describe('shared specs', () => {
  test('declarations and rows with one spec share one object, whose text is JSON.stringify', (t) => {
    const a = parsed({ id: 'a', cron: '0 9 * * 1-5', timezone: 'Asia/Tokyo' });
    const b = parsed({ id: 'b', cron: '0 9 * * 1-5', timezone: 'Asia/Tokyo', jitter: '1s' });
    assert.equal(a.spec, b.spec);
    assert.equal(specJson(a.spec), JSON.stringify(a.spec));
    assert.equal(
      specJson({ kind: 'every', every: '1m', everyMs: 60_000 }),
      '{"kind":"every","every":"1m","everyMs":60000}',
    );
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-spec-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = new SqliteStore(join(dir, 'hourglass.db'));
    try {
      reconcile(store, 't/p', 't', [a, b], NOW);
      const rows = store.listSchedules({ pluginId: 't/p' });
      assert.equal(rows.length, 2);
      for (const r of rows) assert.equal(r.spec, a.spec);
    } finally {
      store.close();
    }
  });

  test('the cache stays within its bound', () => {
    for (let i = 0; i < SPEC_CACHE_MAX + 100; i++)
      sharedSpec(JSON.stringify({ kind: 'every', every: `${i + 1}s`, everyMs: (i + 1) * 1000 }));
    assert.ok((specCacheSizes().specs as number) <= SPEC_CACHE_MAX);
  });
});

describe('parseDuration, cached', () => {
  test('a second parse answers as the first, for valid and invalid texts', () => {
    for (const text of ['90s', '1h30m', '250ms', '0s', 'x', '', '1h 30m', '999999999d']) {
      const first = parseDuration(text);
      assert.equal(parseDuration(text), first, text);
    }
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('0s'), null);
    assert.equal(parseDuration('x'), null);
  });
});

function row(
  tenant: string,
  id: string,
  state: ScheduleState,
  nextAt: number | null,
): ScheduleRecord {
  return scheduleRow(tenant, id, { state, nextAt, at: NOW });
}

describe('SqliteStore.earliestDueByTenant', () => {
  test("each tenant's earliest next time of its active schedules", (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-due-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = new SqliteStore(join(dir, 'hourglass.db'));
    try {
      assert.deepEqual(store.earliestDueByTenant(), new Map());
      store.insertSchedules([
        row('a', 's1', 'active', NOW + 5_000),
        row('a', 's2', 'active', NOW + 1_000),
        row('a', 's3', 'paused', null),
        row('b', 's1', 'paused', null),
        row('b', 's2', 'retired', null),
        row('b', 's3', 'completed', null),
        row('c', 's1', 'active', NOW - 60_000),
        // An active row with no next time is not due at all.
        row('d', 's1', 'active', null),
      ]);
      assert.deepEqual(
        store.earliestDueByTenant(),
        new Map([
          ['a', NOW + 1_000],
          ['c', NOW - 60_000],
        ]),
      );
    } finally {
      store.close();
    }
  });
});
