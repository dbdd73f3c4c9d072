/**
 * Hostile-corpus cases of the worker pool's area (issue 9, items 6 and 14): loading off the main
 * thread, the loader's bounds, start functions at load, boot failures. Each is also proven by a
 * focused test (pool-loading.test.ts, worker-pool.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isHourglassError } from '../../src/errors.ts';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import type { HostileCase } from './hostile-case.ts';
import { GUEST } from './helpers.ts';
import { nestedIfsGuest } from './nested-guest.ts';

/** Writes a guest nesting `depth` ifs in `run()` (declares schedule `nest`) into `dir`. */
function nested(depth: number) {
  return (dir: string) => {
    const wasm = join(dir, `nested-${depth}.wasm`);
    writeFileSync(wasm, nestedIfsGuest(depth));
    return { wasm };
  };
}

export const CASES: readonly HostileCase[] = [
  {
    // Seconds of instrumentation on a busy machine: in a pool worker, never the main thread.
    name: 'nested-ifs-4k-loads-off-thread',
    item: '6',
    guest: { wat: 'noop' },
    setup: nested(4_000),
    expect: { trigger: 'nest', status: 'succeeded' },
  },
  {
    // Past the loader's nesting bound (the instrumenter's time grows with its square).
    name: 'nested-ifs-10k-too-deep',
    item: '6',
    guest: { wat: 'noop' },
    setup: nested(10_000),
    expect: { loadFails: 'HG_PLUGIN_TOO_COMPLEX' },
  },
  {
    // The start function burns its whole discovery budget, in a worker, under the load deadline:
    // init out of fuel has its own code (item 13: not reported as a bare `unreachable`).
    name: 'start-function-burns-discovery-budget',
    item: '6,13',
    guest: { wat: 'start-burn' },
    expect: { loadFails: 'HG_PLUGIN_INIT_FUEL' },
  },
  {
    // Workers that fail at boot are respawned with backoff, then given up on; a pool of its own
    // (the host's pool cannot be made to fail at boot), beside the host's good tenant.
    name: 'worker-boot-failure-backs-off',
    item: '14',
    guest: { wat: 'noop' },
    expect: { custom: true },
    check: async () => {
      const pool = new WorkerPoolSandbox({
        hostCall: () => '{"ok":null}',
        size: 1,
        spareWorkers: 1,
        bootBackoffMs: 50,
        maxBootFailures: 4,
        workerEntry: new URL(`data:text/javascript,throw new Error('boom at boot')`),
      });
      try {
        const wasm = new Uint8Array(readFileSync(GUEST.wat('noop')));
        await assert.rejects(
          pool.load({ pluginId: 'x/noop', tenant: 'x', wasm, config: {}, limits: DEFAULT_LIMITS }),
          (err) => isHourglassError(err) && err.code === 'HG_SANDBOX_BOOT',
        );
        const deadline = Date.now() + 20_000;
        while (pool.threads > 0 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        assert.equal(pool.threads, 0, 'no thread is spawned once the pool has given up');
      } finally {
        await pool.close();
      }
    },
  },
];
