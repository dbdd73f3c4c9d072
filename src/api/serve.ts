/**
 * The API beside a running host (`hourglass start`): its reads on a store connection of its
 * own (the SQLite file, or a small PostgreSQL pool: the host's in-memory mirror keeps only
 * recent runs), its actions through the host (`OpenedHost.command`), ready while the host has
 * started, is not stopping and its store takes writes; `/metrics` from the host's events
 * (src/observability/metrics.ts), for operator tokens.
 */
import type { Logger } from 'pino';
import type { OpenedHost } from '../cluster/open-host.ts';
import type { HostConfig } from '../config/host-config.ts';
import { errorMessage, isHourglassError } from '../errors.ts';
import { openPgOperatorStore } from '../operator/pg-access.ts';
import { OperatorService } from '../operator/service.ts';
import { openOperatorStore } from '../operator/store-access.ts';
import { HostMetrics } from '../observability/metrics.ts';
import { startApiServer, type Readiness, type RunningApi } from './server.ts';

/** PostgreSQL connections the API's reads may hold at once. */
const API_PG_CONNECTIONS = 4;

export async function serveApi(
  opened: OpenedHost,
  config: HostConfig,
  log: Logger,
  opts: {
    readonly version: string;
    /** Whether `opened.start()` has returned. */
    readonly started: () => boolean;
  },
): Promise<RunningApi | null> {
  const api = config.api;
  if (!api) return null;
  const store = config.store.postgres
    ? await openPgOperatorStore(config.store.postgres, { connections: API_PG_CONNECTIONS })
    : await openOperatorStore(config);
  const host = opened.host;
  const service = new OperatorService(store, config, {
    limitsOf: (id) => host.plugins.find((p) => p.id === id)?.limits ?? null,
    command: (key, action, note) => opened.command(key, action, note),
    async reload(rec) {
      const served = host.plugins.find((p) => p.id === rec.id);
      if (!served && config.store.postgres && rec.status === 'loaded')
        return {
          ok: false,
          code: 'elsewhere',
          message: `plugin ${rec.id} is served by another host of the cluster: reload it there`,
        };
      const manifest = served?.manifest.file ?? rec.manifestPath;
      const entry = config.tenants
        .find((t) => t.id === rec.tenant)
        ?.plugins.find((e) => e.manifest === manifest);
      if (!entry)
        return { ok: false, code: 'not_found', message: `plugin ${rec.id} is not in the config` };
      try {
        const loaded = await host.loadPlugin(rec.tenant, entry);
        return { ok: true, version: loaded.manifest.version };
      } catch (err) {
        const code = isHourglassError(err) ? err.code : 'HG_PLUGIN_LOAD';
        return { ok: false, code, message: `${code}: ${errorMessage(err)}` };
      }
    },
  });
  const readiness = (): Readiness => {
    if (host.stopping) return { ready: false, reason: 'stopping' };
    if (!opts.started()) return { ready: false, reason: 'starting' };
    const health = host.storeHealth;
    return health === 'healthy'
      ? { ready: true, reason: null }
      : { ready: false, reason: `store ${health}` };
  };
  // Made before the host starts, so its plugin loads are counted.
  const metrics = new HostMetrics(host);
  let running: RunningApi;
  try {
    running = await startApiServer({
      config: api,
      service,
      log,
      readiness,
      metrics,
      version: opts.version,
    });
  } catch (err) {
    metrics.close();
    await store.close();
    throw err;
  }
  return {
    url: running.url,
    async close() {
      try {
        await running.close();
      } finally {
        metrics.close();
        await store.close();
      }
    },
  };
}
