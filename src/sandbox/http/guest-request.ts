/**
 * A guest's `http_request` argument, parsed strictly before anything leaves its thread: the
 * JSON Extism's PDKs send (`{"url", "method", "headers"}`), with a URL that is http or https,
 * carries no credentials and no control characters (the WHATWG parser would silently drop tabs
 * and newlines, so they are refused first), a method the policy allows, and headers that are
 * valid tokens and values (no CR, LF or NUL: no header injection) and none of those the host
 * owns (framing, hop-by-hop, proxy). The allowlist and the addresses are checked by the net
 * thread, at each hop (net-main.ts).
 */
import type { HttpErrorCode } from './protocol.ts';
import type { HttpPolicy } from './policy.ts';
import { HTTP_METHODS } from './policy.ts';

export const MAX_URL_BYTES = 8_192;
export const MAX_REQUEST_HEADERS = 100;
export const MAX_REQUEST_HEADER_BYTES = 16_384;

/** Headers the host sets or refuses: a guest cannot frame, upgrade or route the request. */
const HOST_OWNED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
  'proxy-authenticate',
  'http2-settings',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\x00-\x20\x7f]/;

export interface GuestRequest {
  readonly url: URL;
  readonly method: string;
  readonly headers: readonly (readonly [string, string])[];
}

export interface Refused {
  readonly ok: false;
  readonly code: HttpErrorCode;
  readonly message: string;
}

export type Parsed = { readonly ok: true; readonly request: GuestRequest } | Refused;

function bad(code: HttpErrorCode, message: string): Refused {
  return { ok: false, code, message };
}

/** Parses and checks the request JSON (`text`) against `policy`'s methods. */
export function parseGuestRequest(text: string, policy: HttpPolicy): Parsed {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return bad('invalid_request', 'the request is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return bad('invalid_request', 'the request must be a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.url !== 'string') return bad('invalid_request', '/url must be a string');
  const url = parseUrl(o.url);
  if (!(url instanceof URL)) return url;

  const rawMethod = o.method ?? 'GET';
  if (typeof rawMethod !== 'string') return bad('invalid_request', '/method must be a string');
  const method = rawMethod.toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method))
    return bad('invalid_request', `/method: '${rawMethod.slice(0, 32)}' is not supported`);
  if (!(policy.methods as readonly string[]).includes(method))
    return bad('denied', `method ${method} is not allowed for this plugin`);

  const headers: [string, string][] = [];
  if (o.headers !== undefined && o.headers !== null) {
    if (typeof o.headers !== 'object' || Array.isArray(o.headers))
      return bad('invalid_request', '/headers must be an object of strings');
    let bytes = 0;
    for (const [name, value] of Object.entries(o.headers as Record<string, unknown>)) {
      if (typeof value !== 'string')
        return bad('invalid_request', `/headers/${name.slice(0, 64)} must be a string`);
      if (!TOKEN.test(name))
        return bad('invalid_request', `header name '${name.slice(0, 64)}' is not a valid token`);
      if (!FIELD_VALUE.test(value))
        return bad('invalid_request', `header ${name}: the value holds control characters`);
      if (HOST_OWNED.has(name.toLowerCase()))
        return bad('invalid_request', `header ${name} is set by the host`);
      bytes += name.length + value.length + 4;
      headers.push([name, value]);
    }
    if (headers.length > MAX_REQUEST_HEADERS || bytes > MAX_REQUEST_HEADER_BYTES)
      return bad(
        'request_too_large',
        `at most ${MAX_REQUEST_HEADERS} headers and ${MAX_REQUEST_HEADER_BYTES} bytes of them`,
      );
  }
  return { ok: true, request: { url, method, headers } };
}

/** A URL a guest (or a redirect) names, checked; a `Parsed` failure otherwise. */
export function parseUrl(text: string): URL | Refused {
  if (text.length > MAX_URL_BYTES)
    return bad('invalid_request', `the URL is longer than ${MAX_URL_BYTES} characters`);
  if (CONTROL_OR_SPACE.test(text))
    return bad('invalid_request', 'the URL holds spaces or control characters');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad('invalid_request', `'${text.slice(0, 200)}' is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return bad('denied', `scheme ${url.protocol.slice(0, 16)} is not allowed (http or https only)`);
  // Any `@` in the authority, even with nothing before it: parsers disagree on such URLs.
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#\\]*)/i.exec(text)?.[1] ?? '';
  if (url.username !== '' || url.password !== '' || authority.includes('@'))
    return bad('invalid_request', 'credentials in the URL are not accepted (use a header)');
  if (url.hostname === '') return bad('invalid_request', 'the URL has no host');
  url.hash = '';
  return url;
}
