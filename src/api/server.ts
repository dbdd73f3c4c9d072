/**
 * The HTTP API (fastify), served by `hourglass start` when the config has an `api` section:
 * read tenants, plugins, schedules, runs and job contracts; pause, resume, trigger and delete
 * schedules; health (`/healthz`), readiness (`/readyz`), metrics (`/metrics`) and the OpenAPI
 * document (`/openapi.json`). Routes hold no logic: they call the operator service
 * (src/operator/service.ts), which applies the token's scope.
 *
 * Requests, in order:
 * 1. `onRequest`: the bearer token is looked up (auth.ts) and the caller kept on the request;
 * 2. the rate limit (`@fastify/rate-limit`), per token, or per address without a valid token
 *    (so unauthenticated floods are limited too);
 * 3. `preValidation`: a route that needs a token answers 401 without a valid one, 403 when the
 *    route is the operator's (`/metrics`) and the token a tenant's;
 * 4. fastify validates params, query and body with the route's schema (schemas.ts; unknown
 *    query fields are refused, not dropped); bodies beyond `bodyLimitBytes` get 413 unread;
 * 5. the answer is serialized by the route's response schema;
 * 6. `onResponse`: one log line per request, with who made it (token name) and its status.
 *
 * Errors answer `{"error": {"code": "HG_API_…", "message": …}}` with a stable code.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { DEFAULT_MAX_WASM_BYTES, type ApiConfig } from '../config/host-config.ts';
import type { ErrorCode } from '../errors.ts';
import type { OperatorService } from '../operator/service.ts';
import {
  OPERATOR,
  type ActionOutcome,
  type ReloadOutcome,
  type Scope,
} from '../operator/service.ts';
import type { OperatorAction, RunStatus, ScheduleState } from '../store/types.ts';
import type { ReloadReport } from '../operator/hot-reload.ts';
import { TokenTable, type Caller } from './auth.ts';
import { routeSchemas, SHARED_SCHEMAS } from './schemas.ts';

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready (stopping, store failing, still starting). */
  readonly reason: string | null;
}

