import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig } from '../../src/config/host-config.ts';
import { Host } from '../../src/host/host.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import { GUEST, T0, ManualClock, decls, runsOf, tempDir, triggerRun } from './helpers.ts';

/** A host on the worker pool (the default sandbox), with per-plugin deadlines. */
function poolHost(
  dir: string,
  plugins: { name: string; wasm: string; timeoutMs: number; schedules?: string; tenant?: string }[],
  size = 2,
) {
  const tenants = new Map<string, { manifest: string; config?: Record<string, string> }[]>();
  for (const p of plugins) {
    const file = join(dir, `${p.name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        name: p.name,
        version: '1',
        wasm: p.wasm,
        capabilities: ['schedule_get'],
        // Fuel outlasts every deadline here: these tests are about the deadline.
        limits: { timeoutMs: p.timeoutMs, fuel: { run: 1e12, cleanup: 1e12 } },
      }),
    );
    const list = tenants.get(p.tenant ?? 't') ?? [];
    list.push({ manifest: file, ...(p.schedules ? { config: { schedules: p.schedules } } : {}) });
    tenants.set(p.tenant ?? 't', list);
  }
  const config = parseHostConfig(
    {
      store: { path: join(dir, 'h.db') },
      sandbox: { mode: 'pool', workers: size },
      tenants: [...tenants].map(([id, ps]) => ({ id, plugins: ps })),
    },
    join(dir, 'config.json'),
    dir,
  );
  let pool: WorkerPoolSandbox | undefined;
  const clock = new ManualClock(T0);
  const host = new Host(config, {
    clock,
    sandbox: (hostCall) => (pool = new WorkerPoolSandbox({ hostCall, size })),
  });
  return { host, clock, pool: () => pool as WorkerPoolSandbox };
}

test('pool: a guest that never returns ends timed_out at its deadline; its worker is replaced and the next tick runs', async (t) => {
  const dir = tempDir(t);
  const { host, pool } = poolHost(dir, [
    {
      name: 'p',
      wasm: GUEST.proxy,
      timeoutMs: 200,
      schedules: decls(
        { id: 'spin', every: '1h', payload: { spin: true } },
        {
          id: 'fine',
          every: '1h',
          payload: { calls: [{ fn: 'schedule_get', args: { id: 'fine' } }] },
        },
      ),
    },
  ]);
  await host.start();
  try {
    const started = Date.now();
    const spin = await triggerRun(host, 't/p/spin');
    const took = Date.now() - started;
    assert.equal(spin.run.status, 'timed_out');
    assert.equal(spin.run.reason, 'deadline');
    assert.ok(took >= 200 && took < 5_000, `ended after ${took} ms`);
    // The replacement worker serves the next runs, host functions included.
    for (let i = 0; i < 3; i++) {
      const fine = await triggerRun(host, 't/p/fine');
      assert.equal(fine.run.status, 'succeeded', fine.run.error ?? '');
      assert.equal((fine.result.responses[0]?.ok as { id: string }).id, 'fine');
    }
    assert.equal(pool().size, 2);
  } finally {
    await host.stop();
  }
});

test('pool: killing a worker mid-run records worker_crashed, replaces it, and the schedule’s next tick fires', async (t) => {
  const dir = tempDir(t);
  const { host, clock, pool } = poolHost(
    dir,
    [
      {
        name: 'p',
        wasm: GUEST.proxy,
        timeoutMs: 60_000,
        schedules: decls({ id: 'spin', every: '1m', payload: { spin: true } }),
      },
    ],
    1,
  );
  await host.start();
  try {
    clock.advance(60_000);
    // Wait until the guest is really running inside the worker, then kill it.
    const deadline = Date.now() + 10_000;
    while (host.store.listRuns({ status: 'running' }).length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    await pool().killWorker(0);
    await host.scheduler.settle();
    const first = runsOf(host, 't/p/spin')[0];
    assert.equal(first?.status, 'worker_crashed');
    assert.ok(first?.error);
    // The next tick is dispatched to the replacement worker (and spins again: it is killed by stop()).
    clock.advance(60_000);
    const until = Date.now() + 10_000;
    while (runsOf(host, 't/p/spin').length < 2 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(runsOf(host, 't/p/spin')[1]?.status, 'running');
    await pool().killWorker(0);
    await host.scheduler.settle();
  } finally {
    await host.stop(0);
  }
});

test('pool: a plugin whose cleanup() loops forever is still unloaded within its deadline, and the host stops', async (t) => {
  const dir = tempDir(t);
  const { host } = poolHost(dir, [
    { name: 'looper', wasm: GUEST.wat('cleanup-loops'), timeoutMs: 300 },
    {
      name: 'other',
      wasm: GUEST.proxy,
      timeoutMs: 300,
      schedules: decls({ id: 'x', every: '1h' }),
    },
  ]);
  const failures: string[] = [];
  host.events.on('host:error', (e) => failures.push(e.message));
  await host.start();
  const started = Date.now();
  await host.unloadPlugin('t/looper');
  const took = Date.now() - started;
  assert.ok(took < 5_000, `unload took ${took} ms`);
  assert.equal(host.store.getPlugin('t/looper')?.status, 'unloaded');
  assert.match(failures.join('\n'), /cleanup\(\) timed_out/);
  // The other plugin still works afterwards.
  const { run } = await triggerRun(host, 't/other/x');
  assert.equal(run.status, 'succeeded');
  await host.stop();
});

test('pool: one tenant’s never-ending guests do not stop another tenant’s runs', async (t) => {
  const dir = tempDir(t);
  const { host } = poolHost(
    dir,
    [
      {
        name: 'hog',
        tenant: 'noisy',
        wasm: GUEST.proxy,
        timeoutMs: 1_000,
        schedules: decls(
          ...Array.from({ length: 4 }, (_, i) => ({
            id: `spin${i}`,
            every: '1h',
            payload: { spin: true },
          })),
        ),
      },
      {
        name: 'calm',
        tenant: 'quiet',
        wasm: GUEST.proxy,
        timeoutMs: 1_000,
        schedules: decls({ id: 'beat', every: '1h' }),
      },
    ],
    2,
  );
  await host.start();
  try {
    const finished: string[] = [];
    host.events.on('run:finished', (r) => finished.push(r.localId));
    for (let i = 0; i < 4; i++) host.operate(`noisy/hog/spin${i}`, 'trigger');
    // Both workers are taken by spins and two more spins wait; the quiet tenant's run, queued
    // last, gets the next free worker because tenants take turns (FIFO would give it the third).
    const { run } = await triggerRun(host, 'quiet/calm/beat');
    assert.equal(run.status, 'succeeded');
    await host.scheduler.settle();
    assert.equal(host.store.listRuns({ status: 'timed_out' }).length, 4);
    const beat = finished.indexOf('beat');
    assert.ok(
      beat >= 0 && beat < finished.indexOf('spin2') && beat < finished.indexOf('spin3'),
      finished.join(' '),
    );
  } finally {
    await host.stop();
  }
});
