/**
 * The operator's host config (JSON): where the store lives, the tenants with their quotas and
 * grantable capabilities, and the plugins each tenant runs. Validated once with ajv; errors name
 * the file, the field and the problem. Relative paths resolve against the config file's folder.
 */
import { DEFAULT_BACKFILL_INTERVAL_MS, DEFAULT_BACKFILL_MAX_TICKS } from '../schedule/backfill.ts';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CAPABILITIES, type Capability } from '../capabilities.ts';
import {
  HttpSectionError,
  TENANT_HTTP_SCHEMA,
  tenantHttpConfig,
  type RawHttpSection,
  type TenantHttpConfig,
} from '../sandbox/http/policy.ts';
import { ConfigError } from '../errors.ts';
import { compile } from '../validation.ts';
import { readJsonFile } from './operator-file.ts';
import type { FuelWindow } from '../scheduler/fuel-windows.ts';

/** Per-tenant quotas. */
export interface TenantQuotas {
  /** Schedules (declared + runtime, not deleted) a tenant may have. @defaultValue 1000 */
  readonly maxSchedules: number;
  /** No schedule may fire more often than this. @defaultValue 1000 */
  readonly minIntervalMs: number;
  /** Runs of the tenant executing at once; further due runs wait their turn. @defaultValue 4 */
  readonly maxRunsInFlight: number;
  /**
   * Largest schedule payload (JSON bytes); at most 1 MiB, so that any schedule's view fits one
   * host-call answer. @defaultValue 65536
   */
  readonly maxPayloadBytes: number;
  /** Largest run output (bytes); larger output fails the run. @defaultValue 1048576 */
  readonly maxOutputBytes: number;
  /**
   * Most fuel any one guest call of the tenant may get, whatever its plugin's manifest asks
   * for (each phase's budget is min(manifest, this)). @defaultValue 10000000000
   */
  readonly maxFuelPerCall: number;
  /** Largest linear memory a plugin of the tenant may get (64 KiB pages). @defaultValue 1024 */
  readonly maxMemoryPages: number;
  /**
   * Main-thread time the tenant's host calls may use, in ms per second (a token bucket holding
   * 5 seconds' worth). Beyond it a host call is answered `busy` at once, so one tenant's storm
   * of host calls cannot delay other tenants' fires. @defaultValue 100
   */
  readonly hostCallMsPerSecond: number;
  /** Most bytes of Extism variables a plugin instance may hold (caps `limits.varBytes`). @defaultValue 1048576 */
  readonly maxVarBytes: number;
  /** Largest table a plugin may have, in elements (caps `limits.tableElements`). @defaultValue 100000 */
  readonly maxTableElements: number;
  /** Most log lines a guest call may deliver (caps `limits.logLines`). @defaultValue 1000 */
  readonly maxLogLines: number;
  /**
   * At the tenant's `maxRunsInFlight`, a waiting tick's effective priority rises one level per
   * this many ms waited, so the lowest priority never starves (docs/schedules.md,
   * "Priorities"). @defaultValue 60000
   */
  readonly priorityAgingMs: number;
  /**
   * Fuel the tenant's runs may use per window of `windowMs` (windows aligned to the clock); once
   * spent, its ticks are recorded `quota_exhausted` until the window turns (docs/schedules.md,
   * "Fuel windows"). @defaultValue none (no limit)
   */
  readonly fuelWindow?: FuelWindow;
  /**
   * The breaker's default for the tenant's schedules: this many failed ticks in a row pause a
   * schedule (a schedule's own `breaker.afterFailures` wins); 0: never. @defaultValue 0
   */
  readonly breakerAfterFailures: number;
}

export interface PluginEntry {
  /** Absolute path of the plugin's manifest. */
  readonly manifest: string;
  /** Config values overriding the manifest's. */
  readonly config: Readonly<Record<string, string>>;
}

/**
 * How much of a tenant's run history the store keeps (docs/store.md, "Retention"). Finished
 * runs go when they are older than `maxAgeMs` or beyond the newest `maxRuns` of the tenant;
 * runs not finished and each schedule's newest `keepPerSchedule` runs always stay.
 */
export interface TenantRetention {
  /**
   * Finished runs that started longer ago than this are deleted (`maxAgeDays` in the file is
   * the same in days); null: kept whatever their age. @defaultValue 2592000000 (30 days)
   */
  readonly maxAgeMs: number | null;
  /** Most runs of the tenant kept; the oldest beyond it are deleted. null: no cap. @defaultValue 1000000 */
  readonly maxRuns: number | null;
  /** The newest runs of every schedule that are kept whatever their age and the cap. @defaultValue 10 */
  readonly keepPerSchedule: number;
}

