/**
 * A net thread: performs guests' outbound HTTP requests for the thread that runs them (a pool
 * worker, or the main thread in in-thread mode), which blocks until the answer is in the
 * request's shared buffer (protocol.ts). The scheduler's thread never parses a response.
 *
 * Each request, at every hop (the first URL and each redirect's `Location`):
 * - the URL must be http(s) without credentials (guest-request.ts) and match both allowlists
 *   (policy.ts), else `denied`;
 * - the name is resolved (all addresses) and every address must pass the AddressGuard, else
 *   `denied`; the socket then connects to that checked address (our `lookup` answers with it),
 *   so DNS cannot answer differently for the connection (rebinding). IP literals are checked
 *   as they are (the URL parser has already turned `0x7f.1` into `127.0.0.1`);
 * - no connection is reused (`agent: false`): a kept-alive socket checked under one tenant's
 *   allowances must not serve another's request. No proxy variable is read (node:http has
 *   none). TLS certificates are verified with Node's default CAs;
 * - the response head is capped by the HTTP parser (`maxHeaderSize`), the body is counted as
 *   it streams and the socket destroyed the moment it passes its cap. Bodies are never
 *   decompressed by the host: a guest that asks for `accept-encoding` gets the bytes it asked
 *   for and inflates them within its own memory and fuel (no compression bomb on the host);
 * - one timer covers the whole request (resolution, connection, redirects, the last byte).
 * Redirects (301, 302, 303, 307, 308) are followed up to the policy's `maxRedirects`, each one
 * counting as a request of the call: 303, and 301/302 after a POST, continue as a GET without
 * a body; a hop to another origin drops `authorization` and `cookie`.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { parentPort } from 'node:worker_threads';
import { AddressGuard } from './addresses.ts';
import { parseUrl } from './guest-request.ts';
import { allowlistRefusal } from './policy.ts';
import { errorHead, writeNetAnswer, type HttpErrorCode, type NetRequest } from './protocol.ts';

class NetError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CROSS_ORIGIN_DROPPED = new Set(['authorization', 'cookie']);

interface Hop {
  url: URL;
  method: string;
  headers: (readonly [string, string])[];
  body: Uint8Array | null;
}

interface Answer {
  status: number;
  head: string;
  body: Uint8Array | null;
  error: HttpErrorCode | null;
}

/** Performs `req`; resolves with the answer to write (never rejects). */
export async function perform(req: NetRequest): Promise<Answer & { requests: number }> {
  const guard = new AddressGuard(req.policy.allowPrivate);
  let requests = 0;
  let current: http.ClientRequest | null = null;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    current?.destroy(new NetError('timeout', `no complete answer within ${req.timeoutMs} ms`));
  }, req.timeoutMs);
  try {
    const first = parseUrl(req.url);
    if (!(first instanceof URL)) throw new NetError(first.code, first.message);
    let hop: Hop = { url: first, method: req.method, headers: [...req.headers], body: req.body };
    for (;;) {
      // Only a redirect can get here with nothing left: the guest's thread checks the first.
      if (requests >= req.maxRequests)
        throw new NetError(
          'too_many_requests',
          `following a redirect would pass the call's limit of http.requestsPerCall`,
        );
      const refusal = allowlistRefusal(hop.url, req.policy);
      if (refusal !== null)
        throw new NetError('denied', requests > 0 ? `redirect to ${refusal}` : refusal);
      const address = await resolve(hop.url, guard, () => timedOut);
      if (timedOut) throw new NetError('timeout', `no complete answer within ${req.timeoutMs} ms`);
      requests++;
      const res = await send(hop, address, req, (r) => (current = r));
      const location = res.headers.location;
      if (
        REDIRECTS.has(res.status) &&
        typeof location === 'string' &&
        req.policy.limits.maxRedirects > 0
      ) {
        if (requests > req.policy.limits.maxRedirects)
          throw new NetError(
            'too_many_redirects',
            `more than ${req.policy.limits.maxRedirects} redirects`,
          );
        hop = redirect(hop, res.status, location);
        continue;
      }
      const head = JSON.stringify(res.headers);
      return { status: res.status, head, body: res.body, requests, error: null };
    }
  } catch (err) {
    const e =
      err instanceof NetError
        ? err
        : timedOut
          ? new NetError('timeout', `no complete answer within ${req.timeoutMs} ms`)
          : classify(err);
    return { status: 0, head: errorHead(e.code, e.message), body: null, requests, error: e.code };
  } finally {
    clearTimeout(timer);
  }
}

