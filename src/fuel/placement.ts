/**
 * Placement analysis for one function body: a single forward walk over the instructions that
 * splits the body into metered blocks, prices them with the cost table, records where the
 * emitter must insert code (events), and computes each block's lookahead.
 *
 * Metered block: a run of instructions such that if the first runs, all run (barring a trap).
 * A block ends at a branch (`br*`, `if`, `return`, `unreachable`, `throw*`, tail calls), before
 * a branch target (after `end` of a targeted block/if/try, after `else`, after `loop`), before
 * an operand-priced instruction (`memory.grow`, bulk memory and table ops: they get a block of
 * their own so the dynamic charge can be taken from the operand at the block's start), and,
 * only in modules that can catch exceptions, after each call (an exception may skip the rest).
 *
 * Lookahead: W(b) = cost(b) + max W(s) over successors s that are not checkpoints. All forward
 * edges go to later blocks and loop back-edges go to checkpoints, so one reverse sweep computes
 * it. A checkpoint traps when the fuel before it is below W, so fuel never goes negative.
 */
import { ByteReader } from '../wasm/byte-reader.ts';
import { readBlockType, skipImmediates } from '../wasm/instruction-reader.ts';
import {
  ATOMIC_IMM,
  ATOMIC_WAIT_OPS,
  Imm,
  MiscOp,
  MISC_IMM,
  Op,
  PREFIX_ATOMIC,
  PREFIX_MISC,
  PREFIX_SIMD,
  SIMD_IMM,
  SINGLE_IMM,
} from '../wasm/opcodes.ts';
import { SIMPLE_VALTYPES } from '../wasm/sections.ts';
import {
  BF,
  CK,
  CL,
  COUNTED_FIELDS,
  Dyn,
  Ev,
  F_BLOCK,
  F_FUNC,
  F_IF,
  F_LOOP,
  F_TRY,
  PlacementError,
} from './plan-types.ts';
import type { FunctionPlan, ModuleFacts } from './plan-types.ts';
import { grow32, grow64, Planner } from './planner.ts';

export { BF, Dyn, Ev, PlacementError } from './plan-types.ts';
export type { FunctionPlan, ModuleFacts, Placement } from './plan-types.ts';

/**
 * Single-byte operators that neither touch control flow, calls, locals nor the operand-priced
 * set, with plain immediates: the planner only adds their cost (a fast path).
 */
const PLAIN_OP: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let op = 0; op < 256; op++) {
    const imm = SINGLE_IMM[op] as number;
    if (
      imm === Imm.none ||
      imm === Imm.u32 ||
      imm === Imm.i32 ||
      imm === Imm.i64 ||
      imm === Imm.f32 ||
      imm === Imm.f64 ||
      imm === Imm.memarg
    )
      t[op] = 1;
  }
  for (const op of [
    Op.unreachable,
    Op.end,
    Op.else,
    Op.catch,
    Op.catchAll,
    Op.delegate,
    Op.br,
    Op.brIf,
    Op.brTable,
    Op.return,
    Op.call,
    Op.callIndirect,
    Op.returnCall,
    Op.returnCallIndirect,
    Op.throw,
    Op.rethrow,
    Op.localGet,
    Op.localSet,
    Op.localTee,
    Op.memoryGrow,
    PREFIX_MISC,
    PREFIX_SIMD,
    PREFIX_ATOMIC,
  ])
    t[op] = 0;
  return t;
})();

/** 1: PLAIN_OP; 2: `local.get/set/tee` (a u32 index, renumbered in carrying functions). */
const FAST_OP: Uint8Array = (() => {
  const t = PLAIN_OP.slice();
  t[Op.localGet] = t[Op.localSet] = t[Op.localTee] = 2;
  return t;
})();

function misc(op: number): number {
  if (op === MiscOp.memoryInit || op === MiscOp.memoryCopy || op === MiscOp.memoryFill)
    return Dyn.memory;
  if (
    op === MiscOp.tableInit ||
    op === MiscOp.tableCopy ||
    op === MiscOp.tableFill ||
    op === MiscOp.tableGrow
  ) {
    return Dyn.table;
  }
  return 0;
}