export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface ApiServerOptions {
  readonly config: ApiConfig;
  readonly service: OperatorService;
  readonly log: Logger;
  readonly readiness: () => Readiness;
  readonly metrics?: MetricsSource | null;
  /** Shown in the OpenAPI document. */
  readonly version: string;
  /**
   * Largest upload request (a module of the host's `maxWasmBytes`, base64, and its manifest).
   * @defaultValue room for a module of `DEFAULT_MAX_WASM_BYTES`
   */
  readonly uploadBodyLimit?: number;
  /** `POST /v1/reload` (operator): reads the config again and applies it. */
  readonly reloadConfig?: (() => Promise<ReloadReport>) | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
  interface FastifyContextConfig {
    /** Answers without a token. */
    public?: boolean;
    /** Only for operator tokens. */
    operator?: boolean;
  }
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function send(reply: FastifyReply, status: number, code: ErrorCode, message: string) {
  return reply.code(status).send({ error: { code, message } });
}

function scopeOf(req: FastifyRequest): Scope {
  // preValidation refused every request without a caller on a route that needs one.
  return req.caller?.scope ?? OPERATOR;
}

const ACTION_STATUS: Record<string, [number, ErrorCode]> = {
  not_found: [404, 'HG_API_NOT_FOUND'],
  invalid: [400, 'HG_API_BAD_REQUEST'],
  timed_out: [504, 'HG_API_UNAVAILABLE'],
};

/** The dashboard's files (src/api/dashboard/, copied beside the compiled server by the build). */
const DASHBOARD_FILES = [
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
] as const;

/**
 * The page's headers: its own script and style only (no inline script, so text a guest stored
 * cannot run even if it reached the page as markup), API calls to this origin only, never
 * framed, no referrer, not cached.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** The fastify app (not listening): `startApiServer` listens; tests may `inject`. */
export async function buildApiServer(o: ApiServerOptions): Promise<FastifyInstance> {
  const tokens = new TokenTable(o.config.tokens);
  const app = Fastify({
    loggerInstance: o.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: o.config.bodyLimitBytes,
    // Reject what the schema does not name instead of dropping it silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    ...(o.config.tls
      ? {
          https: {
            cert: readFileSync(o.config.tls.cert),
            key: readFileSync(o.config.tls.key),
          },
        }
      : {}),
  });
  for (const s of SHARED_SCHEMAS) app.addSchema(s);
  app.decorateRequest('caller', null);

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'Hourglass API',
        version: o.version,
        description:
          'Operator tokens see and act on everything; tenant tokens on their tenant only.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  app.addHook('onRequest', async (req) => {
    req.caller = tokens.verify(req.headers.authorization);
  });
  await app.register(fastifyRateLimit, {
    max: o.config.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => (req.caller ? `token:${req.caller.name}` : `addr:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      Object.assign(
        new ApiError(
          429,
          'HG_API_RATE_LIMITED',
          `rate limit: ${ctx.max} requests a minute; retry in ${ctx.after}`,
        ),
        { statusCode: 429 },
      ),
  });
  app.addHook('preValidation', async (req, reply) => {
    const cfg = req.routeOptions.config;
    if (cfg.public) return;
    if (!req.caller) {
      reply.header('www-authenticate', 'Bearer');
      return send(reply, 401, 'HG_API_UNAUTHORIZED', 'a valid bearer token is required');
    }
    if (cfg.operator && req.caller.scope.kind !== 'operator')
      return send(reply, 403, 'HG_API_FORBIDDEN', 'this route needs an operator token');
  });
  app.addHook('onResponse', async (req, reply) => {
    const scope = req.caller?.scope;
    o.log.info(
      {
        req: { method: req.method, url: req.url, ip: req.ip },
        status: reply.statusCode,
        who: req.caller?.name ?? null,
        ...(scope?.kind === 'tenant' ? { tenant: scope.tenant } : {}),
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'api request',
    );
  });
  app.setNotFoundHandler((req, reply) =>
    send(reply, 404, 'HG_API_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`),
  );
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    if (err instanceof ApiError) return send(reply, err.status, err.code, err.message);
    if (err.validation) return send(reply, 400, 'HG_API_BAD_REQUEST', err.message);
    const status = err.statusCode ?? 500;
    if (status === 429) return send(reply, 429, 'HG_API_RATE_LIMITED', err.message);
    if (status < 500) return send(reply, status, 'HG_API_BAD_REQUEST', err.message);
    req.log.error({ error: err.message }, 'api: request failed');
    return send(reply, 503, 'HG_API_UNAVAILABLE', err.message);
  });

  // ---- health, readiness, metrics, OpenAPI ----

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({
    ok: true,
  }));
  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    const r = o.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
  if (o.metrics) {
    const metrics = o.metrics;
    app.get('/metrics', { config: { operator: true }, schema: { hide: true } }, async (_r, reply) =>
      reply.type(metrics.contentType).send(await metrics.text()),
    );
  }

  // ---- the dashboard (a static page over this API) ----

  for (const [file, type] of DASHBOARD_FILES) {
    const body = readFileSync(new URL(`./dashboard/${file}`, import.meta.url));
    const url = file === 'index.html' ? '/dashboard/' : `/dashboard/${file}`;
    app.get(url, { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
      reply.headers(PAGE_HEADERS).type(type).send(body),
    );
  }
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    reply.redirect('/dashboard/'),
  );
  app.get('/dashboard', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    reply.redirect('/dashboard/'),
  );

  // ---- reads ----

  app.get('/v1/whoami', { schema: routeSchemas.whoami }, async (req) => {
    const scope = scopeOf(req);
    return {
      name: req.caller?.name ?? '',
      scope: scope.kind,
      tenant: scope.kind === 'tenant' ? scope.tenant : null,
    };
  });

  const svc = o.service;
  const notFound = (what: string) => new ApiError(404, 'HG_API_NOT_FOUND', `no ${what}`);

  app.get('/v1/tenants', { schema: routeSchemas.tenants }, async (req) =>
    svc.tenants(scopeOf(req)),
  );
  app.get<{ Querystring: { tenant?: string } }>(
    '/v1/plugins',
    { schema: routeSchemas.plugins },
    async (req) => svc.plugins(scopeOf(req), req.query.tenant),
  );
  app.get<{ Params: { tenant: string; name: string } }>(
    '/v1/plugins/:tenant/:name',
    { schema: routeSchemas.plugin },
    async (req) => {
      const id = `${req.params.tenant}/${req.params.name}`;
      return (await svc.plugin(scopeOf(req), id)) ?? Promise.reject(notFound(`plugin ${id}`));
    },
  );
  app.get<{
    Querystring: {
      tenant?: string;
      plugin?: string;
      state?: ScheduleState[];
      after?: string;
      limit: number;
    };
  }>('/v1/schedules', { schema: routeSchemas.schedules }, async (req) => {
    const q = req.query;
    return svc.schedules(scopeOf(req), {
      ...(q.tenant === undefined ? {} : { tenant: q.tenant }),
      ...(q.plugin === undefined ? {} : { pluginId: q.plugin }),
      ...(q.state === undefined ? {} : { states: q.state }),
      ...(q.after === undefined ? {} : { after: q.after }),
      limit: q.limit,
    });
  });
  type KeyParams = { Params: { tenant: string; plugin: string; id: string } };
  // `<tenant>/<plugin name>/<id>`; a host's copy of an every-host schedule has `<tenant>@<owner>`.
  const scheduleKey = (p: KeyParams['Params']) => `${p.tenant}/${p.plugin}/${p.id}`;
  app.get<KeyParams>(
    '/v1/schedules/:tenant/:plugin/:id',
    { schema: routeSchemas.schedule },
    async (req) => {
      const key = scheduleKey(req.params);
      return (await svc.schedule(scopeOf(req), key)) ?? Promise.reject(notFound(`schedule ${key}`));
    },
  );
  app.get<{
    Querystring: {
      tenant?: string;
      plugin?: string;
      schedule?: string;
      status?: RunStatus;
      since?: number;
      until?: number;
      cursor?: string;
      limit: number;
    };
  }>('/v1/runs', { schema: routeSchemas.runs }, async (req) => {
    const q = req.query;
    return svc.runs(scopeOf(req), {
      ...(q.tenant === undefined ? {} : { tenant: q.tenant }),
      ...(q.plugin === undefined ? {} : { pluginId: q.plugin }),
      ...(q.schedule === undefined ? {} : { scheduleKey: q.schedule }),
      ...(q.status === undefined ? {} : { status: q.status }),
      ...(q.since === undefined ? {} : { since: q.since }),
      ...(q.until === undefined ? {} : { until: q.until }),
      ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
      limit: q.limit,
    });
  });
  app.get<{ Params: { id: number } }>('/v1/runs/:id', { schema: routeSchemas.run }, async (req) => {
    return (
      (await svc.run(scopeOf(req), req.params.id)) ??
      Promise.reject(notFound(`run ${req.params.id}`))
    );
  });
  app.get<{ Querystring: { plugin?: string } }>(
    '/v1/jobs',
    { schema: routeSchemas.jobs },
    async (req) => svc.jobs(scopeOf(req), req.query.plugin),
  );

  // ---- actions ----

  if (o.reloadConfig) {
    const reloadConfig = o.reloadConfig;
    app.post('/v1/reload', { config: { operator: true }, schema: routeSchemas.reloadConfig }, () =>
      reloadConfig(),
    );
  }
  /**
   * An upload's or a reload's answer: the version now serving; else 404 for a plugin the caller
   * cannot see, 409 for outcome code `conflict`, 422 with `failed` for the rest.
   */
  const loadAnswer = (
    reply: FastifyReply,
    r: ReloadOutcome,
    conflict: 'unsupported' | 'elsewhere',
    failed: ErrorCode,
  ) => {
    if (r.ok) return reply.send({ ok: true, version: r.version });
    if (r.code === 'not_found') return send(reply, 404, 'HG_API_NOT_FOUND', r.message);
    if (r.code === conflict) return send(reply, 409, 'HG_API_CONFLICT', r.message);
    return send(reply, 422, failed, r.message);
  };
  app.put<{
    Params: { tenant: string; name: string };
    Body: { manifest: Record<string, unknown>; wasm: string };
  }>(
    '/v1/plugins/:tenant/:name',
    // Base64 takes 4 bytes for 3; a manifest is small.
    {
      schema: routeSchemas.upload,
      bodyLimit: o.uploadBodyLimit ?? Math.ceil((DEFAULT_MAX_WASM_BYTES * 4) / 3) + 1_048_576,
    },
    async (req, reply) => {
      const { tenant, name } = req.params;
      const wasm = Buffer.from(req.body.wasm, 'base64');
      const r = await svc.upload(scopeOf(req), tenant, name, req.body.manifest, wasm);
      return loadAnswer(reply, r, 'unsupported', 'HG_API_UPLOAD_REFUSED');
    },
  );
  app.get<{ Params: { tenant: string; name: string } }>(
    '/v1/plugins/:tenant/:name/state',
    { schema: routeSchemas.pluginState },
    async (req) => {
      const id = `${req.params.tenant}/${req.params.name}`;
      return (await svc.state(scopeOf(req), id)) ?? Promise.reject(notFound(`plugin ${id}`));
    },
  );
  app.delete<{ Params: { tenant: string; name: string }; Querystring: { key?: string } }>(
    '/v1/plugins/:tenant/:name/state',
    { schema: routeSchemas.clearState },
    async (req, reply) =>
      answer(
        reply,
        await svc.clearState(
          scopeOf(req),
          `${req.params.tenant}/${req.params.name}`,
          req.query.key ?? null,
        ),
      ),
  );
  app.post<{ Params: { tenant: string; name: string } }>(
    '/v1/plugins/:tenant/:name/reload',
    { schema: routeSchemas.reload },
    async (req, reply) => {
      const r = await svc.reload(scopeOf(req), `${req.params.tenant}/${req.params.name}`);
      return loadAnswer(reply, r, 'elsewhere', 'HG_API_RELOAD_FAILED');
    },
  );

  const answer = (reply: FastifyReply, r: ActionOutcome) => {
    if (r.ok) return reply.send({ ok: true, via: r.via, value: r.value });
    const [status, code] = ACTION_STATUS[r.code] ?? [409, 'HG_API_CONFLICT'];
    return send(reply, status, code, r.message);
  };
  const action = (verb: 'POST' | 'DELETE', suffix: string, act: OperatorAction, summary: string) =>
    app.route<KeyParams & { Body: { note?: string; payload?: unknown } | null }>({
      method: verb,
      url: `/v1/schedules/:tenant/:plugin/:id${suffix}`,
      schema: { ...(act === 'trigger' ? routeSchemas.trigger : routeSchemas.action), summary },
      handler: async (req, reply) => {
        // The action's argument: a pause's note, or a trigger's own payload (JSON text).
        const body = req.body ?? {};
        const arg =
          act === 'trigger'
            ? 'payload' in body
              ? JSON.stringify(body.payload)
              : null
            : (body.note ?? null);
        return answer(reply, await svc.act(scopeOf(req), scheduleKey(req.params), act, arg));
      },
    });
  action('POST', '/pause', 'pause', 'Pause a schedule (with an optional note)');
  action('POST', '/resume', 'resume', 'Resume a paused schedule');
  action(
    'POST',
    '/trigger',
    'trigger',
    'Run a schedule now (its overlap policy applies), with its payload or the one given',
  );
  action('DELETE', '', 'delete', 'Delete a schedule (its runs are kept)');
  app.post<KeyParams & { Body: { ticks: number[] } | { cancel: true } }>(
    '/v1/schedules/:tenant/:plugin/:id/backfill',
    {
      schema: {
        ...routeSchemas.backfill,
        summary:
          'Run past ticks again at a bounded rate, never beside a live run (or cancel a backfill)',
      },
    },
    async (req, reply) =>
      answer(
        reply,
        await svc.act(scopeOf(req), scheduleKey(req.params), 'backfill', JSON.stringify(req.body)),
      ),
  );

  return app;
}

export interface RunningApi {
  /** `http(s)://host:port`, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startApiServer(o: ApiServerOptions): Promise<RunningApi> {
  const app = await buildApiServer(o);
  await app.listen({ host: o.config.host, port: o.config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.config.port;
  const host = o.config.host.includes(':') ? `[${o.config.host}]` : o.config.host;
  const url = `${o.config.tls ? 'https' : 'http'}://${host}:${port}`;
  o.log.info({ url }, `api: listening on ${url}`);
  return { url, close: () => app.close() };
}
