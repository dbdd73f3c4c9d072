/**
 * Counted loops (placement item 5 in docs/fuel.md): the planner asks `matchCounted` at each
 * `loop` whether the loop's trip count can be bounded on entry; if so it records the loop in
 * the plan (`FunctionPlan.counted`, `Ev.countedLoop`) and the emitter puts an unchecked copy
 * of the loop beside the checked one. Split from placement.ts for size.
 */
import { Imm, Op, SINGLE_IMM } from '../wasm/opcodes.ts';
import { SIMPLE_VALTYPES } from '../wasm/sections.ts';
import { CK, CL, COUNTED_FIELDS, Ev, F_FUNC, F_LOOP } from './plan-types.ts';
import type { ModuleFacts } from './plan-types.ts';
import { FAST_OP, grow32 } from './planner.ts';
import type { Planner } from './planner.ts';

/** Reads a u32 LEB128 at `at` of a validated body; `lebEnd` is where it ended. */
let lebEnd = 0;
function leb(bytes: Uint8Array, at: number): number {
  let v = 0;
  let shift = 0;
  let b: number;
  do {
    b = bytes[at++] as number;
    v |= (b & 0x7f) << shift;
    shift += 7;
  } while ((b & 0x80) !== 0);
  lebEnd = at;
  return v >>> 0;
}

/** Reads an s32 LEB128 (i32.const's immediate) at `at`, as its unsigned 32-bit value. */
function sleb32(bytes: Uint8Array, at: number): number {
  let v = 0;
  let shift = 0;
  let b: number;
  do {
    b = bytes[at++] as number;
    if (shift < 32) v |= (b & 0x7f) << shift;
    shift += 7;
  } while ((b & 0x80) !== 0);
  lebEnd = at;
  if (shift < 32 && (b & 0x40) !== 0) v |= -1 << shift; // sign-extend a short encoding
  return v >>> 0;
}

const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const I32_CONST = 0x41;
const I32_LT_U = 0x49;

/**
 * Counted loops: a loop without a block type whose body is plain operators, `local.*`, calls
 * to carrying leaves, nested `block`/`if` and branches to labels inside the body (none to the
 * loop or out of it), around an induction variable j that only its update (at the body's top
 * level) changes, in one of three forms:
 *
 *   top-tested (the sieve):  local.get j; N; i32.ge_u; br_if D      (D: a label outside)
 *                            body; local.get j; S; i32.add; local.set j; br 0; end
 *   bottom-tested (C, wat):  body; local.get j; S; i32.add; (local.set j; local.get j |
 *                            local.tee j); N; i32.lt_u; br_if 0; end
 *   count-down (LLVM):       body; local.get j; i32.const -1; i32.add; local.tee j; br_if 0; end
 *
 * where N is `local.get n` or `i32.const`, S is `local.get s` or a non-zero `i32.const`, and
 * the body writes neither j, n nor s. When j < n, s != 0 and n + s <= 2^32, j grows by s each
 * iteration without wrapping, so the header runs at most n - j + 1 times (count-down: j times
 * when j != 0). Each iteration spends at most W(header) plus its calls' bounds (leafBound).
 * When the fuel on entry covers that many iterations, no header check can fail: the emitter
 * runs a copy of the loop without its checks (the charges stay, so the fuel used is the same),
 * else (not enough fuel, s = 0, possible wrap-around, j >= n, j = 0) the checked loop. The
 * bound is loose (it ignores s > 1), which only sends a loop near the end of its budget down
 * the checked copy. Records the loop and adds `Ev.countedLoop` when the loop matches.
 */
