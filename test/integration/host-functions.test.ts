import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CAPABILITIES } from '../../src/capabilities.ts';
import {
  GUEST,
  T0,
  ManualClock,
  decls,
  makeConfig,
  STORES,
  startHost,
  storeDir,
  triggerRun,
} from './helpers.ts';

const call = (fn: string, args: unknown) => ({ fn, args });
const raw = (fn: string, text: string) => ({ fn, raw: text });

for (const store of STORES)
  describe(store, () => {
    test('scoping: plugin A cannot see, pause, resume, delete or list plugin B’s schedule (every host function)', async (t) => {
      const dir = await storeDir(t, store);
      const probe = (id: string) => [
        call('schedule_get', { id }),
        call('schedule_pause', { id, note: 'gotcha' }),
        call('schedule_resume', { id }),
        call('schedule_delete', { id }),
      ];
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            {
              name: 'victim',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 'target', every: '1h' }) },
            },
            {
              name: 'attacker',
              wasm: GUEST.proxy,
              config: {
                schedules: decls(
                  { id: 'foreign', every: '1h', payload: { calls: probe('target') } },
                  { id: 'missing', every: '1h', payload: { calls: probe('no-such-id') } },
                  {
                    id: 'lister',
                    every: '1h',
                    payload: {
                      calls: [
                        call('schedule_list', {}),
                        call('schedule_create', { id: 'target', every: '2h' }),
                      ],
                    },
                  },
                ),
              },
            },
          ],
        },
        // Another tenant's plugin with the same name as the victim: still another plugin.
        {
          id: 'u',
          plugins: [
            {
              name: 'victim',
              wasm: GUEST.proxy,
              config: {
                schedules: decls({ id: 'probe', every: '1h', payload: { calls: probe('target') } }),
              },
            },
          ],
        },
      ]);
      const { host, stop } = await startHost(config, new ManualClock(T0));
      try {
        const foreign = (await triggerRun(host, 't/attacker/foreign')).result.responses;
        const missing = (await triggerRun(host, 't/attacker/missing')).result.responses;
        const crossTenant = (await triggerRun(host, 'u/victim/probe')).result.responses;
        assert.equal(foreign.length, 4);
        for (let i = 0; i < 4; i++) {
          assert.equal(foreign[i]?.error?.code, 'not_found', JSON.stringify(foreign[i]));
          assert.equal(crossTenant[i]?.error?.code, 'not_found');
          // Indistinguishable from an id that does not exist, up to the id itself.
          assert.equal(
            JSON.stringify(foreign[i]).replaceAll('target', 'X'),
            JSON.stringify(missing[i]).replaceAll('no-such-id', 'X'),
          );
        }
        const [list, create] = (await triggerRun(host, 't/attacker/lister')).result.responses;
        const listed = (list?.ok as { schedules: { id: string }[] }).schedules
          .map((s) => s.id)
          .sort();
        assert.deepEqual(listed, ['foreign', 'lister', 'missing']);
        // Creating "target" in A makes A's own schedule; B's is untouched.
        assert.equal((create?.ok as { id: string; origin: string }).origin, 'runtime');
        const victim = host.store.getSchedule('t/victim/target');
        assert.equal(victim?.state, 'active');
        assert.equal(victim?.pauseNote, null);
        assert.equal(host.store.getSchedule('t/attacker/target')?.origin, 'runtime');
      } finally {
        await stop();
      }
    });

    test('a host call outside its phase ends the call as host_call_denied (run and discovery)', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                discovery_calls: JSON.stringify([
                  call('jobs_register', { name: 'ok-job', cron: '0 * * * *' }),
                ]),
                schedules: decls({
                  id: 'r',
                  every: '1h',
                  payload: { calls: [call('jobs_register', { name: 'late-job' })] },
                }),
              },
            },
            {
              name: 'early',
              wasm: GUEST.proxy,
              config: { discovery_calls: JSON.stringify([call('schedule_pause', { id: 'x' })]) },
            },
          ],
        },
      ]);
      const { host, failed, stop } = await startHost(config, new ManualClock(T0));
      try {
        const { run } = await triggerRun(host, 't/p/r');
        assert.equal(run.status, 'host_call_denied');
        assert.match(
          run.error ?? '',
          /jobs_register: phase: 'jobs_register' is not allowed during run/,
        );
        // The denied call is billed its whole budget, like any call that ends in a trap.
        assert.equal(run.fuelUsed, run.fuelBudget);
        assert.deepEqual(
          host.store.listJobContracts('t/p').map((c) => c.name),
          ['ok-job'],
        );
        // schedule_pause is not allowed during discovery: the plugin does not load.
        assert.equal(failed.length, 1);
        assert.match(
          failed[0]?.message ?? '',
          /t\/early: schedules\(\) host_call_denied .*schedule_pause: phase/,
        );
        assert.equal(host.store.getPlugin('t/early')?.status, 'failed');
      } finally {
        await stop();
      }
    });

    test('schema and quota violations get typed errors; nothing is created', async (t) => {
      const dir = await storeDir(t, store);
      const big = 'x'.repeat(2_000);
      const calls = [
        raw('schedule_create', '{"id": 12, "every": ['),
        call('schedule_create', { id: 'a', every: '1h', bogus: true }),
        call('schedule_create', { id: 'a', cron: '0 * * * *', every: '1h' }),
        call('schedule_create', { id: 'a', cron: 'not a cron' }),
        call('schedule_create', { id: 'a', cron: '0 * * * *', timezone: 'Nowhere/City' }),
        call('schedule_create', { id: '../../etc', every: '1h' }),
        call('schedule_create', { id: 'fast', every: '1s' }),
        call('schedule_create', { id: 'past', at: '2020-01-01T00:00:00Z' }),
        call('schedule_create', { id: 'fits', every: '1h' }),
        call('schedule_create', { id: 'fits', every: '1h' }),
        call('schedule_create', { id: 'over', every: '1h' }),
        call('schedule_pause', { id: 'fits', note: 'n'.repeat(501) }),
        call('schedule_list', { limit: 100_000 }),
      ];
      const config = makeConfig(dir, [
        {
          id: 't',
          quotas: { maxSchedules: 2, minIntervalMs: 60_000, maxPayloadBytes: 1_500 },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                // A payload over the tenant's limit cannot even be declared, so it is sent at discovery.
                discovery_calls: JSON.stringify([
                  call('schedule_create', { id: 'heavy', every: '1h', payload: { big } }),
                ]),
                schedules: decls({ id: 'r', every: '1h', payload: { calls } }),
              },
            },
          ],
        },
        {
          id: 'big',
          quotas: { maxPayloadBytes: 200_000 },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                schedules: decls({
                  id: 'r',
                  every: '1h',
                  payload: { calls: [raw('schedule_get', 'x'.repeat(70_000))] },
                }),
              },
            },
          ],
        },
      ]);
      const { host, failed, stop } = await startHost(config, new ManualClock(T0));
      try {
        assert.deepEqual(failed, []);
        const huge = await triggerRun(host, 'big/p/r');
        assert.equal(huge.result.responses[0]?.error?.code, 'too_large');
        const { result } = await triggerRun(host, 't/p/r');
        const codes = result.responses.map((r) => r.error?.code ?? 'ok');
        assert.deepEqual(codes, [
          'invalid_argument',
          'invalid_argument',
          'invalid_argument',
          'invalid_argument',
          'invalid_argument',
          'invalid_argument',
          'quota_exceeded',
          'invalid_argument',
          'ok',
          'conflict',
          'quota_exceeded',
          'invalid_argument',
          'invalid_argument',
        ]);
        assert.deepEqual(
          host.store
            .listSchedules({ pluginId: 't/p' })
            .map((s) => s.localId)
            .sort(),
          ['fits', 'r'],
        );
      } finally {
        await stop();
      }
    });

    test('a capability the tenant does not grant ends the run as host_call_denied', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [
        {
          id: 't',
          capabilities: CAPABILITIES.filter((c) => c !== 'schedule_create'),
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                schedules: decls({
                  id: 'r',
                  every: '1h',
                  payload: {
                    calls: [
                      call('schedule_create', { id: 'n', every: '1h' }),
                      call('schedule_get', { id: 'r' }),
                    ],
                  },
                }),
              },
            },
          ],
        },
      ]);
      const { host, stop } = await startHost(config, new ManualClock(T0));
      try {
        const { run } = await triggerRun(host, 't/p/r');
        assert.equal(run.status, 'host_call_denied');
        assert.match(
          run.error ?? '',
          /schedule_create: capability: plugin t\/p was not granted 'schedule_create'/,
        );
        // The call ended at the denied host call: nothing after it ran.
        assert.equal(run.result, null);
        assert.equal(host.store.getSchedule('t/p/n'), undefined);
      } finally {
        await stop();
      }
    });

    test('hand-written hostile guests: malformed host-call arguments and a forged schedule id', async (t) => {
      const dir = await storeDir(t, store);
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            {
              name: 'bad',
              wasm: GUEST.wat('bad-args'),
              capabilities: ['schedule_create', 'schedule_pause'],
            },
            { name: 'forger', wasm: GUEST.wat('forged-id'), capabilities: ['schedule_pause'] },
            {
              name: 'victim',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 'victim', every: '1h' }) },
            },
          ],
        },
      ]);
      const { host, stop } = await startHost(config, new ManualClock(T0));
      try {
        const bad = await triggerRun(host, 't/bad/bad');
        assert.equal(bad.run.status, 'succeeded');
        assert.deepEqual(
          bad.result.responses.map((r) => r.error?.code),
          ['invalid_argument', 'invalid_argument'],
        );
        const forged = await triggerRun(host, 't/forger/forger');
        assert.equal(forged.result.responses[0]?.error?.code, 'not_found');
        assert.equal(host.store.getSchedule('t/victim/victim')?.state, 'active');
      } finally {
        await stop();
      }
    });
  });
