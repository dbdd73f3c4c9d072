/**
 * The API's JSON schemas: fastify validates requests and serializes answers with them, and the
 * OpenAPI document (`/openapi.json`) is generated from the same objects, so the document cannot
 * drift from what the server accepts. Answers are serialized by schema: a field not named here
 * never leaves the server (no internal column leaks by accident).
 *
 * Everything a guest controls (schedule ids and descriptions, payloads, cursors, run results,
 * error messages) is returned as JSON string data and nothing else.
 */
import { TENANT_ID_PATTERN } from '../config/host-config.ts';
import { PLUGIN_NAME_PATTERN } from '../plugin/manifest.ts';
import { SCHEDULE_ID_PATTERN } from '../schedule/declaration.ts';
import { RunStatuses } from '../store/types.ts';

const str = { type: 'string' } as const;
const strOrNull = { type: ['string', 'null'] } as const;
const int = { type: 'integer' } as const;
const intOrNull = { type: ['integer', 'null'] } as const;

/** A tenant, or a host's copy of a tenant's every-host schedules (`tenant@owner`). */
const SHARD_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}(@[A-Za-z0-9._:-]{1,128})?$';

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: str, message: str },
    },
  },
} as const;

export const runSchema = {
  $id: 'Run',
  type: 'object',
  properties: {
    id: int,
    scheduleKey: str,
    pluginId: str,
    tenant: str,
    localId: str,
    trigger: str,
    status: { type: 'string', enum: [...RunStatuses] },
    reason: strOrNull,
    scheduledAt: int,
    startedAt: int,
    finishedAt: intOrNull,
    attempt: int,
    error: strOrNull,
    outputBytes: intOrNull,
    fuelUsed: intOrNull,
    fuelBudget: intOrNull,
    result: strOrNull,
    coversUntil: intOrNull,
    pluginVersion: strOrNull,
    wasmSha256: strOrNull,
    logTail: strOrNull,
  },
} as const;

export const scheduleSchema = {
  $id: 'Schedule',
  type: 'object',
  properties: {
    key: str,
    pluginId: str,
    tenant: str,
    localId: str,
    origin: { type: 'string', enum: ['declared', 'runtime'] },
    spec: { type: 'object', additionalProperties: true },
    jitter: strOrNull,
    jitterMs: int,
    payload: strOrNull,
    overlap: str,
    misfire: str,
    description: strOrNull,
    scope: str,
    priority: int,
    state: { type: 'string', enum: ['active', 'paused', 'completed', 'deleted', 'retired'] },
    pauseNote: strOrNull,
    anchorAt: int,
    nextAt: intOrNull,
    cursor: strOrNull,
    bufferedAt: intOrNull,
    createdAt: int,
    updatedAt: int,
    /** The schedule's own retry policy (JSON text), or null (its job contract's, else none). */
    retry: strOrNull,
    job: strOrNull,
    /** The breaker's limit (0: off), or null: the tenant's `breakerAfterFailures`. */
    breakerAfter: intOrNull,
    /** Failed ticks in a row so far (the breaker's count). */
    failStreak: int,
  },
} as const;

const limitsSchema = {
  type: ['object', 'null'],
  additionalProperties: true,
} as const;

export const pluginSchema = {
  $id: 'Plugin',
  type: 'object',
  properties: {
    id: str,
    tenant: str,
    name: str,
    version: str,
    manifestPath: str,
    wasmSha256: strOrNull,
    status: { type: 'string', enum: ['loaded', 'failed', 'unloaded'] },
    error: strOrNull,
    updatedAt: int,
    capabilities: { type: 'array', items: str },
    limits: limitsSchema,
  },
} as const;

export const tenantSchema = {
  $id: 'Tenant',
  type: 'object',
  properties: {
    id: str,
    quotas: { type: 'object', additionalProperties: { type: 'integer' } },
    capabilities: { type: 'array', items: str },
    plugins: int,
  },
} as const;

