/**
 * Hostile cases of the store helper's area (issue 9, items 7, 8, 12, 13): plugin files that are
 * not regular files or are huge, manifests with a BOM, a NUL or a device as path, a second host
 * on a live store, and store writes that fail. The guest side is the AssemblyScript proxy; the
 * hostile part is what the operator's files point at, or what happens to the store.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HourglassError } from '../../src/errors.ts';
import { Host } from '../../src/host/host.ts';
import type { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { HostileCase, HostileContext } from './hostile-case.ts';
import { GUEST, decls } from './helpers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Rejects unless `p` fails with an HourglassError of `code`; returns it. */
async function failsWith(p: Promise<unknown>, code: string): Promise<HourglassError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HourglassError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

function fifo(dir: string, name: string): string {
  const p = join(dir, name);
  execFileSync('mkfifo', [p]);
  return p;
}

/** Loads a second plugin `name` of the case's tenant from a manifest written as `text`. */
function loadExtra(ctx: HostileContext, name: string, text: string | Buffer) {
  const file = join(ctx.dir, `${name}.json`);
  writeFileSync(file, text);
  return ctx.host.loadPlugin(ctx.tenant, {
    manifest: file,
    config: { schedules: decls({ id: 'b', every: '1h' }) },
  });
}

/** Waits for the newest run of `key` after `after` runs to finish. */
async function triggerKey(ctx: HostileContext, key: string): Promise<string> {
  const r = ctx.host.operate(key, 'trigger');
  assert.ok(r.ok, JSON.stringify(r));
  let status = 'running';
  await until(`a run of ${key}`, () => {
    status = ctx.host.store.listRuns({ scheduleKey: key, limit: 1 })[0]?.status ?? 'running';
    return status !== 'running';
  });
  return status;
}

const proxy = (...declarations: Record<string, unknown>[]) => ({ proxy: declarations });
const idle = proxy({ id: 'x', every: '1h' });
const BIG_OUTPUT = JSON.stringify({ result: 'x'.repeat(8_000) });

export const CASES: readonly HostileCase[] = [
  {
    name: 'wasm-dev-zero',
    item: '12',
    guest: idle,
    setup: () => ({ wasm: '/dev/zero' }),
    expect: { loadFails: 'HG_PLUGIN_LOAD' },
  },
  {
    name: 'wasm-fifo',
    item: '12',
    guest: idle,
    // Nothing ever writes to it: opening it for reading would wait forever.
    setup: (dir) => ({ wasm: fifo(dir, 'guest.wasm') }),
    expect: { loadFails: 'HG_PLUGIN_LOAD' },
  },
  {
    name: 'wasm-huge-sparse',
    item: '12',
    guest: idle,
    setup: (dir) => {
      const wasm = join(dir, 'huge.wasm');
      writeFileSync(wasm, '');
      truncateSync(wasm, 16 * 1024 ** 3); // 16 GiB of holes: refused by size, never read
      return { wasm };
    },
    expect: { loadFails: 'HG_PLUGIN_LOAD' },
  },
  {
    name: 'wasm-directory',
    item: '12',
    guest: idle,
    setup: (dir) => ({ wasm: dir }),
    expect: { loadFails: 'HG_PLUGIN_LOAD' },
  },
  {
    name: 'manifest-bom',
    item: '13',
    guest: idle,
    expect: { custom: true },
    async check(ctx) {
      const manifest = JSON.stringify({ name: 'bom', version: '1', wasm: GUEST.proxy });
      await loadExtra(ctx, 'bom', `\uFEFF${manifest}`);
      assert.equal(await triggerKey(ctx, `${ctx.tenant}/bom/b`), 'succeeded');
    },
  },
  {
    name: 'manifest-device-or-fifo',
    item: '12',
    guest: idle,
    expect: { custom: true },
    async check(ctx) {
      const started = Date.now();
      for (const manifest of ['/dev/zero', fifo(ctx.dir, 'manifest.json')]) {
        await failsWith(
          ctx.host.loadPlugin(ctx.tenant, { manifest, config: {} }),
          'HG_MANIFEST_INVALID',
        );
      }
      assert.ok(Date.now() - started < 5_000, 'refused at once');
    },
  },
  {
    name: 'manifest-nul-in-wasm-path',
    item: '13',
    guest: idle,
    expect: { custom: true },
    async check(ctx) {
      const text = JSON.stringify({ name: 'nul', version: '1', wasm: `${GUEST.proxy}\0.txt` });
      await failsWith(loadExtra(ctx, 'nul', text), 'HG_MANIFEST_INVALID');
    },
  },
  {
    name: 'second-host-on-live-store',
    item: '7',
    guest: idle,
    expect: { custom: true },
    async check(ctx) {
      const lease = ctx.host.store.readLease();
      const second = new Host(ctx.host.config);
      const err = await failsWith(second.start(), 'HG_STORE_LEASE');
      assert.match(err.message, new RegExp(`pid ${process.pid} on `));
      await second.stop();
      // The first host keeps its lease and its runs.
      assert.equal(ctx.host.store.readLease()?.owner, lease?.owner);
      assert.equal((await ctx.trigger('x')).status, 'succeeded');
      assert.equal(ctx.host.store.listRuns({ status: 'abandoned' }).length, 0);
    },
  },
  {
    name: 'store-write-failure',
    item: '8',
    guest: proxy(
      { id: 'big', every: '1h', payload: { output: BIG_OUTPUT } },
      { id: 'x', every: '1h' },
    ),
    quotas: { maxOutputBytes: 16_000 },
    expect: { custom: true },
    async check(ctx) {
      const store = ctx.host.store as SqliteStore;
      const seen: string[] = [];
      ctx.host.events.on('store:failed', (e) => seen.push(`failed ${e.code}`));
      ctx.host.events.on('store:recovered', () => seen.push('recovered'));
      // Right after another tenant's tick finished, so the outage falls between its ticks.
      await until('another tenant’s tick to finish', () =>
        ctx.host.store
          .listRuns({ limit: 20 })
          .some(
            (r) =>
              r.tenant !== ctx.tenant && r.finishedAt !== null && Date.now() - r.finishedAt < 100,
          ),
      );
      store.setMaxBytes(1); // the store file cannot grow: as a full disk
      try {
        ctx.host.operate(`${ctx.pluginId}/big`, 'trigger'); // its 8 KB result cannot be written
      } catch (err) {
        assert.equal((err as HourglassError).code, 'HG_STORE_WRITE');
      }
      await until('store:failed', () => seen.length > 0, 10_000);
      assert.equal(seen[0], 'failed HG_STORE_WRITE');
      assert.ok(ctx.host.scheduler.suspended, 'firing stopped');
      store.setMaxBytes(null); // space returns
      await until('store:recovered', () => seen.includes('recovered'), 10_000);
      assert.equal(ctx.host.storeHealth, 'healthy');
      assert.equal((await ctx.trigger('x')).status, 'succeeded');
    },
  },
];
