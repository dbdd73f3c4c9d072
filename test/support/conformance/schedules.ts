/** Conformance: schedules: insert, get, update, list, counts, earliest due, generations. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScheduleRecord, ScheduleState, Store } from '../../../src/store/types.ts';
import { keys, localIds, plain, row, setup, T0, type StoreUnderTest } from './fixture.ts';

const STATES: readonly ScheduleState[] = ['active', 'paused', 'completed', 'deleted', 'retired'];
const LIVE = new Set<ScheduleState>(['active', 'paused', 'completed']);

/** One row per kind of spec, every optional column set in one of them. */
function variedRows(): ScheduleRecord[] {
  return [
    row('cron', { spec: { kind: 'cron', cron: '0 9 * * *', timezone: 'Europe/Berlin' } }),
    row('every', {
      origin: 'runtime',
      spec: { kind: 'every', every: '90s', everyMs: 90_000 },
      jitter: '5s',
      jitterMs: 5_000,
      payload: '{"url":"https://example.com"}',
      overlap: 'buffer-one',
      misfire: 'run-once',
      priority: 9,
      description: 'desc',
      declHash: 'hash-every',
      state: 'paused',
      pauseNote: 'by operator',
      nextAt: null,
      cursor: 'cursor-1',
      bufferedAt: T0 + 1,
      updatedAt: T0 + 2,
      retry: '{"maxAttempts":3,"backoff":{"baseMs":1000,"capMs":60000},"on":["failed"]}',
      job: 'nightly',
      breakerAfter: 5,
      failStreak: 2,
    }),
    row('at', {
      priority: 0,
      spec: {
        kind: 'at',
        at: '2026-02-01T12:00:00.000Z',
        atMs: Date.parse('2026-02-01T12:00:00Z'),
      },
    }),
  ];
}