export const jobSchema = {
  $id: 'JobContract',
  type: 'object',
  properties: { pluginId: str, name: str, contract: str, updatedAt: int },
} as const;

export const SHARED_SCHEMAS = [
  errorSchema,
  runSchema,
  scheduleSchema,
  pluginSchema,
  tenantSchema,
  jobSchema,
] as const;

const ref = (id: string) => ({ $ref: `${id}#` }) as const;
const errors = {
  400: ref('Error'),
  401: ref('Error'),
  403: ref('Error'),
  404: ref('Error'),
  429: ref('Error'),
} as const;

const page = (item: string) =>
  ({
    type: 'object',
    properties: { items: { type: 'array', items: ref(item) }, next: strOrNull },
  }) as const;

const limit = { type: 'integer', minimum: 1, maximum: 1000, default: 100 } as const;
const tenantParam = { type: 'string', pattern: TENANT_ID_PATTERN } as const;

export const pluginParams = {
  type: 'object',
  required: ['tenant', 'name'],
  properties: { tenant: tenantParam, name: { type: 'string', pattern: PLUGIN_NAME_PATTERN } },
} as const;

export const scheduleParams = {
  type: 'object',
  required: ['tenant', 'plugin', 'id'],
  properties: {
    tenant: { type: 'string', pattern: SHARD_PATTERN },
    plugin: { type: 'string', pattern: PLUGIN_NAME_PATTERN },
    id: { type: 'string', pattern: SCHEDULE_ID_PATTERN },
  },
} as const;

/** What an action on a schedule answers: its state, or a trigger's `started` / `skipped`. */
const actionResponse = {
  200: {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      via: { type: 'string', enum: ['host', 'store', 'queued'] },
      value: strOrNull,
    },
  },
  409: ref('Error'),
  503: ref('Error'),
  504: ref('Error'),
  ...errors,
} as const;

