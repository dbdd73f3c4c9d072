/**
 * The channel between a guest's thread and its net thread (net-main.ts): the guest thread
 * posts a `NetRequest` and blocks in `Atomics.wait` on the request's `SharedArrayBuffer` until
 * the net thread writes the answer there and notifies (the same synchronous-call design as
 * host functions in the pool, protocol.ts there). Layout: control words, then the data area:
 * the head (headers JSON, or the error JSON) followed by the body.
 */
import type { HttpPolicy } from './policy.ts';

/**
 * [0] state (0 waiting, 1 answered), [1] sequence, [2] status (0: error), [3] head bytes,
 * [4] body bytes, [5] requests made (1 + redirects followed), [6] error (index + 1 in
 * `HTTP_ERROR_CODES`; 0: none).
 */
export const NET_CTL_WORDS = 8;
export const NET_CTL_BYTES = NET_CTL_WORDS * 4;

/** Error codes a guest can receive (status 0, body `{"error":{"code","message"}}`). */
export const HTTP_ERROR_CODES = [
  'denied',
  'invalid_request',
  'request_too_large',
  'response_too_large',
  'headers_too_large',
  'too_many_requests',
  'too_many_redirects',
  'timeout',
  'dns_failed',
  'connect_failed',
  'protocol_error',
  'out_of_fuel',
] as const;
export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[number];

export interface NetRequest {
  readonly seq: number;
  readonly channel: SharedArrayBuffer;
  readonly url: string;
  readonly method: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array | null;
  readonly policy: HttpPolicy;
  /** From the request's start to its last byte, redirects included. */
  readonly timeoutMs: number;
  /** Largest body accepted for this request (the limit, or what the call has left). */
  readonly responseBytes: number;
  /** Requests this one may make (1 + redirects, within the call's request cap). */
  readonly maxRequests: number;
}

/** Bytes a channel needs for an answer under `policy`'s limits. */
export function channelBytes(policy: HttpPolicy): number {
  // Headers as JSON may grow by escaping (at most 6 bytes per byte for \u00XX); errors are short.
  return (
    NET_CTL_BYTES + 6 * policy.limits.responseHeaderBytes + 8_192 + policy.limits.responseBytes
  );
}

export interface NetAnswer {
  readonly status: number;
  /** Headers JSON (status > 0) or error JSON (status 0). */
  readonly head: string;
  readonly body: Uint8Array;
  readonly requests: number;
  /** Set when status is 0. */
  readonly error: HttpErrorCode | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Net thread: writes an answer and wakes the guest thread. */
export function writeNetAnswer(
  channel: SharedArrayBuffer,
  seq: number,
  a: {
    status: number;
    head: string;
    body: Uint8Array | null;
    requests: number;
    error: HttpErrorCode | null;
  },
): void {
  const ctl = new Int32Array(channel, 0, NET_CTL_WORDS);
  const room = channel.byteLength - NET_CTL_BYTES;
  let head = encoder.encode(a.head);
  let body = a.body ?? new Uint8Array(0);
  let status = a.status;
  let error = a.error;
  if (head.length + body.length > room) {
    status = 0;
    error = 'headers_too_large';
    body = new Uint8Array(0);
    head = encoder.encode(
      JSON.stringify({
        error: { code: 'headers_too_large', message: 'the response head does not fit the limit' },
      }),
    );
  }
  new Uint8Array(channel, NET_CTL_BYTES, head.length).set(head);
  new Uint8Array(channel, NET_CTL_BYTES + head.length, body.length).set(body);
  Atomics.store(ctl, 2, status);
  Atomics.store(ctl, 3, head.length);
  Atomics.store(ctl, 4, body.length);
  Atomics.store(ctl, 5, a.requests);
  Atomics.store(ctl, 6, error === null ? 0 : HTTP_ERROR_CODES.indexOf(error) + 1);
  Atomics.store(ctl, 1, seq);
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
}

/** Guest thread: reads the answer `writeNetAnswer` wrote. */
export function readNetAnswer(channel: SharedArrayBuffer): NetAnswer {
  const ctl = new Int32Array(channel, 0, NET_CTL_WORDS);
  const headLen = Atomics.load(ctl, 3);
  const bodyLen = Atomics.load(ctl, 4);
  return {
    status: Atomics.load(ctl, 2),
    head: decoder.decode(new Uint8Array(channel, NET_CTL_BYTES, headLen)),
    body: new Uint8Array(channel, NET_CTL_BYTES + headLen, bodyLen).slice(),
    requests: Atomics.load(ctl, 5),
    error: HTTP_ERROR_CODES[Atomics.load(ctl, 6) - 1] ?? null,
  };
}

export function errorHead(code: HttpErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message } });
}
