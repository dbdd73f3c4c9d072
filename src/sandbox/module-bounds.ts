/**
 * What the loader accepts before it instruments a guest: a module size and a control-nesting
 * depth. The instrumenter's time grows with the square of a function's nesting depth (10,000
 * nested `if`s take ~2.5 s, 30,000 more than 20 s), so a deeper module is refused up front, by a
 * linear scan that reads only opcodes and skips immediates, with its own code
 * (`HG_PLUGIN_TOO_COMPLEX`) rather than a load that runs into its deadline.
 *
 * The scan stops quietly at anything it cannot read (invalid or unsupported code): the
 * instrumenter's own validation refuses those with a precise message.
 */
import { ByteReader } from '../wasm/byte-reader.ts';
import { skipImmediates } from '../wasm/instruction-reader.ts';
import {
  ATOMIC_IMM,
  Imm,
  MISC_IMM,
  PREFIX_ATOMIC,
  PREFIX_MISC,
  PREFIX_SIMD,
  SIMD_IMM,
  SINGLE_IMM,
} from '../wasm/opcodes.ts';
import { SectionId, splitSections } from '../wasm/sections.ts';

/** Largest module the loader instruments (bytes). */
export const MAX_MODULE_BYTES = 64 * 1024 * 1024;
/** Deepest nesting of `block`/`loop`/`if`/`try` in one function that the loader instruments. */
export const MAX_NESTING_DEPTH = 4_096;

export interface ModuleBoundsIssue {
  readonly what: 'size' | 'depth';
  readonly message: string;
}

/** Returns why the module exceeds the loader's bounds, or null when it is within them. */
export function checkModuleBounds(bytes: Uint8Array): ModuleBoundsIssue | null {
  if (bytes.length > MAX_MODULE_BYTES) {
    return {
      what: 'size',
      message: `the module is ${bytes.length} bytes; the loader accepts at most ${MAX_MODULE_BYTES}`,
    };
  }
  let code;
  try {
    code = splitSections(bytes).find((s) => s.id === SectionId.code);
  } catch {
    return null;
  }
  if (!code) return null;
  try {
    const r = new ByteReader(bytes, code.payloadStart, code.end);
    const count = r.u32();
    for (let f = 0; f < count; f++) {
      const size = r.u32();
      const end = r.pos + size;
      const depth = maxDepth(new ByteReader(bytes, r.pos, end));
      if (depth > MAX_NESTING_DEPTH) {
        return {
          what: 'depth',
          message: `function ${f} of the code section nests blocks ${depth} deep; the loader accepts at most ${MAX_NESTING_DEPTH}`,
        };
      }
      r.pos = end;
    }
  } catch {
    return null; // unreadable: the instrumenter's validation says why
  }
  return null;
}

/** Deepest block nesting of one function body (stops early at anything it cannot skip). */
function maxDepth(r: ByteReader): number {
  const groups = r.u32();
  for (let i = 0; i < groups; i++) {
    r.u32();
    r.byte();
  }
  let depth = 0;
  let max = 0;
  while (!r.done) {
    const op = r.byte();
    let imm: number;
    if (op === PREFIX_MISC) imm = MISC_IMM[r.u32()] ?? Imm.invalid;
    else if (op === PREFIX_SIMD) imm = SIMD_IMM[r.u32()] ?? Imm.invalid;
    else if (op === PREFIX_ATOMIC) imm = ATOMIC_IMM[r.u32()] ?? Imm.invalid;
    else {
      imm = SINGLE_IMM[op] ?? Imm.invalid;
      if (op === 0x02 || op === 0x03 || op === 0x04 || op === 0x06) {
        if (++depth > max) max = depth;
      } else if (op === 0x0b || op === 0x18) depth--; // end, delegate
    }
    if (!skipImmediates(r, imm)) break;
  }
  return max;
}
