/**
 * Outbound HTTP for guests: who may be reached, and how much. A tenant grants hosts and caps
 * (config `tenants[].http`), a plugin asks for hosts and limits within them (manifest `http`),
 * and `resolveHttpPolicy` combines the two into the `HttpPolicy` a plugin's instances enforce
 * (docs/guest-abi.md, "Outbound HTTP").
 *
 * Decisions:
 * - A URL is allowed when it matches one of the tenant's patterns AND one of the manifest's:
 *   a manifest can only narrow. Patterns are `[scheme://]host[:port]` (Spin's
 *   `allowed_outbound_hosts` shape): scheme `http`, `https` or `*` (omitted: `https`); host
 *   exact, `*.suffix` (any subdomain, not the suffix itself), an IP literal, or `*` (any);
 *   port a number or `*` (omitted: the scheme's default). Hosts are compared after WHATWG URL
 *   normalisation on both sides, so `0x7f.1`, `2130706433` and `127.0.0.1` are one host, and
 *   an IDN matches its punycode.
 * - Matching a name says nothing about where it points: loopback, private, link-local,
 *   metadata and other special addresses are refused after resolution (addresses.ts) unless
 *   the tenant lists them in `allowPrivate` (CIDRs). A manifest cannot widen that.
 * - Every limit is min(manifest, tenant cap); methods are the intersection.
 */
import { isIP } from 'node:net';
import { parseCidr } from './addresses.ts';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The numeric limits of outbound HTTP (a manifest asks, a tenant caps). */
export interface HttpLimits {
  /** Requests per guest call (a redirect followed counts as one more). */
  readonly requestsPerCall: number;
  /** Largest request body (bytes). */
  readonly requestBytes: number;
  /** Largest response body (bytes), counted as it streams in. */
  readonly responseBytes: number;
  /** Largest response head: status line and headers (bytes). */
  readonly responseHeaderBytes: number;
  /** Per request, from the call to the last byte, redirects included (ms). */
  readonly timeoutMs: number;
  /** Request and response bodies together, per guest call (bytes). */
  readonly bytesPerCall: number;
  /** Redirects followed per request (each hop checked again); 0: none followed. */
  readonly maxRedirects: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  requestsPerCall: 16,
  requestBytes: 65_536,
  responseBytes: 1_048_576,
  responseHeaderBytes: 16_384,
  timeoutMs: 5_000,
  bytesPerCall: 4_194_304,
  maxRedirects: 5,
});

/** A tenant's caps when its config says nothing. */
export const DEFAULT_HTTP_CAPS: HttpLimits = Object.freeze({
  requestsPerCall: 64,
  requestBytes: 1_048_576,
  responseBytes: 8_388_608,
  responseHeaderBytes: 65_536,
  timeoutMs: 30_000,
  bytesPerCall: 33_554_432,
  maxRedirects: 10,
});

/** Hard ceilings of any limit (validation bounds of config and manifest). */
export const HTTP_LIMIT_MAX: HttpLimits = Object.freeze({
  requestsPerCall: 10_000,
  requestBytes: 67_108_864,
  responseBytes: 268_435_456,
  responseHeaderBytes: 1_048_576,
  timeoutMs: 600_000,
  bytesPerCall: 1_073_741_824,
  maxRedirects: 20,
});

/** A parsed allowlist entry. */
export interface HostPattern {
  /** `http`, `https` or `*`. */
  readonly scheme: 'http' | 'https' | '*';
  /** Normalised host; `*.suffix` keeps its `*.`; `*` is any host. */
  readonly host: string;
  /** A port, `*`, or null: the default port of the URL's scheme. */
  readonly port: number | '*' | null;
  /** The entry as written (for messages). */
  readonly source: string;
}

/** What one plugin's instances enforce (plain data: it travels to pool workers). */
export interface HttpPolicy {
  /** The tenant's grant. */
  readonly tenantHosts: readonly HostPattern[];
  /** The manifest's ask. */
  readonly pluginHosts: readonly HostPattern[];
  /** CIDRs of special addresses the tenant allows (e.g. `127.0.0.1/32`). */
  readonly allowPrivate: readonly string[];
  readonly methods: readonly HttpMethod[];
  readonly limits: HttpLimits;
}

/** The tenant's side (config `tenants[].http`), validated. */
export interface TenantHttpConfig {
  readonly allowedHosts: readonly HostPattern[];
  readonly allowPrivate: readonly string[];
  readonly methods: readonly HttpMethod[];
  readonly caps: HttpLimits;
}

/** The plugin's side (manifest `http`), validated. */
export interface PluginHttpConfig {
  readonly allowedHosts: readonly HostPattern[];
  readonly methods: readonly HttpMethod[];
  readonly limits: HttpLimits;
}

const PATTERN =
  /^(?:(https?|\*):\/\/)?(\*|\*\.[^/:*[\]]+|\[[0-9a-fA-F:.]+\]|[^/:*[\]]+)(?::(\d{1,5}|\*))?$/i;

/** Parses one allowlist entry; throws `Error` with a message naming what is wrong. */
export function parseHostPattern(source: string): HostPattern {
  const m = PATTERN.exec(source);
  if (!m) {
    throw new Error(
      `'${source}' is not a host pattern ([scheme://]host[:port], e.g. "https://api.example.com", "*.example.com", "http://127.0.0.1:*")`,
    );
  }
  const scheme = (m[1]?.toLowerCase() ?? 'https') as HostPattern['scheme'];
  const rawHost = m[2] as string;
  let host: string;
  if (rawHost === '*') host = '*';
  else if (rawHost.startsWith('*.')) host = `*.${normalHost(rawHost.slice(2), source)}`;
  else host = normalHost(rawHost, source);
  let port: HostPattern['port'] = null;
  if (m[3] === '*') port = '*';
  else if (m[3] !== undefined) {
    port = Number(m[3]);
    if (port < 1 || port > 65_535) throw new Error(`'${source}': port ${port} is out of range`);
  }
  return Object.freeze({ scheme, host, port, source });
}

