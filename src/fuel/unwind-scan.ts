/**
 * Which functions may leave a call without returning: a JavaScript exception thrown by a host
 * import, a wasm `throw`, or a trap at `unreachable` unwinds the caller's frame, and a
 * JavaScript caller (emscripten's `invoke_*` glue) may catch it and go on. Fuel must then be
 * exact: the code after such a call must not have been prepaid with the code before it, so
 * those calls end their metered block (placement.ts). Calls that always return (to functions
 * that, transitively, call no import, no table entry, and neither throw nor reach
 * `unreachable`) keep the cheaper prepaid form.
 *
 * One quick pass over every body (opcodes and immediates only, common shapes skipped straight
 * off the bytes: the module validated), then a fixpoint over the call graph (caller lists in
 * typed arrays): a function may unwind if it does itself or calls one that may. A body's scan
 * stops at its first operator that settles it (an import call, `call_indirect`, `unreachable`,
 * a throw): its calls matter only while it may still always return.
 */
import { ByteReader, WasmDecodeError } from '../wasm/byte-reader.ts';
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

const FALLBACK = 255;

/** How the scan skips an operator: 0 nothing, 1 one LEB128, 2 memarg, 3/4 four/eight bytes. */
const SKIP: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(FALLBACK);
  for (let op = 0; op < 256; op++) {
    const imm = SINGLE_IMM[op] as number;
    if (imm === Imm.none) t[op] = 0;
    else if (imm === Imm.u32 || imm === Imm.i32 || imm === Imm.i64 || imm === Imm.blockType)
      t[op] = 1; // a block type is 0x40, a value type byte, or an s33: LEB128-shaped
    else if (imm === Imm.memarg) t[op] = 2;
    else if (imm === Imm.f32) t[op] = 3;
    else if (imm === Imm.f64) t[op] = 4;
  }
  for (const op of [
    Op.call,
    Op.returnCall,
    Op.callIndirect,
    Op.returnCallIndirect,
    Op.unreachable,
    Op.throw,
    Op.rethrow,
    // The prefixes are `none` in SINGLE_IMM (walkers dispatch on them): here they must reach
    // the prefix branch, or the sub-opcode is read as an operator (before `hg-fuel/7`, a
    // `memory.copy` or `i32.trunc_sat` made its function "may unwind").
    PREFIX_MISC,
    PREFIX_SIMD,
    PREFIX_ATOMIC,
  ])
    t[op] = FALLBACK;
  return t;
})();

/** `bodies[i]` = [start, end) of defined function i's body. Returns 1 per function index. */
export function mayUnwind(
  bytes: Uint8Array,
  bodies: Int32Array,
  numFuncImports: number,
): Uint8Array {
  const n = bodies.length >> 1;
  const total = numFuncImports + n;
  const out = new Uint8Array(total);
  out.fill(1, 0, numFuncImports);
  // Call edges (callee, caller), then caller lists by callee (CSR).
  let callee = new Int32Array(1024);
  let caller = new Int32Array(1024);
  let nEdges = 0;
  const r = new ByteReader(bytes);
  for (let i = 0; i < n; i++) {
    const self = numFuncImports + i;
    const end = bodies[2 * i + 1] as number;
    r.pos = bodies[2 * i] as number;
    let unwinds = false;
    let last = -1;
    try {
      const nDecl = r.u32();
      for (let d = 0; d < nDecl; d++) {
        r.u32();
        r.byte();
      }
      let pos = r.pos;
      while (pos < end) {
        const op = bytes[pos++] as number;
        const k = SKIP[op] as number;
        if (k === 0) continue;
        if (k === 1) {
          while (((bytes[pos++] as number) & 0x80) !== 0);
          continue;
        }
        if (k === 2) {
          const align = bytes[pos] as number;
          while (((bytes[pos++] as number) & 0x80) !== 0);
          if ((align & 0x40) !== 0) while (((bytes[pos++] as number) & 0x80) !== 0);
          while (((bytes[pos++] as number) & 0x80) !== 0);
          continue;
        }
        if (k === 3) {
          pos += 4;
          continue;
        }
        if (k === 4) {
          pos += 8;
          continue;
        }
        r.pos = pos;
        if (op === Op.call || op === Op.returnCall) {
          const f = r.u32();
          if (f >= total || f < numFuncImports) {
            // An import may unwind (invalid: the planner will say so); either way the
            // function is settled, and its other calls do not matter.
            unwinds = true;
            break;
          }
          if (f !== last) {
            if (nEdges === callee.length) {
              const a = new Int32Array(nEdges * 2);
              a.set(callee);
              callee = a;
              const b = new Int32Array(nEdges * 2);
              b.set(caller);
              caller = b;
            }
            callee[nEdges] = f;
            caller[nEdges++] = self;
            last = f;
          }
        } else if (op === PREFIX_MISC || op === PREFIX_SIMD || op === PREFIX_ATOMIC) {
          const sub = r.u32();
          const t = op === PREFIX_MISC ? MISC_IMM : op === PREFIX_SIMD ? SIMD_IMM : ATOMIC_IMM;
          const imm = sub < t.length ? (t[sub] as number) : Imm.invalid;
          if (!skipImmediates(r, imm)) {
            unwinds = true;
            break;
          }
        } else {
          if (
            op === Op.callIndirect ||
            op === Op.returnCallIndirect ||
            op === Op.unreachable ||
            op === Op.throw ||
            op === Op.rethrow ||
            !skipImmediates(r, SINGLE_IMM[op] as number)
          ) {
            unwinds = true;
            break;
          }
        }
        pos = r.pos;
      }
    } catch (err) {
      if (!(err instanceof WasmDecodeError)) throw err;
      unwinds = true; // malformed: the planner will say so
    }
    if (unwinds) out[self] = 1;
  }
  const first = new Int32Array(total + 1);
  for (let e = 0; e < nEdges; e++) first[(callee[e] as number) + 1]++;
  for (let f = 0; f < total; f++) first[f + 1] = (first[f + 1] as number) + (first[f] as number);
  const fill = first.slice(0, total);
  const callers = new Int32Array(nEdges);
  for (let e = 0; e < nEdges; e++) callers[fill[callee[e] as number]++] = caller[e] as number;
  const work = new Int32Array(total);
  let top = 0;
  for (let f = 0; f < total; f++) if (out[f] === 1) work[top++] = f;
  while (top > 0) {
    const f = work[--top] as number;
    for (let j = first[f] as number; j < (first[f + 1] as number); j++) {
      const c = callers[j] as number;
      if (out[c] === 0) {
        out[c] = 1;
        work[top++] = c;
      }
    }
  }
  return out;
}