export const DEFAULT_RETENTION: TenantRetention = Object.freeze({
  maxAgeMs: 30 * 86_400_000,
  maxRuns: 1_000_000,
  keepPerSchedule: 10,
});

/** `retention.maxRowsPerSec`'s default (docs/store.md, "Retention": measured in bench/retention). */
export const DEFAULT_PRUNE_ROWS_PER_SEC = 10_000;

/** How the host prunes run history (src/host/retention.ts), for every tenant. */
export interface RetentionConfig {
  /** Time between two prune rounds (each round goes through every tenant). @defaultValue 60000 */
  readonly intervalMs: number;
  /** Most runs one step deletes; steps of a round follow each other a turn apart. @defaultValue 500 */
  readonly batchRows: number;
  /**
   * Most runs a round deletes per second of real time (the host's whole pruning, across its
   * tenants): a step that got ahead waits before the next. `null`: no limit, the steps follow
   * each other a turn apart. @defaultValue 10000
   */
  readonly maxRowsPerSec: number | null;
}

/** How backfills run (src/schedule/backfill.ts, docs/schedules.md "Backfill"). */
export interface BackfillConfig {
  /** Least time between the starts of two backfill runs of one schedule. @defaultValue 1000 */
  readonly intervalMs: number;
  /** Most ticks one backfill may queue. @defaultValue 10000 */
  readonly maxTicks: number;
}

export interface TenantConfig {
  readonly id: string;
  readonly quotas: TenantQuotas;
  /** How much run history is kept (`TenantRetention`). @defaultValue `DEFAULT_RETENTION` */
  readonly retention: TenantRetention;
  /** Capabilities this tenant's plugins may be granted. @defaultValue all */
  readonly capabilities: readonly Capability[];
  /**
   * Outbound HTTP its plugins may make: hosts (allowlist), special addresses allowed
   * (`allowPrivate`), methods, and caps on each plugin's limits. @defaultValue no hosts
   */
  readonly http: TenantHttpConfig;
  readonly plugins: readonly PluginEntry[];
}

export interface StoreConfig {
  readonly path: string;
  /**
   * Largest size of the store file in bytes; writes past it fail like a full disk (the host
   * stops firing, reports `store:failed`, and resumes once writes succeed). @defaultValue null (no limit)
   */
  readonly maxBytes: number | null;
  /**
   * Who writes the SQLite file: `thread`, a writer thread of its own, so the scheduler's thread
   * never waits for the disk; `inline`, the scheduler's thread, with group commit (more runs/s
   * in a burst, but every wait of a busy disk is fire lateness: docs/store.md,
   * src/store/sqlite-writer/). `:memory:` is always inline. @defaultValue "thread"
   */
  readonly writer: 'thread' | 'inline';
  /**
   * A PostgreSQL store instead of the SQLite file: several hosts may share it (docs/cluster.md).
   * From `store.postgres` in the config, or the `HOURGLASS_POSTGRES_URL` environment variable
   * (which wins over the file's URL, so a password need not be written in it). @defaultValue null
   */
  readonly postgres: PostgresConfig | null;
}

export interface PostgresConfig {
  readonly url: string;
  /** Connections per host. @defaultValue 10 */
  readonly poolSize: number;
  /** Server-side limit per statement. @defaultValue 10000 */
  readonly statementTimeoutMs: number;
  /**
   * A host that stops renewing its tenant leases loses them after this; another host then takes
   * its tenants over. @defaultValue 10000
   */
  readonly leaseTtlMs: number;
}

/** The environment variable that selects (and names) a PostgreSQL store. */
export const POSTGRES_URL_ENV = 'HOURGLASS_POSTGRES_URL';

