/**
 * `hourglass check GUEST.wasm [--manifest FILE] [--run [--payload JSON]] [--json]`: a conformance
 * checker for guests. It does not re-implement the host's rules: it loads the guest into a
 * throwaway `Host` exactly as `hourglass start` would (trial-host.ts) — binary validation,
 * import/export rules, `schedules()` under the discovery phase, declaration parsing, job
 * contracts — and reports what happened, plus a static listing of the module's imports, exports
 * and memory (static-listing.ts). format.ts prints the report for people; `--json` prints it.
 *
 * Exit codes: 0 the guest is accepted; 1 it would be refused (or a check failed: a rejected
 * job contract, a failing `run()` under --run); 2 usage (unreadable file, bad --payload).
 */
import { basename, resolve } from 'node:path';
import { CAPABILITIES } from '../capabilities.ts';
import { DEFAULT_MAX_WASM_BYTES } from '../config/host-config.ts';
import { readJsonFile, readOperatorFile } from '../config/operator-file.ts';
import { errorMessage } from '../errors.ts';
import { sha256Hex } from '../fuel/cache.ts';
import {
  DEFAULT_LIMITS,
  loadManifest,
  MAX_MANIFEST_BYTES,
  type PluginManifest,
} from '../plugin/manifest.ts';
import { formatReport } from './format.ts';
import { listModule, loadFailurePhase } from './static-listing.ts';
import { CHECK_TENANT, tryInHost } from './trial-host.ts';
import type { CheckOptions, CheckReport, CheckResult, Finding } from './types.ts';

export type * from './types.ts';

function usage(message: string, json: boolean | undefined): CheckResult {
  const text = json
    ? JSON.stringify({
        verdict: 'usage',
        problems: [{ severity: 'error', phase: 'usage', message }],
      })
    : `hourglass check: ${message}`;
  return { exitCode: 2, text };
}

/** The manifest given (its problems as findings) and its raw fields, or one granting everything. */
function manifestFor(
  opts: CheckOptions,
  wasmPath: string,
  problems: Finding[],
): { manifest: PluginManifest | null; raw: Record<string, unknown> } {
  if (opts.manifest === undefined) {
    const name =
      basename(wasmPath, '.wasm')
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, '-')
        .replace(/^[^a-z0-9]+/, '')
        .slice(0, 64) || 'guest';
    return { manifest: null, raw: { name, version: '0.0.0', capabilities: [...CAPABILITIES] } };
  }
  let manifest: PluginManifest | null = null;
  try {
    manifest = loadManifest(resolve(opts.manifest));
    if (manifest.wasm !== wasmPath) {
      problems.push({
        severity: 'warning',
        phase: 'manifest',
        message: `the manifest names ${manifest.wasm}; checking ${wasmPath} instead`,
      });
    }
  } catch (err) {
    problems.push({ severity: 'error', phase: 'manifest', message: errorMessage(err) });
  }
  const r = readJsonFile(resolve(opts.manifest), MAX_MANIFEST_BYTES);
  const raw =
    r.ok && typeof r.value === 'object' && r.value !== null && !Array.isArray(r.value)
      ? (r.value as Record<string, unknown>)
      : {};
  return { manifest, raw };
}

export async function runCheck(opts: CheckOptions): Promise<CheckResult> {
  const now = opts.now ?? Date.now();
  const wasmPath = resolve(opts.wasm);
  // A regular file of bounded size (not /dev/zero, a FIFO, a huge file), as the host reads it.
  const read = readOperatorFile(wasmPath, DEFAULT_MAX_WASM_BYTES);
  if (!read.ok) return usage(`${opts.wasm}: ${read.problem}`, opts.json);
  const bytes = read.bytes;
  let payload: unknown = undefined;
  if (opts.payload !== undefined) {
    try {
      payload = JSON.parse(opts.payload);
    } catch (err) {
      return usage(`--payload is not valid JSON: ${errorMessage(err)}`, opts.json);
    }
  }
  const problems: Finding[] = [];
  // The manifest: the given one (its wasm replaced by GUEST.wasm), or one granting everything.
  const { manifest, raw } = manifestFor(opts, wasmPath, problems);
  const pluginId = `${CHECK_TENANT}/${typeof raw.name === 'string' ? raw.name : 'guest'}`;

  // Static listing (the verdict on it comes from the host's own loader below).
  const listing = listModule(bytes, manifest);
  problems.push(...listing.problems);

  const trial = await tryInHost({
    rawManifest: raw,
    wasmPath,
    pluginId,
    now,
    run: opts.run === true || opts.payload !== undefined,
    payload,
    limits: manifest?.limits ?? null,
  });
  let refused = false;
  if (trial.loadFailure) {
    const message = trial.loadFailure.message.replace(`plugin ${pluginId}: `, '');
    const phase = loadFailurePhase(trial.loadFailure.code, listing);
    // The static listing may already say the same thing; keep the host's words as the reason.
    const dup = problems.findIndex((p) => p.severity === 'error' && p.phase === phase);
    if (dup >= 0) problems.splice(dup, 1);
    problems.unshift({ severity: 'error', phase, message });
    refused = true;
  } else if (trial.crashed !== null) {
    problems.unshift({ severity: 'error', phase: 'binary', message: trial.crashed });
    refused = true;
  }
  problems.push(...trial.problems);

  const failed = problems.some((p) => p.severity === 'error');
  const report: CheckReport = {
    guest: wasmPath,
    manifest: opts.manifest === undefined ? null : resolve(opts.manifest),
    verdict: refused ? 'refused' : failed ? 'failed' : 'accepted',
    problems,
    binary: {
      bytes: bytes.length,
      sha256: sha256Hex(bytes),
      valid: listing.valid,
      memory: listing.memory,
      manifestMemoryPages: manifest?.limits.memoryPages ?? DEFAULT_LIMITS.memoryPages,
    },
    imports: listing.imports,
    exports: listing.exports,
    phases: trial.phases,
    contracts: trial.contracts,
    schedules: trial.schedules,
    run: trial.run,
  };
  return {
    exitCode: report.verdict === 'accepted' ? 0 : 1,
    text: opts.json ? JSON.stringify(report, null, 2) : formatReport(report, opts),
  };
}
