/**
 * How CLI commands reach the store while a host may be running. On PostgreSQL (config
 * `store.postgres` or `HOURGLASS_POSTGRES_URL`, unless `--store PATH` names a SQLite file) see
 * pg-access.ts. On SQLite: reads go straight to the file (WAL allows it). Changes go through
 * the running host when there is one (queued in `operator_commands`, applied by the host within
 * its poll interval, and awaited here), so the host's in-memory queue never disagrees with the
 * store; with no host running, pause / resume / delete and a plugin's `clear_state` are applied
 * to the store directly.
 */
import { existsSync } from 'node:fs';
import { systemClock } from '../clock.ts';
import { hasNul } from '../config/operator-file.ts';
import { defaultHostConfig, loadHostConfig, type HostConfig } from '../config/host-config.ts';
import { HourglassError } from '../errors.ts';
import { ScheduleOps } from '../host/schedule-ops.ts';
import { PluginStateBook } from '../host/plugin-state.ts';
import { holderDead, leaseStaleMs } from '../host/store-supervisor.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import type { HostLease, OperatorAction, Store } from '../store/types.ts';
import { hostOutcome, type CommandOutcome, type OperatorStore } from './operator-store.ts';
import { openPgOperatorStore } from './pg-access.ts';

export function resolveConfig(configPath: string | undefined): HostConfig {
  return configPath ? loadHostConfig(configPath) : defaultHostConfig();
}

export function openStore(config: HostConfig, storePath?: string): SqliteStore {
  const path = storePath ?? config.store.path;
  if (hasNul(path)) {
    throw new HourglassError('HG_CONFIG_INVALID', `--store: the path contains a NUL byte`);
  }
  if (!existsSync(path)) {
    throw new HourglassError(
      'HG_STORE',
      `no store at ${path} (start the host first, or pass --config / --store)`,
    );
  }
  return new SqliteStore(path, { mustExist: true });
}

/**
 * The store the CLI's store commands use: the SQLite file `--store` names, else PostgreSQL when
 * the config (or the environment) names one, else the config's SQLite file.
 */
export async function openOperatorStore(
  config: HostConfig,
  storePath?: string,
): Promise<OperatorStore> {
  if (storePath === undefined && config.store.postgres)
    return openPgOperatorStore(config.store.postgres);
  const store = openStore(config, storePath);
  return {
    listPlugins: async () => store.listPlugins(),
    listSchedules: async (q) => store.listSchedules(q),
    getSchedule: async (key) => store.getSchedule(key),
    listRuns: async (q) => store.listRuns(q),
    getRun: async (id) => store.getRun(id),
    listJobContracts: async (pluginId) => store.listJobContracts(pluginId),
    getPluginState: async (pluginId) => store.getPluginState(pluginId),
    applyCommand: (key, action, note) => applyCommand(store, config, key, action, note),
    close: async () => store.close(),
  };
}

/** The host holding the store's lease, if it is live (same rule as `Host.start()` uses). */
export function liveHost(store: Store, staleMs: number): HostLease | undefined {
  const lease = store.readLease();
  if (!lease) return undefined;
  if (Date.now() - lease.heartbeatAt > staleMs || holderDead(lease)) return undefined;
  return lease;
}

export async function applyCommand(
  store: SqliteStore,
  config: HostConfig,
  key: string,
  action: OperatorAction,
  note: string | null,
  waitMs = 10_000,
): Promise<CommandOutcome> {
  const host = liveHost(
    store,
    Math.max(config.commandPollMs * 4, leaseStaleMs(config.leaseHeartbeatMs)),
  );
  if (host || action === 'trigger' || action === 'backfill') {
    const id = store.enqueueCommand(key, action, note, Date.now());
    if (!host) {
      return {
        via: 'queued',
        ok: true,
        message: `no host is running; the ${action} of ${key} is queued for the next start`,
      };
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      const cmd = store.getCommand(id);
      if (cmd?.appliedAt != null && cmd.result) return hostOutcome(cmd.result, action, key);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return {
      via: 'host',
      ok: false,
      code: 'timed_out',
      message: `the running host (pid ${host.pid}) did not apply the command within ${waitMs} ms`,
    };
  }
  // No host: change the store directly, through the same operations the host uses.
  if (action === 'clear_state') {
    const book = new PluginStateBook({
      store,
      now: () => Date.now(),
      onError: () => undefined,
    });
    const cleared = book.clear(key, key.slice(0, Math.max(0, key.indexOf('/'))), note);
    return cleared === null
      ? {
          via: 'store',
          ok: false,
          code: 'not_found',
          message: `not_found: plugin '${key}' has no state`,
        }
      : {
          via: 'store',
          ok: true,
          value: `cleared ${cleared}`,
          message: `clear_state ${key}: cleared ${cleared}`,
        };
  }
  const scheduler = new Scheduler({
    store,
    clock: systemClock,
    execute: async () => undefined,
    maxRunsInFlight: () => 1,
  });
  scheduler.stop();
  const ops = new ScheduleOps({
    store,
    scheduler,
    clock: systemClock,
    quotas: () => {
      throw new Error('unused');
    },
  });
  const r =
    action === 'pause'
      ? ops.pauseKey(key, note)
      : action === 'resume'
        ? ops.resumeKey(key)
        : ops.deleteKey(key);
  return r.ok
    ? {
        via: 'store',
        ok: true,
        value: r.schedule.state,
        message: `${action} ${key}: ${r.schedule.state}`,
      }
    : { via: 'store', ok: false, code: r.code, message: `${r.code}: ${r.message}` };
}