export function scheduleConformance(make: () => StoreUnderTest): void {
  describe('schedules: retry policy and the breaker (migration 13 / PG 7)', () => {
    test('updateSchedule writes the retry fields and the failed-tick count; a row without them reads as none', async (t) => {
      const f = await setup(t, make);
      const plainRow = row('plain');
      const r = row('r');
      await f.store.insertSchedules([plainRow, r]);
      await f.store.updateSchedule(r.key, {
        retry: '{"maxAttempts":2}',
        job: 'j',
        breakerAfter: 0,
        failStreak: 7,
        updatedAt: T0 + 9,
      });
      await f.both(async (s) => {
        const got = await s.getSchedule(r.key);
        assert.equal(got?.retry, '{"maxAttempts":2}');
        assert.equal(got?.job, 'j');
        assert.equal(got?.breakerAfter, 0);
        assert.equal(got?.failStreak, 7);
        const none = await s.getSchedule(plainRow.key);
        assert.deepEqual(
          [none?.retry, none?.job, none?.breakerAfter, none?.failStreak],
          [null, null, null, 0],
        );
      });
      await f.store.updateSchedule(r.key, { failStreak: 0, breakerAfter: null, updatedAt: T0 });
      await f.both(async (s) => {
        const got = await s.getSchedule(r.key);
        assert.deepEqual([got?.breakerAfter, got?.failStreak], [null, 0]);
        const listed = (await s.listSchedules({ pluginId: 'acme/poller' })).find(
          (x) => x.key === r.key,
        );
        assert.equal(listed?.retry, '{"maxAttempts":2}');
      });
    });
  });

  describe('schedules: insert and get', () => {
    test('insertSchedule and getSchedule round-trip every field and kind of spec', async (t) => {
      const f = await setup(t, make);
      const rows = variedRows();
      for (const r of rows) await f.store.insertSchedule(r);
      await f.both(async (s) => {
        for (const r of rows) assert.deepEqual(plain(await s.getSchedule(r.key)), r);
        assert.equal(await s.getSchedule('acme/poller/nope'), undefined);
      });
    });

    test('insertSchedules writes many rows (each its own spec), same as one by one', async (t) => {
      const f = await setup(t, make);
      const rows = Array.from({ length: 123 }, (_, i) =>
        row(`s${String(i).padStart(3, '0')}`, {
          plugin: `p${i % 2}`,
          state: STATES[i % 5] as ScheduleState,
          spec: { kind: 'every', every: `${i + 1}m`, everyMs: (i + 1) * 60_000 },
        }),
      );
      await f.store.insertSchedules(rows);
      await f.store.insertSchedules([]);
      await f.both(async (s) => {
        for (const r of rows) assert.deepEqual(plain(await s.getSchedule(r.key)), r);
        const live = rows.filter((r) => LIVE.has(r.state));
        assert.equal(await s.countLiveSchedules('acme'), live.length);
        assert.equal(
          await s.countLiveSchedules('acme', 'acme/p0'),
          live.filter((r) => r.pluginId === 'acme/p0').length,
        );
      });
    });

    test('deferred rows are durable after committed(), before anything read them', async (t) => {
      const f = await setup(t, make);
      const rows = [row('a'), row('b', { plugin: 'other' }), row('c', { tenant: 'globex' })];
      await f.store.insertSchedules(rows, { deferred: true });
      await f.store.committed();
      const s = await f.reopen();
      for (const r of rows) assert.deepEqual(plain(await s.getSchedule(r.key)), r);
      assert.equal(await s.countLiveSchedules('acme'), 2);
    });

    test('deferred rows: every read sees them at once', async (t) => {
      const f = await setup(t, make);
      const rows = Array.from({ length: 30 }, (_, i) =>
        row(`d${String(i).padStart(2, '0')}`, { nextAt: T0 + 1_000 + i }),
      );
      await f.store.insertSchedules(rows, { deferred: true });
      await f.store.insertSchedules([row('x', { tenant: 'globex', nextAt: T0 + 5 })], {
        deferred: true,
      });
      await f.both(async (s) => {
        assert.deepEqual(plain(await s.getSchedule('acme/poller/d07')), rows[7]);
        assert.equal((await s.listSchedules({ pluginId: 'acme/poller' })).length, 30);
        assert.equal((await s.listSchedules({ tenant: 'globex' })).length, 1);
        assert.equal((await s.listSchedules()).length, 31);
        assert.equal(await s.countLiveSchedules('acme'), 30);
        assert.deepEqual(
          await s.earliestDueByTenant(),
          new Map([
            ['acme', T0 + 1_000],
            ['globex', T0 + 5],
          ]),
        );
      });
    });

    test('deferred rows take writes at once (update, advance)', async (t) => {
      const f = await setup(t, make);
      await f.store.insertSchedules([row('a'), row('b')], { deferred: true });
      await f.store.updateSchedule('acme/poller/a', { state: 'paused', updatedAt: T0 + 1 });
      assert.equal(
        await f.store.advanceSchedule('acme/poller/b', T0 + 60_000, T0 + 120_000, T0 + 2),
        true,
      );
      await f.both(async (s) => {
        assert.equal((await s.getSchedule('acme/poller/a'))?.state, 'paused');
        assert.equal((await s.getSchedule('acme/poller/b'))?.nextAt, T0 + 120_000);
      });
    });

    test('a duplicate key throws HG_STORE and leaves the stored row and counts alone', async (t) => {
      const f = await setup(t, make);
      const a = row('a', { description: 'first' });
      await f.store.insertSchedule(a);
      await assert.rejects(
        async () => {
          await f.store.insertSchedule(row('a', { description: 'second', state: 'paused' }));
        },
        { code: 'HG_STORE' },
      );
      // A batch with one duplicate (against a stored row) writes none of its rows.
      const batch = Array.from({ length: 60 }, (_, i) => row(`m${i}`, { plugin: 'other' }));
      batch[55] = a;
      await assert.rejects(
        async () => {
          await f.store.insertSchedules(batch);
        },
        { code: 'HG_STORE' },
      );
      await f.both(async (s) => {
        assert.deepEqual(plain(await s.getSchedule(a.key)), a);
        assert.equal(await s.getSchedule('acme/other/m0'), undefined);
        assert.equal(await s.countLiveSchedules('acme'), 1);
        assert.equal(await s.countLiveSchedules('acme', 'acme/other'), 0);
      });
    });
  });

  describe('schedules: update', () => {
    const patches: readonly [string, Partial<ScheduleRecord>][] = [
      ['state and note', { state: 'paused', pauseNote: 'maintenance', updatedAt: T0 + 10 }],
      ['nulls', { nextAt: null, cursor: null, payload: null, description: null }],
      [
        'spec (cron)',
        { spec: { kind: 'cron', cron: '*/5 * * * *', timezone: 'UTC' }, declHash: 'h2' },
      ],
      [
        'spec (at)',
        {
          spec: {
            kind: 'at',
            at: '2027-01-01T00:00:00.000Z',
            atMs: Date.parse('2027-01-01T00:00:00Z'),
          },
        },
      ],
      [
        'policies and jitter',
        { overlap: 'buffer-one', misfire: 'run-once', jitter: '1s', jitterMs: 1_000 },
      ],
      [
        'times',
        {
          anchorAt: T0 - 5,
          nextAt: T0 + 7,
          bufferedAt: T0 + 8,
          updatedAt: T0 + 9,
          origin: 'runtime',
        },
      ],
    ];
    for (const [name, patch] of patches) {
      test(`updateSchedule patches only the given fields: ${name}`, async (t) => {
        const f = await setup(t, make);
        const a = row('a', { payload: '{"n":1}', description: 'keep me', cursor: 'c0' });
        const other = row('other');
        await f.store.insertSchedule(a);
        await f.store.insertSchedule(other);
        await f.store.updateSchedule(a.key, patch);
        await f.both(async (s) => {
          assert.deepEqual(plain(await s.getSchedule(a.key)), { ...a, ...patch });
          assert.deepEqual(plain(await s.getSchedule(other.key)), other);
        });
      });
    }

    test('updateSchedule with an empty patch, or of an unknown key, changes nothing', async (t) => {
      const f = await setup(t, make);
      const a = row('a');
      await f.store.insertSchedule(a);
      await f.store.updateSchedule(a.key, {});
      await f.store.updateSchedule('acme/poller/nope', { state: 'deleted' });
      await f.both(async (s) => {
        assert.deepEqual(plain(await s.getSchedule(a.key)), a);
        assert.equal(await s.getSchedule('acme/poller/nope'), undefined);
        assert.equal(await s.countLiveSchedules('acme'), 1);
      });
    });

    test('a deleted or retired schedule made live again gets a new generation', async (t) => {
      const f = await setup(t, make);
      await f.store.insertSchedule(row('a'));
      await f.store.insertSchedule(row('b', { state: 'retired' }));
      const g0 = (await f.store.getSchedule('acme/poller/a'))?.generation;
      const h0 = (await f.store.getSchedule('acme/poller/b'))?.generation;
      assert.ok(Number.isInteger(g0) && Number.isInteger(h0));
      // Between live states, and into deleted: the same incarnation.
      await f.store.updateSchedule('acme/poller/a', { state: 'paused' });
      await f.store.updateSchedule('acme/poller/a', { state: 'active', cursor: 'c' });
      await f.store.updateSchedule('acme/poller/a', { state: 'deleted' });
      assert.equal((await f.store.getSchedule('acme/poller/a'))?.generation, g0);
      await f.store.updateSchedule('acme/poller/a', { state: 'active' });
      await f.store.updateSchedule('acme/poller/b', { state: 'paused' });
      await f.both(async (s) => {
        assert.equal((await s.getSchedule('acme/poller/a'))?.generation, (g0 as number) + 1);
        assert.equal((await s.getSchedule('acme/poller/b'))?.generation, (h0 as number) + 1);
      });
    });
  });

  describe('schedules: list', () => {
    /** One row in each state, of plugin poller. */
    async function fiveStates(s: Store): Promise<void> {
      for (const [i, state] of STATES.entries()) await s.insertSchedule(row(`s${i}`, { state }));
    }

    test('listSchedules: default states exclude deleted and retired; `states` selects', async (t) => {
      const f = await setup(t, make);
      await fiveStates(f.store);
      await f.both(async (s) => {
        assert.deepEqual(localIds(await s.listSchedules()), ['s0', 's1', 's2']);
        assert.deepEqual(localIds(await s.listSchedules({ states: ['deleted', 'retired'] })), [
          's3',
          's4',
        ]);
        assert.deepEqual(localIds(await s.listSchedules({ states: ['paused'] })), ['s1']);
        assert.deepEqual(localIds(await s.listSchedules({ states: [...STATES] })).length, 5);
      });
    });

    test('listSchedules: by plugin ordered by local id; by tenant and all by key', async (t) => {
      const f = await setup(t, make);
      // Local ids in the opposite order of keys across plugins.
      await f.store.insertSchedule(row('z', { plugin: 'a' }));
      await f.store.insertSchedule(row('a', { plugin: 'b' }));
      await f.store.insertSchedule(row('m', { plugin: 'a' }));
      await f.store.insertSchedule(row('c', { tenant: 'globex' }));
      await f.both(async (s) => {
        assert.deepEqual(keys(await s.listSchedules({ pluginId: 'acme/a' })), [
          'acme/a/m',
          'acme/a/z',
        ]);
        assert.deepEqual(keys(await s.listSchedules({ tenant: 'acme' })), [
          'acme/a/m',
          'acme/a/z',
          'acme/b/a',
        ]);
        assert.deepEqual(keys(await s.listSchedules()), [
          'acme/a/m',
          'acme/a/z',
          'acme/b/a',
          'globex/poller/c',
        ]);
        assert.deepEqual(keys(await s.listSchedules({ tenant: 'globex' })), ['globex/poller/c']);
        assert.deepEqual(await s.listSchedules({ pluginId: 'acme/a', tenant: 'globex' }), []);
        assert.deepEqual(await s.listSchedules({ pluginId: 'acme/nope' }), []);
      });
    });

    test('listSchedules: pages of a plugin by local id (after + limit)', async (t) => {
      const f = await setup(t, make);
      const ids = ['s07', 's03', 's10', 's01', 's05', 's02', 's09', 's04', 's08', 's06'];
      for (const id of ids) await f.store.insertSchedule(row(id));
      await f.store.insertSchedule(row('s045', { state: 'deleted' }));
      await f.store.insertSchedule(row('s00', { plugin: 'other' }));
      await f.both(async (s) => {
        const pages: string[][] = [];
        let after: string | undefined;
        for (;;) {
          const q = {
            pluginId: 'acme/poller',
            limit: 3,
            ...(after === undefined ? {} : { after }),
          };
          const page = await s.listSchedules(q);
          if (page.length === 0) break;
          pages.push(localIds(page));
          after = page.at(-1)?.localId;
        }
        assert.deepEqual(pages, [
          ['s01', 's02', 's03'],
          ['s04', 's05', 's06'],
          ['s07', 's08', 's09'],
          ['s10'],
        ]);
      });
    });

    test('listSchedules: pages of a tenant or of all by key (after + limit)', async (t) => {
      const f = await setup(t, make);
      await f.store.insertSchedule(row('z', { plugin: 'a' }));
      await f.store.insertSchedule(row('a', { plugin: 'b' }));
      await f.store.insertSchedule(row('m', { plugin: 'a' }));
      await f.store.insertSchedule(row('q', { tenant: 'globex' }));
      await f.both(async (s) => {
        assert.deepEqual(keys(await s.listSchedules({ limit: 2 })), ['acme/a/m', 'acme/a/z']);
        assert.deepEqual(keys(await s.listSchedules({ after: 'acme/a/z' })), [
          'acme/b/a',
          'globex/poller/q',
        ]);
        assert.deepEqual(
          keys(await s.listSchedules({ tenant: 'acme', after: 'acme/a/m', limit: 1 })),
          ['acme/a/z'],
        );
        assert.deepEqual(keys(await s.listSchedules({ tenant: 'acme', after: 'acme/b/a' })), []);
      });
    });
  });

  describe('schedules: counts and earliest due', () => {
    test('countLiveSchedules counts active, paused and completed, per tenant and plugin', async (t) => {
      const f = await setup(t, make);
      assert.equal(await f.store.countLiveSchedules('acme'), 0);
      for (const [i, state] of STATES.entries())
        await f.store.insertSchedule(row(`s${i}`, { state }));
      await f.store.insertSchedule(row('f', { plugin: 'other' }));
      await f.store.insertSchedule(row('g', { tenant: 'globex' }));
      await f.both(async (s) => {
        assert.equal(await s.countLiveSchedules('acme'), 4);
        assert.equal(await s.countLiveSchedules('acme', 'acme/poller'), 3);
        assert.equal(await s.countLiveSchedules('acme', 'acme/other'), 1);
        assert.equal(await s.countLiveSchedules('globex'), 1);
        assert.equal(await s.countLiveSchedules('nobody'), 0);
        assert.equal(await s.countLiveSchedules('acme', 'acme/nope'), 0);
      });
    });

    test('countLiveSchedules follows every change of state', async (t) => {
      const f = await setup(t, make);
      // Every (from, to) pair of states, one schedule each.
      const pairs = STATES.flatMap((from) => STATES.map((to) => [from, to] as const));
      for (const [i, [from]] of pairs.entries())
        await f.store.insertSchedule(row(`p${i}`, { state: from }));
      for (const [i, [, to]] of pairs.entries())
        await f.store.updateSchedule(`acme/poller/p${i}`, { state: to, updatedAt: T0 + i });
      // An update without a state, and advancing to completion, keep the count.
      await f.store.updateSchedule('acme/poller/p0', { nextAt: T0 + 60_000, updatedAt: T0 });
      assert.equal(
        await f.store.advanceSchedule('acme/poller/p0', T0 + 60_000, null, T0 + 1),
        true,
      );
      const live = pairs.filter(([, to]) => LIVE.has(to)).length;
      await f.both(async (s) => {
        assert.equal(await s.countLiveSchedules('acme'), live);
        assert.equal(await s.countLiveSchedules('acme', 'acme/poller'), live);
      });
    });

    test('earliestDueByTenant: the earliest next_at of active rows, per tenant', async (t) => {
      const f = await setup(t, make);
      assert.deepEqual(await f.store.earliestDueByTenant(), new Map());
      await f.store.insertSchedule(row('a', { nextAt: T0 + 500 }));
      await f.store.insertSchedule(row('b', { nextAt: T0 + 300, plugin: 'other' }));
      await f.store.insertSchedule(row('c', { nextAt: T0 + 100, state: 'paused' }));
      await f.store.insertSchedule(row('d', { nextAt: T0 + 50, state: 'deleted' }));
      await f.store.insertSchedule(row('e', { nextAt: null }));
      await f.store.insertSchedule(row('g', { tenant: 'globex', nextAt: null }));
      await f.both(async (s) =>
        assert.deepEqual(await s.earliestDueByTenant(), new Map([['acme', T0 + 300]])),
      );
      await f.store.insertSchedule(row('h', { tenant: 'globex', nextAt: T0 + 900 }));
      await f.store.updateSchedule('acme/other/b', { state: 'paused' });
      await f.both(async (s) =>
        assert.deepEqual(
          await s.earliestDueByTenant(),
          new Map([
            ['acme', T0 + 500],
            ['globex', T0 + 900],
          ]),
        ),
      );
    });
  });
}