export interface HostConfig {
  /** Where the config came from ("(embedded default)" when none was given). */
  readonly source: string;
  readonly store: StoreConfig;
  /**
   * How long shutdown waits for in-flight runs and `cleanup()` calls; `stop()` returns within
   * this + 1 s. @defaultValue 10000
   */
  readonly shutdownGraceMs: number;
  /** How often a running host applies operator commands from the CLI. @defaultValue 500 */
  readonly commandPollMs: number;
  /**
   * How often the host renews its lease on the store (and, while the store fails, retries a
   * write). The lease is stale, and another host may take the store, after 3 heartbeats
   * without renewal (at least 10 s); a holder whose process is gone (same machine) at once.
   * @defaultValue 1000
   */
  readonly leaseHeartbeatMs: number;
  /** Largest plugin `.wasm` a manifest may name (checked before reading). @defaultValue 67108864 (64 MiB) */
  readonly maxWasmBytes: number;
  readonly sandbox: SandboxConfig;
  /** Run-history pruning (`RetentionConfig`); what each tenant keeps is its `retention`. */
  readonly retention: RetentionConfig;
  /** How backfills run (`BackfillConfig`). */
  readonly backfill: BackfillConfig;
  readonly tenants: readonly TenantConfig[];
  /** The HTTP API; null (no `api` section): not served. */
  readonly api: ApiConfig | null;
}

/** An API token, as the config holds it: its SHA-256, never the token (`hourglass token`). */
export interface ApiTokenConfig {
  /** Names the token in request logs. */
  readonly name: string;
  /** SHA-256 of the token, lowercase hex. */
  readonly sha256: string;
  /** The tenant the token is limited to; absent: an operator token (everything). */
  readonly tenant: string | null;
}

/** The HTTP API (src/api/), served by `hourglass start` when the config has an `api` section. */
export interface ApiConfig {
  /** Address to listen on. @defaultValue "127.0.0.1" (loopback only) */
  readonly host: string;
  /** Port; 0 takes a free one (logged at start). @defaultValue 7070 */
  readonly port: number;
  /** PEM files: with them the API speaks HTTPS only. @defaultValue null (plain HTTP) */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly tokens: readonly ApiTokenConfig[];
  /** Requests per minute per token (per address for requests without a valid token). @defaultValue 600 */
  readonly rateLimitPerMinute: number;
  /** Largest request body. @defaultValue 1048576 */
  readonly bodyLimitBytes: number;
}

export interface SandboxConfig {
  /**
   * `pool`: guests run on worker threads, with wall-clock deadlines; `in-thread`: on the main
   * thread (simplest; no deadlines). @defaultValue 'pool'
   */
  readonly mode: 'pool' | 'in-thread';
  /** Pool size. @defaultValue the number of CPU cores */
  readonly workers: number | null;
}

export const DEFAULT_QUOTAS: TenantQuotas = Object.freeze({
  maxSchedules: 1000,
  minIntervalMs: 1000,
  maxRunsInFlight: 4,
  maxPayloadBytes: 65_536,
  maxOutputBytes: 1_048_576,
  maxFuelPerCall: 10_000_000_000,
  maxMemoryPages: 1024,
  hostCallMsPerSecond: 100,
  maxVarBytes: 1_048_576,
  maxTableElements: 100_000,
  maxLogLines: 1_000,
  priorityAgingMs: 60_000,
  breakerAfterFailures: 0,
});

export const TENANT_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';

interface RawConfig {
  store?: {
    path?: string;
    maxBytes?: number;
    writer?: 'thread' | 'inline';
    postgres?:
      | string
      | { url?: string; poolSize?: number; statementTimeoutMs?: number; leaseTtlMs?: number };
  };
  shutdownGraceMs?: number;
  commandPollMs?: number;
  leaseHeartbeatMs?: number;
  maxWasmBytes?: number;
  sandbox?: { mode?: 'pool' | 'in-thread'; workers?: number };
  retention?: { intervalMs?: number; batchRows?: number; maxRowsPerSec?: number | null };
  backfill?: { intervalMs?: number; maxTicks?: number };
  api?: {
    host?: string;
    port?: number;
    tls?: { cert: string; key: string };
    tokens?: { name: string; sha256: string; tenant?: string }[];
    rateLimitPerMinute?: number;
    bodyLimitBytes?: number;
  };
  tenants: {
    id: string;
    quotas?: Partial<TenantQuotas>;
    retention?: {
      maxAgeMs?: number | null;
      maxAgeDays?: number | null;
      maxRuns?: number | null;
      keepPerSchedule?: number;
    };
    capabilities?: Capability[];
    http?: RawHttpSection;
    plugins?: { manifest: string; config?: Record<string, string> }[];
  }[];
}

