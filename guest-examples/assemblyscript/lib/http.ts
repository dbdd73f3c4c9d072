// Outbound HTTP through Extism's kernel imports (`extism:host/env`: `http_request`,
// `http_status_code`, `http_headers`), see docs/guest-abi.md for what the host allows.
//
// @extism/as-pdk 1.0.0 (the version installed here) declares only `http_request` and has no
// `Http` helper, so this file declares the other two imports itself. The request is the JSON
// every Extism PDK sends: `{"url","method","headers":{name: value}}`; the body (if any) is a
// second block. The host answers with the body block, the status (`http_status_code()`) and
// the headers as a JSON object of lowercased names (`http_headers()`). A failed request has
// status 0 and the body `{"error":{"code","message"}}` (codes: `denied`, `timeout`,
// `response_too_large`, `request_too_large`, `too_many_requests`, `connect_failed`,
// `invalid_request`); a policy denial ends the call before the guest sees it.

import { Memory } from '@extism/as-pdk';
import { free, http_request, length } from '@extism/as-pdk/lib/env';
import { Json, jsonNull, jsonObject, jsonString } from './json';

@external('extism:host/env', 'http_status_code') declare function http_status_code(): i32;
@external('extism:host/env', 'http_headers') declare function http_headers(): u64;

/** The answer to `httpRequest`. */
export class HttpResponse {
  /** The HTTP status, or 0 when the request failed (see `errorCode`). */
  status: i32 = 0;
  /** The body, decoded as UTF-8 ("" when there is none). */
  body: string = '';
  /** Response headers: a JSON object of lowercased names (JSON null when the host sent none). */
  headers: Json = jsonNull();
  /** For status 0: the host's error code (`no_response` when it sent no error body). */
  errorCode: string = '';
  errorMessage: string = '';

  get ok(): bool {
    return this.status >= 200 && this.status < 300;
  }

  /** A header value by lowercased name, or null. */
  header(name: string): string | null {
    const v = this.headers.get(name);
    return v.isString() ? v.asString() : null;
  }

  /**
   * null for a 2xx answer; otherwise the message a run should fail with:
   * `http: <code>: <message>` (no answer) or `http: status <n>`.
   */
  failure(): string | null {
    if (this.status == 0) return 'http: ' + this.errorCode + ': ' + this.errorMessage;
    if (!this.ok) return 'http: status ' + this.status.toString();
    return null;
  }
}

function readBlock(offset: u64): string {
  if (offset == 0) return '';
  const n = length(offset);
  if (n == 0) return '';
  return new Memory(offset, n).toString();
}

/**
 * Sends one request. `headers` is a JSON object of name → string value (or null); `body` is
 * sent as UTF-8 when not null. Never aborts: failures come back as status 0.
 */
export function httpRequest(
  method: string,
  url: string,
  headers: Json | null = null,
  body: string | null = null,
): HttpResponse {
  const meta = jsonObject()
    .set('url', jsonString(url))
    .set('method', jsonString(method))
    .set('headers', headers === null ? jsonObject() : headers);
  const req = Memory.allocateString(meta.stringify());
  let bodyBlock: Memory | null = null;
  if (body !== null) bodyBlock = Memory.allocateString(body);
  const offset = http_request(req.offset, bodyBlock === null ? 0 : bodyBlock.offset);
  const res = new HttpResponse();
  res.status = http_status_code();
  res.body = readBlock(offset);
  const headersOffset = http_headers();
  const headersText = readBlock(headersOffset);
  if (headersText.length > 0) {
    const parsed = Json.parse(headersText);
    if (parsed !== null) res.headers = parsed;
  }
  // Everything is read: give the blocks back (freeing an unknown offset is a no-op).
  if (offset != 0) free(offset);
  if (headersOffset != 0) free(headersOffset);
  req.free();
  if (bodyBlock !== null) bodyBlock.free();
  if (res.status == 0) {
    const err = Json.parse(res.body);
    const e = err === null ? jsonNull() : err.get('error');
    if (e.isObject()) {
      res.errorCode = e.get('code').asString('unknown');
      res.errorMessage = e.get('message').asString();
    } else {
      res.errorCode = 'no_response';
      res.errorMessage = 'the host sent no response (is outbound HTTP enabled for this plugin?)';
    }
  }
  return res;
}
