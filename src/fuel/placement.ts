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
import { BF, Dyn, Ev, F_BLOCK, F_FUNC, F_IF, F_LOOP, F_TRY, PlacementError } from './plan-types.ts';
import type { FunctionPlan, ModuleFacts } from './plan-types.ts';
import { matchCounted } from './counted-loops.ts';
import { matchDispatch } from './dispatch-loops.ts';
import type { Dispatch } from './dispatch-loops.ts';
import { FAST_OP, grow32, grow64, Planner } from './planner.ts';

export { BF, Dyn, Ev, PlacementError } from './plan-types.ts';
export type { FunctionPlan, ModuleFacts, Placement } from './plan-types.ts';

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
/** `table.set`: not a plain operator for the planner (privateTable, plan-types.ts). */
const TABLE_SET = 0x26;
const LOCAL_GET = 0x20;
const EMPTY = new Int32Array(0);

/** The one plan object, refilled by every call (like the planner's buffers it points to). */
const PLAN: { -readonly [K in keyof FunctionPlan]: FunctionPlan[K] } = {
  localsStart: 0,
  instrStart: 0,
  end: 0,
  numLocals: 0,
  hasCalls: false,
  hasCarryCalls: false,
  needsWrapper: false,
  nEv: 0,
  evPos: P.evPos,
  evKind: P.evKind,
  evArg: P.evArg,
  nBlocks: 0,
  cost: P.cost,
  nRefunds: 0,
  refund: P.refund,
  flags: P.flags,
  w: P.w,
  succ: P.succ,
  nCounted: 0,
  counted: P.counted,
};

/** Fast-path kinds (the low 3 bits of a `fastTable` entry): how to skip the immediates. */
const FK_NONE = 1;
const FK_LOCAL = 2;
const FK_LEB = 3;
const FK_F32 = 4;
const FK_F64 = 5;
const FK_MEMARG = 6;
const FK_OF: Partial<Record<number, number>> = {
  [Imm.none]: FK_NONE,
  [Imm.u32]: FK_LEB,
  [Imm.i32]: FK_LEB,
  [Imm.i64]: FK_LEB,
  [Imm.f32]: FK_F32,
  [Imm.f64]: FK_F64,
  [Imm.memarg]: FK_MEMARG,
};
let fastFor: Int32Array | null = null;
let fastTab = new Int32Array(256);

/**
 * Per single-byte opcode, `cost << 3 | kind` for the fast path's operators (FAST_OP), 0 for
 * the others and for costs too large to pack (they take the slow path): one load per operator
 * instead of three. Built once per cost table (the last one is kept).
 */
function fastTable(single: Int32Array): Int32Array {
  if (single === fastFor) return fastTab;
  const t = new Int32Array(256);
  for (let op = 0; op < 256; op++) {
    const c = single[op] as number;
    if (FAST_OP[op] === 0 || c < 0 || c >= 1 << 27) continue;
    const k = FAST_OP[op] === 2 ? FK_LOCAL : FK_OF[SINGLE_IMM[op] as number];
    if (k !== undefined) t[op] = (c << 3) | k;
  }
  fastFor = single;
  fastTab = t;
  return t;
}