export const routeSchemas = {
  whoami: {
    summary: "The token's name and scope",
    response: {
      200: {
        type: 'object',
        properties: {
          name: str,
          scope: { type: 'string', enum: ['operator', 'tenant'] },
          tenant: strOrNull,
        },
      },
      ...errors,
    },
  },
  tenants: {
    summary: 'Tenants the token may see, with quotas and grantable capabilities',
    response: { 200: { type: 'array', items: ref('Tenant') }, ...errors },
  },
  plugins: {
    summary: 'Plugins with state, load error, version, granted capabilities and limits',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { tenant: tenantParam },
    },
    response: { 200: { type: 'array', items: ref('Plugin') }, ...errors },
  },
  reloadConfig: {
    summary:
      'Read the config again and apply it (operator): changed plugins reloaded, new ones loaded, removed ones unloaded; tenant changes need a restart',
    response: {
      200: {
        type: 'object',
        properties: {
          plugins: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                pluginId: str,
                action: {
                  type: 'string',
                  enum: ['loaded', 'reloaded', 'unloaded', 'unchanged', 'failed'],
                },
                version: str,
                error: str,
                reconcile: {
                  type: 'object',
                  properties: {
                    created: { type: 'array', items: str },
                    updated: { type: 'array', items: str },
                    retired: { type: 'array', items: str },
                    unchanged: { type: 'array', items: str },
                  },
                },
              },
            },
          },
          restartNeeded: { type: 'array', items: str },
        },
      },
      ...errors,
    },
  },
  upload: {
    summary:
      "Upload a new version of a configured plugin (its manifest and its module, base64): refused with `hourglass check`'s reasons, or beyond the tenant's capabilities and caps; else loaded like a reload and kept across restarts",
    params: pluginParams,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['manifest', 'wasm'],
      properties: {
        manifest: { type: 'object' },
        wasm: { type: 'string', contentEncoding: 'base64', pattern: '^[A-Za-z0-9+/]*={0,2}$' },
      },
    },
    response: {
      200: { type: 'object', properties: { ok: { type: 'boolean' }, version: str } },
      409: ref('Error'),
      413: ref('Error'),
      422: ref('Error'),
      ...errors,
    },
  },
  reload: {
    summary:
      'Reload a plugin from its manifest: the new version is checked beside the old one, which finishes its runs first; a version that fails leaves the old one serving',
    params: pluginParams,
    response: {
      200: { type: 'object', properties: { ok: { type: 'boolean' }, version: str } },
      409: ref('Error'),
      422: ref('Error'),
      ...errors,
    },
  },
  pluginState: {
    summary:
      "A plugin's state (its Extism variables), as the store holds it: keys, sizes and values (base64)",
    params: pluginParams,
    response: {
      200: {
        type: 'object',
        properties: {
          plugin: str,
          bytes: int,
          updatedAt: intOrNull,
          vars: {
            type: 'array',
            items: {
              type: 'object',
              properties: { key: str, bytes: int, counts: int, base64: str },
            },
          },
        },
      },
      ...errors,
    },
  },
  clearState: {
    summary:
      "Clear a plugin's state (the variable `key`, else all), through the host that serves it: the next run starts from the cleared state",
    params: pluginParams,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { key: { type: 'string', maxLength: 65536 } },
    },
    response: actionResponse,
  },
  plugin: {
    summary: 'One plugin',
    params: pluginParams,
    response: { 200: ref('Plugin'), ...errors },
  },
  schedules: {
    summary: 'Schedules, by key (by local id within a plugin), paged',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tenant: tenantParam,
        plugin: { type: 'string', maxLength: 200 },
        state: {
          type: 'array',
          items: { type: 'string', enum: ['active', 'paused', 'completed', 'deleted', 'retired'] },
          maxItems: 5,
        },
        after: { type: 'string', maxLength: 400 },
        limit,
      },
    },
    response: { 200: page('Schedule'), ...errors },
  },
  schedule: {
    summary: 'One schedule (any state)',
    params: scheduleParams,
    response: { 200: ref('Schedule'), ...errors },
  },
  runs: {
    summary: 'Runs, newest first, paged (pass `next` back as `cursor`)',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tenant: tenantParam,
        plugin: { type: 'string', maxLength: 200 },
        schedule: { type: 'string', maxLength: 400 },
        status: { type: 'string', enum: [...RunStatuses] },
        since: { type: 'integer', minimum: 0, description: 'started at or after (ms since epoch)' },
        until: { type: 'integer', minimum: 0, description: 'started before (ms since epoch)' },
        cursor: { type: 'string', pattern: '^[0-9]{1,16}\\.[0-9]{1,16}$' },
        limit,
      },
    },
    response: { 200: page('Run'), ...errors },
  },
  run: {
    summary: 'One run with its output, error and fuel',
    params: {
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'integer', minimum: 1 } },
    },
    response: { 200: ref('Run'), ...errors },
  },
  jobs: {
    summary: 'Job contracts registered by plugins',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { plugin: { type: 'string', maxLength: 200 } },
    },
    response: { 200: { type: 'array', items: ref('JobContract') }, ...errors },
  },
  action: {
    params: scheduleParams,
    body: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: { note: { type: 'string', maxLength: 1000 } },
    },
    response: actionResponse,
  },
  trigger: {
    params: scheduleParams,
    body: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        payload: { description: "this run's payload (any JSON) instead of the schedule's" },
      },
    },
    response: actionResponse,
  },
  backfill: {
    params: scheduleParams,
    body: {
      description:
        'The ticks to run again (nominal times, ms since the epoch; `hourglass backfill` lists them with their cost), or `{"cancel": true}`',
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['ticks'],
          properties: {
            ticks: {
              type: 'array',
              minItems: 1,
              maxItems: 100_000,
              items: { type: 'integer', minimum: 0 },
            },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['cancel'],
          properties: { cancel: { type: 'boolean', enum: [true] } },
        },
      ],
    },
    response: actionResponse,
  },
} as const;
