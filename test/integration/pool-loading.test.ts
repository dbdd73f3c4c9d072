/**
 * Loading runs in pool workers, never on the main thread (issue 9, item 6): a plugin that takes
 * seconds to instrument, or whose start function runs long, delays no other tenant's fires or
 * loading; loads have their own deadline; modules past the loader's bounds are refused first.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig, type HostConfig } from '../../src/config/host-config.ts';
import { Host } from '../../src/host/host.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import { GUEST, decls, runsOf, tempDir } from './helpers.ts';
import { nestedIfsGuest } from './nested-guest.ts';

interface Plugin {
  readonly name: string;
  readonly wasm: string;
  readonly limits?: Record<string, unknown>;
  readonly schedules?: string;
}

/** A config whose tenants each list `plugins` (manifests written to `dir`); no fuel cap. */
function config(dir: string, tenants: Record<string, readonly Plugin[]>): HostConfig {
  return parseHostConfig(
    {
      store: { path: join(dir, 'h.db') },
      tenants: Object.entries(tenants).map(([id, plugins]) => ({
        id,
        quotas: { maxFuelPerCall: Number.MAX_SAFE_INTEGER },
        plugins: plugins.map((p) => {
          const manifest = join(dir, `${id}-${p.name}.json`);
          writeFileSync(
            manifest,
            JSON.stringify({ name: p.name, version: '1', wasm: p.wasm, limits: p.limits ?? {} }),
          );
          return { manifest, ...(p.schedules ? { config: { schedules: p.schedules } } : {}) };
        }),
      })),
    },
    join(dir, 'config.json'),
    dir,
  );
}

test('loading: a guest with 4,000 nested ifs (seconds to instrument on a busy machine) loads in a worker while another tenant fires on time', async (t) => {
  const dir = tempDir(t);
  const deepWasm = join(dir, 'deep.wasm');
  writeFileSync(deepWasm, nestedIfsGuest(4_000));
  const good = { name: 'beat', wasm: GUEST.proxy, schedules: decls({ id: 'beat', every: '1s' }) };
  const deepEntry = config(dir, { deep: [{ name: 'deep', wasm: deepWasm }] }).tenants[0]
    ?.plugins[0];
  assert.ok(deepEntry);
  const host = new Host(config(dir, { good: [good], deep: [] }));
  await host.start();
  try {
    await new Promise((r) => setTimeout(r, 1_500));
    // The event loop's own lag while the deep guest loads (reported, not asserted).
    let lag = 0;
    let last = Date.now();
    const probe = setInterval(() => {
      lag = Math.max(lag, Date.now() - last - 20);
      last = Date.now();
    }, 20);
    const loadStart = Date.now();
    const plugin = await host.loadPlugin('deep', deepEntry);
    const loadEnd = Date.now();
    clearInterval(probe);
    assert.equal(plugin.id, 'deep/deep');
    await new Promise((r) => setTimeout(r, 1_200));
    const beats = runsOf(host, 'good/beat/beat').filter(
      (r) => r.scheduledAt >= loadStart && r.scheduledAt <= loadEnd + 1_000,
    );
    t.diagnostic(`load ${loadEnd - loadStart} ms, event-loop lag ≤ ${lag} ms`);
    t.diagnostic(`lateness ${beats.map((r) => r.startedAt - r.scheduledAt).join(' ')} ms`);
    assert.ok(beats.length >= 1, 'the good tenant fired during the load');
    for (const r of beats) {
      assert.ok(
        r.startedAt - r.scheduledAt <= 250,
        `a beat started ${r.startedAt - r.scheduledAt} ms late`,
      );
    }
    const run = host.operate('deep/deep/nest', 'trigger');
    assert.ok(run.ok);
    await host.scheduler.settle();
    assert.equal(runsOf(host, 'deep/deep/nest')[0]?.status, 'succeeded');
  } finally {
    await host.stop();
  }
});

test('loading: a start function that outlasts the load deadline fails alone; another tenant loads meanwhile', async (t) => {
  const dir = tempDir(t);
  const cfg = config(dir, {
    burner: [
      // A budget that outlasts any deadline (the tenant's fuel cap is lifted in `config`).
      {
        name: 'burn',
        wasm: GUEST.wat('start-burn'),
        limits: { fuel: { discovery: Number.MAX_SAFE_INTEGER } },
      },
    ],
    calm: [{ name: 'calm', wasm: GUEST.proxy, schedules: decls({ id: 'x', every: '1h' }) }],
  });
  // The deadline is generous so that, even on a busy machine, the other tenant's load (its own
  // instrumentation, start and discovery) ends well before it: with loads in sequence, as
  // before, it could only start after the burner's load had failed.
  const host = new Host(cfg, {
    sandbox: (hostCall) => new WorkerPoolSandbox({ hostCall, size: 2, loadTimeoutMs: 15_000 }),
  });
  const events: string[] = [];
  host.events.on('plugin:loaded', (e) => events.push(`loaded ${e.pluginId}`));
  host.events.on('plugin:failed', (e) => events.push(`failed ${e.pluginId} ${e.code}`));
  try {
    const started = await host.start();
    assert.deepEqual(started.loaded, ['calm/calm']);
    assert.equal(started.failed[0]?.pluginId, 'burner/burn');
    assert.match(started.failed[0]?.message ?? '', /loading ran past its 15000 ms deadline/);
    assert.deepEqual(events, ['loaded calm/calm', 'failed burner/burn HG_PLUGIN_LOAD']);
    t.diagnostic(events.join('; '));
  } finally {
    await host.stop();
  }
});

test('loading: a module nested deeper than the loader accepts is refused before instrumenting', async (t) => {
  const dir = tempDir(t);
  const wasm = join(dir, 'too-deep.wasm');
  writeFileSync(wasm, nestedIfsGuest(10_000));
  const host = new Host(config(dir, { deep: [{ name: 'deep', wasm }] }));
  const codes: string[] = [];
  host.events.on('plugin:failed', (e) => codes.push(e.code));
  try {
    const started = await host.start();
    assert.deepEqual(codes, ['HG_PLUGIN_TOO_COMPLEX']);
    assert.match(started.failed[0]?.message ?? '', /nests blocks 10000 deep/);
  } finally {
    await host.stop();
  }
});
