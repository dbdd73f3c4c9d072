/**
 * A discovery call's output is parsed where the call ran (schedule/discovery-output.ts): on a
 * pool worker, off the scheduler's thread. The host must see exactly what it saw when it parsed
 * the output itself: the same stored schedules (specs, hashes, payloads) and the same load errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { Host, type HostOptions } from '../../src/host/host.ts';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import { decls, GUEST, makeConfig, ManualClock, T0, tempDir } from './helpers.ts';

const GOOD = decls(
  { id: 'every', every: '10m', jitter: '30s', payload: { n: [1, 'é', null] } },
  { id: 'berlin', cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', misfire: 'run-once' },
  { id: 'berlin2', cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', description: 'same spec' },
  { id: 'at', at: '2026-03-01T00:00:00+01:00', overlap: 'buffer-one', paused: true },
);

const CASES: Record<string, string> = {
  good: GOOD,
  badcron: decls({ id: 'c1', cron: '61 * * * *' }),
  floor: decls({ id: 'f1', every: '100ms' }),
  dup: decls({ id: 'd', every: '1h' }, { id: 'd', every: '2h' }),
  notarray: '{"id":"x"}',
  deep: '['.repeat(100) + ']'.repeat(100),
};

async function discover(dir: string, sandbox: NonNullable<HostOptions['sandbox']>) {
  const config = makeConfig(dir, [
    {
      id: 't',
      plugins: [
        ...Object.entries(CASES).map(([name, schedules]) => ({
          name,
          wasm: GUEST.proxy,
          config: { schedules },
        })),
        { name: 'garbage', wasm: GUEST.wat('garbage-schedules') },
      ],
    },
  ]);
  const host = new Host(config, { clock: new ManualClock(T0), sandbox });
  const failures = new Map<string, string>();
  host.events.on('plugin:failed', (e) => failures.set(e.pluginId, `${e.code}: ${e.message}`));
  await host.start();
  try {
    const rows = host.store
      .listSchedules({ pluginId: 't/good', states: ['active', 'paused', 'completed'] })
      .map((s) => ({
        key: s.key,
        spec: s.spec,
        hash: s.declHash,
        payload: s.payload,
        nextAt: s.nextAt,
        state: s.state,
        jitterMs: s.jitterMs,
        overlap: s.overlap,
        misfire: s.misfire,
      }));
    return { rows, failures: [...failures].sort() };
  } finally {
    await host.stop();
  }
}

test('discovery parsed on a pool worker stores the same schedules and reports the same errors as in the host', async (t) => {
  const local = await discover(tempDir(t), (hostCall) => new InThreadSandbox({ hostCall }));
  const pooled = await discover(
    tempDir(t),
    (hostCall) => new WorkerPoolSandbox({ hostCall, size: 1, spareWorkers: 0 }),
  );
  assert.equal(local.rows.length, 4);
  assert.equal(local.failures.length, 6);
  assert.deepEqual(pooled, local);
  assert.match(local.failures.find(([id]) => id === 't/deep')?.[1] ?? '', /did not return JSON/);
});

test('the pool answers a discovery call with the parse, not the bytes', async () => {
  const pool = new WorkerPoolSandbox({ hostCall: () => '{"ok":null}', size: 1, spareWorkers: 0 });
  try {
    await pool.load({
      pluginId: 't/p',
      tenant: 't',
      wasm: readFileSync(GUEST.proxy),
      config: { schedules: GOOD },
      limits: DEFAULT_LIMITS,
    });
    const o = await pool.call('t/p', {
      fn: 'schedules',
      caller: { pluginId: 't/p', tenant: 't', phase: 'discovery' },
      declarations: { limits: { minIntervalMs: 1000, maxPayloadBytes: 4096 }, nowMs: T0 },
    });
    assert.ok(o.ok);
    assert.equal(o.output, null);
    assert.ok(o.declarations?.ok);
    const ds = o.declarations.value;
    assert.deepEqual(
      ds.map((d) => d.id),
      ['every', 'berlin', 'berlin2', 'at'],
    );
    assert.equal(ds[1]?.spec, ds[2]?.spec); // one spec object for one spec text
    assert.equal(ds[0]?.payload, '{"n":[1,"é",null]}');
  } finally {
    await pool.close();
  }
});
