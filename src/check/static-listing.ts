/**
 * The static half of `hourglass check`: the module's imports, exports and memory, each import
 * given its role in the guest ABI, and the problems the host's loader would refuse it for
 * (unknown or non-function imports, imports of the wrong type, exports under the reserved
 * prefix, missing required exports), as typed findings. The verdict still comes from the host's
 * own loader (trial-host.ts); these findings also say which part of the check a load failure
 * belongs to, so that no error message is ever parsed.
 */
import { HOST_FUNCTIONS, isHostFunction } from '../capabilities.ts';
import type { PluginManifest } from '../plugin/manifest.ts';
import {
  EXTISM_KERNEL,
  GUEST_EXPORTS,
  HOST_NAMESPACE,
  REQUIRED_EXPORTS,
} from '../sandbox/guest-module.ts';
import { isKernelFunction } from '../sandbox/kernel/extism-kernel.ts';
import {
  ABORT_SIGNATURE,
  HOST_FUNCTION_SIGNATURE,
  KERNEL_SIGNATURES,
  signatureMismatch,
} from '../sandbox/kernel/import-signatures.ts';
import { WASI_SIGNATURES } from '../sandbox/kernel/wasi-abi.ts';
import { RESERVED_EXPORT_PREFIX } from '../sandbox/return-code.ts';
import type { CheckReport, Finding, ImportRole } from './types.ts';
import { memoryLimits, type MemoryLimits } from './wasm-info.ts';

const WASI = 'wasi_snapshot_preview1';

export interface StaticListing {
  readonly valid: boolean;
  readonly imports: CheckReport['imports'][number][];
  readonly exports: CheckReport['exports'][number][];
  readonly memory: MemoryLimits | null;
  readonly problems: Finding[];
}

function importRole(module: string, name: string): { role: ImportRole; note: string } {
  if (module === EXTISM_KERNEL) return { role: 'extism_kernel', note: 'Extism kernel' };
  if (module === HOST_NAMESPACE) {
    return isHostFunction(name)
      ? { role: 'host_function', note: 'Hourglass host function' }
      : {
          role: 'unknown',
          note: `unknown Hourglass host function (known: ${HOST_FUNCTIONS.join(', ')})`,
        };
  }
  if (module === 'env' && name === 'abort') return { role: 'abort', note: 'AssemblyScript abort' };
  if (module === WASI) return { role: 'wasi', note: 'WASI preview 1' };
  return { role: 'unknown', note: 'not part of the guest ABI' };
}

/** The type Hourglass implements an import with (null: not one whose type it checks). */
function expectedSignature(module: string, name: string): string | null {
  if (module === EXTISM_KERNEL && isKernelFunction(name)) return KERNEL_SIGNATURES[name];
  if (module === HOST_NAMESPACE) return HOST_FUNCTION_SIGNATURE;
  if (module === 'env' && name === 'abort') return ABORT_SIGNATURE;
  if (module === WASI) return WASI_SIGNATURES[name] ?? null;
  return null;
}

/** Lists `bytes`; `manifest` (when given) for imports of capabilities it does not ask for. */
export function listModule(
  bytes: Uint8Array<ArrayBuffer>,
  manifest: PluginManifest | null,
): StaticListing {
  const problems: Finding[] = [];
  const imports: StaticListing['imports'] = [];
  const exports: StaticListing['exports'] = [];
  if (!WebAssembly.validate(bytes)) {
    problems.push({
      severity: 'error',
      phase: 'binary',
      message: 'not a valid WebAssembly module',
    });
    return { valid: false, imports, exports, memory: null, problems };
  }
  const mod = new WebAssembly.Module(bytes);
  for (const imp of WebAssembly.Module.imports(mod)) {
    const { role, note } = importRole(imp.module, imp.name);
    const fullName = `${imp.module}.${imp.name}`;
    imports.push({ name: fullName, kind: imp.kind, role, note });
    if (role === 'unknown' || imp.kind !== 'function') {
      problems.push({
        severity: 'error',
        phase: 'imports',
        message: `imports ${imp.kind} '${fullName}': ${imp.kind !== 'function' ? 'only functions can be imported' : note}`,
      });
    } else if (
      role === 'host_function' &&
      manifest &&
      !manifest.capabilities.some((c) => c === imp.name)
    ) {
      problems.push({
        severity: 'warning',
        phase: 'imports',
        message: `imports '${imp.name}' but the manifest does not ask for it: calls will answer 'capability'`,
      });
    }
  }
  const mismatch = signatureMismatch(bytes, expectedSignature);
  if (mismatch) problems.push({ severity: 'error', phase: 'imports', message: mismatch });
  const funcs = new Set<string>();
  for (const exp of WebAssembly.Module.exports(mod)) {
    const known = (GUEST_EXPORTS as readonly string[]).includes(exp.name);
    const required = (REQUIRED_EXPORTS as readonly string[]).includes(exp.name);
    if (exp.kind === 'function') funcs.add(exp.name);
    exports.push({
      name: exp.name,
      kind: exp.kind,
      role: required ? 'required' : known ? 'optional' : 'other (ignored)',
    });
    if (exp.name.startsWith(RESERVED_EXPORT_PREFIX)) {
      problems.push({
        severity: 'error',
        phase: 'exports',
        message: `export '${exp.name}' uses the reserved prefix '${RESERVED_EXPORT_PREFIX}'`,
      });
    }
  }
  for (const name of REQUIRED_EXPORTS) {
    if (!funcs.has(name)) {
      problems.push({
        severity: 'error',
        phase: 'exports',
        message: `missing required export '${name}'`,
      });
    }
  }
  return { valid: true, imports, exports, memory: memoryLimits(bytes), problems };
}

/**
 * The part of the check a host load failure belongs to: `HG_MANIFEST_INVALID` the manifest,
 * any other code but `HG_PLUGIN_LOAD` discovery; a load failure the part of the first static
 * error, in the order the loader checks (exports, then imports), else the binary.
 */
export function loadFailurePhase(code: string, listing: StaticListing): Finding['phase'] {
  if (code === 'HG_MANIFEST_INVALID') return 'manifest';
  if (code !== 'HG_PLUGIN_LOAD') return 'discovery';
  for (const phase of ['exports', 'imports'] as const) {
    if (listing.problems.some((p) => p.severity === 'error' && p.phase === phase)) return phase;
  }
  return 'binary';
}
