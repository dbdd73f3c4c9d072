/**
 * The instance that ran `schedules()` is not kept (in-thread-sandbox.ts): the first run gets a
 * fresh one, so nothing discovery left in memory (grown pages, globals) reaches a run, and the
 * dropped memory is counted for the pool worker's collector (pool/worker-gc.ts). The guest
 * (`wat/discovery-grow`) grows its memory from 1 to 16 pages and sets a global in `schedules()`;
 * its `run()` returns 0 only on a fresh instance.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import type { CallRequest, GuestSpec, Sandbox } from '../../src/sandbox/types.ts';
import { GUEST } from './helpers.ts';

const spec: GuestSpec = {
  pluginId: 't/grow',
  tenant: 't',
  wasm: new Uint8Array(readFileSync(GUEST.wat('discovery-grow'))),
  config: {},
  limits: DEFAULT_LIMITS,
};
const discovery: CallRequest = {
  fn: 'schedules',
  caller: { pluginId: 't/grow', tenant: 't', phase: 'discovery' },
};
const run: CallRequest = {
  fn: 'run',
  input: '{}',
  caller: { pluginId: 't/grow', tenant: 't', phase: 'run', scheduledAt: 0 },
};

/** Discovery, then two runs: both see a fresh instance (the second reuses the first's). */
async function discoverThenRun(sandbox: Sandbox): Promise<void> {
  await sandbox.load(spec);
  const d = await sandbox.call('t/grow', discovery);
  assert.equal(d.ok, true, JSON.stringify(d));
  for (let i = 0; i < 2; i++) {
    const r = await sandbox.call('t/grow', run);
    assert.equal(r.ok, true, `run ${i + 1} saw discovery's instance: ${JSON.stringify(r)}`);
  }
}

test("in-thread: a run does not inherit discovery's instance; its memory is counted as released", async () => {
  const sandbox = new InThreadSandbox({ hostCall: () => '{"ok":null}' });
  try {
    await sandbox.load(spec);
    sandbox.takeReleasedBytes(); // nothing dropped by the load itself
    const d = await sandbox.call('t/grow', discovery);
    assert.equal(d.ok, true, JSON.stringify(d));
    assert.equal(sandbox.takeReleasedBytes(), 16 * 65_536, "discovery's 16 pages were dropped");
    assert.equal(sandbox.takeReleasedBytes(), 0, 'taking the count resets it');
    // The run instantiates afresh (a promise: the instance is made first), then runs at once.
    const first = sandbox.callNow('t/grow', run);
    assert.ok(first instanceof Promise);
    assert.equal((await first).ok, true, JSON.stringify(await first));
    const second = sandbox.callNow('t/grow', run);
    assert.ok(!(second instanceof Promise), 'the run instance is kept for later runs');
    assert.equal(second.ok, true);
    assert.equal(sandbox.takeReleasedBytes(), 0, 'runs drop nothing');
    await sandbox.unload('t/grow');
    assert.equal(sandbox.takeReleasedBytes(), 65_536, 'an unload drops the run instance');
  } finally {
    await sandbox.close();
  }
});

test("pool: a run does not inherit discovery's instance", async () => {
  const pool = new WorkerPoolSandbox({ hostCall: () => '{"ok":null}', size: 1, spareWorkers: 1 });
  try {
    await discoverThenRun(pool);
  } finally {
    await pool.close();
  }
});
