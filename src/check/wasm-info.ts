/** Static facts about a WebAssembly binary that the JS API does not expose (memory limits). */

export interface MemoryLimits {
  /** Initial size in 64 KiB pages. */
  readonly initial: number;
  /** Declared maximum in pages, or null when the module declares none. */
  readonly maximum: number | null;
  readonly imported: boolean;
}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.bytes.length) throw new RangeError('unexpected end of module');
    return this.bytes[this.pos++] as number;
  }
  /** Unsigned LEB128 (up to 2^53). */
  u32(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
      if (scale > 2 ** 56) throw new RangeError('LEB128 too long');
    }
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  limits(): { initial: number; maximum: number | null } {
    const flags = this.byte();
    const initial = this.u32();
    const maximum = flags & 1 ? this.u32() : null;
    return { initial, maximum };
  }
}

/**
 * The first memory's limits (imported or defined), or null when the module has none. Expects a
 * module that `WebAssembly.validate` accepted.
 */
export function memoryLimits(bytes: Uint8Array): MemoryLimits | null {
  const r = new Reader(bytes);
  r.pos = 8;
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (id === 2) {
      // Import section: module, name, kind, description.
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) r.u32();
        else if (kind === 1) {
          r.byte();
          r.limits();
        } else if (kind === 2) return { ...r.limits(), imported: true };
        else if (kind === 3) {
          r.byte();
          r.byte();
        } else if (kind === 4) {
          r.byte();
          r.u32();
        } else return null;
      }
    } else if (id === 5) {
      const count = r.u32();
      return count > 0 ? { ...r.limits(), imported: false } : null;
    }
    r.pos = end;
  }
  return null;
}
