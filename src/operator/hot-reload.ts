/**
 * Hot reload of the config (SIGHUP, or `POST /v1/reload`): the config file is read again and
 * each plugin entry compared with what the host serves.
 * - A plugin whose manifest, module (its SHA-256) or config values changed is reloaded: the new
 *   version is loaded and discovered beside the old one, its declarations reconciled, and the
 *   old version's `cleanup()` runs after its in-flight runs finish (`Host.loadPlugin`). A
 *   version that fails leaves the old one serving, and says why.
 * - A new entry is loaded; an entry gone from the config is unloaded (its schedules stay in the
 *   store, and come back with the entry).
 * - Tenants added or removed, and changed quotas, capabilities or retention, are not applied to
 *   a running host (every loaded plugin's grants and caps derive from them, and the retention
 *   task takes the tenants at start): they are reported as needing a restart.
 * The report lists every plugin's outcome with its reconcile diff (schedules created, updated,
 * retired, unchanged). On a PostgreSQL cluster a host reloads the plugins of the tenants it
 * serves; send SIGHUP to every host.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { HostConfig, PluginEntry, TenantConfig } from '../config/host-config.ts';
import { errorMessage } from '../errors.ts';
import type { Host } from '../host/host.ts';
import type { ReconcileResult } from '../host/reconcile.ts';
import { loadManifest, type PluginManifest } from '../plugin/manifest.ts';

export interface PluginChange {
  readonly pluginId: string;
  readonly action: 'loaded' | 'reloaded' | 'unloaded' | 'unchanged' | 'failed';
  /** The version serving now (absent when unloaded, or when nothing could be read). */
  readonly version?: string;
  readonly reconcile?: ReconcileResult;
  /** Why a new version was refused (the old one serves on), or why the entry was unreadable. */
  readonly error?: string;
}

export interface ReloadReport {
  readonly plugins: readonly PluginChange[];
  /** Tenant-level changes this reload did not apply (restart the host for them). */
  readonly restartNeeded: readonly string[];
}

/** A manifest's fields that make a version (the file it came from aside). */
function versionOf(m: PluginManifest): string {
  return JSON.stringify({ ...m, file: undefined });
}

function sha256File(path: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return null;
  }
}

function tenantChanges(before: HostConfig, after: HostConfig): string[] {
  const notes: string[] = [];
  const old = new Map(before.tenants.map((t) => [t.id, t]));
  const key = (t: TenantConfig) => JSON.stringify([t.quotas, t.capabilities, t.retention]);
  for (const t of after.tenants) {
    const o = old.get(t.id);
    if (!o) notes.push(`tenant ${t.id} added`);
    else if (key(o) !== key(t))
      notes.push(`tenant ${t.id}: quotas, capabilities or retention changed`);
  }
  for (const t of before.tenants)
    if (!after.tenants.some((x) => x.id === t.id)) notes.push(`tenant ${t.id} removed`);
  return notes;
}

/**
 * Applies `next` to `host`, which runs `current`; see the head comment. Plugins are handled one
 * at a time (each reload waits for its plugin's runs in flight, not for other plugins').
 */
export async function reloadConfig(
  host: Host,
  current: HostConfig,
  next: HostConfig,
): Promise<ReloadReport> {
  const restartNeeded = tenantChanges(current, next);
  const changes: PluginChange[] = [];
  const wanted = new Set<string>();
  let lastDiff: ReconcileResult | undefined;
  const onLoaded = (e: { reconcile: ReconcileResult }) => (lastDiff = e.reconcile);
  host.events.on('plugin:loaded', onLoaded);
  try {
    for (const tenant of next.tenants) {
      const before = current.tenants.find((t) => t.id === tenant.id);
      // A tenant this host does not run (added, or served by another host of a cluster).
      if (!before) continue;
      for (const entry of tenant.plugins) {
        let manifest: PluginManifest;
        try {
          manifest = loadManifest(entry.manifest);
        } catch (err) {
          changes.push({
            pluginId: `${tenant.id}/(${entry.manifest})`,
            action: 'failed',
            error: errorMessage(err),
          });
          continue;
        }
        const pluginId = `${tenant.id}/${manifest.name}`;
        wanted.add(pluginId);
        const served = host.plugin(pluginId);
        if (!served && host.config.store.postgres && !isServedHere(host, tenant.id)) continue;
        const oldEntry = before.plugins.find((e) => e.manifest === served?.manifest.file);
        if (served && !changed(host, pluginId, served.manifest, manifest, oldEntry, entry)) {
          changes.push({ pluginId, action: 'unchanged', version: served.manifest.version });
          continue;
        }
        lastDiff = undefined;
        try {
          const loaded = await host.loadPlugin(tenant.id, entry, { newManifestFile: true });
          changes.push({
            pluginId,
            action: served ? 'reloaded' : 'loaded',
            version: loaded.manifest.version,
            ...(lastDiff ? { reconcile: lastDiff } : {}),
          });
        } catch (err) {
          changes.push({
            pluginId,
            action: 'failed',
            ...(served ? { version: served.manifest.version } : {}),
            error: errorMessage(err),
          });
        }
      }
    }
    for (const p of host.plugins) {
      // Replica shards (`<tenant>@<host>`) and removed tenants' plugins stay (restart needed).
      if (wanted.has(p.id) || !next.tenants.some((t) => t.id === p.tenant)) continue;
      await host.unloadPlugin(p.id);
      changes.push({ pluginId: p.id, action: 'unloaded' });
    }
  } finally {
    host.events.off('plugin:loaded', onLoaded);
  }
  return { plugins: changes, restartNeeded };
}

/** Whether this host serves the tenant now (it has any of its plugins loaded). */
function isServedHere(host: Host, tenant: string): boolean {
  return host.plugins.some((p) => p.tenant === tenant);
}

function changed(
  host: Host,
  pluginId: string,
  was: PluginManifest,
  now: PluginManifest,
  oldEntry: PluginEntry | undefined,
  entry: PluginEntry,
): boolean {
  if (was.file !== now.file || versionOf(was) !== versionOf(now)) return true;
  if (JSON.stringify(oldEntry?.config ?? null) !== JSON.stringify(entry.config)) return true;
  return host.store.getPlugin(pluginId)?.wasmSha256 !== sha256File(now.wasm);
}