export function matchCounted(
  P: Planner,
  bytes: Uint8Array,
  p: number,
  body: number,
  end: number,
  shift: number,
  m: ModuleFacts,
): void {
  let q = body;
  let kind: number = CK.bottom;
  let j = -1;
  let n = -1;
  let nk = 0;
  let brIf = -1;
  let depth = 0;
  // Top-tested: the exit first.
  if (bytes[q] === LOCAL_GET) {
    const j0 = leb(bytes, q + 1);
    const t = operand(bytes, lebEnd);
    if (t >= 0 && bytes[t] === Op.i32GeU && bytes[t + 1] === Op.brIf) {
      depth = leb(bytes, t + 2);
      // The exit's label, counted from inside the loop (its frame is pushed).
      const fi = P.nF - 1 - depth;
      if (depth < 1 || fi < 0) return;
      const fk = P.fKind[fi] as number;
      if (fk === F_LOOP || fk === F_FUNC || P.fArity[fi] !== 0) return;
      kind = CK.top;
      j = j0;
      n = opLocal;
      nk = opConst;
      brIf = t + 1;
      q = lebEnd;
    }
  }
  let calls = 0;
  let nest = 0;
  let nW = 0;
  for (;;) {
    if (q >= end) return;
    const op = bytes[q] as number;
    if (op === LOCAL_GET && nest === 0) {
      const loopEnd = tail(bytes, q, kind, j, n, nk);
      if (loopEnd >= 0) {
        if (kind !== CK.top) {
          j = tailJ;
          n = tailN;
          nk = tailNk;
          kind = tailKind;
        }
        const s = tailS;
        // The body leaves j, n and s alone.
        if (j === n || j === s) return;
        for (let i = 0; i < nW; i++) {
          const x = WRITES[i] as number;
          if (x === j || x === n || x === s) return;
        }
        const c = P.nC;
        if (c + COUNTED_FIELDS > P.counted.length) P.counted = grow32(P.counted);
        const at = (x: number): number => (x < 0 ? -1 : shift >= 0 && x >= shift ? x + 2 : x);
        const cl = P.counted;
        cl[c + CL.kind] = kind;
        cl[c + CL.end] = loopEnd;
        cl[c + CL.brIf] = brIf;
        cl[c + CL.depth] = depth;
        cl[c + CL.j] = at(j);
        cl[c + CL.n] = at(n);
        cl[c + CL.nk] = nk;
        cl[c + CL.s] = at(s);
        cl[c + CL.k] = tailK;
        cl[c + CL.calls] = calls;
        P.nC = c + COUNTED_FIELDS;
        P.ev(p, Ev.countedLoop, c);
        return;
      }
    }
    // A call to a carrying leaf: its cost is bounded (leafBound), and it checks on entry.
    if (op === Op.call) {
      const callee = leb(bytes, q + 1);
      const next = lebEnd; // leafBound reads LEB128s too
      const bound = leafBound(bytes, m, callee);
      if (bound < 0) return;
      calls += bound;
      q = next;
      continue;
    }
    const f = FAST_OP[op] as number;
    if (f === 2) {
      const x = leb(bytes, q + 1);
      q = lebEnd;
      if (op !== LOCAL_GET) {
        if (nW === WRITES.length) return;
        WRITES[nW++] = x;
      }
      continue;
    }
    if (f === 1) {
      q = skipPlain(bytes, q);
      continue;
    }
    // Nested blocks and forward branches inside the body: a branch to the loop (one that
    // skips the update) or out of it (it would need relabelling) keeps the loop uncounted.
    if (op === Op.block || op === Op.if) {
      const bt = bytes[q + 1] as number;
      if (bt !== 0x40 && !SIMPLE_VALTYPES.has(bt)) return;
      nest++;
      q += 2;
    } else if (op === Op.else || op === Op.end) {
      if (nest === 0) return;
      if (op === Op.end) nest--;
      q++;
    } else if (op === Op.br || op === Op.brIf) {
      if (leb(bytes, q + 1) >= nest) return;
      q = lebEnd;
    } else if (op === Op.brTable) {
      const count = leb(bytes, q + 1);
      q = lebEnd;
      for (let i = 0; i <= count; i++) {
        if (leb(bytes, q) >= nest) return;
        q = lebEnd;
      }
    } else return;
  }
}

/** Locals written by a counted loop candidate's body (at most 64). */
const WRITES = new Int32Array(64);

/** Set by `operand`: the local it reads (-1 for a constant) and the constant. */
let opLocal = -1;
let opConst = 0;

/** `local.get x` or `i32.const k` at q: the position after it, or -1. */
function operand(bytes: Uint8Array, q: number): number {
  if (bytes[q] === LOCAL_GET) {
    opLocal = leb(bytes, q + 1);
    opConst = 0;
    return lebEnd;
  }
  if (bytes[q] === I32_CONST) {
    opLocal = -1;
    opConst = sleb32(bytes, q + 1) | 0;
    return lebEnd;
  }
  return -1;
}

/** Set by `tail`: the loop's induction variable, bound, step and form. */
let tailJ = -1;
let tailN = -1;
let tailNk = 0;
let tailS = -1;
let tailK = 0;
let tailKind = 0;

/**
 * Whether the loop's update (and, bottom-tested, its test) starts at q (a `local.get`) and
 * ends the loop: returns the position after the loop's `end`, or -1. For the top-tested form,
 * j and the bound are known; the others learn them here.
 */
