/**
 * Plugin state (Extism variables, docs/guest-abi.md "Plugin state") with a real guest
 * (guest-examples/wat/counter.wat: reads variable "n", adds 1, writes it back, outputs it):
 * the counter goes on across workers of the pool, host restarts (SQLite and PostgreSQL) and
 * reloads; a `var_set` over the limit keeps nothing; the operator's clear empties it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig, type HostConfig } from '../../src/config/host-config.ts';
import { openPgOperatorStore } from '../../src/operator/pg-access.ts';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { decodeStoredVars, PluginVars } from '../../src/sandbox/plugin-vars.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import type { CallOutcome } from '../../src/sandbox/types.ts';
import {
  GUEST,
  ManualClock,
  STORES,
  T0,
  startHost,
  storeConfigOf,
  storeDir,
  storedCopy,
  type StartedHost,
} from './helpers.ts';

const KEY = 't/counter/tick';
const PLUGIN = 't/counter';

function counterConfig(dir: string, config: Record<string, string> = {}): HostConfig {
  const manifest = join(dir, 'counter.json');
  writeFileSync(
    manifest,
    JSON.stringify({
      name: 'counter',
      version: '1.0.0',
      wasm: GUEST.wat('counter'),
      capabilities: [],
      limits: { varBytes: 1024 },
    }),
  );
  return parseHostConfig(
    {
      store: storeConfigOf(dir),
      sandbox: { workers: 2 },
      tenants: [{ id: 't', plugins: [{ manifest, config }] }],
    },
    join(dir, 'config.json'),
    dir,
  );
}

/** Triggers the counter's schedule and waits for its run: its status and result. */
async function tick(
  h: StartedHost,
): Promise<{ status: string; reason: string | null; n: unknown }> {
  const r = h.host.operate(KEY, 'trigger');
  assert.equal(r.ok, true, JSON.stringify(r));
  await h.host.scheduler.settle();
  const run = h.host.store.listRuns({ scheduleKey: KEY, limit: 1 })[0];
  assert.ok(run);
  return {
    status: run.status,
    reason: run.reason,
    n: run.result === null ? null : JSON.parse(run.result),
  };
}

/** The counter as the store holds it (read from outside the host), or null. */
async function storedCounter(config: HostConfig): Promise<number | null> {
  const store = await storedCopy(config);
  try {
    const rec = store.getPluginState(PLUGIN);
    const n = rec ? decodeStoredVars(rec.vars).find(([k]) => k === 'n') : undefined;
    return n ? Number(Buffer.from(n[1]).readBigUInt64LE()) : null;
  } finally {
    store.close();
  }
}

for (const kind of STORES) {
  test(`plugin state (${kind}): the counter goes on across runs, a restart and a reload; an over-limit var_set keeps nothing; the operator's clear empties it`, async (t) => {
    const dir = await storeDir(t, kind);
    const config = counterConfig(dir);
    const clock = new ManualClock(T0);
    let h = await startHost(config, clock);
    try {
      assert.deepEqual(h.failed, []);
      for (const n of [1, 2, 3])
        assert.deepEqual(await tick(h), { status: 'succeeded', reason: null, n });
      // A restart on the same store.
      await h.stop();
      assert.equal(await storedCounter(config), 3);
      h = await startHost(config, clock);
      assert.deepEqual(await tick(h), { status: 'succeeded', reason: null, n: 4 });
      // A reload (a new version beside the old, then swapped) keeps the state.
      const entry = config.tenants[0]?.plugins[0];
      assert.ok(entry);
      await h.host.loadPlugin('t', entry);
      assert.deepEqual(await tick(h), { status: 'succeeded', reason: null, n: 5 });
      // A version that sets a variable over the plugin's varBytes: the run fails, and nothing
      // of it is kept ("n" included), in memory or in the store.
      await h.host.loadPlugin('t', { ...entry, config: { bloat: '1' } });
      const refused = await tick(h);
      assert.equal(refused.status, 'memory_limit');
      assert.equal(refused.reason, 'var_limit');
      assert.equal(h.host.pluginVars(PLUGIN)?.get('big'), undefined);
      await h.host.store.committed();
      assert.equal(await storedCounter(config), 5);
      await h.stop();
      assert.equal(await storedCounter(config), 5);
      h = await startHost(config, clock);
      assert.deepEqual(await tick(h), { status: 'succeeded', reason: null, n: 6 });
      // The operator's clear (as the CLI's command reaches the host): the next run starts at 1.
      assert.equal(h.host.operateToResult(PLUGIN, 'clear_state', null), '{"ok":"cleared 1"}');
      await h.host.store.committed();
      const store = await storedCopy(config);
      try {
        assert.equal(store.getPluginState(PLUGIN)?.vars, '[]');
      } finally {
        store.close();
      }
      assert.deepEqual(await tick(h), { status: 'succeeded', reason: null, n: 1 });
    } finally {
      await h.stop();
    }
  });
}

