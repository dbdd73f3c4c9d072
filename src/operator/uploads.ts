/**
 * New plugin versions uploaded through the API (`.wasm` + manifest), kept beside the store:
 * `<store folder>/uploads/<tenant>/<plugin>/<sha256>/` holds a version (`plugin.wasm`,
 * `hourglass.json` naming it), and `<store folder>/uploads/<tenant>/<plugin>/current` names the
 * version in service. At start and on each config reload (`withUploads`) a config entry whose
 * plugin has a current upload loads that version instead of the config's manifest (with the
 * config values of the config just read), so an upload survives restarts and config reloads; an
 * operator takes it back by deleting the plugin's uploads folder.
 *
 * An upload is refused, before anything is in service, when:
 * - the plugin is not in the config (a tenant cannot add plugins; the operator does), or the
 *   manifest renames it;
 * - the manifest asks for a capability the tenant does not grant, or limits beyond the tenant's
 *   caps (the loader would quietly cap them; an upload says so instead);
 * - `hourglass check` refuses the module: it runs as a child process (the guest is untrusted,
 *   and check runs it in-thread; a child keeps it off the host's thread, bounded by a deadline),
 *   and its reasons are the answer's, word for word.
 * Then the version is loaded like a reload (checked beside the old one, which finishes its runs
 * in flight); if that fails the old version serves on and `current` is not moved.
 *
 * One host per store only (SQLite): on a PostgreSQL cluster the other hosts would not see the
 * files, so uploads are refused there (a shared plugin store is future work).
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HostConfig, PluginEntry, TenantConfig } from '../config/host-config.ts';
import { PROJECT_ROOT } from '../config/host-config.ts';
import { errorMessage } from '../errors.ts';
import { loadManifest, parseManifest, type PluginManifest } from '../plugin/manifest.ts';

/** How long `hourglass check` may take on an upload before it is refused. */
const CHECK_TIMEOUT_MS = 60_000;

export type UploadOutcome =
  | {
      readonly ok: true;
      readonly manifest: PluginManifest;
      readonly dir: string;
      /** The plugin's entry in the config (its config values apply to the new version too). */
      readonly entry: PluginEntry;
    }
  | {
      readonly ok: false;
      readonly code: 'not_found' | 'refused' | 'unsupported';
      readonly message: string;
      /** `hourglass check`'s findings, when it refused the module. */
      readonly problems?: readonly { severity: string; phase: string; message: string }[];
    };

export function uploadsDir(config: HostConfig): string | null {
  if (config.store.postgres || config.store.path === ':memory:') return null;
  return join(dirname(config.store.path), 'uploads');
}

function pluginDir(root: string, tenant: string, name: string): string {
  return join(root, tenant, name);
}

/** The manifest of the plugin's version in service, if one was uploaded. */
function currentUpload(root: string, tenant: string, name: string): string | null {
  const pointer = join(pluginDir(root, tenant, name), 'current');
  if (!existsSync(pointer)) return null;
  const manifest = join(pluginDir(root, tenant, name), readFileSync(pointer, 'utf8').trim());
  return existsSync(manifest) ? manifest : null;
}

/** The plugin's name as its configured manifest says (null when it cannot be read). */
function nameOf(entry: PluginEntry): string | null {
  try {
    return loadManifest(entry.manifest).name;
  } catch {
    return null;
  }
}

/** The config with every plugin that has a current upload loading that version. */
export function withUploads(config: HostConfig): HostConfig {
  const root = uploadsDir(config);
  if (!root || !existsSync(root)) return config;
  return Object.freeze({
    ...config,
    tenants: Object.freeze(
      config.tenants.map((t) =>
        Object.freeze({
          ...t,
          plugins: Object.freeze(
            t.plugins.map((e) => {
              const name = nameOf(e);
              const uploaded = name === null ? null : currentUpload(root, t.id, name);
              return uploaded ? Object.freeze({ ...e, manifest: uploaded }) : e;
            }),
          ),
        }),
      ),
    ),
  });
}

interface CheckReportLike {
  readonly verdict: string;
  readonly problems: readonly { severity: string; phase: string; message: string }[];
}

/** `hourglass check --json` on the staged version, in a child process. */
function check(wasm: string, manifest: string): Promise<CheckReportLike> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'hourglass.js'), 'check', wasm, '--manifest', manifest, '--json'],
      { timeout: CHECK_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout) => {
        try {
          const report = JSON.parse(stdout) as CheckReportLike;
          if (typeof report.verdict === 'string' && Array.isArray(report.problems))
            return resolve(report);
        } catch {
          // not a report: the check itself failed
        }
        reject(new Error(err ? errorMessage(err) : 'hourglass check printed no report'));
      },
    );
  });
}

export class PluginUploads {
  readonly #config: HostConfig;
  readonly #root: string | null;

  constructor(config: HostConfig) {
    this.#config = config;
    this.#root = uploadsDir(config);
  }

