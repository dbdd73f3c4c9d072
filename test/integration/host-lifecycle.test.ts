/**
 * Host lifecycle on failure paths (issue 9, item 14; STRUCTURE.md §4): `stop()` runs every
 * teardown step and rethrows the first error at the end; a rejected `sandbox.close()` still
 * closes the store and releases the lease; a second `stop()` waits for the first; `stop()`
 * returns within the shutdown grace + 1 s even when runs, `cleanup()` and the sandbox's close
 * never finish.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from '../../src/sandbox/types.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { ManualClock, proxyConfig, T0, startHost, tempDir } from './helpers.ts';

/** The real in-thread sandbox, with `run`/`cleanup` calls and `close()` made to misbehave. */
class FaultySandbox implements Sandbox {
  readonly inner: InThreadSandbox;
  constructor(
    hostCall: HostCallHandler,
    readonly faults: { close?: 'reject' | 'hang'; hang?: readonly ('run' | 'cleanup')[] },
  ) {
    this.inner = new InThreadSandbox({ hostCall });
  }
  load(spec: GuestSpec): Promise<GuestInfo> {
    return this.inner.load(spec);
  }
  call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    if (this.faults.hang?.includes(req.fn as 'run' | 'cleanup')) return new Promise(() => {});
    return this.inner.call(pluginId, req);
  }
  unload(pluginId: string): Promise<void> {
    return this.inner.unload(pluginId);
  }
  async close(): Promise<void> {
    await this.inner.close();
    if (this.faults.close === 'reject') throw new Error('the sandbox failed to close');
    if (this.faults.close === 'hang') await new Promise(() => {});
  }
}

test('a rejected sandbox.close() still closes the store and releases the lease; stop() rethrows it; a second stop() waits', async (t) => {
  const dir = tempDir(t);
  const config = proxyConfig(dir, { id: 'a', every: '1m' });
  const { host } = await startHost(config, new ManualClock(T0), {
    sandbox: (hc) => new FaultySandbox(hc, { close: 'reject' }),
  });
  const errors: string[] = [];
  host.events.on('host:error', (e) => errors.push(e.message));
  host.events.on('host:error', () => {
    throw new Error('a listener that throws must not break the teardown');
  });
  const first = host.stop();
  const second = host.stop();
  await assert.rejects(first, /the sandbox failed to close/);
  await second; // resolves once the first is done
  await host.stop(); // and later calls too
  assert.ok(errors.some((m) => /close the sandbox/.test(m)));
  // The store was closed (its connection is gone) and the lease released.
  assert.throws(() => host.store.listRuns(), { code: 'HG_STORE' });
  const store = new SqliteStore(config.store.path, { mustExist: true });
  try {
    assert.equal(store.readLease(), undefined);
  } finally {
    store.close();
  }
});

test('stop() returns within grace + 1 s when a run, cleanup() and the sandbox close never finish', async (t) => {
  const dir = tempDir(t);
  const config = proxyConfig(dir, { id: 'a', every: '1m' });
  const clock = new ManualClock(T0);
  const { host } = await startHost(config, clock, {
    sandbox: (hc) => new FaultySandbox(hc, { close: 'hang', hang: ['run', 'cleanup'] }),
  });
  host.events.on('host:error', () => undefined);
  assert.equal(host.operate('t/p/a', 'trigger').ok, true);
  const grace = 300;
  const started = Date.now();
  await host.stop(grace);
  const took = Date.now() - started;
  assert.ok(took < grace + 1_000, `stop took ${took} ms`);
  const store = new SqliteStore(config.store.path, { mustExist: true });
  try {
    const runs = store.listRuns({ scheduleKey: 't/p/a' });
    assert.deepEqual(
      runs.map((r) => r.status),
      ['abandoned'],
    );
    assert.equal(store.readLease(), undefined);
  } finally {
    store.close();
  }
});

test('a host that never started stops without touching the store it shares', async (t) => {
  const dir = tempDir(t);
  const config = proxyConfig(dir, { id: 'a', every: '1m' });
  const clock = new ManualClock(T0);
  const { host: a } = await startHost(config, clock, {
    sandbox: (hc) => new FaultySandbox(hc, { hang: ['run'] }),
  });
  try {
    a.operate('t/p/a', 'trigger');
    const { Host } = await import('../../src/host/host.ts');
    const idle = new Host(config, { clock });
    await idle.stop();
    // a's run is still running and its lease still held.
    assert.equal(a.store.listRuns({ status: 'running' }).length, 1);
    assert.ok(a.store.readLease());
  } finally {
    await a.stop(0);
  }
});
