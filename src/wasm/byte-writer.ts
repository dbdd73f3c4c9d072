/**
 * A growable byte buffer for emitting WebAssembly: raw bytes, byte ranges copied from another
 * buffer, and LEB128 integers (u32, s32, and s64 from a bigint or a safe integer).
 */

export class ByteWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(initialCapacity = 1024) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity));
  }

  private ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /**
   * Makes room for `extra` more bytes and returns the buffer, for callers that write at
   * `length` themselves and then set `length` (valid until the next call that may grow).
   */
  reserve(extra: number): Uint8Array {
    this.ensure(extra);
    return this.buf;
  }

  byte(b: number): this {
    this.ensure(1);
    this.buf[this.length++] = b;
    return this;
  }

  /** Appends bytes given as numbers (small, fixed instruction sequences). */
  raw(bytes: readonly number[]): this {
    this.ensure(bytes.length);
    for (const b of bytes) this.buf[this.length++] = b;
    return this;
  }

  copy(src: Uint8Array, start = 0, end = src.length): this {
    this.ensure(end - start);
    this.length = copyBytes(this.buf, this.length, src, start, end);
    return this;
  }

  u32(value: number): this {
    let n = value >>> 0;
    this.ensure(5);
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n !== 0) b |= 0x80;
      this.buf[this.length++] = b;
    } while (n !== 0);
    return this;
  }

  s32(value: number): this {
    let n = value | 0;
    this.ensure(5);
    for (;;) {
      const b = n & 0x7f;
      n >>= 7;
      if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
        this.buf[this.length++] = b;
        return this;
      }
      this.buf[this.length++] = b | 0x80;
    }
  }

  /** Signed LEB128 of a 64-bit value (a bigint, or a number that is a safe integer). */
  s64(value: bigint | number): this {
    if (typeof value === 'number' && value >= -0x80000000 && value <= 0x7fffffff) {
      return this.s32(value);
    }
    let n = BigInt.asIntN(64, BigInt(value));
    this.ensure(10);
    for (;;) {
      const b = Number(n & 0x7fn);
      n >>= 7n;
      if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) {
        this.buf[this.length++] = b;
        return this;
      }
      this.buf[this.length++] = b | 0x80;
    }
  }

  /** The underlying buffer (valid up to `length`, until the next write). */
  get buffer(): Uint8Array {
    return this.buf;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** The unsigned LEB128 encoding of `value` as a fresh array. */
export function u32Bytes(value: number): Uint8Array {
  return new ByteWriter(8).u32(value).bytes().slice();
}

/**
 * Copies `src[start, end)` to `dst` at `at` (which has room) and returns where it ended. Short
 * runs (the instrumenter copies a few instructions between insertions) by a loop: a subarray
 * view per run costs more, and is garbage.
 */
export function copyBytes(
  dst: Uint8Array,
  at: number,
  src: Uint8Array,
  start: number,
  end: number,
): number {
  if (end - start < 32) {
    for (let i = start; i < end; i++) dst[at++] = src[i] as number;
    return at;
  }
  dst.set(src.subarray(start, end), at);
  return at + end - start;
}

/** Concatenates byte chunks into one array. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
