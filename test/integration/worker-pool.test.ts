import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';
import { parseHostConfig, PROJECT_ROOT } from '../../src/config/host-config.ts';
import { isHourglassError } from '../../src/errors.ts';
import { Host } from '../../src/host/host.ts';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
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
  // Only the spinning plugin has a short deadline: on a busy machine a normal run may take
  // longer than 200 ms of wall time, and these tests must not depend on the machine's speed.
  const { host, pool } = poolHost(dir, [
    {
      name: 'p',
      wasm: GUEST.proxy,
      timeoutMs: 200,
      schedules: decls({ id: 'spin', every: '1h', payload: { spin: true } }),
    },
    {
      name: 'q',
      wasm: GUEST.proxy,
      timeoutMs: 60_000,
      schedules: decls({
        id: 'fine',
        every: '1h',
        payload: { calls: [{ fn: 'schedule_get', args: { id: 'fine' } }] },
      }),
    },
  ]);
  await host.start();
  try {
    const started = Date.now();
    const spin = await triggerRun(host, 't/p/spin');
    const took = Date.now() - started;
    assert.equal(spin.run.status, 'timed_out');
    assert.equal(spin.run.reason, 'deadline');
    assert.ok(took >= 200 && took < 30_000, `ended after ${took} ms`);
    // The replacement worker serves the next runs, host functions included.
    for (let i = 0; i < 3; i++) {
      const fine = await triggerRun(host, 't/q/fine');
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
      timeoutMs: 60_000,
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
        timeoutMs: 60_000,
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

// ---- batching: calls that share a worker with one that hangs are never lost ----

const NO_HOST = () => '{"ok":null}';

/** A run context for the proxy guest (only the payload matters to it). */
function proxyInput(payload: unknown): string {
  return JSON.stringify({
    scheduleId: 'k',
    runId: '1',
    plugin: 't/proxy',
    scheduledAt: new Date(T0).toISOString(),
    firedAt: new Date(T0).toISOString(),
    attempt: 1,
    catchUp: false,
    trigger: 'manual',
    payload,
    cursor: null,
  });
}

/** A one-worker pool where every call counts as fast, so that queued calls share one batch. */
async function batchingPool(timeoutMs: number) {
  const replaced: string[] = [];
  const pool = new WorkerPoolSandbox({
    hostCall: NO_HOST,
    size: 1,
    fastCallMs: 60_000,
    onWorkerReplaced: (e) => replaced.push(e.reason),
  });
  // Fuel outlasts every deadline here: these tests are about the deadline and kills. Only
  // `spin` (the proxy under `t/spin`) has the short deadline: on a busy machine a normal call
  // may take longer than a few hundred ms of wall time.
  const limits = {
    ...DEFAULT_LIMITS,
    timeoutMs: 60_000,
    fuel: { discovery: 1e12, run: 1e12, cleanup: 1e12 },
  };
  const file = (p: string) => new Uint8Array(readFileSync(p));
  await pool.load({
    pluginId: 't/noop',
    tenant: 't',
    wasm: file(GUEST.wat('noop')),
    config: {},
    limits,
  });
  for (const [pluginId, timeout] of [
    ['t/proxy', 60_000],
    ['t/spin', timeoutMs],
  ] as const) {
    await pool.load({
      pluginId,
      tenant: 't',
      wasm: file(GUEST.proxy),
      config: {},
      limits: { ...limits, timeoutMs: timeout },
    });
  }
  const caller = (pluginId: string) => ({
    pluginId,
    tenant: 't',
    phase: 'run' as const,
    scheduleKey: 'k',
  });
  const noop = () => pool.call('t/noop', { fn: 'run', input: '{}', caller: caller('t/noop') });
  const proxyOf = (pluginId: string) => (payload: unknown) =>
    pool.call(pluginId, { fn: 'run', input: proxyInput(payload), caller: caller(pluginId) });
  const proxy = proxyOf('t/proxy');
  const spin = () => proxyOf('t/spin')({ spin: true });
  // One quick call of each teaches the pool that they are fast.
  for (const warm of [noop, () => proxy({}), () => proxyOf('t/spin')({})]) {
    const o = await warm();
    assert.equal(o.ok, true, `warm-up call: ${JSON.stringify(o)}`);
  }
  return { pool, replaced, noop, proxy, spin };
}

test('pool: a batch whose call passes its deadline: the calls before it keep their outcomes, those after it run on the replacement', async () => {
  const { pool, replaced, noop, proxy, spin: spinCall } = await batchingPool(300);
  try {
    // Made in one turn of the event loop, these travel to the one worker as one batch.
    const before = Array.from({ length: 5 }, noop);
    const spin = spinCall();
    const after = Array.from({ length: 5 }, noop);
    const hung = await spin;
    assert.equal(hung.ok, false);
    assert.equal(!hung.ok && hung.status, 'timed_out');
    assert.equal(!hung.ok && hung.reason, 'deadline');
    for (const o of await Promise.all([...before, ...after])) assert.equal(o.ok, true);
    assert.deepEqual(replaced, ['timed_out']);
    // The pool goes on serving calls.
    assert.equal((await proxy({})).ok, true);
  } finally {
    await pool.close();
  }
});

test('pool: a worker killed mid-batch: its running call ends worker_crashed and no other call of the batch is lost', async () => {
  const { pool, replaced, noop, proxy } = await batchingPool(60_000);
  try {
    const before = Array.from({ length: 5 }, noop);
    const spin = proxy({ spin: true });
    const after = Array.from({ length: 5 }, noop);
    const first = await Promise.all(before);
    await new Promise((r) => setTimeout(r, 100)); // the spin is running now
    await pool.killWorker(0);
    const killed = await spin;
    assert.equal(!killed.ok && killed.status, 'worker_crashed');
    for (const o of [...first, ...(await Promise.all(after))]) assert.equal(o.ok, true);
    assert.deepEqual(replaced, ['worker_crashed']);
  } finally {
    await pool.close();
  }
});

test('pool: many concurrent calls across tenants all complete, through every worker', async () => {
  const pool = new WorkerPoolSandbox({ hostCall: NO_HOST, size: 2 });
  try {
    const wasm = new Uint8Array(readFileSync(GUEST.wat('noop')));
    for (const tenant of ['a', 'b', 'c'])
      await pool.load({
        pluginId: `${tenant}/noop`,
        tenant,
        wasm,
        config: {},
        limits: DEFAULT_LIMITS,
      });
    const calls = Array.from({ length: 600 }, (_, i) => {
      const pluginId = `${'abc'[i % 3] as string}/noop`;
      return pool.call(pluginId, {
        fn: 'run',
        input: '{}',
        caller: { pluginId, tenant: pluginId.slice(0, 1), phase: 'run' },
      });
    });
    const outcomes = await Promise.all(calls);
    assert.equal(outcomes.filter((o) => o.ok).length, 600);
  } finally {
    await pool.close();
  }
});

test('pool: deadline kills in quick succession are served by warm spares; a call taken back from behind a hung one runs next', async () => {
  const { pool, replaced, noop, proxy, spin } = await batchingPool(200);
  try {
    // Both spins share a batch (their schedule's last run was fast); the second is taken back
    // from behind the first, then hangs on the replacement in turn.
    const spins = [spin(), spin()];
    const after = noop();
    for (const o of await Promise.all(spins)) assert.equal(!o.ok && o.status, 'timed_out');
    assert.equal((await after).ok, true);
    assert.deepEqual(replaced, ['timed_out', 'timed_out']);
    assert.equal((await proxy({})).ok, true);
    // The terminated workers exit: the thread count comes back to the pool size + spares.
    await until(() => pool.threads === pool.size + 2, 'threads back to size + spares');
  } finally {
    await pool.close();
  }
});

/** Waits (up to a generous 20 s) for `cond`; fails with `what` otherwise. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- lifetimes: the event loop, close(), boot failures ----

test('pool: calls waiting for a booting worker keep the process alive; an idle pool lets it exit', (t) => {
  // The cause of the old flaky tests: after a few replacements in a row the slot's worker is
  // still booting, calls wait for it, and nothing held the event loop: the process (here a
  // child, so that "exits early" is observable) ended with the call's promise never settled.
  const dir = tempDir(t);
  const script = join(dir, 'waiting-call.mts');
  const src = (p: string) => JSON.stringify(pathToFileURL(join(PROJECT_ROOT, p)).href);
  writeFileSync(
    script,
    `import { readFileSync } from 'node:fs';
import { WorkerPoolSandbox } from ${src('src/sandbox/pool/worker-pool-sandbox.ts')};
import { DEFAULT_LIMITS } from ${src('src/plugin/manifest.ts')};
const pool = new WorkerPoolSandbox({ hostCall: () => '{"ok":null}', size: 1, spareWorkers: 1 });
const wasm = new Uint8Array(readFileSync(${JSON.stringify(GUEST.wat('noop'))}));
await pool.load({ pluginId: 't/noop', tenant: 't', wasm, config: {}, limits: DEFAULT_LIMITS });
for (let i = 0; i < 3; i++) await pool.killWorker(0); // the slot's worker is now a fresh one
const caller = { pluginId: 't/noop', tenant: 't', phase: 'run' };
const o = await pool.call('t/noop', { fn: 'run', input: '{}', caller });
console.log('settled', o.ok);
// no close(): an idle pool must not keep the process alive
`,
  );
  const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(child.status, 0, `exit ${child.status} ${child.signal ?? ''}: ${child.stderr}`);
  assert.match(child.stdout, /settled true/);
});

test('pool: close() settles the calls it holds: running and waiting calls end abandoned/closed', async () => {
  const { pool, proxy, noop } = await batchingPool(60_000);
  const spin = proxy({ spin: true });
  const behind = noop();
  await new Promise((r) => setTimeout(r, 300));
  const closing = pool.close();
  const outcomes = await Promise.all([spin, behind]);
  for (const o of outcomes) {
    assert.equal(!o.ok && o.status, 'abandoned');
    assert.equal(!o.ok && o.reason, 'closed');
  }
  await closing;
  await pool.close(); // a second close is harmless
  // close() waits for threads a bounded time only; on a busy machine they may exit just after.
  await until(() => pool.threads === 0, 'every thread exited');
});

/** A worker entry (data: URL) that speaks just enough protocol to load, then blocks natively. */
const BLOCKING_ENTRY = new URL(
  `data:text/javascript,${encodeURIComponent(`
import { parentPort } from 'node:worker_threads';
import { execSync } from 'node:child_process';
const module = new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
parentPort.on('message', (m) => {
  if (m.type === 'prepare') {
    const info = { exports: ['run'], imports: [], sha256: '' };
    const prepared = { module, sha256: '', exports: ['run'], imports: [], usesWasi: false, fuel: {} };
    parentPort.postMessage({ type: 'prepared', callId: m.callId, prepared, info });
  }
  if (m.type === 'batch') execSync('sleep 5'); // terminate() cannot return while this runs
});
parentPort.postMessage({ type: 'ready' });
`)}`,
);

test('pool: close() waits a bounded time for a thread whose terminate() does not return', async () => {
  const pool = new WorkerPoolSandbox({
    hostCall: NO_HOST,
    size: 1,
    spareWorkers: 1,
    closeTimeoutMs: 200,
    workerEntry: BLOCKING_ENTRY,
  });
  const limits = { ...DEFAULT_LIMITS, timeoutMs: 60_000 };
  await pool.load({ pluginId: 't/x', tenant: 't', wasm: new Uint8Array(8), config: {}, limits });
  const caller = { pluginId: 't/x', tenant: 't', phase: 'run' as const };
  const blocked = pool.call('t/x', { fn: 'run', input: '{}', caller });
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  await pool.close();
  const took = Date.now() - started;
  // The thread sleeps 5 s in native code; close() returned long before it could exit.
  assert.ok(took < 4_000, `close() took ${took} ms`);
  const o = await blocked;
  assert.equal(!o.ok && o.reason, 'closed');
});

test('pool: workers that fail at boot are respawned with backoff, then the pool gives up (HG_SANDBOX_BOOT)', async () => {
  const replaced: string[] = [];
  const started = Date.now();
  const pool = new WorkerPoolSandbox({
    hostCall: NO_HOST,
    size: 1,
    spareWorkers: 1,
    bootBackoffMs: 50,
    maxBootFailures: 4,
    workerEntry: new URL(`data:text/javascript,throw new Error('boom at boot')`),
    onWorkerReplaced: (e) => replaced.push(e.reason),
  });
  try {
    const wasm = new Uint8Array(readFileSync(GUEST.wat('noop')));
    await assert.rejects(
      pool.load({ pluginId: 't/noop', tenant: 't', wasm, config: {}, limits: DEFAULT_LIMITS }),
      (err) =>
        isHourglassError(err) && err.code === 'HG_SANDBOX_BOOT' && /boom at boot/.test(err.message),
    );
    // Two failures came at once (slot and spare): the next attempt waited 2 × 50 ms at least.
    assert.ok(Date.now() - started >= 100, 'the respawns backed off');
    // Given up: no thread is spawned any more, and later loads fail at once.
    await until(() => pool.threads === 0, 'every thread gone');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pool.threads, 0);
    await assert.rejects(
      pool.load({ pluginId: 't/b', tenant: 't', wasm, config: {}, limits: DEFAULT_LIMITS }),
      (err) => isHourglassError(err) && err.code === 'HG_SANDBOX_BOOT',
    );
  } finally {
    await pool.close();
  }
});

test('a pool closed while its workers boot is collectable once they exit (no boot timer keeps it, nor its host, for 30 s)', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  let collected = false;
  const registry = new FinalizationRegistry(() => (collected = true));
  await (async () => {
    const pool = new WorkerPoolSandbox({ hostCall: () => '{"ok":null}', size: 1, spareWorkers: 1 });
    registry.register(pool, 'pool');
    await pool.close(); // its workers were still booting
  })();
  const end = Date.now() + 20_000;
  while (!collected && Date.now() < end) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(collected, 'the closed pool is still reachable');
});
