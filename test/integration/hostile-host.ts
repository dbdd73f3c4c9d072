/**
 * Builds and drives the host of one hostile-corpus case (shared by `hostile-corpus.test.ts` and
 * `bench/hostile-lateness.bench.ts`): its own temporary store, the real worker pool, a
 * well-behaved tenant `good` (the `noop` guest, schedule `tick` every second, loaded first so it
 * is already firing while the hostile plugin loads) and the hostile tenant `hostile` with one
 * plugin built from the case.
 *
 * Decisions:
 * - The hostile tenant's `maxRunsInFlight` defaults to 1, below the pool size (2): a hostile
 *   guest can hold one worker, never both, so the good tenant always finds one free and its
 *   lateness measures the host, not a queue.
 * - Limits are the case's, over the manifest defaults (no corpus-wide limits: a case states
 *   what its outcome depends on).
 * - Triggering waits until the schedule is idle (hostile schedules also fire on their own), so a
 *   manual trigger never records a `skipped_overlap`, and then waits for that run's record by id.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CAPABILITIES } from '../../src/capabilities.ts';
import { parseHostConfig, type HostConfig } from '../../src/config/host-config.ts';
import { Host } from '../../src/host/host.ts';
import type { RunRecord } from '../../src/store/types.ts';
import { CORPUS_QUOTAS, type HostileCase, type HostileContext } from './hostile-case.ts';
import { GUEST } from './helpers.ts';

export const HOSTILE_TENANT = 'hostile';
export const GOOD_KEY = 'good/steady/tick';
/** Workers in each case's pool (the pool also keeps 2 booted spares). */
export const POOL_SIZE = 2;
/** Each case host's shutdown grace: `host.stop()` must return within this + 1 s. */
export const SHUTDOWN_GRACE_MS = 3_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** OS threads of this process (Node's own, libuv's and two per worker thread). */
export function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** A plugin name (manifest pattern `^[a-z0-9][a-z0-9_-]{0,63}$`) for a case name. */
export function pluginName(caseName: string): string {
  const n = caseName
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return (n || 'case').slice(0, 64);
}

export interface CaseHost {
  readonly host: Host;
  readonly config: HostConfig;
  readonly dir: string;
  readonly pluginId: string;
  /** `plugin:failed` events seen, by plugin id (its `HG_` code). */
  readonly failed: Map<string, string>;
  readonly ctx: HostileContext;
  /** Removes the temporary folder (after the host has stopped). */
  readonly dispose: () => void;
}

export interface CaseHostOptions {
  /** Extra runtime schedules (every 1 s, jittered over the second) for the good tenant. */
  readonly goodSchedules?: number;
  /** Leave the hostile tenant out (a baseline host). @defaultValue true */
  readonly hostile?: boolean;
}

