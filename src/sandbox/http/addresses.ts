/**
 * Which IP addresses a guest's request may connect to (SSRF). Every address a name resolves to
 * is checked, and the connection goes to an address that passed (net-main.ts passes it as the
 * socket's `lookup` answer), so a name cannot resolve one way for the check and another for
 * the connection (DNS rebinding). A special address is refused unless the tenant's
 * `allowPrivate` lists it.
 *
 * Special: unspecified, loopback, RFC 1918 private, carrier-grade NAT, link-local (cloud
 * metadata 169.254.169.254 and fd00:ec2::254 included), benchmarking, documentation, IETF
 * protocol assignments, multicast, reserved and broadcast; on IPv6 also unique-local,
 * site-local, discard-only, and the translation prefixes that embed an IPv4 address (NAT64,
 * 6to4, Teredo), refused whole since the embedded address could be any of the above.
 * `net.BlockList` matches IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) against IPv4 rules.
 */
import { BlockList, isIP } from 'node:net';

const SPECIAL_V4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4], // reserved, and 255.255.255.255
];

const SPECIAL_V6: readonly (readonly [string, number])[] = [
  ['::', 128],
  ['::1', 128],
  ['::', 96], // IPv4-compatible (deprecated)
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard-only
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4
  ['fc00::', 7], // unique local (fd00:ec2::254, AWS metadata, included)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

function blockList(v4: readonly (readonly [string, number])[], v6: typeof v4): BlockList {
  const b = new BlockList();
  for (const [a, p] of v4) b.addSubnet(a, p, 'ipv4');
  for (const [a, p] of v6) b.addSubnet(a, p, 'ipv6');
  return b;
}

const SPECIAL = blockList(SPECIAL_V4, SPECIAL_V6);

/** Parses `a.b.c.d/n`, `v6/n` or a bare address into a subnet; throws on anything else. */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new Error(`'${text}' is not an IP address or CIDR block`);
  const max = family === 4 ? 32 : 128;
  const digits = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = Number(digits);
  if (!/^\d{1,3}$/.test(digits) || prefix > max)
    throw new Error(`'${text}': prefix must be an integer from 0 to ${max}`);
  return { address, prefix, family: family as 4 | 6 };
}

/** Checks addresses against the special ranges and a tenant's allowances. */
export class AddressGuard {
  readonly #allowed: BlockList;
  readonly #any: boolean;

  constructor(allowPrivate: readonly string[]) {
    this.#allowed = new BlockList();
    for (const c of allowPrivate) {
      const { address, prefix, family } = parseCidr(c);
      this.#allowed.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
    this.#any = allowPrivate.length > 0;
  }

  /** Why `address` may not be connected to, or null when it may. */
  refusal(address: string): string | null {
    const family = isIP(address);
    if (family === 0) return `'${address}' is not an IP address`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (!SPECIAL.check(address, type)) return null;
    if (this.#any && this.#allowed.check(address, type)) return null;
    return `${address} is a loopback, private, link-local or otherwise special address, not allowed for this tenant (tenants[].http.allowPrivate)`;
  }
}
