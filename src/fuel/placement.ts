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
import type { CompiledCosts } from './cost-table.ts';

/** Block flags. */
export const BF = {
  /** Charges and checks (function entry, loop header, exception landing, operand-priced op). */
  check: 1,
  /** Reloads the fuel local from the global first (exception landing). */
  reload: 2,
  /** Restores the depth counter first (exception landing). */
  landing: 4,
  /** Starts with an operand-priced instruction; bits 8+ hold its `Dyn` kind. */
  dyn: 8,
  entry: 16,
} as const;

export const Dyn = { grow: 1, memory: 2, table: 3 } as const;

/** Event kinds: code the emitter inserts before the instruction at `pos`. */
export const Ev = {
  /** Start of metered block `arg`. */
  block: 1,
  /** Write the fuel local back to the global before a call. */
  preCall: 2,
  /** After a call: reload the local; arg = block << 1 | (1 if the callee may be the host). */
  postCall: 3,
  /** Function exit (`return`, tail call): write back fuel, restore the depth counter. */
  exit: 4,
  /** Before `throw` / `rethrow`: write back fuel. */
  throw: 5,
  /** Before the final `end` of a wrapped body: close the wrapper block, then exit. */
  wrapClose: 6,
  /** Reference placement: charge one instruction; arg = cost | dynKind << 24. */
  instr: 7,
  /** Reference placement: exception landing (restore the depth counter). */
  landing: 8,
  /** `local.get/set/tee` of a declared local in a fuel-carrying function: renumber it. */
  local: 9,
  /**
   * A forward `br_if` (to a label without values) that does not end its metered block: the
   * block was charged for the code after it too, so the taken branch refunds that part;
   * arg = index into `refund`.
   */
  brIfRefund: 10,
  /**
   * Reference placement: after a call that may reach JavaScript (imported or indirect), which
   * may have caught an exception that unwound instrumented frames: restore the depth counter.
   */
  hostReturn: 11,
  /** A direct call redirected to the callee's carrying twin; arg = the twin's index. */
  callTwin: 12,
} as const;

export type Placement = 'metered-blocks' | 'per-instruction';

export interface ModuleFacts {
  readonly costs: CompiledCosts;
  readonly placement: Placement;
  /** The module contains `try`: calls end metered blocks, landings reload fuel. */
  readonly catching: boolean;
  readonly numFuncImports: number;
  /** Extra static cost of a direct call to imported function i. */
  readonly importCost: Int32Array;
  readonly allowAtomicWait: boolean;
  /**
   * Per function index, 1 if the function carries fuel (and depth) in extra parameters and
   * an extra result instead of the global; null when no function does.
   */
  readonly carrying: Uint8Array | null;
  /**
   * Per function index, the index of its carrying twin (an exported function's body moved to
   * an appended function; the original index keeps a wrapper for callers from outside), or -1.
   * Direct calls go to the twin. Null when no function has one.
   */
  readonly twin: Int32Array | null;
  /**
   * Per function index, 1 if a call to it may not return (unwind-scan.ts): such calls end
   * their metered block. Null: every call does.
   */
  readonly unwinds: Uint8Array | null;
}

export class PlacementError extends Error {
  constructor(
    readonly kind: 'unsupported' | 'invalid' | 'needs-catching' | 'no-carry',
    message: string,
  ) {
    super(message);
  }
}

const F_FUNC = 0;
const F_BLOCK = 1;
const F_LOOP = 2;
const F_IF = 3;
const F_TRY = 4;

export interface FunctionPlan {
  readonly localsStart: number;
  readonly instrStart: number;
  readonly end: number;
  readonly numLocals: number;
  readonly hasCalls: boolean;
  /** Calls a fuel-carrying function directly. */
  readonly hasCarryCalls: boolean;
  readonly needsWrapper: boolean;
  readonly evPos: readonly number[];
  readonly evKind: readonly number[];
  readonly evArg: readonly number[];
  readonly cost: readonly number[];
  /** Per `Ev.brIfRefund`: the fuel to give back when the branch is taken. */
  readonly refund: readonly number[];
  readonly flags: readonly number[];
  /** Lookahead per block (W). */
  readonly w: Float64Array;
  /** Max W over non-checkpoint successors (W - cost). */
  readonly succ: Float64Array;
}

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

