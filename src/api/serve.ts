/**
 * The API beside a running host (`hourglass start`): its reads on a store connection of its
 * own (the SQLite file, or a small PostgreSQL pool: the host's in-memory mirror keeps only
 * recent runs), its actions through the host (`OpenedHost.command`), ready while the host has
 * started, is not stopping and its store takes writes; `/metrics` from the host's events
 * (src/observability/metrics.ts), for operator tokens.
 */
import type { Logger } from 'pino';
import type { OpenedHost } from '../cluster/open-host.ts';
import type { HostConfig, PluginEntry } from '../config/host-config.ts';
import { errorMessage, isHourglassError } from '../errors.ts';
import { openPgOperatorStore } from '../operator/pg-access.ts';
import { OperatorService } from '../operator/service.ts';
import { openOperatorStore } from '../operator/store-access.ts';
import { PluginUploads } from '../operator/uploads.ts';
import type { ReloadReport } from '../operator/hot-reload.ts';
import { HostMetrics } from '../observability/metrics.ts';
import { startApiServer, type Readiness, type RunningApi } from './server.ts';

/** PostgreSQL connections the API's reads may hold at once. */
const API_PG_CONNECTIONS = 4;

/**
 * Why a plugin version did not load (an upload or a reload): its error code (`HG_PLUGIN_LOAD`
 * when it has none), and a message led by that code.
 */
function loadFailure(err: unknown): { code: string; message: string } {
  const code = isHourglassError(err) ? err.code : 'HG_PLUGIN_LOAD';
  return { code, message: `${code}: ${errorMessage(err)}` };
}

export async function serveApi(
  opened: OpenedHost,
  config: HostConfig,
  log: Logger,
  opts: {
    readonly version: string;
    /**
     * The config in service now, its uploaded versions applied (`withUploads`): a hot reload
     * replaces it. @defaultValue `config`
     */
    readonly configNow?: () => HostConfig;
    /** Reads the config again and applies it (`POST /v1/reload`); absent: not offered. */
    readonly reloadConfig?: () => Promise<ReloadReport>;
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
  /**
   * `r`, once what the host wrote before it is in the durable store the API reads: a pause
   * answered 200 is seen paused by the next GET (the host writes behind, src/store/write-behind.ts).
   */
  const durable = async <T>(r: T): Promise<T> => {
    await host.store.committed().catch(() => undefined);
    return r;
  };
  const uploads = new PluginUploads(config);
  const configNow = opts.configNow ?? (() => config);
  /**
   * Entries of plugins whose version was uploaded since the config in service was read (the
   * rest: the config's), with that config (`under`: whose config values the entry took). A
   * config read since supersedes them: it has the uploads applied (`withUploads`, so its entry
   * names the uploaded version) and its own config values, which win.
   */
  const uploaded = new Map<string, { readonly entry: PluginEntry; readonly under: HostConfig }>();
  const uploadedEntry = (pluginId: string, now: HostConfig): PluginEntry | undefined => {
    const u = uploaded.get(pluginId);
    if (u?.under === now) return u.entry;
    uploaded.delete(pluginId);
    return undefined;
  };
  const service = new OperatorService(store, configNow, {
    served: (id) => host.plugin(id) ?? null,
    command: async (key, action, note) => durable(await opened.command(key, action, note)),
    async upload(tenantId, name, manifest, wasm) {
      const now = configNow();
      const tenant = now.tenants.find((t) => t.id === tenantId);
      if (!tenant) return { ok: false, code: 'not_found', message: `no tenant ${tenantId}` };
      const staged = await uploads.stage(tenant, name, manifest, wasm);
      if (!staged.ok) return staged;
      const id = `${tenantId}/${name}`;
      const entry = { manifest: staged.manifest.file, config: staged.entry.config };
      try {
        const loaded = await host.loadPlugin(tenantId, entry, { newManifestFile: true });
        uploads.activate(tenantId, name, staged.dir);
        uploaded.set(id, { entry, under: now });
        return await durable({ ok: true, version: loaded.manifest.version });
      } catch (err) {
        uploads.discard(tenantId, name, staged.dir);
        return durable({ ok: false, code: 'refused', message: loadFailure(err).message });
      }
    },
    async reload(rec) {
      const served = host.plugin(rec.id);
      if (!served && config.store.postgres && rec.status === 'loaded')
        return {
          ok: false,
          code: 'elsewhere',
          message: `plugin ${rec.id} is served by another host of the cluster: reload it there`,
        };
      const manifest = served?.manifest.file ?? rec.manifestPath;
      const now = configNow();
      const entry =
        uploadedEntry(rec.id, now) ??
        now.tenants.find((t) => t.id === rec.tenant)?.plugins.find((e) => e.manifest === manifest);
      if (!entry)
        return { ok: false, code: 'not_found', message: `plugin ${rec.id} is not in the config` };
      try {
        const loaded = await host.loadPlugin(rec.tenant, entry);
        return await durable({ ok: true, version: loaded.manifest.version });
      } catch (err) {
        return durable({ ok: false, ...loadFailure(err) });
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
  const reload = opts.reloadConfig;
  try {
    running = await startApiServer({
      config: api,
      service,
      log,
      readiness,
      metrics,
      version: opts.version,
      uploadBodyLimit: Math.ceil((config.maxWasmBytes * 4) / 3) + 1_048_576,
      // Answered once the reload's writes are durable, like every other action (see `durable`).
      reloadConfig: reload ? async () => durable(await reload()) : null,
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
