/** Conformance: runs (insert, finish, restore, list, abandon, waiting), advance, cursors. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunFinish, RunRecord } from '../../../src/store/types.ts';
import { plain, row, runOf, setup, succeeded, T0, type StoreUnderTest } from './fixture.ts';

const ids = (runs: readonly RunRecord[]): number[] => runs.map((r) => r.id);

export function runConformance(make: () => StoreUnderTest): void {
  describe('runs', () => {
    test('insertRun returns distinct ids that getRun finds, every field kept', async (t) => {
      const f = await setup(t, make);
      const a = runOf('acme/poller/a');
      const b = runOf('acme/poller/b', {
        trigger: 'catch_up',
        status: 'skipped_misfire',
        coversUntil: T0 + 9_000,
      });
      const { coversUntil: _, ...c } = runOf('globex/poller/c', { trigger: 'manual', attempt: 3 });
      const idA = await f.store.insertRun(a);
      const idB = await f.store.insertRun(b);
      const idC = await f.store.insertRun(c);
      assert.equal(new Set([idA, idB, idC]).size, 3);
      assert.ok([idA, idB, idC].every((id) => Number.isSafeInteger(id) && id > 0));
      await f.both(async (s) => {
        assert.deepEqual(await s.getRun(idA), { id: idA, ...a });
        assert.deepEqual(await s.getRun(idB), { id: idB, ...b });
        assert.deepEqual(await s.getRun(idC), { id: idC, ...c, coversUntil: null });
        assert.equal(await s.getRun(Math.max(idA, idB, idC) + 1_000), undefined);
      });
    });

    test('finishRun writes the outcome and keeps the rest; false for a missing id', async (t) => {
      const f = await setup(t, make);
      const r = runOf('acme/poller/a', { trigger: 'manual', attempt: 2 });
      const id = await f.store.insertRun(r);
      const fin: RunFinish = {
        status: 'failed',
        reason: 'nonzero_return',
        finishedAt: T0 + 99,
        error: 'returned 3',
        outputBytes: 12,
        fuelUsed: 1_000,
        fuelBudget: 5_000,
        result: '{"ok":false}',
        pluginVersion: '2.1.0',
        wasmSha256: 'cd'.repeat(32),
        logTail: 'info: starting\nerror: it went wrong: "x"',
      };
      assert.equal(await f.store.finishRun(id, fin), true);
      assert.equal(await f.store.finishRun(id + 1_000, succeeded(T0)), false);
      await f.both(async (s) => {
        assert.deepEqual(await s.getRun(id), { id, ...r, ...fin });
        assert.equal(await s.getRun(id + 1_000), undefined);
        assert.deepEqual(ids(await s.listRuns()), [id]);
      });
    });

    test('restoreRun writes a whole record under its id when absent, nothing when present', async (t) => {
      const f = await setup(t, make);
      const id = await f.store.insertRun(runOf('acme/poller/a'));
      const lost: RunRecord = {
        id: id + 1_000,
        ...runOf('acme/poller/b', { coversUntil: T0 + 120_000 }),
        ...succeeded(T0 + 50),
        logTail: 'warn: kept when restored',
      };
      assert.equal(await f.store.restoreRun(lost), true);
      // The id is taken now, and so is the first run's: neither changes.
      assert.equal(await f.store.restoreRun({ ...lost, status: 'failed' }), false);
      assert.equal(await f.store.restoreRun({ ...lost, id, localId: 'zzz' }), false);
      await f.both(async (s) => {
        assert.deepEqual(await s.getRun(lost.id), lost);
        assert.deepEqual(await s.getRun(id), { id, ...runOf('acme/poller/a') });
      });
    });

    test('listRuns: newest first, by schedule, plugin and status, limit (default 100)', async (t) => {
      const f = await setup(t, make);
      const made: number[] = [];
      for (let i = 0; i < 105; i++) {
        const key = ['acme/poller/a', 'acme/poller/b', 'acme/other/c'][i % 3] as string;
        const id = await f.store.insertRun(runOf(key, { scheduledAt: T0 + i }));
        if (i % 5 === 0) await f.store.finishRun(id, succeeded(T0 + i));
        made.push(id);
      }
      const newest = [...made].reverse();
      await f.both(async (s) => {
        assert.deepEqual(ids(await s.listRuns()), newest.slice(0, 100));
        assert.deepEqual(ids(await s.listRuns({ limit: 2 })), newest.slice(0, 2));
        const a = await s.listRuns({ scheduleKey: 'acme/poller/a', limit: 1_000 });
        assert.deepEqual(
          ids(a),
          newest.filter((_, j) => (104 - j) % 3 === 0),
        );
        const other = await s.listRuns({ pluginId: 'acme/other', limit: 1_000 });
        assert.deepEqual(
          ids(other),
          newest.filter((_, j) => (104 - j) % 3 === 2),
        );
        const ok = await s.listRuns({ status: 'succeeded', limit: 1_000 });
        assert.deepEqual(
          ids(ok),
          newest.filter((_, j) => (104 - j) % 5 === 0),
        );
        // i ≡ 0 (mod 3) and i ≡ 0 (mod 5): 0, 15, …, 90.
        const both = await s.listRuns({
          scheduleKey: 'acme/poller/a',
          status: 'succeeded',
          limit: 3,
        });
        assert.deepEqual(
          both.map((r) => r.scheduledAt),
          [T0 + 90, T0 + 75, T0 + 60],
        );
        assert.deepEqual(await s.listRuns({ scheduleKey: 'acme/poller/nope' }), []);
      });
    });

    test('listRuns: by tenant, started since / until, pages after a cursor', async (t) => {
      const f = await setup(t, make);
      const made: RunRecord[] = [];
      for (let i = 0; i < 12; i++) {
        const key = i % 3 === 2 ? 'globex/poller/x' : 'acme/poller/a';
        const r = runOf(key, { startedAt: T0 + i * 1_000 });
        made.push({ id: await f.store.insertRun(r), ...r, coversUntil: null });
      }
      const newest = [...made].reverse();
      const acme = newest.filter((r) => r.tenant === 'acme');
      await f.both(async (s) => {
        assert.deepEqual(ids(await s.listRuns({ tenant: 'acme', limit: 100 })), ids(acme));
        assert.deepEqual(
          ids(await s.listRuns({ tenant: 'globex', limit: 100 })),
          ids(newest.filter((r) => r.tenant === 'globex')),
        );
        assert.deepEqual(
          ids(await s.listRuns({ since: T0 + 3_000, until: T0 + 6_000, limit: 100 })),
          ids(newest.filter((r) => r.startedAt >= T0 + 3_000 && r.startedAt < T0 + 6_000)),
        );
        // Pages of 3 of acme's, each after the last of the one before, cover them once.
        const seen: number[] = [];
        let before: RunRecord | undefined;
        for (;;) {
          const page: RunRecord[] = await s.listRuns({
            tenant: 'acme',
            limit: 3,
            ...(before ? { before } : {}),
          });
          if (page.length === 0) break;
          seen.push(...ids(page));
          before = page.at(-1);
        }
        assert.deepEqual(seen, ids(acme));
      });
    });

    test('abandonRunning marks running runs abandoned, returns them, leaves the others', async (t) => {
      const f = await setup(t, make);
      const running1 = await f.store.insertRun(runOf('acme/poller/a'));
      const done = await f.store.insertRun(runOf('acme/poller/b'));
      await f.store.finishRun(done, succeeded(T0 + 10));
      const waiting = await f.store.insertRun(runOf('acme/poller/c', { status: 'waiting' }));
      const running2 = await f.store.insertRun(runOf('globex/poller/d'));
      const now = T0 + 1_000;
      const abandoned = await f.store.abandonRunning(now, 'host restarted');
      assert.deepEqual(
        ids(abandoned).sort((x, y) => x - y),
        [running1, running2].sort((x, y) => x - y),
      );
      assert.ok(abandoned.every((r) => r.status === 'running' || r.status === 'abandoned'));
      await f.both(async (s) => {
        for (const id of [running1, running2]) {
          const r = await s.getRun(id);
          assert.deepEqual(
            [r?.status, r?.reason, r?.finishedAt],
            ['abandoned', 'host restarted', now],
          );
        }
        assert.deepEqual(await s.getRun(done), {
          id: done,
          ...runOf('acme/poller/b'),
          ...succeeded(T0 + 10),
        });
        assert.deepEqual(await s.getRun(waiting), {
          id: waiting,
          ...runOf('acme/poller/c', { status: 'waiting' }),
        });
        assert.deepEqual(await s.abandonRunning(now + 1, 'again'), []);
      });
      assert.equal((await f.store.getRun(running1))?.reason, 'host restarted');
    });

    test('waiting runs: listed per plugin oldest first; startWaitingRun starts only them', async (t) => {
      const f = await setup(t, make);
      const w1 = await f.store.insertRun(runOf('acme/poller/a', { status: 'waiting' }));
      const w2 = await f.store.insertRun(runOf('acme/poller/b', { status: 'waiting' }));
      const other = await f.store.insertRun(runOf('acme/other/c', { status: 'waiting' }));
      const run = await f.store.insertRun(runOf('acme/poller/d'));
      await f.both(async (s) => {
        assert.deepEqual(ids(await s.listWaitingRuns('acme/poller')), [w1, w2]);
        assert.deepEqual(ids(await s.listWaitingRuns('acme/other')), [other]);
        assert.deepEqual(await s.listWaitingRuns('acme/nope'), []);
      });
      await f.store.startWaitingRun(w1, T0 + 77);
      await f.store.startWaitingRun(run, T0 + 88);
      await f.both(async (s) => {
        assert.deepEqual(await s.getRun(w1), {
          id: w1,
          ...runOf('acme/poller/a', { status: 'running', startedAt: T0 + 77 }),
        });
        assert.deepEqual(await s.getRun(run), { id: run, ...runOf('acme/poller/d') });
        assert.deepEqual(ids(await s.listWaitingRuns('acme/poller')), [w2]);
      });
    });
  });

  describe('pending retries (waiting rows with trigger retry)', () => {
    test('a retry row keeps its attempt and due time; listed waiting, then started', async (t) => {
      const f = await setup(t, make);
      const pending = runOf('acme/poller/r', {
        status: 'waiting',
        trigger: 'retry',
        attempt: 3,
        startedAt: T0 + 30_000,
      });
      const id = await f.store.insertRun(pending);
      await f.both(async (s) => {
        assert.deepEqual(await s.listWaitingRuns('acme/poller'), [{ id, ...pending }]);
      });
      await f.store.startWaitingRun(id, T0 + 31_000);
      await f.both(async (s) => {
        assert.deepEqual(await s.getRun(id), {
          id,
          ...pending,
          status: 'running',
          startedAt: T0 + 31_000,
        });
        assert.deepEqual(await s.listWaitingRuns('acme/poller'), []);
      });
    });
  });

  describe('advanceSchedule (the fire compare-and-set)', () => {
    const FROM = T0 + 60_000;
    const cases: readonly {
      readonly name: string;
      readonly stored: Parameters<typeof row>[1];
      readonly from: number;
      readonly next: number | null;
      readonly moved: boolean;
    }[] = [
      {
        name: 'active at `from`: moved on',
        stored: {},
        from: FROM,
        next: FROM + 60_000,
        moved: true,
      },
      {
        name: 'active at `from`, no next time: completed',
        stored: {},
        from: FROM,
        next: null,
        moved: true,
      },
      {
        name: 'next_at differs',
        stored: { nextAt: FROM + 1 },
        from: FROM,
        next: FROM + 60_000,
        moved: false,
      },
      {
        name: 'next_at differs, no next time',
        stored: { nextAt: FROM + 1 },
        from: FROM,
        next: null,
        moved: false,
      },
      {
        name: 'next_at null',
        stored: { nextAt: null },
        from: FROM,
        next: FROM + 60_000,
        moved: false,
      },
      {
        name: 'paused',
        stored: { state: 'paused' },
        from: FROM,
        next: FROM + 60_000,
        moved: false,
      },
      { name: 'deleted', stored: { state: 'deleted' }, from: FROM, next: null, moved: false },
      {
        name: 'completed',
        stored: { state: 'completed' },
        from: FROM,
        next: FROM + 60_000,
        moved: false,
      },
    ];
    for (const c of cases) {
      test(`advanceSchedule: ${c.name} → ${c.moved}`, async (t) => {
        const f = await setup(t, make);
        const a = row('a', c.stored);
        await f.store.insertSchedule(a);
        const now = T0 + 61_000;
        assert.equal(await f.store.advanceSchedule(a.key, c.from, c.next, now), c.moved);
        const expected = !c.moved
          ? a
          : c.next === null
            ? { ...a, nextAt: null, state: 'completed', updatedAt: now }
            : { ...a, nextAt: c.next, updatedAt: now };
        await f.both(async (s) => assert.deepEqual(plain(await s.getSchedule(a.key)), expected));
      });
    }

    test('advanceSchedule of an unknown key is false and creates nothing', async (t) => {
      const f = await setup(t, make);
      assert.equal(await f.store.advanceSchedule('acme/poller/nope', T0, T0 + 1, T0), false);
      await f.both(async (s) => assert.equal(await s.getSchedule('acme/poller/nope'), undefined));
    });
  });

  describe('writeCursor', () => {
    test('writes only for the schedule’s current generation', async (t) => {
      const f = await setup(t, make);
      const a = row('a', { cursor: 'c0' });
      await f.store.insertSchedule(a);
      const gen = (await f.store.getSchedule(a.key))?.generation as number;
      assert.equal(await f.store.writeCursor(a.key, gen, 'c1', T0 + 1), true);
      assert.equal(await f.store.writeCursor(a.key, gen + 1, 'stale', T0 + 2), false);
      assert.equal(await f.store.writeCursor('acme/poller/nope', gen, 'x', T0 + 2), false);
      await f.both(async (s) =>
        assert.deepEqual(plain(await s.getSchedule(a.key)), {
          ...a,
          cursor: 'c1',
          updatedAt: T0 + 1,
        }),
      );
      // Re-created: the old incarnation's runs write nothing, the new one's do (null too).
      await f.store.updateSchedule(a.key, { state: 'deleted' });
      await f.store.updateSchedule(a.key, { state: 'active' });
      assert.equal(await f.store.writeCursor(a.key, gen, 'old', T0 + 3), false);
      assert.equal(await f.store.writeCursor(a.key, gen + 1, null, T0 + 4), true);
      await f.both(async (s) => {
        const got = await s.getSchedule(a.key);
        assert.deepEqual([got?.cursor, got?.updatedAt, got?.generation], [null, T0 + 4, gen + 1]);
      });
    });
  });
}