function counterPool(size: number) {
  const pool = new WorkerPoolSandbox({
    hostCall: () => JSON.stringify({ error: { code: 'unavailable', message: 'none' } }),
    size,
  });
  const limits = { ...DEFAULT_LIMITS, varBytes: 1024 };
  const vars = new PluginVars(limits.varBytes);
  const call = (): Promise<CallOutcome> =>
    pool.call('t/counter', {
      fn: 'run',
      input: '{}',
      caller: { pluginId: 't/counter', tenant: 't', phase: 'run', scheduleKey: 'k' },
      vars,
    });
  const load = () =>
    pool.load({
      pluginId: 't/counter',
      tenant: 't',
      wasm: new Uint8Array(readFileSync(GUEST.wat('counter'))),
      config: {},
      limits,
    });
  return { pool, vars, call, load };
}

function resultOf(o: CallOutcome): number {
  assert.equal(o.ok, true, JSON.stringify(o));
  return (JSON.parse(Buffer.from((o.ok && o.output) || []).toString()) as { result: number })
    .result;
}

test('plugin state in the pool: the counter goes on in replaced workers (each gets the current copy), and concurrent calls on two workers: the last writer wins per key', async () => {
  const { pool, vars, call, load } = counterPool(2);
  try {
    await load();
    assert.equal(resultOf(await call()), 1);
    assert.equal(resultOf(await call()), 2);
    // Every worker replaced: the new ones have no copy; the next call carries the current one.
    await pool.killWorker(0);
    await pool.killWorker(1);
    assert.equal(resultOf(await call()), 3);
    assert.equal(resultOf(await call()), 4);
    // A burst: calls made in one turn are shared out over the workers. Each worker's calls see
    // its own copy; whatever ran where, the main copy ends at the last writer's value, and the
    // next call, on either worker, continues from it.
    const burst = (await Promise.all([call(), call(), call(), call()])).map(resultOf);
    const last = Number(Buffer.from(vars.get('n')?.value ?? []).readBigUInt64LE());
    assert.ok(burst.includes(last), `${burst.join(',')} / ${last}`);
    for (let i = 1; i <= 4; i++) assert.equal(resultOf(await call()), last + i);
    // A reload of the module (the workers' guests are new): the state is the caller's, kept.
    await load();
    assert.equal(resultOf(await call()), last + 5);
  } finally {
    await pool.close();
  }
});

test('plugin state in the pool: an operator-style clear reaches the workers with their next call', async () => {
  const { pool, vars, call, load } = counterPool(1);
  try {
    await load();
    assert.equal(resultOf(await call()), 1);
    assert.equal(resultOf(await call()), 2);
    assert.equal(vars.clear('n'), true);
    assert.equal(resultOf(await call()), 1);
  } finally {
    await pool.close();
  }
});

test("plugin state on PostgreSQL: the CLI's store layer lists the state and its clear reaches the host that owns the tenant (its copy in memory too)", async (t) => {
  const dir = await storeDir(t, 'postgres');
  const config = counterConfig(dir);
  const h = await startHost(config, new ManualClock(T0));
  const pgc = config.store.postgres;
  assert.ok(pgc);
  const cli = await openPgOperatorStore(pgc);
  try {
    for (const n of [1, 2]) assert.equal((await tick(h)).n, n);
    await h.host.store.committed();
    const rec = await cli.getPluginState(PLUGIN);
    assert.deepEqual(rec && decodeStoredVars(rec.vars).map(([k, v]) => [k, [...v]]), [
      ['n', [2, 0, 0, 0, 0, 0, 0, 0]],
    ]);
    const r = await cli.applyCommand(PLUGIN, 'clear_state', null);
    assert.deepEqual([r.ok, r.via, r.value], [true, 'host', 'cleared 1']);
    assert.equal(h.host.pluginVars(PLUGIN)?.size, 0);
    assert.equal((await tick(h)).n, 1);
  } finally {
    await cli.close();
    await h.stop();
  }
});
