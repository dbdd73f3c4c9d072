/**
 * Shared set-up for integration tests: real SQLite files or a real PostgreSQL database, real
 * Extism, real compiled guests.
 *
 * Both stores. A test that states a store-agnostic promise loops over `STORES` and takes its
 * directory from `storeDir(t, store)`: on 'postgres' that directory is tied to a fresh database
 * (test/support/postgres.ts), so `makeConfig` / `proxyConfig` put `store.postgres` in the config,
 * and `startHost` opens the host through `openHost` (a one-host cluster that owns every tenant).
 * Stop it with the `stop()` `startHost` returns (on PostgreSQL it also leaves the cluster);
 * `crash()` ends it without a stop.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Capability } from '../../src/capabilities.ts';
import { CAPABILITIES } from '../../src/capabilities.ts';
import { ManualClock, type Clock } from '../../src/clock.ts';
import {
  parseHostConfig,
  PROJECT_ROOT,
  type HostConfig,
  type TenantQuotas,
} from '../../src/config/host-config.ts';
import { openHost } from '../../src/cluster/open-host.ts';
import { Host, type HostOptions } from '../../src/host/host.ts';
import { importRows } from '../../src/store/postgres/mirror.ts';
import { PG_TYPES } from '../../src/store/postgres/pg-store.ts';
import {
  COMMANDS,
  CONTRACTS,
  PLUGIN_STATE,
  PLUGINS,
  RUNS,
  SCHEDULES,
} from '../../src/store/postgres/tables.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { RunRecord } from '../../src/store/types.ts';
import { freshDatabase } from '../support/postgres.ts';

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
  /** The tenant's `retention` section, as in the config file. */
  readonly retention?: Record<string, unknown>;
  readonly plugins: readonly (
    PluginSpec | { readonly manifest: string; readonly config?: Record<string, string> }
  )[];
}

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export type StoreKind = 'sqlite' | 'postgres';
export const STORES: readonly StoreKind[] = ['sqlite', 'postgres'];

/** The PostgreSQL settings of directories made by `storeDir(t, 'postgres')`. */
const pgOfDir = new Map<string, { url: string; leaseTtlMs?: number }>();

/**
 * A temporary directory for a test's manifests and store; on 'postgres' also a fresh database
 * (dropped after the test), which every config made in this directory names as its store.
 * `cluster.leaseTtlMs`: the lease TTL (for tests that kill a host and wait for its lease).
 */
export async function storeDir(
  t: { after(fn: () => void | Promise<void>): void },
  kind: StoreKind,
  cluster: { leaseTtlMs?: number } = {},
): Promise<string> {
  const dir = tempDir(t);
  if (kind === 'postgres') {
    const db = await freshDatabase(t);
    pgOfDir.set(dir, { url: db.url, ...cluster });
    t.after(() => void pgOfDir.delete(dir));
  }
  return dir;
}

/** The config file's `store` for a host whose store is in `dir` (see `storeDir`). */
export function storeConfigOf(dir: string): { path: string; postgres?: object } {
  const postgres = pgOfDir.get(dir);
  return { path: join(dir, 'hourglass.db'), ...(postgres ? { postgres } : {}) };
}

/**
 * Writes manifests for the plugins and returns a parsed host config with its store in `dir`;
 * `extra`: more top-level config fields (e.g. `api`).
 */
