/**
 * Preparing a guest binary for the sandbox: validate it, check its imports and exports
 * against the ABI (docs/guest-abi.md), rewrite it for return-code capture, and compile it.
 */
import { createHash } from 'node:crypto';
import { isCapability } from '../capabilities.ts';
import { HourglassError } from '../errors.ts';
import { RESERVED_EXPORT_PREFIX, wrapReturnCodes } from './return-code.ts';

export const GUEST_EXPORTS = ['schedules', 'run', 'cleanup'] as const;
export const REQUIRED_EXPORTS = ['schedules', 'run'] as const;
export const EXTISM_KERNEL = 'extism:host/env';
export const HOST_NAMESPACE = 'extism:host/user';
const WASI = 'wasi_snapshot_preview1';

export interface PreparedGuest {
  readonly module: WebAssembly.Module;
  readonly sha256: string;
  readonly exports: readonly string[];
  readonly imports: readonly string[];
  readonly usesWasi: boolean;
}

function loadError(pluginId: string, problem: string, cause?: unknown): HourglassError {
  return new HourglassError('HG_PLUGIN_LOAD', `plugin ${pluginId}: ${problem}`, { cause });
}

/**
 * `memoryMaxPages` caps the guest's linear memory (the module's declared maximum is clamped to
 * it): the only real memory limit, since Extism's `maxPages` covers Extism's own blocks only.
 */
export async function prepareGuest(
  pluginId: string,
  wasm: Uint8Array<ArrayBuffer>,
  memoryMaxPages?: number,
): Promise<PreparedGuest> {
  const sha256 = createHash('sha256').update(wasm).digest('hex');
  if (wasm.length >= 8 && wasm[4] !== 0x01) {
    throw loadError(
      pluginId,
      'is a component or an unsupported binary version; Hourglass loads core modules',
    );
  }
  if (!WebAssembly.validate(wasm)) throw loadError(pluginId, 'is not a valid WebAssembly module');
  const original = new WebAssembly.Module(wasm);

  const exportNames = WebAssembly.Module.exports(original).map((e) => e.name);
  for (const name of exportNames) {
    if (name.startsWith(RESERVED_EXPORT_PREFIX))
      throw loadError(
        pluginId,
        `export '${name}' uses the reserved prefix '${RESERVED_EXPORT_PREFIX}'`,
      );
  }
  const funcExports = new Set(
    WebAssembly.Module.exports(original)
      .filter((e) => e.kind === 'function')
      .map((e) => e.name),
  );
  const missing = REQUIRED_EXPORTS.filter((e) => !funcExports.has(e));
  if (missing.length > 0)
    throw loadError(
      pluginId,
      `missing required export${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}`,
    );

  const imports = WebAssembly.Module.imports(original);
  let usesWasi = false;
  for (const imp of imports) {
    const name = `${imp.module}.${imp.name}`;
    if (imp.kind !== 'function')
      throw loadError(pluginId, `imports ${imp.kind} '${name}'; only functions can be imported`);
    if (imp.module === EXTISM_KERNEL) continue;
    if (imp.module === HOST_NAMESPACE && isCapability(imp.name)) continue;
    if (imp.module === 'env' && imp.name === 'abort') continue;
    if (imp.module === WASI) {
      usesWasi = true;
      continue;
    }
    throw loadError(pluginId, `imports unknown function '${name}'`);
  }

  let rewritten: Uint8Array<ArrayBuffer>;
  try {
    rewritten = wrapReturnCodes(
      wasm,
      GUEST_EXPORTS,
      memoryMaxPages === undefined ? {} : { memoryMaxPages },
    ).bytes;
  } catch (err) {
    throw loadError(pluginId, `cannot be prepared: ${(err as Error).message}`, err);
  }
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(rewritten);
  } catch (err) {
    throw loadError(pluginId, `does not compile: ${(err as Error).message}`, err);
  }
  return {
    module,
    sha256,
    exports: [...funcExports],
    imports: imports.map((i) => `${i.module}.${i.name}`),
    usesWasi,
  };
}