/**
 * `shiftLocalsFrom` >= 0: the function carries fuel, so two parameters are inserted before its
 * declared locals, and each `local.*` of an index >= shiftLocalsFrom gets an `Ev.local` event.
 * The plan (one object, refilled) and its arrays (the planner's buffers, `FunctionPlan`) are
 * valid until the next call.
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
  const privateTable = m.privateTable === true && !perInstr;
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
  // The dispatch loop being planned (dispatch-loops.ts), its frame, how many of its case
  // blocks have ended, the next jump, and each ended case's first block.
  let disp: Dispatch | null = null;
  let dLoop = -1;
  let dEnded = 0;
  let dNext = 0;
  let caseBlock: Int32Array = EMPTY;

  const fast = fastTable(single);
  while (P.nF > 0) {
    const p = r.pos;
    const op = r.byte();
    const imm = SINGLE_IMM[op] as number;
    // Fast path: most operators only add to the block's cost. A run of them is consumed in
    // one tight loop straight off the bytes (the module validated: every LEB128 ends inside
    // the body; a malformed body still ends in the size check below).
    if ((fast[op] as number) !== 0 && !perInstr) {
      if (P.needNew) P.begin(p, P.newFlags);
      let at = p;
      let t = fast[op] as number;
      let pos = r.pos;
      let acc = P.cost[P.cur] as number;
      for (;;) {
        acc += t >>> 3;
        switch (t & 7) {
          case FK_NONE:
            break;
          case FK_LOCAL: {
            let idx = 0;
            let shift = 0;
            let b: number;
            do {
              b = bytes[pos++] as number;
              idx |= (b & 0x7f) << shift;
              shift += 7;
            } while ((b & 0x80) !== 0);
            if (shiftLocalsFrom >= 0 && idx >>> 0 >= shiftLocalsFrom) P.ev(at, Ev.local, 0);
            break;
          }
          case FK_F32:
            pos += 4;
            break;
          case FK_F64:
            pos += 8;
            break;
          case FK_MEMARG: {
            const align = bytes[pos] as number;
            while (((bytes[pos++] as number) & 0x80) !== 0);
            if ((align & 0x40) !== 0) while (((bytes[pos++] as number) & 0x80) !== 0);
            while (((bytes[pos++] as number) & 0x80) !== 0);
            break;
          }
          default:
            while (((bytes[pos++] as number) & 0x80) !== 0);
        }
        if (pos >= end) break;
        t = fast[bytes[pos] as number] as number;
        if (t === 0) break;
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
      if (disp !== null) {
        if (top === dLoop) disp = null;
        else if (top === dLoop + disp.n - dEnded) caseBlock[dEnded++] = P.nB; // its first block
      }
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
      if (op === PREFIX_MISC) {
        dyn = misc(sub);
        if (privateTable && (sub === MiscOp.tableGrow || sub === MiscOp.tableFill))
          throw new PlacementError('table-mutation', 'table.grow or table.fill');
      }
    } else {
      if (op === TABLE_SET && privateTable) throw new PlacementError('table-mutation', 'table.set');
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
          if (bt === -1 && !perInstr && disp === null) {
            disp = matchDispatch(bytes, p + 1, end);
            if (disp !== null) {
              // The header is no block boundary: no charge, no check (see dispatch-loops.ts).
              dLoop = P.nF - 1;
              dEnded = 0;
              dNext = 0;
              caseBlock = new Int32Array(disp.n);
              break;
            }
          }
          if (bt === -1 && !perInstr) matchCounted(P, bytes, p, r.pos, end, shiftLocalsFrom, m);
          P.fallTo(BF.check);
        } else if (op === Op.if) P.fallTo(0);
        break;
      }
      case Op.br: {
        const depth = r.u32();
        if (disp !== null && disp.jumpPos[dNext] === p) {
          // A jump through the dispatch: this block pays the header's two operators too.
          const l = disp.jumpLabel[dNext++] as number;
          c += (single[LOCAL_GET] as number) + (single[Op.brTable] as number);
          if (l < dEnded) {
            // To the same or an earlier case: that case checks (a back edge, no edge kept).
            const b = caseBlock[l] as number;
            P.flags[b] = (P.flags[b] as number) | BF.check;
          } else P.target(P.nF - 1 - (dLoop + disp.n - l));
        } else P.target(depth);
        P.terminate();
        break;
      }
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
        // Only this module's functions sit in a private table: no host on the other side.
        P.afterCall(p, r.pos, !privateTable, false, -1, true);
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
  const plan = PLAN;
  plan.localsStart = start;
  plan.instrStart = instrStart;
  plan.end = end;
  plan.numLocals = numLocals;
  plan.hasCalls = P.hasCalls;
  plan.hasCarryCalls = P.hasCarryCalls;
  plan.needsWrapper = P.needsWrapper;
  plan.nEv = P.nEv;
  plan.evPos = P.evPos;
  plan.evKind = P.evKind;
  plan.evArg = P.evArg;
  plan.nBlocks = n;
  plan.cost = cost;
  plan.nRefunds = P.nR;
  plan.refund = P.refund;
  plan.flags = flags;
  plan.w = w;
  plan.succ = succ;
  plan.nCounted = P.nC;
  plan.counted = P.counted;
  return plan;
}
