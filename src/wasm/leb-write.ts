/**
 * LEB128 writers for emitters that write at a position they hold in a local: each writes at
 * `p` of a buffer whose capacity the caller reserved, and returns the position after it.
 */

/** Unsigned LEB128 of `v` at `p`; returns the position after it. */
export function pu32(b: Uint8Array, p: number, v: number): number {
  let n = v >>> 0;
  while (n >= 0x80) {
    b[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[p++] = n;
  return p;
}

/** Signed LEB128 of a 32-bit `v`. */
export function ps32(b: Uint8Array, p: number, v: number): number {
  let n = v | 0;
  for (;;) {
    const x = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (x & 0x40) === 0) || (n === -1 && (x & 0x40) !== 0)) {
      b[p++] = x;
      return p;
    }
    b[p++] = x | 0x80;
  }
}

/** Signed LEB128 of an integer `v` (a safe integer: every fuel constant is one). */
export function ps64(b: Uint8Array, p: number, v: number): number {
  if (v >= -0x80000000 && v <= 0x7fffffff) return ps32(b, p, v);
  let n = v;
  for (;;) {
    const q = Math.floor(n / 128);
    const x = n - q * 128;
    n = q;
    if ((n === 0 && (x & 0x40) === 0) || (n === -1 && (x & 0x40) !== 0)) {
      b[p++] = x;
      return p;
    }
    b[p++] = x | 0x80;
  }
}

/** Bytes of the unsigned LEB128 of `n`. */
export function u32Size(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}
