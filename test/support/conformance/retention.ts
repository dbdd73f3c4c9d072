/** Conformance: run-history retention (`pruneRuns`): age, count, last N per schedule, open runs. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunPruneCursor, RunPruneStep, Store } from '../../../src/store/types.ts';
import { runOf, setup, T0, type StoreUnderTest } from './fixture.ts';

/** Runs a whole prune round (steps of `limit` until the cursor ends); returns runs deleted. */
async function round(
  store: Store,
  step: Omit<RunPruneStep, 'cursor' | 'limit'> & { readonly limit?: number },
): Promise<number> {
  let cursor: RunPruneCursor | null = null;
  let deleted = 0;
  let steps = 0;
  do {
    const r = await store.pruneRuns({ limit: 3, ...step, cursor });
    assert.ok(r.deleted <= (step.limit ?? 3));
    deleted += r.deleted;
    cursor = r.cursor;
    assert.ok(++steps < 1_000, 'a round ends');
  } while (cursor !== null);
  return deleted;
}

/** A finished run of `key` started at `at`; returns its id. */
async function finished(
  store: Store,
  key: string,
  at: number,
  status = 'succeeded',
): Promise<number> {
  return store.insertRun(
    runOf(key, {
      status: status as 'succeeded',
      scheduledAt: at,
      startedAt: at,
      finishedAt: status === 'running' || status === 'waiting' ? null : at + 1,
    }),
  );
}

const idsOf = async (store: Store, tenant: string): Promise<number[]> =>
  (await store.listRuns({ tenant, limit: 1_000 })).map((r) => r.id).sort((a, b) => a - b);

export function retentionConformance(make: () => StoreUnderTest): void {
  describe('retention (pruneRuns)', () => {
    test('deletes finished runs older than the cutoff, in steps; keeps open runs, the newest N and other tenants', async (t) => {
      const f = await setup(t, make);
      const s = f.store;
      // Inserted in start order, as a host does (SQLite reads a tenant's runs by id).
      const a: number[] = [await finished(s, 'acme/poller/a', T0)];
      const open = await finished(s, 'acme/poller/b', T0 + 100, 'running');
      const waiting = await finished(s, 'acme/poller/b', T0 + 200, 'waiting');
      const failed = await finished(s, 'acme/poller/f', T0 + 500, 'failed');
      const fLast = await finished(s, 'acme/poller/f', T0 + 600);
      for (let i = 1; i < 15; i++) a.push(await finished(s, 'acme/poller/a', T0 + i * 1_000));
      const other: number[] = [];
      for (let i = 0; i < 5; i++) other.push(await finished(s, 'globex/poller/a', T0 + i));
      await s.committed();
      const deleted = await round(s, {
        tenant: 'acme',
        startedBefore: T0 + 10_000,
        maxRuns: null,
        keepPerSchedule: 1,
      });
      // a: runs 0..9 (started before T0 + 10 s); f: its older run (the newest one is kept).
      assert.equal(deleted, 11);
      await f.both(async (st) => {
        assert.deepEqual(
          await idsOf(st, 'acme'),
          [fLast, open, waiting, ...a.slice(10)].sort((x, y) => x - y),
        );
        assert.deepEqual(await idsOf(st, 'globex'), other);
        assert.equal(await st.getRun(failed), undefined);
      });
    });

    test("a schedule's newest N runs are kept however old", async (t) => {
      const f = await setup(t, make);
      const s = f.store;
      const a: number[] = [];
      for (let i = 0; i < 6; i++) a.push(await finished(s, 'acme/poller/a', T0 + i));
      const b = [
        await finished(s, 'acme/poller/b', T0 + 10),
        await finished(s, 'acme/poller/b', T0 + 11),
      ];
      await s.committed();
      const step = {
        tenant: 'acme',
        startedBefore: T0 + 3_600_000,
        maxRuns: null,
        keepPerSchedule: 3,
      };
      assert.equal(await round(s, step), 3);
      await f.both(async (st) => {
        assert.deepEqual(
          await idsOf(st, 'acme'),
          [...a.slice(3), ...b].sort((x, y) => x - y),
        );
      });
      // A second round finds nothing more to delete.
      assert.equal(await round(f.store, step), 0);
    });

    test('the count cap deletes the oldest runs beyond maxRuns, keeping each schedule newest', async (t) => {
      const f = await setup(t, make);
      const s = f.store;
      const all: number[] = [];
      for (let i = 0; i < 12; i++)
        all.push(await finished(s, i % 2 === 0 ? 'acme/poller/a' : 'acme/poller/b', T0 + i * 10));
      const other = await finished(s, 'globex/poller/a', T0 - 5);
      await s.committed();
      const deleted = await round(s, {
        tenant: 'acme',
        startedBefore: null,
        maxRuns: 5,
        keepPerSchedule: 1,
        limit: 2,
      });
      assert.equal(deleted, 7);
      await f.both(async (st) => {
        assert.deepEqual(await idsOf(st, 'acme'), all.slice(7));
        assert.deepEqual(await idsOf(st, 'globex'), [other]);
      });
      // Within the cap and no age: nothing to do.
      assert.deepEqual(
        await f.store.pruneRuns({
          tenant: 'acme',
          startedBefore: null,
          maxRuns: 5,
          keepPerSchedule: 1,
          limit: 10,
          cursor: null,
        }),
        { deleted: 0, cursor: null },
      );
    });
  });
}
