/**
 * How CLI commands reach the store while a host may be running. Reads go straight to the
 * SQLite file (WAL allows it). Changes go through the running host when there is one (queued
 * in `operator_commands`, applied by the host within its poll interval, and awaited here), so
 * the host's in-memory queue never disagrees with the store; with no host running, pause /
 * resume / delete are applied to the store directly.
 */
import { existsSync } from 'node:fs';
import { systemClock } from '../clock.ts';
import { hasNul } from '../config/operator-file.ts';
import { defaultHostConfig, loadHostConfig, type HostConfig } from '../config/host-config.ts';
import { HourglassError } from '../errors.ts';
import { ScheduleOps } from '../host/schedule-ops.ts';
import { holderDead, leaseStaleMs } from '../host/store-supervisor.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import type { HostLease, OperatorAction, Store } from '../store/types.ts';

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

/** The host holding the store's lease, if it is live (same rule as `Host.start()` uses). */
export function liveHost(store: Store, staleMs: number): HostLease | undefined {
  const lease = store.readLease();
  if (!lease) return undefined;
  if (Date.now() - lease.heartbeatAt > staleMs || holderDead(lease)) return undefined;
  return lease;
}

export interface CommandOutcome {
  readonly via: 'host' | 'store' | 'queued';
  readonly ok: boolean;
  readonly message: string;
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
  if (host || action === 'trigger') {
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
      if (cmd?.appliedAt != null && cmd.result) {
        const r = JSON.parse(cmd.result) as {
          ok?: string;
          error?: { code: string; message: string };
        };
        return r.error
          ? { via: 'host', ok: false, message: `${r.error.code}: ${r.error.message}` }
          : { via: 'host', ok: true, message: `${action} ${key}: ${r.ok}` };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return {
      via: 'host',
      ok: false,
      message: `the running host (pid ${host.pid}) did not apply the command within ${waitMs} ms`,
    };
  }
  // No host: change the store directly, through the same operations the host uses.
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
    ? { via: 'store', ok: true, message: `${action} ${key}: ${r.schedule.state}` }
    : { via: 'store', ok: false, message: `${r.code}: ${r.message}` };
}
