/**
 * The store's kept live-schedule counts (migration 0005) through a real host: runtime creates
 * and deletes, a reload that changes the declarations, operator pauses and deletes, and a
 * restart on the same store (on SQLite, and on PostgreSQL, where a tenant's counts are rebuilt
 * when a host adopts it). After each step the tenant's and the plugin's counts equal a real
 * count of their rows, and the quota refuses exactly at the limit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.ts';
import {
  decls,
  GUEST,
  makeConfig,
  ManualClock,
  startHost,
  STORES,
  storeDir,
  T0,
  type StartedHost,
} from './helpers.ts';

const caller = { pluginId: 't/p', tenant: 't', phase: 'run' as const };

function assertCounts(host: Host): void {
  const live = host.store.listSchedules({ tenant: 't' });
  assert.equal(host.store.countLiveSchedules('t'), live.length, 'tenant count');
  for (const pluginId of ['t/p', 't/q']) {
    assert.equal(
      host.store.countLiveSchedules('t', pluginId),
      live.filter((s) => s.pluginId === pluginId).length,
      `${pluginId} count`,
    );
  }
}

for (const store of STORES)
  describe(store, () => {
    test('kept counts equal real counts across create, delete, reload and restart', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [
        {
          id: 't',
          quotas: { maxSchedules: 12 },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 'a', every: '1h' }) },
            },
            {
              name: 'q',
              wasm: GUEST.proxy,
              config: {
                schedules: decls({ id: 'x', every: '1h' }, { id: 'y', cron: '0 9 * * *' }),
              },
            },
          ],
        },
      ]);
      const clock = new ManualClock(T0);
      let started: StartedHost = await startHost(config, clock, { misfireGraceMs: 1_000 });
      let host = started.host;
      try {
        assertCounts(host);
        assert.equal(host.store.countLiveSchedules('t'), 3);
        for (let i = 0; i < 6; i++) {
          const r = host.schedules.create(caller, { id: `r${i}`, every: '10m' });
          assert.ok('ok' in r, JSON.stringify(r));
        }
        assertCounts(host);
        assert.ok('ok' in host.schedules.delete(caller, 'r0'));
        assert.ok(host.operate('t/p/r1', 'pause').ok);
        assert.ok(host.operate('t/q/x', 'delete').ok);
        assertCounts(host);
        assert.equal(host.store.countLiveSchedules('t'), 7);
        // A re-created id takes its deleted row's place: counted once.
        assert.ok('ok' in host.schedules.create(caller, { id: 'r0', cron: '*/5 * * * *' }));
        assertCounts(host);

        // Reload p with other declarations: 'a' is retired, 'b' and 'c' are new.
        await host.loadPlugin('t', {
          ...config.tenants[0]!.plugins[0]!,
          config: { schedules: decls({ id: 'b', every: '2h' }, { id: 'c', every: '3h' }) },
        });
        assertCounts(host);
        assert.equal(host.store.countLiveSchedules('t'), 9);

        // Up to the limit of 12, then refused.
        for (let i = 6; i < 9; i++)
          assert.ok('ok' in host.schedules.create(caller, { id: `r${i}`, every: '10m' }));
        const refused = host.schedules.create(caller, { id: 'r9', every: '10m' });
        assert.equal('error' in refused && refused.error.code, 'quota_exceeded');
        assertCounts(host);
        await started.stop();

        // Restart on the same store (declarations as in the config: 'a' again, 'b' and 'c' retired).
        started = await startHost(config, clock, { misfireGraceMs: 1_000 });
        host = started.host;
        assert.deepEqual(started.failed, []);
        assertCounts(host);
        assert.equal(host.store.countLiveSchedules('t'), 11);
      } finally {
        await started.stop();
      }
    });
  });