const quotaProps = {
  maxSchedules: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  minIntervalMs: { type: 'integer', minimum: 1, maximum: 86_400_000 },
  maxRunsInFlight: { type: 'integer', minimum: 1, maximum: 10_000 },
  maxPayloadBytes: { type: 'integer', minimum: 0, maximum: 1_048_576 },
  maxOutputBytes: { type: 'integer', minimum: 0, maximum: 67_108_864 },
  maxFuelPerCall: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  maxMemoryPages: { type: 'integer', minimum: 1, maximum: 65_536 },
  hostCallMsPerSecond: { type: 'integer', minimum: 1, maximum: 1_000 },
  maxVarBytes: { type: 'integer', minimum: 0, maximum: 268_435_456 },
  maxTableElements: { type: 'integer', minimum: 0, maximum: 10_000_000 },
  maxLogLines: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  priorityAgingMs: { type: 'integer', minimum: 1, maximum: 86_400_000 },
  fuelWindow: {
    type: 'object',
    additionalProperties: false,
    required: ['fuel', 'windowMs'],
    properties: {
      fuel: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
      // One second to one week.
      windowMs: { type: 'integer', minimum: 1_000, maximum: 604_800_000 },
    },
  },
  breakerAfterFailures: { type: 'integer', minimum: 0, maximum: 1_000 },
};

/** A positive integer up to `max`, or null (no limit). */
const LIMIT_OR_NULL = (max: number) => ({
  oneOf: [{ type: 'integer', minimum: 1, maximum: max }, { type: 'null' }],
});

const RETENTION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxAgeMs: LIMIT_OR_NULL(Number.MAX_SAFE_INTEGER),
    maxAgeDays: LIMIT_OR_NULL(1_000_000),
    maxRuns: LIMIT_OR_NULL(Number.MAX_SAFE_INTEGER),
    keepPerSchedule: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  },
};

/** A file path: bounded, and never with a NUL (which would cut it short further down). */
export const PATH = {
  type: 'string',
  minLength: 1,
  maxLength: 4096,
  pattern: '^[^\\u0000]*$',
};

const POSTGRES_URL = {
  type: 'string',
  maxLength: 4096,
  pattern: '^postgres(ql)?://[^\\u0000]*$',
};

/** The PostgreSQL settings of a config (`store.postgres`, and the environment's URL). */
function postgresConfig(
  raw: NonNullable<RawConfig['store']>['postgres'],
  file: string,
): PostgresConfig | null {
  const fromEnv = process.env[POSTGRES_URL_ENV];
  if (raw === undefined && !fromEnv) return null;
  const o = typeof raw === 'string' ? { url: raw } : (raw ?? {});
  const url = fromEnv || o.url;
  if (!url || !/^postgres(ql)?:\/\//.test(url) || url.includes('\0')) {
    throw new ConfigError(
      'HG_CONFIG_INVALID',
      file,
      '/store/postgres',
      `needs a URL (postgres://…), in the file or in ${POSTGRES_URL_ENV}`,
    );
  }
  return Object.freeze({
    url,
    poolSize: o.poolSize ?? 10,
    statementTimeoutMs: o.statementTimeoutMs ?? 10_000,
    leaseTtlMs: o.leaseTtlMs ?? 10_000,
  });
}

/** Config files larger than this are refused before reading. */
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_WASM_BYTES = 64 * 1024 * 1024;

const validateConfig = compile<RawConfig>({
  type: 'object',
  additionalProperties: false,
  required: ['tenants'],
  properties: {
    $schema: { type: 'string' },
    store: {
      type: 'object',
      additionalProperties: false,
      properties: {
        path: PATH,
        maxBytes: { type: 'integer', minimum: 65_536, maximum: Number.MAX_SAFE_INTEGER },
        writer: { enum: ['thread', 'inline'] },
        postgres: {
          oneOf: [
            POSTGRES_URL,
            {
              type: 'object',
              additionalProperties: false,
              properties: {
                url: POSTGRES_URL,
                poolSize: { type: 'integer', minimum: 1, maximum: 1000 },
                statementTimeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000 },
                leaseTtlMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
              },
            },
          ],
        },
      },
    },
    shutdownGraceMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    commandPollMs: { type: 'integer', minimum: 10, maximum: 60_000 },
    leaseHeartbeatMs: { type: 'integer', minimum: 50, maximum: 60_000 },
    maxWasmBytes: { type: 'integer', minimum: 1, maximum: 1_073_741_824 },
    sandbox: {
      type: 'object',
      additionalProperties: false,
      properties: {
        mode: { type: 'string', enum: ['pool', 'in-thread'] },
        workers: { type: 'integer', minimum: 1, maximum: 256 },
      },
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      properties: {
        intervalMs: { type: 'integer', minimum: 100, maximum: 86_400_000 },
        batchRows: { type: 'integer', minimum: 1, maximum: 100_000 },
        maxRowsPerSec: LIMIT_OR_NULL(100_000_000),
      },
    },
    backfill: {
      type: 'object',
      additionalProperties: false,
      properties: {
        intervalMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
        maxTicks: { type: 'integer', minimum: 1, maximum: 100_000 },
      },
    },
    api: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9.:_%-]+$' },
        port: { type: 'integer', minimum: 0, maximum: 65_535 },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: { cert: PATH, key: PATH },
        },
        tokens: {
          type: 'array',
          maxItems: 10_000,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'sha256'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' },
              sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
              tenant: { type: 'string', pattern: TENANT_ID_PATTERN },
            },
          },
        },
        rateLimitPerMinute: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        bodyLimitBytes: { type: 'integer', minimum: 1024, maximum: 1_073_741_824 },
      },
    },
    tenants: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: {
          id: { type: 'string', pattern: TENANT_ID_PATTERN },
          quotas: { type: 'object', additionalProperties: false, properties: quotaProps },
          retention: RETENTION_SCHEMA,
          capabilities: {
            type: 'array',
            uniqueItems: true,
            items: { type: 'string', enum: [...CAPABILITIES] },
          },
          http: TENANT_HTTP_SCHEMA,
          plugins: {
            type: 'array',
            maxItems: 10_000,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['manifest'],
              properties: {
                manifest: PATH,
                config: {
                  type: 'object',
                  maxProperties: 256,
                  additionalProperties: { type: 'string', maxLength: 1_048_576 },
                },
              },
            },
          },
        },
      },
    },
  },
});

