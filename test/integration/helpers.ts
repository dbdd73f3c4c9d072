/** Shared set-up for integration tests: real SQLite files, real Extism, real compiled guests. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Capability } from '../../src/capabilities.ts';
import { CAPABILITIES } from '../../src/capabilities.ts';
import { ManualClock } from '../../src/clock.ts';
import {
  parseHostConfig,
  PROJECT_ROOT,
  type HostConfig,
  type TenantQuotas,
} from '../../src/config/host-config.ts';
import { Host, type HostOptions } from '../../src/host/host.ts';
import type { RunRecord } from '../../src/store/types.ts';

export const GUEST = {
  poller: resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/poller/build/poller.wasm'),
  proxy: resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/proxy/build/proxy.wasm'),
  wat: (name: string) => resolve(PROJECT_ROOT, `guest-examples/wat/build/${name}.wasm`),
};
export const POLLER_MANIFEST = resolve(
  PROJECT_ROOT,
  'guest-examples/assemblyscript/poller/hourglass.json',
);

/** 2026-01-15T10:00:00Z, a Thursday in winter (Europe/Berlin = UTC+1). */
export const T0 = Date.parse('2026-01-15T10:00:00Z');

export interface PluginSpec {
  readonly name: string;
  readonly wasm: string;
  readonly capabilities?: readonly Capability[];
  /** Extism config: for the proxy guest, `schedules` (JSON text) and `discovery_calls`. */
  readonly config?: Record<string, string>;
}

export interface TenantSpec {
  readonly id: string;
  readonly quotas?: Partial<TenantQuotas>;
  readonly capabilities?: readonly Capability[];
  readonly plugins: readonly (
    PluginSpec | { readonly manifest: string; readonly config?: Record<string, string> }
  )[];
}

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes manifests for the plugins and returns a parsed host config with its store in `dir`. */
export function makeConfig(dir: string, tenants: readonly TenantSpec[]): HostConfig {
  const raw = {
    store: { path: join(dir, 'hourglass.db') },
    tenants: tenants.map((t) => ({
      id: t.id,
      ...(t.quotas ? { quotas: t.quotas } : {}),
      ...(t.capabilities ? { capabilities: t.capabilities } : {}),
      plugins: t.plugins.map((p) => {
        if ('manifest' in p)
          return { manifest: p.manifest, ...(p.config ? { config: p.config } : {}) };
        const file = join(dir, `${t.id}-${p.name}.json`);
        writeFileSync(
          file,
          JSON.stringify({
            name: p.name,
            version: '1.0.0',
            wasm: p.wasm,
            capabilities: p.capabilities ?? CAPABILITIES,
          }),
        );
        return { manifest: file, ...(p.config ? { config: p.config } : {}) };
      }),
    })),
  };
  return parseHostConfig(raw, join(dir, 'config.json'), dir);
}

/** Tenant `t` running the proxy guest as plugin `p`, declaring `declarations`. */
export function proxyConfig(dir: string, ...declarations: Record<string, unknown>[]): HostConfig {
  return makeConfig(dir, [
    {
      id: 't',
      plugins: [{ name: 'p', wasm: GUEST.proxy, config: { schedules: decls(...declarations) } }],
    },
  ]);
}

/** Schedules for the proxy guest's `schedules()` (Extism config value). */
export function decls(...declarations: Record<string, unknown>[]): string {
  return JSON.stringify(declarations);
}

export async function startHost(
  config: HostConfig,
  clock: ManualClock,
  opts: Omit<HostOptions, 'clock'> = {},
) {
  const host = new Host(config, { clock, ...opts });
  const started = await host.start();
  return { host, ...started };
}

/** Advances virtual time in steps, letting every run started on the way finish. */
export async function advance(
  host: Host,
  clock: ManualClock,
  ms: number,
  step = 1000,
): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.advance(Math.min(step, ms - done));
    await host.scheduler.settle();
  }
}

export function runsOf(host: Host, key: string): RunRecord[] {
  return host.store.listRuns({ scheduleKey: key, limit: 10_000 }).reverse();
}

/** Triggers a schedule now, waits for its run, and returns the run's record and parsed result. */
export async function triggerRun(
  host: Host,
  key: string,
): Promise<{ run: RunRecord; result: ProxyResult }> {
  const r = host.operate(key, 'trigger');
  if (!r.ok) throw new Error(`cannot trigger ${key}: ${r.message}`);
  await host.scheduler.settle();
  const run = host.store.listRuns({ scheduleKey: key, limit: 1 })[0];
  if (!run) throw new Error(`no run for ${key}`);
  return { run, result: (run.result ? JSON.parse(run.result) : null) as ProxyResult };
}

export interface ProxyResult {
  responses: { ok?: unknown; error?: { code: string; message: string } }[];
  seenCursor: unknown;
  scheduleId: string;
  trigger: string;
  catchUp: boolean;
}

export { ManualClock };