function normalHost(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(`http://${raw}/`);
  } catch {
    throw new Error(`'${source}': '${raw}' is not a valid host name`);
  }
  if (url.hostname === '') throw new Error(`'${source}': empty host`);
  return url.hostname;
}

export function defaultPort(scheme: string): number {
  return scheme === 'http' || scheme === 'http:' ? 80 : 443;
}

/** Whether `url` (already parsed and checked: http or https) matches `p`. */
export function matchesPattern(url: URL, p: HostPattern): boolean {
  const scheme = url.protocol.slice(0, -1);
  if (p.scheme !== '*' && p.scheme !== scheme) return false;
  const port = url.port === '' ? defaultPort(scheme) : Number(url.port);
  if (p.port !== '*' && (p.port ?? defaultPort(scheme)) !== port) return false;
  const host = url.hostname;
  if (p.host === '*') return true;
  if (p.host.startsWith('*.')) {
    const suffix = p.host.slice(1); // ".example.com"
    return host.length > suffix.length && host.endsWith(suffix) && isIP(host) === 0;
  }
  return host === p.host;
}

/** Why `url` is not allowed by the policy's allowlists, or null when it is. */
export function allowlistRefusal(url: URL, policy: HttpPolicy): string | null {
  if (!policy.tenantHosts.some((p) => matchesPattern(url, p)))
    return `${url.origin} is not on the tenant's allowlist`;
  if (!policy.pluginHosts.some((p) => matchesPattern(url, p)))
    return `${url.origin} is not on the plugin's allowlist (its manifest's http.allowedHosts)`;
  return null;
}

/** The policy a plugin's instances enforce: its manifest's ask within its tenant's grant. */
export function resolveHttpPolicy(plugin: PluginHttpConfig, tenant: TenantHttpConfig): HttpPolicy {
  const limits = {} as Record<keyof HttpLimits, number>;
  for (const k of Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[])
    limits[k] = Math.min(plugin.limits[k], tenant.caps[k]);
  return Object.freeze({
    tenantHosts: tenant.allowedHosts,
    pluginHosts: plugin.allowedHosts,
    allowPrivate: tenant.allowPrivate,
    methods: Object.freeze(plugin.methods.filter((m) => tenant.methods.includes(m))),
    limits: Object.freeze(limits as unknown as HttpLimits),
  });
}

/** The `http` section of a manifest or a tenant, as written. */
export interface RawHttpSection {
  allowedHosts?: string[];
  allowPrivate?: string[];
  methods?: HttpMethod[];
  limits?: Partial<Record<keyof HttpLimits, number>>;
}

const limitProps: Record<string, unknown> = {};
for (const [k, max] of Object.entries(HTTP_LIMIT_MAX))
  limitProps[k] = { type: 'integer', minimum: k === 'maxRedirects' ? 0 : 1, maximum: max };

const common = {
  allowedHosts: {
    type: 'array',
    maxItems: 1000,
    items: { type: 'string', minLength: 1, maxLength: 300 },
  },
  methods: { type: 'array', uniqueItems: true, items: { type: 'string', enum: [...HTTP_METHODS] } },
  limits: { type: 'object', additionalProperties: false, properties: limitProps },
};

/** JSON schema of a manifest's `http` section. */
export const PLUGIN_HTTP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: common,
} as const;

/** JSON schema of a tenant's `http` section. */
export const TENANT_HTTP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...common,
    allowPrivate: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 64 } },
  },
} as const;

/** A problem in an `http` section: the field (JSON pointer within it) and what is wrong. */
export class HttpSectionError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(problem);
  }
}

function patterns(list: readonly string[] | undefined): readonly HostPattern[] {
  return Object.freeze(
    (list ?? []).map((s, i) => {
      try {
        return parseHostPattern(s);
      } catch (err) {
        throw new HttpSectionError(`/allowedHosts/${i}`, (err as Error).message);
      }
    }),
  );
}

function limitsOf(raw: RawHttpSection['limits'], base: HttpLimits): HttpLimits {
  return Object.freeze({ ...base, ...raw });
}

/** A manifest's `http` section (validated by PLUGIN_HTTP_SCHEMA) as a `PluginHttpConfig`. */
export function pluginHttpConfig(raw: RawHttpSection | undefined): PluginHttpConfig {
  return Object.freeze({
    allowedHosts: patterns(raw?.allowedHosts),
    methods: Object.freeze([...(raw?.methods ?? ['GET', 'HEAD'])]),
    limits: limitsOf(raw?.limits, DEFAULT_HTTP_LIMITS),
  });
}

/** A tenant's `http` section (validated by TENANT_HTTP_SCHEMA) as a `TenantHttpConfig`. */
export function tenantHttpConfig(raw: RawHttpSection | undefined): TenantHttpConfig {
  const allowPrivate = (raw?.allowPrivate ?? []).map((c, i) => {
    try {
      parseCidr(c);
    } catch (err) {
      throw new HttpSectionError(`/allowPrivate/${i}`, (err as Error).message);
    }
    return c;
  });
  return Object.freeze({
    allowedHosts: patterns(raw?.allowedHosts),
    allowPrivate: Object.freeze(allowPrivate),
    methods: Object.freeze([...(raw?.methods ?? HTTP_METHODS)]),
    caps: limitsOf(raw?.limits, DEFAULT_HTTP_CAPS),
  });
}