export function makeConfig(
  dir: string,
  tenants: readonly TenantSpec[],
  extra: Record<string, unknown> = {},
): HostConfig {
  const raw = {
    ...extra,
    store: storeConfigOf(dir),
    tenants: tenants.map((t) => ({
      id: t.id,
      ...(t.quotas ? { quotas: t.quotas } : {}),
      ...(t.capabilities ? { capabilities: t.capabilities } : {}),
      ...(t.retention ? { retention: t.retention } : {}),
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
  return proxyTenantConfig(dir, {}, ...declarations);
}

/**
 * `proxyConfig` with more: host calls the guest makes during discovery (`calls`, e.g.
 * `jobs_register`), the tenant's `quotas`, and more top-level config fields (`extra`).
 */
export function proxyTenantConfig(
  dir: string,
  o: {
    readonly calls?: readonly { fn: string; args: unknown }[];
    readonly quotas?: Partial<TenantQuotas>;
    readonly extra?: Record<string, unknown>;
  },
  ...declarations: Record<string, unknown>[]
): HostConfig {
  const config: Record<string, string> = { schedules: decls(...declarations) };
  if (o.calls) config.discovery_calls = JSON.stringify(o.calls);
  return makeConfig(
    dir,
    [
      {
        id: 't',
        ...(o.quotas ? { quotas: o.quotas } : {}),
        plugins: [{ name: 'p', wasm: GUEST.proxy, config }],
      },
    ],
    o.extra,
  );
}

/** Schedules for the proxy guest's `schedules()` (Extism config value). */
export function decls(...declarations: Record<string, unknown>[]): string {
  return JSON.stringify(declarations);
}

export interface StartedHost {
  readonly host: Host;
  readonly loaded: string[];
  readonly failed: { pluginId: string; message: string }[];
  /** Stops the host (on PostgreSQL: and leaves the cluster, releasing its leases). */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a host on the config's store: SQLite, or (with `store.postgres`) through `openHost`,
 * which joins the cluster and resolves once this host owns every tenant (it is the only one).
 */
export async function startHost(
  config: HostConfig,
  clock: Clock,
  opts: Omit<HostOptions, 'clock'> = {},
  /** Called with the host before it starts (to listen to its events). */
  before?: (host: Host) => void,
): Promise<StartedHost> {
  if (config.store.postgres) {
    const { store, clustered, ...rest } = opts;
    if (store || clustered) throw new Error('startHost: on PostgreSQL, openHost makes the store');
    const opened = await openHost(config, { clock, ...rest });
    before?.(opened.host);
    const started = await opened.start();
    return { host: opened.host, ...started, stop: (graceMs) => opened.stop(graceMs) };
  }
  const host = new Host(config, { clock, ...opts });
  before?.(host);
  const started = await host.start();
  return { host, ...started, stop: (graceMs) => host.stop(graceMs) };
}

/**
 * The host dies: no stop(), no cleanup of its own; the scheduler stops and the store is closed
 * (as by a crash: the SQLite file keeps what was committed; PostgreSQL what was flushed, which
 * closing does for what the host had written). On PostgreSQL the dead host's tenant leases are
 * then released (what their expiry does after a real crash, without waiting for the TTL; see
 * sigkill.test.ts for the expiry), leaving its runs `running` for the next owner to abandon.
 */
export async function crash(h: StartedHost): Promise<void> {
  h.host.scheduler.stop();
  await h.host.store.close();
  if (h.host.config.store.postgres) await h.stop(0).catch(() => undefined);
}

/**
 * Lets what a clock step started reach the guest. A guest is called only once its run's row is
 * committed: at once on SQLite (the group commits within the turn), after a round trip on
 * PostgreSQL (a flush); so wait for the store's writes and a turn of the loop, a few times.
 */
export async function turns(host: Host, rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await host.store.committed();
    await new Promise((resolve) => setImmediate(resolve));
  }
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

/** The status of run `id` in the config's store, read from outside the host (what it wrote). */
export async function storedRunStatus(config: HostConfig, id: number): Promise<string | undefined> {
  const store = await storedCopy(config);
  try {
    return store.getRun(id)?.status;
  } finally {
    store.close();
  }
}

/**
 * What the config's store holds, read from outside any host (what the hosts wrote): the SQLite
 * file, or a copy of every row in PostgreSQL in an in-memory SQLite store (the same copy-in the
 * PostgreSQL store's mirror makes when it adopts a tenant, without its history limit). Close it.
 */
export async function storedCopy(config: HostConfig): Promise<SqliteStore> {
  const pgc = config.store.postgres;
  if (!pgc) return new SqliteStore(config.store.path);
  const copy = new SqliteStore(':memory:');
  const client = new pg.Client({ connectionString: pgc.url, types: PG_TYPES });
  await client.connect();
  try {
    for (const spec of [PLUGINS, CONTRACTS, PLUGIN_STATE, SCHEDULES, RUNS, COMMANDS]) {
      const rows = (await client.query(`SELECT * FROM ${spec.name}`)).rows;
      importRows(copy.mirrorDatabase, spec, rows);
    }
    return copy;
  } catch (err) {
    copy.close();
    throw err;
  } finally {
    await client.end();
  }
}

export { ManualClock };

/** The JSON lines (pino) of `hourglass start`'s output, parsed; other text is skipped. */
export function logLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the chunk being read
    }
  }
  return lines;
}

/** The 'run finished' log lines of schedule `key` with `status`. */
export function runsLogged(
  output: string,
  key: string,
  status = 'succeeded',
): Record<string, unknown>[] {
  return logLines(output).filter(
    (l) => l.msg === 'run finished' && l.schedule === key && l.status === status,
  );
}