/** Writes the manifests and config of a case and builds (does not start) its host. */
export function buildCaseHost(c: HostileCase, opts: CaseHostOptions = {}): CaseHost {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-hostile-'));
  const name = pluginName(c.name);
  const pluginId = `${HOSTILE_TENANT}/${name}`;
  let wasm = 'wat' in c.guest ? GUEST.wat(c.guest.wat) : GUEST.proxy;
  const custom = c.setup?.(dir);
  if (custom?.wasm !== undefined) wasm = custom.wasm;
  writeFileSync(
    join(dir, 'good.json'),
    JSON.stringify({ name: 'steady', version: '1', wasm: GUEST.wat('noop'), capabilities: [] }),
  );
  writeFileSync(
    join(dir, 'hostile.json'),
    JSON.stringify({
      name,
      version: '1',
      wasm,
      capabilities: c.capabilities ?? CAPABILITIES,
      ...(c.limits ? { limits: c.limits } : {}),
    }),
  );
  const config: Record<string, string> = { ...c.config };
  if ('proxy' in c.guest) {
    config.schedules = JSON.stringify(c.guest.proxy);
    if (c.guest.discoveryCalls) config.discovery_calls = JSON.stringify(c.guest.discoveryCalls);
  }
  const hostConfig = parseHostConfig(
    {
      store: { path: join(dir, 'h.db') },
      shutdownGraceMs: SHUTDOWN_GRACE_MS,
      sandbox: { mode: 'pool', workers: POOL_SIZE },
      tenants: [
        {
          id: 'good',
          quotas: { maxSchedules: 10_000, maxRunsInFlight: 64 },
          plugins: [{ manifest: 'good.json' }],
        },
        ...(opts.hostile === false
          ? []
          : [
              {
                id: HOSTILE_TENANT,
                quotas: { ...CORPUS_QUOTAS, ...c.quotas },
                plugins: [{ manifest: 'hostile.json', config }],
              },
            ]),
      ],
    },
    join(dir, 'config.json'),
    dir,
  );
  const host = new Host(hostConfig);
  const failed = new Map<string, string>();
  host.events.on('plugin:failed', (e) => {
    failed.set(e.pluginId, e.code);
    if (process.env.HG_DEBUG) console.log(`plugin:failed ${e.pluginId} ${e.code}: ${e.message}`);
  });
  if (opts.goodSchedules) {
    host.events.on('plugin:loaded', (e) => {
      if (e.pluginId !== 'good/steady') return;
      const caller = { pluginId: 'good/steady', tenant: 'good', phase: 'run' as const };
      for (let i = 0; i < (opts.goodSchedules ?? 0); i++)
        host.schedules.create(caller, { id: `g${i}`, every: '1s', jitter: '1s' });
    });
  }
  const runs = (localId: string): RunRecord[] =>
    host.store.listRuns({ scheduleKey: `${pluginId}/${localId}`, limit: 100_000 }).reverse();
  const ctx: HostileContext = {
    host,
    pluginId,
    tenant: HOSTILE_TENANT,
    dir,
    runs,
    failures: failed,
    trigger: (localId) => triggerAndWait(host, `${pluginId}/${localId}`),
  };
  return {
    host,
    config: hostConfig,
    dir,
    pluginId,
    failed,
    ctx,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** How long a triggered run may take to be recorded before the case fails. */
const RUN_WAIT_MS = 60_000;

/**
 * Triggers `key` once it is idle and resolves with the record of that manual run once it has
 * finished. Throws (naming the key) when the schedule is unknown or the run never finishes.
 */
export async function triggerAndWait(host: Host, key: string): Promise<RunRecord> {
  const until = Date.now() + RUN_WAIT_MS;
  const latestId = () => host.store.listRuns({ scheduleKey: key, limit: 1 })[0]?.id ?? 0;
  let before = 0;
  for (;;) {
    while (isBusy(host, key)) {
      if (Date.now() > until) throw new Error(`${key}: still busy after ${RUN_WAIT_MS} ms`);
      await sleep(10);
    }
    before = latestId();
    const r = host.operate(key, 'trigger');
    if (!r.ok) throw new Error(`cannot trigger ${key}: ${r.message}`);
    if (!('trigger' in r) || r.trigger === 'started') break;
    // Raced with a tick of its own (recorded skipped_overlap): look past that record, retry.
    if (Date.now() > until) throw new Error(`${key}: every trigger was skipped`);
    await sleep(10);
  }
  for (;;) {
    const mine = host.store
      .listRuns({ scheduleKey: key, limit: 50 })
      .filter((x) => x.id > before && x.trigger === 'manual');
    const done = mine.find((x) => x.status !== 'running');
    if (done) return done;
    if (Date.now() > until)
      throw new Error(
        `${key}: the triggered run was not recorded finished within ${RUN_WAIT_MS} ms (${mine.map((x) => x.status).join(',') || 'no record'})`,
      );
    await sleep(20);
  }
}

/**
 * Whether `key` has a run in flight or waiting: the scheduler's own answer where it has one,
 * else a `running` record (a tick waiting for a tenant slot may then be missed, and the trigger
 * is retried when it is recorded skipped).
 */
function isBusy(host: Host, key: string): boolean {
  const s = host.scheduler as unknown as { isBusy?: (key: string) => boolean };
  if (typeof s.isBusy === 'function') return s.isBusy.call(host.scheduler, key);
  return host.store.listRuns({ scheduleKey: key, status: 'running', limit: 1 }).length > 0;
}

/** Peak RSS sampler (every 50 ms while enabled). */
export function rssSampler(): { stop: () => number } {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  return {
    stop: () => {
      clearInterval(t);
      return Math.max(peak, process.memoryUsage.rss());
    },
  };
}
