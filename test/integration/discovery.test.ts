import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import {
  GUEST,
  makeConfig,
  ManualClock,
  POLLER_MANIFEST,
  T0,
  decls,
  startHost,
  STORES,
  storeDir,
  storedCopy,
} from './helpers.ts';

for (const store of STORES)
  describe(store, () => {
    test('discovery persists the AssemblyScript guest’s declarations and job contract', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [{ id: 'acme', plugins: [{ manifest: POLLER_MANIFEST }] }]);
      const { host, loaded, failed, stop } = await startHost(config, new ManualClock(T0));
      try {
        assert.deepEqual(loaded, ['acme/poller']);
        assert.deepEqual(failed, []);
        const s = host.store.getSchedule('acme/poller/housekeeping');
        assert.ok(s);
        assert.equal(s.origin, 'declared');
        assert.equal(s.state, 'active');
        assert.deepEqual(s.spec, {
          kind: 'cron',
          cron: '*/10 * * * * *',
          timezone: 'Europe/Berlin',
        });
        assert.equal(s.nextAt, T0 + 10_000);
        const contracts = host.store.listJobContracts('acme/poller');
        assert.equal(contracts.length, 1);
        assert.equal(contracts[0]?.name, 'poll-feed');
        assert.equal(JSON.parse(contracts[0]?.contract ?? '{}').concurrency, 1);
        const plugin = host.store.getPlugin('acme/poller');
        assert.equal(plugin?.status, 'loaded');
        assert.match(plugin?.wasmSha256 ?? '', /^[0-9a-f]{64}$/);
      } finally {
        await stop();
      }
    });

    test('reconcile: added, changed and removed declarations are created, updated and retired; runtime schedules are kept', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const first = decls(
        { id: 'keep', every: '1h' },
        { id: 'change', every: '1h', payload: { v: 1 } },
        { id: 'drop', every: '1h' },
        {
          id: 'maker',
          every: '1h',
          payload: {
            calls: [{ fn: 'schedule_create', args: { id: 'made-at-runtime', every: '2h' } }],
            setCursor: { n: 1 },
          },
        },
      );
      const a = await startHost(
        makeConfig(dir, [
          { id: 't', plugins: [{ name: 'p', wasm: GUEST.proxy, config: { schedules: first } }] },
        ]),
        clock,
      );
      await a.host.scheduler.settle();
      const { result } = await (await import('./helpers.ts')).triggerRun(a.host, 't/p/maker');
      assert.ok(result.responses[0]?.ok, JSON.stringify(result.responses));
      const changeBefore = a.host.store.getSchedule('t/p/change');
      await a.stop();

      clock.advance(60_000);
      const second = decls(
        { id: 'keep', every: '1h' },
        { id: 'change', every: '30m', payload: { v: 2 } },
        { id: 'maker', every: '1h', payload: { calls: [] } },
        { id: 'new', cron: '0 9 * * *', timezone: 'Europe/Berlin' },
      );
      const events: unknown[] = [];
      const b = await startHost(
        makeConfig(dir, [
          { id: 't', plugins: [{ name: 'p', wasm: GUEST.proxy, config: { schedules: second } }] },
        ]),
        clock,
      );
      try {
        b.host.events.on('plugin:loaded', (e) => events.push(e));
        const store = b.host.store;
        const live = store
          .listSchedules({ pluginId: 't/p' })
          .map((s) => s.localId)
          .sort();
        assert.deepEqual(live, ['change', 'keep', 'made-at-runtime', 'maker', 'new']);
        assert.equal(store.getSchedule('t/p/drop')?.state, 'retired');
        assert.equal(store.getSchedule('t/p/made-at-runtime')?.origin, 'runtime');
        const changed = store.getSchedule('t/p/change');
        assert.deepEqual(changed?.spec, { kind: 'every', every: '30m', everyMs: 1_800_000 });
        assert.equal(changed?.payload, '{"v":2}');
        assert.equal(changed?.createdAt, changeBefore?.createdAt);
        // The cursor of a changed declaration survives the change.
        assert.equal(store.getSchedule('t/p/maker')?.cursor, '{"n":1}');
      } finally {
        await b.stop();
      }
    });

    test('invalid declarations are load errors naming the plugin and declaration; other plugins still load', async (t) => {
      const dir = await storeDir(t, store);
      const cases: Record<string, { schedules: string; code: string; mention: string }> = {
        badcron: {
          schedules: decls({ id: 'c1', cron: '61 * * * *' }),
          code: 'HG_DECLARATION_INVALID',
          mention: "'c1'",
        },
        badtz: {
          schedules: decls({ id: 'z1', cron: '0 * * * *', timezone: 'Mars/Olympus' }),
          code: 'HG_DECLARATION_INVALID',
          mention: "'z1'",
        },
        floor: {
          schedules: decls({ id: 'f1', every: '100ms' }),
          code: 'HG_QUOTA_EXCEEDED',
          mention: "'f1'",
        },
        dup: {
          schedules: decls({ id: 'd', every: '1h' }, { id: 'd', every: '2h' }),
          code: 'HG_DECLARATION_INVALID',
          mention: "'d'",
        },
        notarray: { schedules: '{"id":"x"}', code: 'HG_DECLARATION_INVALID', mention: 'output' },
      };
      const failures = new Map<string, { code: string; message: string }>();
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            ...Object.entries(cases).map(([name, c]) => ({
              name,
              wasm: GUEST.proxy,
              config: { schedules: c.schedules },
            })),
            { name: 'garbage', wasm: GUEST.wat('garbage-schedules') },
            { name: 'norun', wasm: GUEST.wat('missing-run') },
            {
              name: 'good',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 'ok', every: '1h' }) },
            },
          ],
        },
      ]);
      const { host, loaded, failed, stop } = await startHost(config, new ManualClock(T0), {}, (h) =>
        h.events.on('plugin:failed', (e) => failures.set(e.pluginId, e)),
      );
      try {
        assert.deepEqual(loaded, ['t/good']);
        assert.equal(failed.length, 7);
        for (const [name, c] of Object.entries(cases)) {
          const f = failures.get(`t/${name}`);
          assert.equal(f?.code, c.code, name);
          assert.ok(
            f?.message.includes(`t/${name}`) && f.message.includes(c.mention),
            `${name}: ${f?.message}`,
          );
          assert.equal(host.store.getPlugin(`t/${name}`)?.status, 'failed');
          assert.equal(host.store.listSchedules({ pluginId: `t/${name}` }).length, 0);
        }
        assert.equal(failures.get('t/garbage')?.code, 'HG_DISCOVERY_FAILED');
        assert.equal(failures.get('t/norun')?.code, 'HG_PLUGIN_LOAD');
        assert.ok(host.store.getSchedule('t/good/ok'));
      } finally {
        await stop();
      }
    });

    test('two plugins with the same name in one tenant: the second is refused, the first runs', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [{ manifest: POLLER_MANIFEST }, { name: 'poller', wasm: GUEST.proxy }],
        },
        { id: 'u', plugins: [{ manifest: POLLER_MANIFEST }] },
      ]);
      const { loaded, failed, stop } = await startHost(config, new ManualClock(T0));
      try {
        assert.deepEqual(loaded, ['t/poller', 'u/poller']);
        assert.equal(failed.length, 1);
        assert.match(failed[0]?.message ?? '', /already has a plugin named 'poller'/);
      } finally {
        await stop();
      }
    });

    test('a store reopened after the host stops holds everything it persisted', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [{ id: 'acme', plugins: [{ manifest: POLLER_MANIFEST }] }]);
      const { stop } = await startHost(config, new ManualClock(T0));
      await stop();
      const stored = await storedCopy(config);
      try {
        assert.equal(stored.listSchedules().length, 1);
        assert.equal(stored.listJobContracts().length, 1);
      } finally {
        stored.close();
      }
      if (store === 'sqlite') {
        // The host lease is released (on PostgreSQL, tenant leases: cli-start-postgres.test.ts).
        const file = new SqliteStore(config.store.path, { mustExist: true });
        assert.equal(file.readLease(), undefined);
        file.close();
      }
    });
  });
