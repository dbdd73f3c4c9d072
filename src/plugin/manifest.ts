/**
 * The plugin manifest: a JSON file beside the guest's `.wasm` naming the plugin, the host
 * functions (capabilities) it asks for, the limits it asks for, and its config values.
 * The manifest and the `.wasm` it names are read through `readOperatorFile`: regular files
 * under a size limit only (a `.wasm` of `/dev/zero` or a FIFO is refused, never read).
 */
import { dirname, resolve } from 'node:path';
import { CAPABILITIES, type Capability } from '../capabilities.ts';
import { PATH } from '../config/host-config.ts';
import { readJsonFile, readOperatorFile } from '../config/operator-file.ts';
import { ConfigError, HourglassError } from '../errors.ts';
import { compile } from '../validation.ts';

export interface PluginLimits {
  /** Linear-memory cap in 64 KiB pages. @defaultValue 256 (16 MiB) */
  readonly memoryPages: number;
  /** Wall-clock deadline per guest call. @defaultValue 5000 */
  readonly timeoutMs: number;
  /**
   * Fuel budget per guest call, by phase (operators at the cost table's prices; see
   * docs/fuel.md). `discovery` also pays for the module's start function.
   */
  readonly fuel: { readonly discovery: number; readonly run: number; readonly cleanup: number };
}

export interface PluginManifest {
  readonly file: string;
  readonly name: string;
  readonly version: string;
  /** Absolute path of the guest's wasm. */
  readonly wasm: string;
  readonly capabilities: readonly Capability[];
  readonly limits: PluginLimits;
  readonly config: Readonly<Record<string, string>>;
}

export const PLUGIN_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';

export const DEFAULT_LIMITS: PluginLimits = Object.freeze({
  memoryPages: 256,
  timeoutMs: 5_000,
  fuel: Object.freeze({ discovery: 50_000_000, run: 500_000_000, cleanup: 50_000_000 }),
});

interface RawManifest {
  name: string;
  version: string;
  wasm: string;
  capabilities?: Capability[];
  limits?: { memoryPages?: number; timeoutMs?: number; fuel?: Partial<PluginLimits['fuel']> };
  config?: Record<string, string>;
}

const fuelBudget = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };

const validateManifest = compile<RawManifest>({
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'wasm'],
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: PLUGIN_NAME_PATTERN },
    version: { type: 'string', minLength: 1, maxLength: 64 },
    wasm: PATH,
    description: { type: 'string', maxLength: 1000 },
    capabilities: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', enum: [...CAPABILITIES] },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        memoryPages: { type: 'integer', minimum: 1, maximum: 65_536 },
        timeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
        fuel: {
          type: 'object',
          additionalProperties: false,
          properties: { discovery: fuelBudget, run: fuelBudget, cleanup: fuelBudget },
        },
      },
    },
    config: {
      type: 'object',
      maxProperties: 256,
      additionalProperties: { type: 'string', maxLength: 65_536 },
    },
  },
});

/** The caps a tenant puts on its plugins' limits (see `TenantQuotas`). */
export interface LimitCaps {
  readonly maxFuelPerCall: number;
  readonly maxMemoryPages: number;
}

/** A plugin's limits within its tenant's caps: each one is min(asked, cap). */
export function capLimits(limits: PluginLimits, caps: LimitCaps): PluginLimits {
  const fuel = (n: number) => Math.min(n, caps.maxFuelPerCall);
  return Object.freeze({
    memoryPages: Math.min(limits.memoryPages, caps.maxMemoryPages),
    timeoutMs: limits.timeoutMs,
    fuel: Object.freeze({
      discovery: fuel(limits.fuel.discovery),
      run: fuel(limits.fuel.run),
      cleanup: fuel(limits.fuel.cleanup),
    }),
  });
}

export function parseManifest(value: unknown, file: string): PluginManifest {
  const r = validateManifest(value);
  if (!r.ok) throw new ConfigError('HG_MANIFEST_INVALID', file, r.issue.field, r.issue.problem);
  const m = r.value;
  return Object.freeze({
    file,
    name: m.name,
    version: m.version,
    wasm: resolve(dirname(file), m.wasm),
    capabilities: Object.freeze([...(m.capabilities ?? [])]),
    limits: Object.freeze({
      memoryPages: m.limits?.memoryPages ?? DEFAULT_LIMITS.memoryPages,
      timeoutMs: m.limits?.timeoutMs ?? DEFAULT_LIMITS.timeoutMs,
      fuel: Object.freeze({ ...DEFAULT_LIMITS.fuel, ...m.limits?.fuel }),
    }),
    config: Object.freeze({ ...m.config }),
  });
}

/** Manifests larger than this are refused before reading (config values are at most 16 MiB). */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

/** Reads and parses a manifest file (a regular file; a leading UTF-8 BOM is skipped). */
export function loadManifest(file: string): PluginManifest {
  const r = readJsonFile(file, MAX_MANIFEST_BYTES);
  if (!r.ok) {
    throw new ConfigError('HG_MANIFEST_INVALID', JSON.stringify(file).slice(1, -1), '', r.problem, {
      cause: r.cause,
    });
  }
  return parseManifest(r.value, file);
}

/**
 * Reads a plugin's `.wasm`: a regular file of at most `maxBytes` (the host's `maxWasmBytes`),
 * checked with fstat before a byte is read. Anything else fails with `HG_PLUGIN_LOAD`.
 */
export function readWasmFile(
  manifest: PluginManifest,
  maxBytes: number,
  pluginId: string,
): Uint8Array<ArrayBuffer> {
  const r = readOperatorFile(manifest.wasm, maxBytes);
  if (r.ok) return r.bytes;
  throw new HourglassError('HG_PLUGIN_LOAD', `plugin ${pluginId}: ${manifest.wasm}: ${r.problem}`, {
    cause: r.cause,
    pluginId,
  });
}