/**
 * `shiftLocalsFrom` >= 0: the function carries fuel, so two parameters are inserted before its
 * declared locals, and each `local.*` of an index >= shiftLocalsFrom gets an `Ev.local` event.
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

  const evPos: number[] = [];
  const evKind: number[] = [];
  const evArg: number[] = [];
  const ev = (pos: number, kind: number, arg: number): void => {
    evPos.push(pos);
    evKind.push(kind);
    evArg.push(arg);
  };
  const cost: number[] = [0];
  const flags: number[] = [BF.check | BF.entry];
  const eSrc: number[] = [];
  const eDst: number[] = [];

  // Control frames.
  const fKind: number[] = [F_FUNC];
  const fPending: number[][] = [[]];
  const fIfBlock: number[] = [-1];
  /** Label arity when known (0 or 1), -1 for type-index block types. */
  const fArity: number[] = [-1];
  const refundBlock: number[] = [];
  const refundFrom: number[] = [];

  let cur = 0;
  let needNew = false;
  let newFlags = 0;
  let srcs: number[] = [];
  let hasCalls = false;
  let hasCarryCalls = false;
  let needsWrapper = false;
  let hostReturnAt = -1;

  const begin = (pos: number, fl: number): void => {
    const b = cost.length;
    cost.push(0);
    flags.push(fl);
    if ((fl & BF.check) === 0) {
      for (const s of srcs) {
        eSrc.push(s);
        eDst.push(b);
      }
    }
    if (!perInstr) ev(pos, Ev.block, b);
    cur = b;
    needNew = false;
    newFlags = 0;
    srcs = [];
  };
  const tail = (): number[] => (needNew ? srcs : [cur]);
  const terminate = (): void => {
    needNew = true;
    newFlags = 0;
    srcs = [];
  };
  const fallTo = (fl: number): void => {
    needNew = true;
    newFlags = fl;
    srcs = [cur];
  };
  const target = (depth: number): void => {
    const i = fKind.length - 1 - depth;
    if (i < 0) throw new PlacementError('invalid', 'branch depth out of range');
    const k = fKind[i] as number;
    if (k === F_FUNC) needsWrapper = true;
    else if (k !== F_LOOP) (fPending[i] as number[]).push(cur);
  };
  const afterCall = (
    pos: number,
    next: number,
    host: boolean,
    carry: boolean,
    twin: number,
    split: boolean,
  ): void => {
    hasCalls = true;
    if (perInstr) {
      if (host) hostReturnAt = next; // after the call's own charge event
      return;
    }
    if (carry) hasCarryCalls = true;
    ev(pos, Ev.preCall, carry ? 1 : 0);
    if (twin >= 0) ev(pos, Ev.callTwin, twin);
    ev(next, Ev.postCall, (cur << 2) | (carry ? 2 : 0) | (host ? 1 : 0));
    // A call may not return: an exception thrown by the host (or a trap) unwinds it, and a
    // JavaScript caller may catch it and go on. Ending the block here keeps the code after the
    // call unpaid until it runs, so the fuel written before the call is exact either way.
    if (split || m.catching) fallTo(0);
  };

  const singleCost = single;
  while (fKind.length > 0) {
    const p = r.pos;
    const op = r.byte();
    const imm = SINGLE_IMM[op] as number;
    // Fast path: most operators only add to the block's cost.
    if (PLAIN_OP[op] === 1 && !perInstr) {
      if (needNew) begin(p, newFlags);
      if (imm === Imm.u32 || imm === Imm.i32 || imm === Imm.i64) r.skipLeb(10);
      else if (imm !== Imm.none) skipImmediates(r, imm);
      cost[cur] = (cost[cur] as number) + (singleCost[op] as number);
      continue;
    }
    if (op >= Op.localGet && op <= Op.localTee && !perInstr) {
      if (needNew) begin(p, newFlags);
      if (r.u32() >= shiftLocalsFrom && shiftLocalsFrom >= 0) ev(p, Ev.local, 0);
      cost[cur] = (cost[cur] as number) + (singleCost[op] as number);
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
      const top = fKind.length - 1;
      const k = fKind[top] as number;
      if (op === Op.catch || op === Op.delegate) r.u32();
      if (op === Op.end && k === F_FUNC) {
        if (!r.done) throw new PlacementError('invalid', 'code after the final end');
        fKind.pop();
        ev(p, needsWrapper ? Ev.wrapClose : Ev.exit, 0);
        break;
      }
      if (op === Op.else) {
        if (k !== F_IF) throw new PlacementError('invalid', 'else outside if');
        (fPending[top] as number[]).push(...tail());
        needNew = true;
        newFlags = 0;
        srcs = [fIfBlock[top] as number];
        fIfBlock[top] = -1;
        continue;
      }
      if (op === Op.catch || op === Op.catchAll) {
        if (k !== F_TRY) throw new PlacementError('invalid', 'catch outside try');
        (fPending[top] as number[]).push(...tail());
        needNew = false;
        srcs = [];
        if (perInstr) ev(r.pos, Ev.landing, 0);
        begin(r.pos, BF.check | BF.reload | BF.landing);
        continue;
      }
      // end (block / loop / if / try) or delegate (try).
      const pending = fPending[top] as number[];
      fKind.pop();
      fPending.pop();
      const ifBlock = fIfBlock.pop() as number;
      fArity.pop();
      if (k === F_LOOP) continue;
      if (k === F_BLOCK && pending.length === 0) continue; // never targeted: no split
      pending.push(...tail());
      if (ifBlock >= 0) pending.push(ifBlock);
      needNew = true;
      newFlags = 0;
      srcs = pending;
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
      begin(p, BF.check | BF.dyn | (dyn << 8) | (needNew ? newFlags : 0));
    } else if (needNew) {
      begin(p, newFlags);
    }

    switch (op) {
      case Op.block:
      case Op.loop:
      case Op.if:
      case Op.try: {
        const bt = readBlockType(r);
        if (bt === null) throw new PlacementError('unsupported', 'typed reference block type');
        fArity.push(bt === -1 ? 0 : typeof bt === 'number' ? 1 : -1);
        fKind.push(
          op === Op.block ? F_BLOCK : op === Op.loop ? F_LOOP : op === Op.if ? F_IF : F_TRY,
        );
        fPending.push([]);
        fIfBlock.push(op === Op.if ? cur : -1);
        if (op === Op.loop) fallTo(BF.check);
        else if (op === Op.if) fallTo(0);
        break;
      }
      case Op.br:
        target(r.u32());
        terminate();
        break;
      case Op.brIf: {
        const depth = r.u32();
        target(depth);
        const i = fKind.length - 1 - depth;
        const k = fKind[i] as number;
        if (!perInstr && k !== F_LOOP && k !== F_FUNC && fArity[i] === 0) {
          // Forward exit without values: keep the block going (the fall-through path is
          // prepaid with it) and refund the rest of the block when the branch is taken.
          ev(p, Ev.brIfRefund, refundBlock.length);
          refundBlock.push(cur);
          refundFrom.push((cost[cur] as number) + c);
        } else {
          fallTo(0);
        }
        break;
      }
      case Op.brTable: {
        const n = r.u32();
        for (let i = 0; i <= n; i++) target(r.u32());
        terminate();
        break;
      }
      case Op.return:
        ev(p, Ev.exit, 0);
        terminate();
        break;
      case Op.unreachable:
        // A trap a JavaScript caller may catch: write the counter back first.
        if (!perInstr) ev(p, Ev.throw, 0);
        terminate();
        break;
      case Op.call: {
        let f = r.u32();
        const host = f < m.numFuncImports;
        if (host) c += m.importCost[f] as number;
        const split = m.unwinds === null || m.unwinds[f] !== 0;
        const twin = m.twin !== null && !perInstr ? (m.twin[f] as number) : -1;
        if (twin >= 0) f = twin;
        afterCall(p, r.pos, host, m.carrying !== null && m.carrying[f] === 1, twin, split);
        break;
      }
      case Op.callIndirect:
        r.u32();
        r.u32();
        afterCall(p, r.pos, true, false, -1, true);
        break;
      case Op.localGet:
      case Op.localSet:
      case Op.localTee:
        if (r.u32() >= shiftLocalsFrom && shiftLocalsFrom >= 0) ev(p, Ev.local, 0);
        break;
      case Op.returnCall:
      case Op.returnCallIndirect: {
        if (m.carrying) throw new PlacementError('no-carry', 'tail call');
        const f = r.u32();
        if (op === Op.returnCallIndirect) r.u32();
        else if (f < m.numFuncImports) c += m.importCost[f] as number;
        hasCalls = true;
        ev(p, Ev.exit, 0);
        terminate();
        break;
      }
      case Op.throw:
      case Op.rethrow:
        r.u32();
        if (!perInstr) ev(p, Ev.throw, 0);
        terminate();
        break;
      default:
        if (sub < 0 && !skipImmediates(r, imm)) {
          throw new PlacementError('unsupported', `immediates of opcode 0x${op.toString(16)}`);
        }
    }
    if (perInstr) {
      if (c > 0 || dyn !== 0) ev(p, Ev.instr, c | (dyn << 24));
      if (hostReturnAt >= 0) {
        ev(hostReturnAt, Ev.hostReturn, 0);
        hostReturnAt = -1;
      }
    } else {
      cost[cur] = (cost[cur] as number) + c;
    }
    if (op === Op.try && !m.catching) throw new PlacementError('needs-catching', 'try');
  }
  if (r.pos !== end) throw new PlacementError('invalid', 'function body size mismatch');

  const refund = refundBlock.map((b, i) => (cost[b] as number) - (refundFrom[i] as number));

  // Lookahead: one reverse sweep (edges are sorted by destination).
  const n = cost.length;
  const w = new Float64Array(n);
  const succ = new Float64Array(n);
  let e = eDst.length - 1;
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
    hasCalls,
    hasCarryCalls,
    needsWrapper,
    evPos,
    evKind,
    evArg,
    cost,
    refund,
    flags,
    w,
    succ,
  };
}