/** Validates an already-parsed config object. `file` names it in errors; paths resolve against `baseDir`. */
export function parseHostConfig(value: unknown, file: string, baseDir: string): HostConfig {
  const r = validateConfig(value);
  if (!r.ok) throw new ConfigError('HG_CONFIG_INVALID', file, r.issue.field, r.issue.problem);
  const raw = r.value;
  const seen = new Set<string>();
  const tenants = raw.tenants.map((t, i): TenantConfig => {
    if (seen.has(t.id)) {
      throw new ConfigError(
        'HG_CONFIG_INVALID',
        file,
        `/tenants/${i}/id`,
        `duplicate tenant id '${t.id}'`,
      );
    }
    seen.add(t.id);
    let http: TenantHttpConfig;
    try {
      http = tenantHttpConfig(t.http);
    } catch (err) {
      if (!(err instanceof HttpSectionError)) throw err;
      throw new ConfigError(
        'HG_CONFIG_INVALID',
        file,
        `/tenants/${i}/http${err.field}`,
        err.message,
      );
    }
    return Object.freeze({
      id: t.id,
      quotas: Object.freeze({ ...DEFAULT_QUOTAS, ...t.quotas }),
      retention: tenantRetention(t.retention, file, `/tenants/${i}/retention`),
      capabilities: Object.freeze([...(t.capabilities ?? CAPABILITIES)]),
      http,
      plugins: Object.freeze(
        (t.plugins ?? []).map((p) =>
          Object.freeze({
            manifest: resolve(baseDir, p.manifest),
            config: Object.freeze({ ...p.config }),
          }),
        ),
      ),
    });
  });
  return Object.freeze({
    source: file,
    store: Object.freeze({
      path:
        raw.store?.path === ':memory:'
          ? ':memory:'
          : resolve(baseDir, raw.store?.path ?? 'data/hourglass.db'),
      maxBytes: raw.store?.maxBytes ?? null,
      writer: raw.store?.writer ?? 'thread',
      postgres: postgresConfig(raw.store?.postgres, file),
    }),
    shutdownGraceMs: raw.shutdownGraceMs ?? 10_000,
    commandPollMs: raw.commandPollMs ?? 500,
    leaseHeartbeatMs: raw.leaseHeartbeatMs ?? 1_000,
    maxWasmBytes: raw.maxWasmBytes ?? DEFAULT_MAX_WASM_BYTES,
    sandbox: Object.freeze({
      mode: raw.sandbox?.mode ?? 'pool',
      workers: raw.sandbox?.workers ?? null,
    }),
    retention: Object.freeze({
      intervalMs: raw.retention?.intervalMs ?? 60_000,
      batchRows: raw.retention?.batchRows ?? 500,
      maxRowsPerSec:
        raw.retention?.maxRowsPerSec === undefined
          ? DEFAULT_PRUNE_ROWS_PER_SEC
          : raw.retention.maxRowsPerSec,
    }),
    backfill: Object.freeze({
      intervalMs: raw.backfill?.intervalMs ?? DEFAULT_BACKFILL_INTERVAL_MS,
      maxTicks: raw.backfill?.maxTicks ?? DEFAULT_BACKFILL_MAX_TICKS,
    }),
    tenants: Object.freeze(tenants),
    api: apiConfig(raw.api, file, baseDir, seen),
  });
}

