/**
 * A cursor over a WebAssembly binary: LEB128 integers (read or skipped), bytes and names.
 * Every read is bounds-checked and throws `WasmDecodeError`; callers translate it into their
 * own error type. Values that can exceed 2^32 (i64 constants, memory64 offsets) are only
 * skipped, never materialised, so the hot path stays in small integers.
 */

export class WasmDecodeError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
    this.name = 'WasmDecodeError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class ByteReader {
  pos: number;
  readonly end: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string, at = this.pos): never {
    throw new WasmDecodeError(message, at);
  }

  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.buf[this.pos++] as number;
  }

  peek(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.buf[this.pos] as number;
  }

  /** Unsigned LEB128, at most 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      if (shift === 28) {
        if ((b & 0xf0) !== 0) this.fail('u32 LEB128 out of range');
        return (result | (b << 28)) >>> 0;
      }
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  }

  /** Signed LEB128, at most 32 bits. */
  s32(): number {
    let result = 0;
    let shift = 0;
    let b: number;
    do {
      b = this.byte();
      if (shift === 28) {
        result |= b << 28;
        if ((b & 0x80) !== 0) this.fail('s32 LEB128 too long');
        return result | 0;
      }
      result |= (b & 0x7f) << shift;
      shift += 7;
    } while ((b & 0x80) !== 0);
    return shift < 32 && (b & 0x40) !== 0 ? result | (-1 << shift) : result | 0;
  }

  /**
   * Signed 33-bit LEB128 (block types). Returns a number in [-2^32, 2^32).
   */
  s33(): number {
    let result = 0;
    let mul = 1;
    let b: number;
    let n = 0;
    do {
      b = this.byte();
      if (++n > 5) this.fail('s33 LEB128 too long');
      result += (b & 0x7f) * mul;
      mul *= 128;
    } while ((b & 0x80) !== 0);
    if ((b & 0x40) !== 0) result -= mul;
    return result;
  }

  /** Skips any LEB128 of at most `maxBytes` bytes (10 for 64-bit values). */
  skipLeb(maxBytes = 10): void {
    const start = this.pos;
    while ((this.byte() & 0x80) !== 0) {
      if (this.pos - start >= maxBytes) this.fail('LEB128 too long', start);
    }
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) this.fail('unexpected end');
    this.pos += n;
  }

  bytes(n: number): Uint8Array {
    const start = this.pos;
    this.skip(n);
    return this.buf.subarray(start, start + n);
  }

  name(): string {
    const len = this.u32();
    const at = this.pos;
    try {
      return utf8.decode(this.bytes(len));
    } catch (err) {
      if (err instanceof WasmDecodeError) throw err;
      this.fail('name is not valid UTF-8', at);
    }
  }
}