const P = new Planner();

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
function matchCounted(
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

/**
 * `shiftLocalsFrom` >= 0: the function carries fuel, so two parameters are inserted before its
 * declared locals, and each `local.*` of an index >= shiftLocalsFrom gets an `Ev.local` event.
 * The plan's arrays are valid until the next call.
 */
export function planFunction(
  bytes: Uint8Array,
  start: number,
  end: number,
  m: ModuleFacts,
  shiftLocalsFrom = -1,
): FunctionPlan {
  const r = new ByteReader(bytes, start, end);
  const perInstr = m.placement === 'per-instruction';
  const { single, misc: miscCost, simd, atomic } = m.costs;

  let numLocals = 0;
  const nDecl = r.u32();
  for (let i = 0; i < nDecl; i++) {
    numLocals += r.u32();
    if (!SIMPLE_VALTYPES.has(r.byte()))
      throw new PlacementError('unsupported', 'local of a typed reference type');
    if (numLocals > 50000) throw new PlacementError('unsupported', 'more than 50000 locals');
  }
  const instrStart = r.pos;
  P.reset(perInstr);

  const singleCost = single;
  while (P.nF > 0) {
    const p = r.pos;
    const op = r.byte();
    const imm = SINGLE_IMM[op] as number;
    // Fast path: most operators only add to the block's cost. A run of them is consumed in
    // one tight loop straight off the bytes (the module validated: every LEB128 ends inside
    // the body; a malformed body still ends in the size check below).
    if (FAST_OP[op] !== 0 && !perInstr) {
      if (P.needNew) P.begin(p, P.newFlags);
      let at = p;
      let o = op;
      let pos = r.pos;
      let acc = P.cost[P.cur] as number;
      for (;;) {
        acc += singleCost[o] as number;
        const k = SINGLE_IMM[o] as number;
        if (FAST_OP[o] === 2) {
          let idx = 0;
          let shift = 0;
          let b: number;
          do {
            b = bytes[pos++] as number;
            idx |= (b & 0x7f) << shift;
            shift += 7;
          } while ((b & 0x80) !== 0);
          if (shiftLocalsFrom >= 0 && idx >>> 0 >= shiftLocalsFrom) P.ev(at, Ev.local, 0);
        } else if (k === Imm.f32) pos += 4;
        else if (k === Imm.f64) pos += 8;
        else if (k === Imm.memarg) {
          const align = bytes[pos] as number;
          while (((bytes[pos++] as number) & 0x80) !== 0);
          if ((align & 0x40) !== 0) while (((bytes[pos++] as number) & 0x80) !== 0);
          while (((bytes[pos++] as number) & 0x80) !== 0);
        } else if (k !== Imm.none) while (((bytes[pos++] as number) & 0x80) !== 0);
        if (pos >= end) break;
        o = bytes[pos] as number;
        if (FAST_OP[o] === 0) break;
        at = pos++;
      }
      r.pos = pos;
      P.cost[P.cur] = acc;
      continue;
    }
    // Block markers: they never start a metered block themselves.
    if (
      op === Op.end ||
      op === Op.else ||
      op === Op.catch ||
      op === Op.catchAll ||
      op === Op.delegate
    ) {
      const top = P.nF - 1;
      const k = P.fKind[top] as number;
      if (op === Op.catch || op === Op.delegate) r.u32();
      if (op === Op.end && k === F_FUNC) {
        if (!r.done) throw new PlacementError('invalid', 'code after the final end');
        P.nF--;
        P.ev(p, P.needsWrapper ? Ev.wrapClose : Ev.exit, 0);
        break;
      }
      if (op === Op.else) {
        if (k !== F_IF) throw new PlacementError('invalid', 'else outside if');
        P.tailTo(top);
        P.needNew = true;
        P.newFlags = 0;
        P.srcs = P.node(P.fIf[top] as number, -1);
        P.fIf[top] = -1;
        continue;
      }
      if (op === Op.catch || op === Op.catchAll) {
        if (k !== F_TRY) throw new PlacementError('invalid', 'catch outside try');
        P.tailTo(top);
        P.needNew = false;
        P.srcs = -1;
        if (perInstr) P.ev(r.pos, Ev.landing, 0);
        P.begin(r.pos, BF.check | BF.reload | BF.landing);
        continue;
      }
      // end (block / loop / if / try) or delegate (try).
      P.nF--;
      if (k === F_LOOP) continue;
      if (k === F_BLOCK && P.fHead[top] === -1) continue; // never targeted: no split
      P.tailTo(top);
      const ifBlock = P.fIf[top] as number;
      if (ifBlock >= 0) P.fHead[top] = P.node(ifBlock, P.fHead[top] as number);
      P.needNew = true;
      P.newFlags = 0;
      P.srcs = P.fHead[top] as number;
      continue;
    }

    // Any other instruction: decode the full opcode first.
    let c: number;
    let sub = -1;
    let dyn = 0;
    if (op === PREFIX_MISC || op === PREFIX_SIMD || op === PREFIX_ATOMIC) {
      sub = r.u32();
      const t = op === PREFIX_MISC ? MISC_IMM : op === PREFIX_SIMD ? SIMD_IMM : ATOMIC_IMM;
      const subImm = sub < t.length ? (t[sub] as number) : Imm.invalid;
      if (subImm === Imm.invalid)
        throw new PlacementError('invalid', `unknown opcode 0x${op.toString(16)} ${sub}`);
      if (op === PREFIX_ATOMIC && ATOMIC_WAIT_OPS.has(sub) && !m.allowAtomicWait) {
        throw new PlacementError('unsupported', 'memory.atomic.wait blocks the thread');
      }
      skipImmediates(r, subImm);
      c = (op === PREFIX_MISC ? miscCost : op === PREFIX_SIMD ? simd : atomic)[sub] as number;
      if (op === PREFIX_MISC) dyn = misc(sub);
    } else {
      if (imm === Imm.unsupported) {
        throw new PlacementError(
          'unsupported',
          `opcode 0x${op.toString(16)} (a proposal Node 20 does not run)`,
        );
      }
      if (imm === Imm.invalid)
        throw new PlacementError('invalid', `unknown opcode 0x${op.toString(16)}`);
      c = single[op] as number;
      if (op === Op.memoryGrow) dyn = Dyn.grow;
    }

    if (dyn !== 0 && !perInstr) {
      P.begin(p, BF.check | BF.dyn | (dyn << 8) | (P.needNew ? P.newFlags : 0));
    } else if (P.needNew) {
      P.begin(p, P.newFlags);
    }

    switch (op) {
      case Op.block:
      case Op.loop:
      case Op.if:
      case Op.try: {
        const bt = readBlockType(r);
        if (bt === null) throw new PlacementError('unsupported', 'typed reference block type');
        P.pushFrame(
          op === Op.block ? F_BLOCK : op === Op.loop ? F_LOOP : op === Op.if ? F_IF : F_TRY,
          op === Op.if ? P.cur : -1,
          bt === -1 ? 0 : typeof bt === 'number' ? 1 : -1,
        );
        if (op === Op.loop) {
          if (bt === -1 && !perInstr) matchCounted(bytes, p, r.pos, end, shiftLocalsFrom, m);
          P.fallTo(BF.check);
        } else if (op === Op.if) P.fallTo(0);
        break;
      }
      case Op.br:
        P.target(r.u32());
        P.terminate();
        break;
      case Op.brIf: {
        const depth = r.u32();
        P.target(depth);
        const i = P.nF - 1 - depth;
        const k = P.fKind[i] as number;
        if (!perInstr && k !== F_LOOP && k !== F_FUNC && P.fArity[i] === 0) {
          // Forward exit without values: keep the block going (the fall-through path is
          // prepaid with it) and refund the rest of the block when the branch is taken.
          const n = P.nR;
          P.ev(p, Ev.brIfRefund, n);
          if (n === P.refBlock.length) {
            P.refBlock = grow32(P.refBlock);
            P.refFrom = grow64(P.refFrom);
            P.refund = grow64(P.refund);
          }
          P.refBlock[n] = P.cur;
          P.refFrom[n] = (P.cost[P.cur] as number) + c;
          P.nR = n + 1;
        } else {
          P.fallTo(0);
        }
        break;
      }
      case Op.brTable: {
        const n = r.u32();
        for (let i = 0; i <= n; i++) P.target(r.u32());
        P.terminate();
        break;
      }
      case Op.return:
        P.ev(p, Ev.exit, 0);
        P.terminate();
        break;
      case Op.unreachable:
        // A trap a JavaScript caller may catch: write the counter back first.
        if (!perInstr) P.ev(p, Ev.throw, 0);
        P.terminate();
        break;
      case Op.call: {
        let f = r.u32();
        const host = f < m.numFuncImports;
        if (host) c += m.importCost[f] as number;
        const split = m.catching || m.unwinds === null || m.unwinds[f] !== 0;
        const twin = m.twin !== null && !perInstr ? (m.twin[f] as number) : -1;
        if (twin >= 0) f = twin;
        P.afterCall(p, r.pos, host, m.carrying !== null && m.carrying[f] === 1, twin, split);
        break;
      }
      case Op.callIndirect:
        r.u32();
        r.u32();
        P.afterCall(p, r.pos, true, false, -1, true);
        break;
      case Op.localGet:
      case Op.localSet:
      case Op.localTee:
        if (r.u32() >= shiftLocalsFrom && shiftLocalsFrom >= 0) P.ev(p, Ev.local, 0);
        break;
      case Op.returnCall:
      case Op.returnCallIndirect: {
        if (m.carrying) throw new PlacementError('no-carry', 'tail call');
        const f = r.u32();
        if (op === Op.returnCallIndirect) r.u32();
        else if (f < m.numFuncImports) c += m.importCost[f] as number;
        P.hasCalls = true;
        P.ev(p, Ev.exit, 0);
        P.terminate();
        break;
      }
      case Op.throw:
      case Op.rethrow:
        r.u32();
        if (!perInstr) P.ev(p, Ev.throw, 0);
        P.terminate();
        break;
      default:
        if (sub < 0 && !skipImmediates(r, imm)) {
          throw new PlacementError('unsupported', `immediates of opcode 0x${op.toString(16)}`);
        }
    }
    if (perInstr) {
      if (c > 0 || dyn !== 0) P.ev(p, Ev.instr, c | (dyn << 24));
      if (P.hostReturnAt >= 0) {
        P.ev(P.hostReturnAt, Ev.hostReturn, 0);
        P.hostReturnAt = -1;
      }
    } else {
      P.cost[P.cur] = (P.cost[P.cur] as number) + c;
    }
    if (op === Op.try && !m.catching) throw new PlacementError('needs-catching', 'try');
  }
  if (r.pos !== end) throw new PlacementError('invalid', 'function body size mismatch');

  const { cost, flags, eSrc, eDst } = P;
  for (let i = 0; i < P.nR; i++)
    P.refund[i] = (cost[P.refBlock[i] as number] as number) - (P.refFrom[i] as number);

  // Lookahead: one reverse sweep (edges are sorted by destination).
  const n = P.nB;
  while (P.w.length < n) {
    P.w = grow64(P.w);
    P.succ = grow64(P.succ);
  }
  const { w, succ } = P;
  succ.fill(0, 0, n);
  let e = P.nE - 1;
  for (let b = n - 1; b >= 0; b--) {
    const wb = (cost[b] as number) + (succ[b] as number);
    w[b] = wb;
    const isCheck = ((flags[b] as number) & BF.check) !== 0;
    while (e >= 0 && eDst[e] === b) {
      const s = eSrc[e] as number;
      if (!isCheck && wb > (succ[s] as number)) succ[s] = wb;
      e--;
    }
  }
  return {
    localsStart: start,
    instrStart,
    end,
    numLocals,
    hasCalls: P.hasCalls,
    hasCarryCalls: P.hasCarryCalls,
    needsWrapper: P.needsWrapper,
    evPos: P.evPos.subarray(0, P.nEv),
    evKind: P.evKind.subarray(0, P.nEv),
    evArg: P.evArg.subarray(0, P.nEv),
    cost: cost.subarray(0, n),
    refund: P.refund.subarray(0, P.nR),
    flags: flags.subarray(0, n),
    w: w.subarray(0, n),
    succ: succ.subarray(0, n),
    counted: P.counted.subarray(0, P.nC),
  };
}
