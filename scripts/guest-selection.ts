/**
 * Which guests `scripts/build-guests.ts` builds: all of them (the default; `npm test` needs
 * every one), the ones named with `--only LANG/NAME[,...]`, or the ones a host configuration runs
 * (`--for-config`, optionally `--config FILE`; without a file, the embedded default that
 * `hourglass start` uses: `npm start` builds just the AssemblyScript poller that way, not the
 * Rust and Go guests).
 *
 * A guest is named by its label, `<lang>/<name>` (e.g. `assemblyscript/poller`, `wat/trap`),
 * derived from where its module is written: `guest-examples/<lang>/<name>/build/<name>.wasm`, or
 * `guest-examples/wat/build/<name>.wasm`. A configured plugin whose `.wasm` is not one of those
 * is not this script's to build; it is reported, not an error (the host reports it if missing).
 */
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultHostConfig, loadHostConfig } from '../src/config/host-config.ts';
import { loadManifest } from '../src/plugin/manifest.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const GUESTS_DIR = join(ROOT, 'guest-examples');

export interface BuildRequest {
  readonly force: boolean;
  /** Print the selected labels and build nothing. */
  readonly list: boolean;
  /** The labels to build, or null for every guest. */
  readonly only: ReadonlySet<string> | null;
  /** Configured modules this script does not build (for-config only). */
  readonly foreign: readonly string[];
}

/** The label of the guest whose output is `wasm`, or null when no guest of ours writes it. */
export function labelOfOutput(wasm: string): string | null {
  const parts = relative(GUESTS_DIR, resolve(wasm)).split(sep);
  const name = basename(wasm, '.wasm');
  if (parts.length === 3 && parts[0] === 'wat' && parts[1] === 'build') return `wat/${name}`;
  if (parts.length === 4 && parts[0] !== '..' && parts[1] === name && parts[2] === 'build') {
    return `${parts[0]}/${name}`;
  }
  return null;
}

/** The modules a host configuration runs (`file`, or the embedded default). */
export function configuredModules(file: string | undefined): string[] {
  const config = file === undefined ? defaultHostConfig() : loadHostConfig(file);
  return config.tenants.flatMap((t) => t.plugins.map((p) => loadManifest(p.manifest).wasm));
}

export function parseBuildRequest(argv: readonly string[]): BuildRequest {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      force: { type: 'boolean' },
      list: { type: 'boolean' },
      only: { type: 'string', multiple: true },
      'for-config': { type: 'boolean' },
      config: { type: 'string' },
    },
    strict: true,
  });
  const only = new Set((values.only ?? []).flatMap((v) => v.split(',')).filter((v) => v !== ''));
  const foreign: string[] = [];
  if (values['for-config']) {
    for (const wasm of configuredModules(values.config)) {
      const label = labelOfOutput(wasm);
      if (label === null) foreign.push(wasm);
      else only.add(label);
    }
  } else if (values.config !== undefined) {
    throw new Error('--config FILE goes with --for-config');
  }
  return {
    force: values.force === true,
    list: values.list === true,
    only: values['for-config'] || values.only !== undefined ? only : null,
    foreign,
  };
}

/** Whether any guest of `lang` is wanted (so that its toolchain is looked for at all). */
export function wantsLanguage(request: BuildRequest, lang: string): boolean {
  return request.only === null || [...request.only].some((l) => l.startsWith(`${lang}/`));
}
