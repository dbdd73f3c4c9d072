/**
 * One guest instance's outbound HTTP: the kernel's `http` hook (kernel/extism-kernel.ts). It
 * holds the plugin's policy and the call's counters and decides, in this order:
 * 1. fuel: `HTTP_REQUEST_FUEL` plus one unit per byte of the request, charged before anything
 *    leaves (a guest out of fuel sends nothing), and one per byte of the answer after it;
 * 2. grant: a plugin without the `http` capability (or whose tenant lists no hosts) is denied;
 * 3. the call's request cap (`requestsPerCall`), the request (guest-request.ts), its body
 *    (`requestBytes`) and what the call has left of `bytesPerCall`;
 * 4. the net thread (client.ts, net-main.ts) performs it within min(`timeoutMs`, what is left
 *    of the call's deadline), with the response capped at min(`responseBytes`, the call's
 *    byte budget left, the Extism memory left).
 * A refusal by policy (`denied`: grant, allowlist, address, method, scheme; and
 * `too_many_requests`) ends the call as `host_call_denied`, like a host function refused for
 * its capability: the guest receives the error, and traps at the fuel check that follows.
 * Other failures (timeout, too large, DNS, connection) are the world's, not the guest's: it
 * receives the error and goes on (a PDK sees status 0 and the error JSON as the body).
 */
import type { HttpAnswer } from '../kernel/extism-kernel.ts';
import { netClient, type NetClient } from './client.ts';
import { parseGuestRequest } from './guest-request.ts';
import type { HttpPolicy } from './policy.ts';
import { errorHead, type HttpErrorCode } from './protocol.ts';

/** Fuel of one request (on top of one unit per byte): about what 100k operators cost. */
export const HTTP_REQUEST_FUEL = 100_000;

/** One request, for the operator's log and metrics (never bodies). */
export interface HttpRequestRecord {
  readonly method: string;
  /** Scheme, host and port; no path (it may carry tokens). */
  readonly origin: string;
  /** HTTP status, or 0 with `error`. */
  readonly status: number;
  readonly error: HttpErrorCode | null;
  readonly ms: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface GuestHttpHooks {
  charge(n: number): boolean;
  /** Ends the call as `host_call_denied` with this message. */
  deny(message: string): void;
  record?(r: HttpRequestRecord): void;
}

export class GuestHttp {
  readonly #policy: HttpPolicy | null;
  readonly #hooks: GuestHttpHooks;
  readonly #client: () => NetClient;
  #requests = 0;
  #bytes = 0;
  #deadline = Infinity;

  /** `policy` null: the plugin may not make requests (no grant). */
  constructor(
    policy: HttpPolicy | null,
    hooks: GuestHttpHooks,
    client: () => NetClient = netClient,
  ) {
    this.#policy = policy;
    this.#hooks = hooks;
    this.#client = client;
  }

  /** A call starts: its counters reset; `deadline` (ms since the epoch) bounds its requests. */
  begin(deadline: number): void {
    this.#requests = 0;
    this.#bytes = 0;
    this.#deadline = deadline;
  }

  /** The kernel's `http` hook. */
  request(text: string, body: Uint8Array | null, room: number): HttpAnswer {
    const bodyBytes = body?.length ?? 0;
    if (!this.#hooks.charge(HTTP_REQUEST_FUEL + text.length + bodyBytes))
      return this.#fail('out_of_fuel', 'not enough fuel left for an HTTP request');
    const policy = this.#policy;
    if (policy === null) {
      return this.#deny(
        'denied',
        'outbound HTTP is not granted to this plugin (capability http, and hosts on the tenant allowlist)',
      );
    }
    const limits = policy.limits;
    if (this.#requests >= limits.requestsPerCall)
      return this.#deny(
        'too_many_requests',
        `the call has made its ${limits.requestsPerCall} requests (http.requestsPerCall)`,
      );
    const parsed = parseGuestRequest(text, policy);
    if (!parsed.ok) {
      return parsed.code === 'denied'
        ? this.#deny(parsed.code, parsed.message)
        : this.#fail(parsed.code, parsed.message);
    }
    const { url, method, headers } = parsed.request;
    if (bodyBytes > limits.requestBytes)
      return this.#fail(
        'request_too_large',
        `the request body is ${bodyBytes} bytes; the limit is ${limits.requestBytes} (http.requestBytes)`,
      );
    const budget = limits.bytesPerCall - this.#bytes - bodyBytes;
    if (budget < 0)
      return this.#fail(
        'request_too_large',
        `the call has used its http.bytesPerCall (${limits.bytesPerCall})`,
      );
    // Ends before the call's deadline (when the pool would terminate the worker), so that the
    // guest gets `timeout` and can still report it.
    const left = this.#deadline - Date.now();
    const timeoutMs = Math.min(limits.timeoutMs, Math.floor(left - Math.min(250, left / 10)));
    if (timeoutMs <= 0) return this.#fail('timeout', 'the call has no time left for a request');
    const started = performance.now();
    const a = this.#client().request({
      url: url.href,
      method,
      headers,
      body,
      policy,
      timeoutMs,
      responseBytes: Math.max(0, Math.min(limits.responseBytes, budget, room)),
      maxRequests: Math.min(limits.requestsPerCall - this.#requests, 1 + limits.maxRedirects),
    });
    this.#requests += Math.max(1, a.requests);
    this.#bytes += bodyBytes + a.body.length;
    const error = a.status === 0 ? (a.error ?? 'protocol_error') : null;
    this.#hooks.record?.({
      method,
      origin: url.origin,
      status: a.status,
      error,
      ms: performance.now() - started,
      bytesIn: a.body.length,
      bytesOut: bodyBytes,
    });
    this.#hooks.charge(a.body.length + a.head.length);
    if (error === 'denied' || error === 'too_many_requests')
      this.#hooks.deny(`http_request: ${error}: ${errorMessage(a.head)}`);
    return { status: a.status, head: a.head, body: a.body };
  }

  #fail(code: HttpErrorCode, message: string): HttpAnswer {
    return { status: 0, head: errorHead(code, message), body: new Uint8Array(0) };
  }

  #deny(code: HttpErrorCode, message: string): HttpAnswer {
    this.#hooks.deny(`http_request: ${code}: ${message}`);
    return this.#fail(code, message);
  }
}

function errorMessage(head: string): string {
  try {
    return (JSON.parse(head) as { error: { message: string } }).error.message;
  } catch {
    return head;
  }
}
