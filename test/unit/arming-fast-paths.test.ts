/**
 * The arming fast paths (issue 10): a declaration's hash built from its parts equals the
 * `JSON.stringify` text earlier versions stored (so stored rows stay unchanged across an
 * upgrade), cached duration parsing answers as parsing does, and the store's per-tenant earliest
 * due time (a starting host's load order).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseDeclaration, type ParsedDeclaration } from '../../src/schedule/declaration.ts';
import { parseDuration } from '../../src/schedule/spec.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { ScheduleRecord, ScheduleState } from '../../src/store/types.ts';

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
    test(`equals the stored JSON text: ${JSON.stringify(input)}`, () => {
      const r = parseDeclaration(input, LIMITS, NOW);
      if (!r.ok) assert.fail(JSON.stringify(r.issue));
      assert.equal(r.value.hash, storedHash(r.value));
    });
  }
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
  const pluginId = `${tenant}/p`;
  return {
    key: `${pluginId}/${id}`,
    pluginId,
    tenant,
    localId: id,
    origin: 'declared',
    spec: { kind: 'every', every: '1m', everyMs: 60_000 },
    jitter: null,
    jitterMs: 0,
    payload: null,
    overlap: 'skip',
    misfire: 'skip',
    description: null,
    declHash: 'h',
    state,
    pauseNote: null,
    anchorAt: NOW,
    nextAt,
    cursor: null,
    bufferedAt: null,
    createdAt: NOW,
    updatedAt: NOW,
  };
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
