/**
 * A host on the store its config names: the SQLite file (one host per store), or PostgreSQL,
 * where the host joins the cluster of every host on that database and serves the tenants whose
 * leases it holds (cluster.ts). What `hourglass start` and embedders call.
 */
import { randomUUID } from 'node:crypto';
import type { HostConfig } from '../config/host-config.ts';
import { errorMessage, HourglassError } from '../errors.ts';
import { Host, type HostOptions } from '../host/host.ts';
import { hostOutcome, type CommandOutcome } from '../operator/operator-store.ts';
import { sendPgCommand } from '../operator/pg-access.ts';
import { PgStore } from '../store/postgres/pg-store.ts';
import { tenantOf } from '../store/postgres/tables.ts';
import type { OperatorAction } from '../store/types.ts';
import { Cluster, type ClusterEvents, type ClusterOptions } from './cluster.ts';

export interface OpenedHost {
  readonly host: Host;
  /** Set on a PostgreSQL store. */
  readonly cluster: Cluster | null;
  /** Names the store in messages (the SQLite path, or the URL without its password). */
  readonly storeName: string;
  /**
   * Starts the host (and joins the cluster); what it loaded at once and what failed to load (on
   * the cluster: the plugins of its share of the tenants).
   */
  start(): Promise<{ loaded: string[]; failed: { pluginId: string; message: string }[] }>;
  /** Stops the host (and leaves the cluster, handing its tenants over at once). */
  stop(graceMs?: number): Promise<void>;
  /**
   * An operator command on any schedule of the cluster, from this host: applied here when this
   * host serves the schedule's tenant (or shard), else queued for the host that does and
   * answered by it (or reported queued when no host serves it), as the CLI does.
   */
  command(key: string, action: OperatorAction, note?: string | null): Promise<CommandOutcome>;
}

export async function openHost(
  config: HostConfig,
  opts: Omit<HostOptions, 'store' | 'clustered'> & {
    readonly cluster?: Omit<ClusterOptions, 'leaseTtlMs'>;
    readonly clusterEvents?: ClusterEvents;
  } = {},
): Promise<OpenedHost> {
  const pgc = config.store.postgres;
  if (!pgc) {
    const host = new Host(config, opts);
    return {
      host,
      cluster: null,
      storeName: config.store.path,
      start: () => host.start(),
      stop: (graceMs) => host.stop(graceMs),
      command: (key, action, note = null) =>
        Promise.resolve(hostOutcome(host.operateToResult(key, action, note), action, key)),
    };
  }
  const store = await PgStore.open({
    url: pgc.url,
    poolSize: pgc.poolSize,
    statementTimeoutMs: pgc.statementTimeoutMs,
    owner: randomUUID(),
  });
  let host: Host;
  try {
    host = new Host(config, { ...opts, store, clustered: true });
  } catch (err) {
    await store.close();
    throw err;
  }
  const cluster = new Cluster(
    host,
    store,
    pgc.url,
    {
      ...opts.cluster,
      leaseTtlMs: pgc.leaseTtlMs,
      onError:
        opts.cluster?.onError ??
        ((message, cause) => host.events.emit('host:error', { message, cause })),
    },
    opts.clusterEvents,
  );
  return {
    host,
    cluster,
    storeName: store.name,
    async start() {
      await host.start();
      // The plugins of the tenants taken while joining that failed to load, as a SQLite host's
      // start() reports them.
      const failed: { pluginId: string; message: string }[] = [];
      const onFailed = (e: { pluginId: string; message: string }) =>
        failed.push({ pluginId: e.pluginId, message: e.message });
      host.events.on('plugin:failed', onFailed);
      try {
        await cluster.start();
      } catch (err) {
        await cluster.stop(0).catch(() => undefined);
        throw new HourglassError('HG_STORE', `joining the cluster failed: ${errorMessage(err)}`, {
          cause: err,
        });
      } finally {
        host.events.off('plugin:failed', onFailed);
      }
      // In the config's order, as a SQLite host's start() (tenants are adopted in another).
      const at = new Map(config.tenants.map((t, i) => [t.id, i]));
      const rank = (pluginId: string) => at.get(pluginId.slice(0, pluginId.indexOf('/'))) ?? 0;
      const byConfig = (a: string, b: string) => rank(a) - rank(b);
      return {
        loaded: host.plugins.map((p) => p.id).sort(byConfig),
        failed: failed.sort((a, b) => byConfig(a.pluginId, b.pluginId)),
      };
    },
    stop: (graceMs) => cluster.stop(graceMs),
    async command(key, action, note = null) {
      if (store.owned.has(tenantOf(key)))
        return hostOutcome(host.operateToResult(key, action, note), action, key);
      const { command: _, ...outcome } = await sendPgCommand(store.pool, key, action, note);
      return outcome;
    },
  };
}
