/**
 * Which functions may leave a call without returning: a JavaScript exception thrown by a host
 * import, a wasm `throw`, or a trap at `unreachable` unwinds the caller's frame, and a
 * JavaScript caller (emscripten's `invoke_*` glue) may catch it and go on. Fuel must then be
 * exact: the code after such a call must not have been prepaid with the code before it, so
 * those calls end their metered block (placement.ts). Calls that always return (to functions
 * that, transitively, call no import, no table entry, and neither throw nor reach
 * `unreachable`) keep the cheaper prepaid form.
 *
 * One quick pass over every body (opcodes and immediates only), then a fixpoint over the call
 * graph: a function may unwind if it does itself or calls one that may.
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

/** `bodies[i]` = [start, end) of defined function i's body. Returns 1 per function index. */
export function mayUnwind(
  bytes: Uint8Array,
  bodies: Int32Array,
  numFuncImports: number,
): Uint8Array {
  const n = bodies.length >> 1;
  const out = new Uint8Array(numFuncImports + n);
  out.fill(1, 0, numFuncImports);
  const callers: number[][] = [];
  for (let i = 0; i < numFuncImports + n; i++) callers.push([]);
  const work: number[] = [];
  for (let i = 0; i < numFuncImports; i++) work.push(i);
  for (let i = 0; i < n; i++) {
    const self = numFuncImports + i;
    if (scan(bytes, bodies[2 * i] as number, bodies[2 * i + 1] as number, self, callers)) {
      out[self] = 1;
      work.push(self);
    }
  }
  while (work.length > 0) {
    const f = work.pop() as number;
    for (const c of callers[f] as number[]) {
      if (out[c] === 0) {
        out[c] = 1;
        work.push(c);
      }
    }
  }
  return out;
}

/** True if the body unwinds by itself; records it as a caller of each direct callee. */
function scan(
  bytes: Uint8Array,
  start: number,
  end: number,
  self: number,
  callers: number[][],
): boolean {
  const r = new ByteReader(bytes, start, end);
  const nDecl = r.u32();
  for (let i = 0; i < nDecl; i++) {
    r.u32();
    r.byte();
  }
  let unwinds = false;
  while (r.pos < end) {
    const op = r.byte();
    switch (op) {
      case Op.call:
      case Op.returnCall: {
        const f = r.u32();
        const list = callers[f];
        if (list === undefined) return true; // invalid: the planner will say so
        if (list[list.length - 1] !== self) list.push(self);
        break;
      }
      case Op.callIndirect:
      case Op.returnCallIndirect:
      case Op.unreachable:
      case Op.throw:
      case Op.rethrow:
        unwinds = true;
        if (!skipImmediates(r, SINGLE_IMM[op] as number)) return true;
        break;
      case PREFIX_MISC:
      case PREFIX_SIMD:
      case PREFIX_ATOMIC: {
        const sub = r.u32();
        const t = op === PREFIX_MISC ? MISC_IMM : op === PREFIX_SIMD ? SIMD_IMM : ATOMIC_IMM;
        const imm = sub < t.length ? (t[sub] as number) : Imm.invalid;
        if (!skipImmediates(r, imm)) return true;
        break;
      }
      default:
        if (!skipImmediates(r, SINGLE_IMM[op] as number)) return true;
    }
  }
  return unwinds;
}
