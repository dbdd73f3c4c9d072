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
import {
  HttpSectionError,
  PLUGIN_HTTP_SCHEMA,
  pluginHttpConfig,
  type PluginHttpConfig,
  type RawHttpSection,
} from '../sandbox/http/policy.ts';

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
  /**
   * Bytes of Extism variables (`var_set`) an instance may hold: keys + values + 64 bytes per
   * variable (so this bounds the number of keys too). Variables live as long as the instance.
   * @defaultValue 65536
   */
  readonly varBytes: number;
  /**
   * Cap on every table's size (elements): each table's declared maximum is clamped to it, so
   * `table.grow` past it fails (returns -1); a table declared larger is refused at load.
   * @defaultValue 10000
   */
  readonly tableElements: number;
  /** Log lines (Extism `log_*`) delivered per guest call; the rest are dropped. @defaultValue 1000 */
  readonly logLines: number;
  /**
   * Largest output of a `run()` call (bytes), checked at `output_set`. Not set by the manifest:
   * it is the tenant's `maxOutputBytes` (see `capLimits`). @defaultValue 1048576
   */
  readonly outputBytes: number;
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
  /** Outbound HTTP it asks for (used only with the `http` capability granted). */
  readonly http: PluginHttpConfig;
}

export const PLUGIN_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';

export const DEFAULT_LIMITS: PluginLimits = Object.freeze({
  memoryPages: 256,
  timeoutMs: 5_000,
  fuel: Object.freeze({ discovery: 50_000_000, run: 500_000_000, cleanup: 50_000_000 }),
  varBytes: 65_536,
  tableElements: 10_000,
  logLines: 1_000,
  outputBytes: 1_048_576,
});

interface RawManifest {
  name: string;
  version: string;
  wasm: string;
  capabilities?: Capability[];
  limits?: {
    memoryPages?: number;
    timeoutMs?: number;
    fuel?: Partial<PluginLimits['fuel']>;
    varBytes?: number;
    tableElements?: number;
    logLines?: number;
  };
  config?: Record<string, string>;
  http?: RawHttpSection;
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
        varBytes: { type: 'integer', minimum: 0, maximum: 268_435_456 },
        tableElements: { type: 'integer', minimum: 0, maximum: 10_000_000 },
        logLines: { type: 'integer', minimum: 0, maximum: 1_000_000 },
      },
    },
    config: {
      type: 'object',
      maxProperties: 256,
      additionalProperties: { type: 'string', maxLength: 65_536 },
    },
    http: PLUGIN_HTTP_SCHEMA,
  },
});

/** The caps a tenant puts on its plugins' limits (see `TenantQuotas`). */
export interface LimitCaps {
  readonly maxFuelPerCall: number;
  readonly maxMemoryPages: number;
  readonly maxVarBytes: number;
  readonly maxTableElements: number;
  readonly maxLogLines: number;
  readonly maxOutputBytes: number;
}

/**
 * A plugin's limits within its tenant's caps: each one is min(asked, cap); `outputBytes` is
 * the tenant's `maxOutputBytes` itself (a manifest does not ask for it).
 */
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
    varBytes: Math.min(limits.varBytes, caps.maxVarBytes),
    tableElements: Math.min(limits.tableElements, caps.maxTableElements),
    logLines: Math.min(limits.logLines, caps.maxLogLines),
    outputBytes: caps.maxOutputBytes,
  });
}

export function parseManifest(value: unknown, file: string): PluginManifest {
  const r = validateManifest(value);
  if (!r.ok) throw new ConfigError('HG_MANIFEST_INVALID', file, r.issue.field, r.issue.problem);
  const m = r.value;
  let http: PluginHttpConfig;
  try {
    http = pluginHttpConfig(m.http);
  } catch (err) {
    if (!(err instanceof HttpSectionError)) throw err;
    throw new ConfigError('HG_MANIFEST_INVALID', file, `/http${err.field}`, err.message);
  }
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
      varBytes: m.limits?.varBytes ?? DEFAULT_LIMITS.varBytes,
      tableElements: m.limits?.tableElements ?? DEFAULT_LIMITS.tableElements,
      logLines: m.limits?.logLines ?? DEFAULT_LIMITS.logLines,
      outputBytes: DEFAULT_LIMITS.outputBytes,
    }),
    config: Object.freeze({ ...m.config }),
    http,
  });
}

/** Manifests larger than this are refused before reading (config values are at most 16 MiB). */
export const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

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