  /**
   * Checks and stages a new version of `<tenant>/<name>` (see the head comment); the caller
   * loads it (`entry`) and then calls `activate`, or `discard` when the load fails.
   */
  async stage(
    tenant: TenantConfig,
    name: string,
    rawManifest: Record<string, unknown>,
    wasm: Buffer,
  ): Promise<UploadOutcome> {
    const root = this.#root;
    if (!root)
      return {
        ok: false,
        code: 'unsupported',
        message:
          'uploads need a store folder of this host (SQLite); on a PostgreSQL cluster, change the manifest on every host and reload',
      };
    // Reads the tenant's manifests (tens of µs each, nothing beside the check's child process
    // below). Matching the host's loaded plugins by manifest path would not do: a plugin that
    // failed to load (which an upload may mend) is not among them, and after an upload the
    // loaded manifest is the uploaded one, not the path the config entry names.
    const entry = tenant.plugins.find((e) => nameOf(e) === name);
    if (!entry) return { ok: false, code: 'not_found', message: `no plugin ${tenant.id}/${name}` };
    if (wasm.length > this.#config.maxWasmBytes)
      return {
        ok: false,
        code: 'refused',
        message: `the module is ${wasm.length} bytes; this host takes at most ${this.#config.maxWasmBytes}`,
      };
    const sha = createHash('sha256').update(wasm).digest('hex');
    const dir = join(pluginDir(root, tenant.id, name), sha);
    const manifestFile = join(dir, 'hourglass.json');
    let manifest: PluginManifest;
    try {
      manifest = parseManifest({ ...rawManifest, wasm: 'plugin.wasm' }, manifestFile);
    } catch (err) {
      return { ok: false, code: 'refused', message: errorMessage(err) };
    }
    const refusal = this.#withinTenant(tenant, name, manifest);
    if (refusal) return { ok: false, code: 'refused', message: refusal };
    // Stage in a fresh folder, then move it into place (a version is whole or absent).
    const staging = join(root, '.staging', randomUUID());
    mkdirSync(staging, { recursive: true });
    try {
      writeFileSync(join(staging, 'plugin.wasm'), wasm);
      writeFileSync(
        join(staging, 'hourglass.json'),
        JSON.stringify({ ...rawManifest, wasm: 'plugin.wasm' }, null, 2),
      );
      let report: CheckReportLike;
      try {
        report = await check(join(staging, 'plugin.wasm'), join(staging, 'hourglass.json'));
      } catch (err) {
        return {
          ok: false,
          code: 'refused',
          message: `hourglass check failed: ${errorMessage(err)}`,
        };
      }
      if (report.verdict !== 'accepted') {
        const errors = report.problems.filter((p) => p.severity === 'error');
        return {
          ok: false,
          code: 'refused',
          message: `hourglass check ${report.verdict} the module: ${errors.map((p) => `${p.phase}: ${p.message}`).join('; ')}`,
          problems: errors,
        };
      }
      mkdirSync(dirname(dir), { recursive: true });
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    return { ok: true, manifest, dir, entry };
  }

  /** Makes a loaded version the one a restart loads. */
  activate(tenant: string, name: string, versionDir: string): void {
    const root = this.#root;
    if (!root) return;
    const pointer = join(pluginDir(root, tenant, name), 'current');
    const tmp = `${pointer}.${randomUUID()}`;
    writeFileSync(
      tmp,
      `${join(versionDir.slice(pluginDir(root, tenant, name).length + 1), 'hourglass.json')}\n`,
    );
    renameSync(tmp, pointer);
  }

  /** Removes a staged version that did not load (unless it is the one in service). */
  discard(tenant: string, name: string, versionDir: string): void {
    const root = this.#root;
    if (!root) return;
    if (currentUpload(root, tenant, name) === join(versionDir, 'hourglass.json')) return;
    rmSync(versionDir, { recursive: true, force: true });
  }

  #withinTenant(tenant: TenantConfig, name: string, m: PluginManifest): string | null {
    if (m.name !== name) return `the manifest names plugin '${m.name}', not '${name}'`;
    const denied = m.capabilities.filter((c) => !tenant.capabilities.includes(c));
    if (denied.length)
      return `the manifest asks for ${denied.join(', ')}, which tenant '${tenant.id}' does not grant`;
    const q = tenant.quotas;
    const over: string[] = [];
    if (m.limits.memoryPages > q.maxMemoryPages)
      over.push(`memoryPages ${m.limits.memoryPages} > ${q.maxMemoryPages}`);
    for (const phase of ['discovery', 'run', 'cleanup'] as const)
      if (m.limits.fuel[phase] > q.maxFuelPerCall)
        over.push(`fuel.${phase} ${m.limits.fuel[phase]} > ${q.maxFuelPerCall}`);
    if (m.limits.varBytes > q.maxVarBytes)
      over.push(`varBytes ${m.limits.varBytes} > ${q.maxVarBytes}`);
    if (m.limits.tableElements > q.maxTableElements)
      over.push(`tableElements ${m.limits.tableElements} > ${q.maxTableElements}`);
    if (m.limits.logLines > q.maxLogLines)
      over.push(`logLines ${m.limits.logLines} > ${q.maxLogLines}`);
    return over.length ? `limits beyond tenant '${tenant.id}''s caps: ${over.join(', ')}` : null;
  }
}
