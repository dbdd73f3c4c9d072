/**
 * Hourglass's WASI through the real worker pool and host (issue 9 item 1): a guest that sleeps
 * in `poll_oneoff` forever used to block its worker in native code, so the deadline's
 * `worker.terminate()` never returned, threads and memory leaked and the host could not stop.
 * Now the sleep returns at once and is billed: the run ends out of fuel long before its
 * (generous) deadline, no worker is replaced, the thread count stays put, and `stop()` is
 * prompt. Also: the run's scheduled time reaches the guest's wall clock, and init out of fuel
 * is reported with its own load code through the pool.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig } from '../../src/config/host-config.ts';
import { Host } from '../../src/host/host.ts';
import { GUEST, ManualClock, T0, tempDir, triggerRun } from './helpers.ts';

function threads(): number {
  const m = /^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

test('pool: WASI sleeps never block a worker; runs end by fuel; stop is prompt', async (t) => {
  const dir = tempDir(t);
  const manifest = (name: string, limits: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        name,
        version: '1',
        wasm: GUEST.wat(name),
        // A deadline far beyond what fuel allows: the runs must end by fuel.
        limits: { timeoutMs: 60_000, fuel: { run: 50_000_000 }, ...limits },
      }),
    );
    return { manifest: file };
  };
  const config = parseHostConfig(
    {
      store: { path: join(dir, 'h.db') },
      sandbox: { mode: 'pool', workers: 1 },
      tenants: [
        {
          id: 't',
          plugins: [
            manifest('wasi-sleep-loop'),
            manifest('wasi-sleep'),
            manifest('wasi-exit'),
            manifest('wasi-start-spin', { fuel: { discovery: 1_000_000 } }),
          ],
        },
      ],
    },
    join(dir, 'config.json'),
    dir,
  );
  const host = new Host(config, { clock: new ManualClock(T0) });
  const failures: { pluginId: string; code: string }[] = [];
  const logs: string[] = [];
  host.events.on('plugin:failed', (e) => failures.push({ pluginId: e.pluginId, code: e.code }));
  host.events.on('guest:log', (e) => logs.push(e.message));
  let stopped = false;
  try {
    await host.start();
    // Init out of fuel has its own load code, through the pool too.
    assert.deepEqual(failures, [{ pluginId: 't/wasi-start-spin', code: 'HG_PLUGIN_INIT_FUEL' }]);

    const warm = await triggerRun(host, 't/wasi-sleep/sleep');
    assert.equal(warm.run.status, 'succeeded');
    const before = threads();
    for (let i = 0; i < 3; i++) {
      const { run } = await triggerRun(host, 't/wasi-sleep-loop/sleep-loop');
      assert.equal(run.status, 'out_of_fuel');
      assert.equal(run.reason, 'out_of_fuel');
      assert.equal(run.fuelUsed, 50_000_000);
    }
    const { run: exit } = await triggerRun(host, 't/wasi-exit/exit');
    assert.equal(exit.status, 'failed');
    assert.equal(exit.reason, 'proc_exit');

    const { run: slept } = await triggerRun(host, 't/wasi-sleep/sleep');
    assert.equal(slept.status, 'succeeded');
    // No worker was stopped and replaced (a replacement would add a thread while the old one
    // winds down), and the flood of sleeps logged nothing.
    assert.ok(threads() <= before, `threads ${before} -> ${threads()}`);
    assert.deepEqual(logs, []);

    const t0 = performance.now();
    await host.stop();
    stopped = true;
    assert.ok(performance.now() - t0 < 10_000, 'stop() returned promptly');
  } finally {
    if (!stopped) await host.stop();
  }
});