/** The next hop of a redirect (method, body and headers as browsers adjust them). */
function redirect(hop: Hop, status: number, location: string): Hop {
  let next: URL;
  try {
    next = new URL(location, hop.url);
  } catch {
    throw new NetError('protocol_error', `redirect to an invalid location`);
  }
  const checked = parseUrl(next.href);
  if (!(checked instanceof URL)) throw new NetError(checked.code, `redirect: ${checked.message}`);
  const asGet = status === 303 || ((status === 301 || status === 302) && hop.method === 'POST');
  const sameOrigin = checked.origin === hop.url.origin;
  const headers = hop.headers.filter(
    ([name]) =>
      (sameOrigin || !CROSS_ORIGIN_DROPPED.has(name.toLowerCase())) &&
      !(asGet && name.toLowerCase().startsWith('content-')),
  );
  return {
    url: checked,
    method: asGet && hop.method !== 'HEAD' ? 'GET' : hop.method,
    headers,
    body: asGet ? null : hop.body,
  };
}

/** The checked address to connect to for `url`. */
async function resolve(
  url: URL,
  guard: AddressGuard,
  timedOut: () => boolean,
): Promise<{ address: string; family: 4 | 6 }> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const literal = isIP(host);
  let addresses: { address: string; family: number }[];
  if (literal !== 0) addresses = [{ address: host, family: literal }];
  else {
    try {
      addresses = await dnsLookup(host, { all: true, verbatim: true });
    } catch (err) {
      if (timedOut()) throw new NetError('timeout', 'the request timed out while resolving');
      throw new NetError(
        'dns_failed',
        `cannot resolve ${host}: ${(err as { code?: string }).code ?? String(err)}`,
      );
    }
  }
  if (addresses.length === 0) throw new NetError('dns_failed', `${host} has no address`);
  for (const a of addresses) {
    const why = guard.refusal(a.address);
    if (why !== null) throw new NetError('denied', literal ? why : `${host} resolves to ${why}`);
  }
  const first = addresses[0] as { address: string; family: number };
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

/** One request to a checked address; the body read within its cap. */
function send(
  hop: Hop,
  address: { address: string; family: 4 | 6 },
  req: NetRequest,
  track: (r: http.ClientRequest) => void,
): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array }> {
  const lookup: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all)
      (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        address,
      ]);
    else cb(null, address.address, address.family);
  };
  const isHttps = hop.url.protocol === 'https:';
  const hostname = hop.url.hostname.startsWith('[')
    ? hop.url.hostname.slice(1, -1)
    : hop.url.hostname;
  const headers: Record<string, string> = {};
  for (const [k, v] of hop.headers) headers[k] = v;
  if (hop.body !== null) headers['content-length'] = String(hop.body.length);
  const options: https.RequestOptions = {
    protocol: hop.url.protocol,
    hostname,
    port: hop.url.port === '' ? (isHttps ? 443 : 80) : Number(hop.url.port),
    path: `${hop.url.pathname}${hop.url.search}`,
    method: hop.method,
    headers,
    agent: false,
    lookup,
    maxHeaderSize: req.policy.limits.responseHeaderBytes,
    insecureHTTPParser: false,
    ...(isHttps && isIP(hostname) === 0 ? { servername: hostname } : {}),
  };
  return new Promise((resolve, reject) => {
    const r = (isHttps ? https : http).request(options, (res) => {
      const status = res.statusCode ?? 0;
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
        const name = (res.rawHeaders[i] as string).toLowerCase();
        const value = res.rawHeaders[i + 1] as string;
        out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
      }
      if (REDIRECTS.has(status) && out.location !== undefined) {
        res.destroy();
        resolve({ status, headers: out, body: new Uint8Array(0) });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > req.responseBytes) {
          r.destroy(
            new NetError(
              'response_too_large',
              `the response body passed ${req.responseBytes} bytes (the plugin's http.responseBytes, or what its call has left of http.bytesPerCall)`,
            ),
          );
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const body = new Uint8Array(size);
        let at = 0;
        for (const c of chunks) {
          body.set(c, at);
          at += c.length;
        }
        resolve({ status, headers: out, body });
      });
      res.on('error', reject);
      res.on('aborted', () => reject(new NetError('protocol_error', 'the response was cut short')));
    });
    track(r);
    r.on('error', reject);
    if (hop.body !== null) r.end(hop.body);
    else r.end();
  });
}

function classify(err: unknown): NetError {
  const code = (err as { code?: string }).code ?? '';
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'HPE_HEADER_OVERFLOW')
    return new NetError(
      'headers_too_large',
      'the response head is larger than http.responseHeaderBytes',
    );
  if (
    ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ETIMEDOUT'].includes(
      code,
    )
  )
    return new NetError('connect_failed', `${code}: ${message}`);
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL'))
    return new NetError('connect_failed', `TLS: ${message}`);
  return new NetError('protocol_error', code ? `${code}: ${message}` : message);
}

const port = parentPort;
if (port) {
  port.on('message', (req: NetRequest) => {
    void perform(req).then((a) => writeNetAnswer(req.channel, req.seq, a));
  });
}
