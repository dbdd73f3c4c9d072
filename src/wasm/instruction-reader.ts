/**
 * Skipping one instruction's immediates, given its shape from opcodes.ts. Used by any pass
 * that walks function bodies without decoding most instructions.
 */
import type { ByteReader } from './byte-reader.ts';
import { Imm } from './opcodes.ts';
import { SIMPLE_VALTYPES } from './sections.ts';

/** Returned by `readBlockType` for a block type that is a type index. */
export interface BlockTypeIndex {
  readonly typeIndex: number;
}

/**
 * A block type: -1 for the empty type (0x40), a value-type byte, or a type index (s33 >= 0).
 * Typed reference value types (0x63/0x64) are rejected with `null`.
 */
export function readBlockType(r: ByteReader): number | BlockTypeIndex | null {
  const b = r.peek();
  if (b === 0x40) {
    r.pos++;
    return -1;
  }
  if (SIMPLE_VALTYPES.has(b)) {
    r.pos++;
    return b;
  }
  if (b === 0x63 || b === 0x64) return null;
  const idx = r.s33();
  if (idx < 0) r.fail('invalid block type');
  return { typeIndex: idx };
}

function skipMemarg(r: ByteReader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: memory index
  r.skipLeb(10); // offset (u32, or u64 for memory64)
}

/**
 * Skips the immediates of shape `imm` (block types must be read with `readBlockType`).
 * Returns false for shapes it cannot skip (unsupported / invalid).
 */
export function skipImmediates(r: ByteReader, imm: number): boolean {
  switch (imm) {
    case Imm.none:
      return true;
    case Imm.u32:
      r.skipLeb(5);
      return true;
    case Imm.u32x2:
      r.skipLeb(5);
      r.skipLeb(5);
      return true;
    case Imm.brTable: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.skipLeb(5);
      return true;
    }
    case Imm.memarg:
      skipMemarg(r);
      return true;
    case Imm.memargLane:
      skipMemarg(r);
      r.skip(1);
      return true;
    case Imm.i32:
      r.skipLeb(5);
      return true;
    case Imm.i64:
      r.skipLeb(10);
      return true;
    case Imm.f32:
      r.skip(4);
      return true;
    case Imm.f64:
      r.skip(8);
      return true;
    case Imm.bytes16:
      r.skip(16);
      return true;
    case Imm.lane:
      r.skip(1);
      return true;
    case Imm.selectT: {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        if (!SIMPLE_VALTYPES.has(r.byte())) return false;
      }
      return true;
    }
    case Imm.heapType:
      r.s33();
      return true;
    case Imm.zeroByte:
      r.skip(1);
      return true;
    case Imm.blockType:
      return readBlockType(r) !== null;
    default:
      return false;
  }
}
