/** Conformance: plugins, job contracts, operator commands, transactions and `committed()`. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  JobContractRecord,
  PluginRecord,
  PluginStateRecord,
} from '../../../src/store/types.ts';
import { plain, row, runOf, setup, succeeded, T0, type StoreUnderTest } from './fixture.ts';

const plugin = (id: string, over: Partial<PluginRecord> = {}): PluginRecord => ({
  id,
  tenant: id.split('/')[0] as string,
  name: id.split('/')[1] as string,
  version: '1.0.0',
  manifestPath: `/plugins/${id}/hourglass.json`,
  wasmSha256: 'abc',
  status: 'loaded',
  error: null,
  updatedAt: T0,
  ...over,
});

const contract = (pluginId: string, name: string, updatedAt = T0): JobContractRecord => ({
  pluginId,
  name,
  contract: `{"name":"${name}"}`,
  updatedAt,
});

export function recordConformance(make: () => StoreUnderTest): void {
  describe('plugins and job contracts', () => {
    test('upsertPlugin inserts then replaces; getPlugin; listPlugins by id', async (t) => {
      const f = await setup(t, make);
      const p = plugin('acme/poller');
      await f.store.upsertPlugin(p);
      const failed = plugin('acme/poller', {
        version: '1.0.1',
        wasmSha256: null,
        status: 'failed',
        error: 'boom',
        updatedAt: T0 + 1,
      });
      await f.store.upsertPlugin(failed);
      await f.store.upsertPlugin(plugin('globex/zeta', { status: 'unloaded' }));
      await f.store.upsertPlugin(plugin('acme/another'));
      await f.both(async (s) => {
        assert.deepEqual(await s.getPlugin(p.id), failed);
        assert.equal(await s.getPlugin('acme/nope'), undefined);
        assert.deepEqual(
          (await s.listPlugins()).map((x) => x.id),
          ['acme/another', 'acme/poller', 'globex/zeta'],
        );
        assert.deepEqual((await s.listPlugins())[2], plugin('globex/zeta', { status: 'unloaded' }));
      });
    });

    test('replaceJobContracts replaces one plugin’s contracts, leaves the others', async (t) => {
      const f = await setup(t, make);
      await f.store.replaceJobContracts('acme/p1', [
        contract('acme/p1', 'b'),
        contract('acme/p1', 'a'),
      ]);
      await f.store.replaceJobContracts('globex/p2', [contract('globex/p2', 'x')]);
      await f.both(async (s) =>
        assert.deepEqual(await s.listJobContracts('acme/p1'), [
          contract('acme/p1', 'a'),
          contract('acme/p1', 'b'),
        ]),
      );
      await f.store.replaceJobContracts('acme/p1', [contract('acme/p1', 'd', T0 + 5)]);
      await f.both(async (s) => {
        assert.deepEqual(await s.listJobContracts('acme/p1'), [contract('acme/p1', 'd', T0 + 5)]);
        assert.deepEqual(await s.listJobContracts(), [
          contract('acme/p1', 'd', T0 + 5),
          contract('globex/p2', 'x'),
        ]);
      });
      await f.store.replaceJobContracts('acme/p1', []);
      await f.both(async (s) => {
        assert.deepEqual(await s.listJobContracts('acme/p1'), []);
        assert.deepEqual(await s.listJobContracts(), [contract('globex/p2', 'x')]);
      });
    });

    test('replaceJobContracts is atomic: a failing replacement keeps the old ones', async (t) => {
      const f = await setup(t, make);
      await f.store.replaceJobContracts('acme/p1', [contract('acme/p1', 'a')]);
      // Two contracts of one name: the second cannot be written.
      await assert.rejects(async () => {
        await f.store.replaceJobContracts('acme/p1', [
          contract('acme/p1', 'x'),
          contract('acme/p1', 'x'),
        ]);
      });
      await f.both(async (s) =>
        assert.deepEqual(await s.listJobContracts('acme/p1'), [contract('acme/p1', 'a')]),
      );
    });
  });

  describe('plugin state', () => {
    const state = (pluginId: string, vars: string, bytes: number, at = T0): PluginStateRecord => ({
      pluginId,
      tenant: pluginId.split('/')[0] as string,
      vars,
      bytes,
      updatedAt: at,
    });

    test('putPluginState writes a plugin’s state whole, per plugin; getPluginState reads it back', async (t) => {
      const f = await setup(t, make);
      await f.both(async (s) => assert.equal(await s.getPluginState('acme/poller'), undefined));
      const first = state('acme/poller', '[["n","AQAAAAAAAAA="]]', 73);
      await f.store.putPluginState(first);
      await f.store.putPluginState(state('globex/poller', '[["k","eA=="]]', 66));
      await f.both(async (s) => assert.deepEqual(await s.getPluginState('acme/poller'), first));
      const second = state('acme/poller', '[["n","AgAAAAAAAAA="],["m",""]]', 138, T0 + 5);
      await f.store.putPluginState(second);
      await f.both(async (s) => {
        assert.deepEqual(await s.getPluginState('acme/poller'), second);
        assert.deepEqual(
          await s.getPluginState('globex/poller'),
          state('globex/poller', '[["k","eA=="]]', 66),
        );
      });
      // Cleared: an empty array, kept as a row.
      await f.store.putPluginState(state('acme/poller', '[]', 0, T0 + 9));
      await f.both(async (s) =>
        assert.deepEqual(
          await s.getPluginState('acme/poller'),
          state('acme/poller', '[]', 0, T0 + 9),
        ),
      );
    });

    test('a state written in a transaction that throws is not kept', async (t) => {
      const f = await setup(t, make);
      await f.store.putPluginState(state('acme/poller', '[["a","eA=="]]', 66));
      assert.throws(() =>
        f.store.transaction(() => {
          f.store.putPluginState(state('acme/poller', '[["b","eA=="]]', 66, T0 + 1));
          throw new Error('rolled back');
        }),
      );
      await f.both(async (s) =>
        assert.equal((await s.getPluginState('acme/poller'))?.vars, '[["a","eA=="]]'),
      );
    });
  });

  describe('operator commands', () => {
    test('enqueue, pending oldest first, complete, get', async (t) => {
      const f = await setup(t, make);
      assert.deepEqual(await f.store.pendingCommands(), []);
      const c1 = await f.store.enqueueCommand('acme/poller/a', 'pause', 'maintenance', T0);
      const c2 = await f.store.enqueueCommand('globex/poller/b', 'trigger', null, T0 + 1);
      const c3 = await f.store.enqueueCommand('acme/poller/a', 'resume', null, T0 + 2);
      const c4 = await f.store.enqueueCommand('acme/poller/c', 'delete', null, T0 + 3);
      assert.equal(new Set([c1, c2, c3, c4]).size, 4);
      const cmd = (id: number, key: string, action: string, note: string | null, at: number) => ({
        id,
        scheduleKey: key,
        action,
        note,
        createdAt: at,
        appliedAt: null,
        result: null,
      });
      await f.store.completeCommand(c2, 'ok', T0 + 50);
      await f.both(async (s) => {
        assert.deepEqual(await s.pendingCommands(), [
          cmd(c1, 'acme/poller/a', 'pause', 'maintenance', T0),
          cmd(c3, 'acme/poller/a', 'resume', null, T0 + 2),
          cmd(c4, 'acme/poller/c', 'delete', null, T0 + 3),
        ]);
        assert.deepEqual(await s.getCommand(c2), {
          ...cmd(c2, 'globex/poller/b', 'trigger', null, T0 + 1),
          appliedAt: T0 + 50,
          result: 'ok',
        });
        assert.equal(await s.getCommand(Math.max(c1, c2, c3, c4) + 100), undefined);
      });
    });
  });

  describe('transactions and committed()', () => {
    test('a transaction that throws writes nothing (schedules, runs, counts) and rethrows', async (t) => {
      const f = await setup(t, make);
      const s0 = f.store;
      await s0.insertSchedule(row('a'));
      const kept = await s0.insertRun(runOf('acme/poller/a'));
      const boom = new Error('roll back');
      assert.throws(
        () =>
          s0.transaction(() => {
            s0.insertSchedule(row('b'));
            s0.insertSchedules([row('c'), row('d', { tenant: 'globex' })]);
            s0.updateSchedule('acme/poller/a', { state: 'deleted' });
            s0.finishRun(kept, succeeded(T0 + 1));
            s0.insertRun(runOf('acme/poller/b'));
            s0.upsertPlugin(plugin('acme/poller'));
            s0.enqueueCommand('acme/poller/a', 'pause', null, T0);
            // Inside, the transaction sees its own writes.
            assert.equal(s0.countLiveSchedules('acme'), 2);
            assert.equal(s0.getSchedule('acme/poller/a')?.state, 'deleted');
            throw boom;
          }),
        (err) => err === boom,
      );
      await f.both(async (s) => {
        assert.deepEqual(plain(await s.getSchedule('acme/poller/a')), row('a'));
        assert.equal((await s.listSchedules({ states: ['active', 'deleted'] })).length, 1);
        assert.equal(await s.countLiveSchedules('acme'), 1);
        assert.equal(await s.countLiveSchedules('globex'), 0);
        assert.deepEqual(await s.listRuns(), [{ id: kept, ...runOf('acme/poller/a') }]);
        assert.deepEqual(await s.listPlugins(), []);
        assert.deepEqual(await s.pendingCommands(), []);
      });
    });

    test('nested transactions join the outer one; a transaction returns its value', async (t) => {
      const f = await setup(t, make);
      const s0 = f.store;
      assert.throws(() =>
        s0.transaction(() => {
          s0.insertSchedule(row('a'));
          s0.transaction(() => s0.insertSchedule(row('b')));
          throw new Error('abort');
        }),
      );
      const n = s0.transaction(() => {
        s0.insertSchedule(row('c'));
        return s0.transaction(() => {
          s0.insertSchedule(row('d'));
          return 2;
        });
      });
      assert.equal(n, 2);
      await f.both(async (s) => {
        assert.deepEqual(
          (await s.listSchedules({ states: ['active', 'deleted'] })).map((r) => r.localId),
          ['c', 'd'],
        );
        assert.equal(await s.countLiveSchedules('acme'), 2);
      });
    });

    test('committed() resolves; everything written before it is there after reopening', async (t) => {
      const f = await setup(t, make);
      const s0 = f.store;
      await s0.upsertPlugin(plugin('acme/poller'));
      await s0.replaceJobContracts('acme/poller', [contract('acme/poller', 'job')]);
      await s0.insertSchedule(row('a'));
      await s0.insertSchedules([row('b'), row('c', { tenant: 'globex' })], { deferred: true });
      await s0.updateSchedule('acme/poller/a', { cursor: 'c1' });
      await s0.advanceSchedule('acme/poller/a', T0 + 60_000, T0 + 120_000, T0 + 61_000);
      const id = await s0.insertRun(runOf('acme/poller/a'));
      await s0.finishRun(id, succeeded(T0 + 62_000));
      await s0.enqueueCommand('acme/poller/b', 'trigger', null, T0);
      await s0.committed();
      // Reopened before anything reads the writes back (a read may write deferred rows).
      await f.reopen();
      await f.both(async (s) => {
        assert.equal((await s.getPlugin('acme/poller'))?.status, 'loaded');
        assert.equal((await s.listJobContracts('acme/poller')).length, 1);
        assert.deepEqual(plain(await s.getSchedule('acme/poller/a')), {
          ...row('a'),
          cursor: 'c1',
          nextAt: T0 + 120_000,
          updatedAt: T0 + 61_000,
        });
        assert.deepEqual(
          (await s.listSchedules()).map((r) => r.key),
          ['acme/poller/a', 'acme/poller/b', 'globex/poller/c'],
        );
        assert.equal((await s.getRun(id))?.status, 'succeeded');
        assert.equal((await s.pendingCommands()).length, 1);
        await s.committed();
      });
    });
  });
}