/** A tenant's `retention` section, defaults filled in (`maxAgeDays` as milliseconds). */
function tenantRetention(
  raw: RawConfig['tenants'][number]['retention'],
  file: string,
  field: string,
): TenantRetention {
  if (raw === undefined) return DEFAULT_RETENTION;
  if (raw.maxAgeMs !== undefined && raw.maxAgeDays !== undefined)
    throw new ConfigError(
      'HG_CONFIG_INVALID',
      file,
      `${field}/maxAgeDays`,
      'give maxAgeMs or maxAgeDays, not both',
    );
  const maxAgeMs =
    raw.maxAgeMs !== undefined
      ? raw.maxAgeMs
      : raw.maxAgeDays !== undefined
        ? raw.maxAgeDays === null
          ? null
          : raw.maxAgeDays * 86_400_000
        : DEFAULT_RETENTION.maxAgeMs;
  return Object.freeze({
    maxAgeMs,
    maxRuns: raw.maxRuns !== undefined ? raw.maxRuns : DEFAULT_RETENTION.maxRuns,
    keepPerSchedule: raw.keepPerSchedule ?? DEFAULT_RETENTION.keepPerSchedule,
  });
}

function apiConfig(
  raw: RawConfig['api'],
  file: string,
  baseDir: string,
  tenants: ReadonlySet<string>,
): ApiConfig | null {
  if (!raw) return null;
  const names = new Set<string>();
  const hashes = new Set<string>();
  const tokens = (raw.tokens ?? []).map((t, i): ApiTokenConfig => {
    const problem = names.has(t.name)
      ? `duplicate token name '${t.name}'`
      : hashes.has(t.sha256)
        ? 'the same token twice'
        : t.tenant !== undefined && !tenants.has(t.tenant)
          ? `no tenant '${t.tenant}' in this config`
          : null;
    if (problem) throw new ConfigError('HG_CONFIG_INVALID', file, `/api/tokens/${i}`, problem);
    names.add(t.name);
    hashes.add(t.sha256);
    return Object.freeze({ name: t.name, sha256: t.sha256, tenant: t.tenant ?? null });
  });
  return Object.freeze({
    host: raw.host ?? '127.0.0.1',
    port: raw.port ?? 7070,
    tls: raw.tls
      ? Object.freeze({ cert: resolve(baseDir, raw.tls.cert), key: resolve(baseDir, raw.tls.key) })
      : null,
    tokens: Object.freeze(tokens),
    rateLimitPerMinute: raw.rateLimitPerMinute ?? 600,
    bodyLimitBytes: raw.bodyLimitBytes ?? 1_048_576,
  });
}

/** Reads and parses a config file (a regular file; a leading UTF-8 BOM is skipped). */
export function loadHostConfig(file: string): HostConfig {
  const r = readJsonFile(file, MAX_CONFIG_BYTES);
  if (!r.ok) {
    throw new ConfigError('HG_CONFIG_INVALID', JSON.stringify(file).slice(1, -1), '', r.problem, {
      cause: r.cause,
    });
  }
  return parseHostConfig(r.value, file, dirname(resolve(file)));
}

/**
 * The project's root folder (where package.json and guest-examples/ live): two levels up from
 * src/config/, three from the compiled dist/src/config/.
 */
export const PROJECT_ROOT = resolve(
  dirname(fileURLToPath(import.meta.url)),
  import.meta.url.endsWith('.ts') ? '../..' : '../../..',
);

/** The `source` of the embedded default config. */
export const DEFAULT_CONFIG_SOURCE = '(embedded default)';

/**
 * The embedded default: a SQLite file in ./data of the working folder, one tenant `default`
 * running the example plugins that ship with the project.
 */
export function defaultHostConfig(cwd: string = process.cwd()): HostConfig {
  return parseHostConfig(
    {
      store: { path: resolve(cwd, 'data', 'hourglass.db') },
      tenants: [
        {
          id: 'default',
          plugins: [
            {
              manifest: resolve(
                PROJECT_ROOT,
                'guest-examples/assemblyscript/poller/hourglass.json',
              ),
            },
          ],
        },
      ],
    },
    DEFAULT_CONFIG_SOURCE,
    cwd,
  );
}
