/**
 * API tokens. The config holds each token's SHA-256 (`hourglass token` makes a token and its
 * line), never the token. A request's bearer token is hashed and compared with every configured
 * hash in constant time (`timingSafeEqual`, no early exit), so neither the comparison nor the
 * number of tokens tried says how close a guess was.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiTokenConfig } from '../config/host-config.ts';
import type { Scope } from '../operator/service.ts';

export interface Caller {
  /** The token's name (logged with every request). */
  readonly name: string;
  readonly scope: Scope;
}

/** Longest bearer token read (longer ones are refused unread). */
const MAX_TOKEN_CHARS = 512;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token (256 bits, base64url) with the `hg_` prefix secret scanners look for. */
export function newToken(): string {
  return `hg_${randomBytes(32).toString('base64url')}`;
}

export class TokenTable {
  readonly #tokens: readonly { readonly hash: Buffer; readonly caller: Caller }[];

  constructor(tokens: readonly ApiTokenConfig[]) {
    this.#tokens = tokens.map((t) => ({
      hash: Buffer.from(t.sha256, 'hex'),
      caller: Object.freeze({
        name: t.name,
        scope:
          t.tenant === null
            ? Object.freeze({ kind: 'operator' as const })
            : Object.freeze({ kind: 'tenant' as const, tenant: t.tenant }),
      }),
    }));
  }

  /** The caller an `Authorization` header names, or null (absent, malformed or unknown). */
  verify(authorization: string | undefined): Caller | null {
    if (authorization === undefined || authorization.length > MAX_TOKEN_CHARS + 7) return null;
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(authorization);
    if (!m?.[1]) return null;
    const presented = createHash('sha256').update(m[1], 'utf8').digest();
    let found: Caller | null = null;
    for (const t of this.#tokens) {
      if (timingSafeEqual(presented, t.hash) && found === null) found = t.caller;
    }
    return found;
  }
}
