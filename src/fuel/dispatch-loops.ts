/**
 * Dispatch loops (placement item 7 in docs/fuel.md): Go compiles each function into one
 * `loop` whose header dispatches on a resume index through a `br_table` into nested blocks,
 * one case per block end, and every jump in the function is `i32.const K; local.set $pc;
 * br $loop`. Planned as an ordinary loop, every jump passes the header's check. Planned as a
 * dispatch, a jump to a later case is a forward edge to that case's block (the dispatch block
 * whose `end` starts it is still open at the jump: case p's code sits inside the blocks of
 * the cases after it), and only a jump to the same or an earlier case needs a check, at that
 * case's first block: a cycle through the dispatch must contain such a jump. The header is
 * then no block boundary; its two operators are charged by the block that falls into the
 * loop and by every jump's own block.
 *
 * `matchDispatch` recognises the shape before the loop is planned: a `loop` without a block
 * type, n >= 1 `block`s without a block type, `local.get $pc; br_table` whose labels all
 * leave the loop or reach one of those blocks, and in the rest of the body every branch to
 * the loop a `br` right after `i32.const K; local.set $pc` with K a valid index; no `try`.
 * Anything else is planned as an ordinary loop.
 */
import { ByteReader } from '../wasm/byte-reader.ts';
import { skipImmediates } from '../wasm/instruction-reader.ts';
import {
  ATOMIC_IMM,
  Imm,
  MISC_IMM,
  Op,
  PREFIX_ATOMIC,
  PREFIX_MISC,
  PREFIX_SIMD,
  SIMD_IMM,
  SINGLE_IMM,
} from '../wasm/opcodes.ts';

const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_CONST = 0x41;
const BLOCK_EMPTY = 0x40;

export interface Dispatch {
  /** Number of dispatch blocks (cases). */
  readonly n: number;
  /** The br_table's labels (default last), relative to the innermost dispatch block. */
  readonly labels: Int32Array;
  /** Positions of the jumps' `br` opcodes, ascending, and each jump's label. */
  readonly jumpPos: Int32Array;
  readonly jumpLabel: Int32Array;
}

/**
 * The dispatch at the `loop` whose block type byte is at `bt` (the loop's body starts at
 * bt + 1), or null. `end` is the function body's end.
 */
export function matchDispatch(bytes: Uint8Array, bt: number, end: number): Dispatch | null {
  if (bytes[bt] !== BLOCK_EMPTY) return null;
  let q = bt + 1;
  let n = 0;
  while (bytes[q] === Op.block && bytes[q + 1] === BLOCK_EMPTY) {
    n++;
    q += 2;
  }
  if (n === 0 || bytes[q] !== LOCAL_GET) return null;
  const r = new ByteReader(bytes, q + 1, end);
  const pc = r.u32();
  if (bytes[r.pos] !== Op.brTable) return null;
  r.pos++;
  const count = r.u32();
  if (count > 1_000_000) return null;
  const labels = new Int32Array(count + 1);
  for (let i = 0; i <= count; i++) {
    const l = r.u32();
    if (l === n) return null; // the loop itself
    labels[i] = l;
  }
  // The rest of the loop: depth counts frames opened inside the loop (the n dispatch blocks
  // are open at the br_table: depth n).
  let depth = n;
  const jp: number[] = [];
  const jl: number[] = [];
  // The last two instructions' positions (for `i32.const K; local.set $pc; br`).
  let prev2 = -1;
  let prev1 = -1;
  while (r.pos < end) {
    const p = r.pos;
    const op = r.byte();
    if (op === Op.block || op === Op.loop || op === Op.if) {
      skipImmediates(r, Imm.blockType);
      depth++;
    } else if (op === Op.end) {
      if (depth === 0) return finish(n, labels, jp, jl);
      depth--;
    } else if (op === Op.else) {
      // same depth
    } else if (op === Op.br || op === Op.brIf) {
      const d = r.u32();
      if (d === depth) {
        if (op !== Op.br || prev2 < 0 || bytes[prev2] !== I32_CONST) return null;
        if (bytes[prev1] !== LOCAL_SET) return null;
        const k = new ByteReader(bytes, prev2 + 1, end).s32();
        if (new ByteReader(bytes, prev1 + 1, end).u32() !== pc) return null;
        if (k < 0 || k > count) return null;
        jp.push(p);
        jl.push(labels[k] as number);
      }
    } else if (op === Op.brTable) {
      const c = r.u32();
      for (let i = 0; i <= c; i++) if (r.u32() === depth) return null;
    } else if (op === PREFIX_MISC || op === PREFIX_SIMD || op === PREFIX_ATOMIC) {
      const sub = r.u32();
      const t = op === PREFIX_MISC ? MISC_IMM : op === PREFIX_SIMD ? SIMD_IMM : ATOMIC_IMM;
      if (!skipImmediates(r, sub < t.length ? (t[sub] as number) : Imm.invalid)) return null;
    } else {
      const imm = SINGLE_IMM[op] as number;
      if (op === Op.try || op === Op.catch || op === Op.catchAll || op === Op.delegate) return null;
      if (!skipImmediates(r, imm)) return null;
    }
    prev2 = prev1;
    prev1 = p;
  }
  return null;
}

function finish(n: number, labels: Int32Array, jp: number[], jl: number[]): Dispatch | null {
  if (jp.length === 0) return null;
  return { n, labels, jumpPos: Int32Array.from(jp), jumpLabel: Int32Array.from(jl) };
}