function tail(
  bytes: Uint8Array,
  q: number,
  kind: number,
  j: number,
  n: number,
  nk: number,
): number {
  const x = leb(bytes, q + 1);
  if (kind === CK.top && x !== j) return -1;
  let t = operand(bytes, lebEnd);
  if (t < 0 || bytes[t] !== Op.i32Add) return -1;
  const s = opLocal;
  const k = opConst;
  if (s < 0 && k === 0) return -1;
  t++;
  const set = bytes[t];
  if (set !== LOCAL_SET && set !== LOCAL_TEE) return -1;
  if (leb(bytes, t + 1) !== x) return -1;
  t = lebEnd;
  tailS = s;
  tailK = k;
  tailJ = x;
  if (kind === CK.top) {
    // local.set j; br 0; end
    if (set !== LOCAL_SET || bytes[t] !== Op.br || bytes[t + 1] !== 0 || bytes[t + 2] !== Op.end)
      return -1;
    tailN = n;
    tailNk = nk;
    return t + 3;
  }
  if (set === LOCAL_SET) {
    // local.set j; local.get j; N; i32.lt_u
    if (bytes[t] !== LOCAL_GET || leb(bytes, t + 1) !== x) return -1;
    t = lebEnd;
  } else if (s < 0 && k === -1 && bytes[t] === Op.brIf && bytes[t + 1] === 0) {
    // Count-down: local.tee j; br_if 0; end
    if (bytes[t + 2] !== Op.end) return -1;
    tailKind = CK.down;
    tailN = -1;
    tailNk = 0;
    return t + 3;
  }
  t = operand(bytes, t);
  if (t < 0 || bytes[t + 1] !== Op.brIf || bytes[t + 2] !== 0 || bytes[t + 3] !== Op.end) return -1;
  if (bytes[t] !== I32_LT_U) return -1;
  tailKind = CK.bottom;
  tailN = opLocal;
  tailNk = opConst;
  return t + 4;
}

const leafBounds = new WeakMap<ModuleFacts, Float64Array>();

/**
 * The most a direct call to function f can spend, or -1 when unbounded or not worth bounding:
 * f must be a defined function whose calls carry fuel (so nothing but its own code runs) and
 * a leaf: no loop, call, `memory.grow`, bulk operation, `unreachable` or exception operator,
 * and only single-byte opcodes. The bound is the sum of all its operators' costs (any path is
 * at most that). Memoized per module.
 */
function leafBound(bytes: Uint8Array, m: ModuleFacts, f: number): number {
  const bodies = m.bodies;
  const i = f - m.numFuncImports;
  if (!bodies || i < 0 || 2 * i >= bodies.length || m.carrying === null) return -1;
  const callee = m.twin !== null && (m.twin[f] as number) >= 0 ? (m.twin[f] as number) : f;
  if (m.carrying[callee] !== 1 || (m.unwinds !== null && m.unwinds[f] !== 0)) return -1;
  let memo = leafBounds.get(m);
  if (!memo) {
    memo = new Float64Array(bodies.length >> 1).fill(-2);
    leafBounds.set(m, memo);
  }
  const known = memo[i] as number;
  if (known !== -2) return known;
  const end = bodies[2 * i + 1] as number;
  let q = bodies[2 * i] as number;
  const nDecl = leb(bytes, q);
  q = lebEnd;
  for (let d = 0; d < nDecl; d++) {
    leb(bytes, q);
    q = lebEnd + 1;
  }
  let sum = 0;
  const single = m.costs.single;
  while (q < end) {
    const op = bytes[q] as number;
    if (FAST_OP[op] !== 0) {
      sum += single[op] as number;
      q = FAST_OP[op] === 2 ? (leb(bytes, q + 1), lebEnd) : skipPlain(bytes, q);
    } else if (op === Op.block || op === Op.if) {
      if (bytes[q + 1] !== 0x40 && !SIMPLE_VALTYPES.has(bytes[q + 1] as number)) break;
      sum += single[op] as number;
      q += 2;
    } else if (op === Op.else || op === Op.end || op === Op.return) {
      sum += single[op] as number;
      q++;
    } else if (op === Op.br || op === Op.brIf) {
      sum += single[op] as number;
      leb(bytes, q + 1);
      q = lebEnd;
    } else break;
  }
  const bound = q === end && sum < 1 << 20 ? sum : -1;
  memo[i] = bound;
  return bound;
}

/** The position after the plain operator at q (PLAIN_OP: its immediates are skipped). */
function skipPlain(bytes: Uint8Array, q: number): number {
  const k = SINGLE_IMM[bytes[q++] as number] as number;
  if (k === Imm.f32) return q + 4;
  if (k === Imm.f64) return q + 8;
  if (k === Imm.memarg) {
    const align = bytes[q] as number;
    while (((bytes[q++] as number) & 0x80) !== 0);
    if ((align & 0x40) !== 0) while (((bytes[q++] as number) & 0x80) !== 0);
    while (((bytes[q++] as number) & 0x80) !== 0);
    return q;
  }
  if (k !== Imm.none) while (((bytes[q++] as number) & 0x80) !== 0);
  return q;
}
