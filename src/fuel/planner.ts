/**
 * The planner's reusable state and its block/edge bookkeeping (placement.ts drives it over a
 * body). Split from placement.ts for size only.
 */
import { Imm, Op, PREFIX_ATOMIC, PREFIX_MISC, PREFIX_SIMD, SINGLE_IMM } from '../wasm/opcodes.ts';
import { BF, Ev, F_FUNC, F_LOOP, PlacementError } from './plan-types.ts';

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
    0x26, // table.set: may put a function from outside into a private table (placement.ts)
  ])
    t[op] = 0;
  return t;
})();

/** 1: PLAIN_OP; 2: `local.get/set/tee` (a u32 index, renumbered in carrying functions). */
export const FAST_OP: Uint8Array = (() => {
  const t = PLAIN_OP.slice();
  t[Op.localGet] = t[Op.localSet] = t[Op.localTee] = 2;
  return t;
})();

export const grow32 = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
};
export const grow64 = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
};

/**
 * The planner's state, allocated once and reused by every body (no per-body arrays or
 * closures: planning a large module was dominated by allocation). Lists of block ids (the
 * sources flowing into the next block, each control frame's pending exits) are linked lists
 * in one node pool. A plan's arrays are views of these buffers: valid until the next
 * `planFunction` call.
 */
export class Planner {
  evPos = new Int32Array(4096);
  evKind = new Int32Array(4096);
  evArg = new Int32Array(4096);
  nEv = 0;
  cost = new Float64Array(1024);
  flags = new Int32Array(1024);
  nB = 0;
  eSrc = new Int32Array(1024);
  eDst = new Int32Array(1024);
  nE = 0;
  refBlock = new Int32Array(256);
  refFrom = new Float64Array(256);
  refund = new Float64Array(256);
  nR = 0;
  fKind = new Int32Array(64);
  /** Head of the frame's pending-exit list (-1: empty). */
  fHead = new Int32Array(64);
  fIf = new Int32Array(64);
  /** Label arity when known (0 or 1), -1 for type-index block types. */
  fArity = new Int32Array(64);
  nF = 0;
  lVal = new Int32Array(1024);
  lNext = new Int32Array(1024);
  nL = 0;
  w = new Float64Array(1024);
  succ = new Float64Array(1024);
  /** COUNTED_FIELDS per counted loop. */
  counted = new Int32Array(64);
  nC = 0;

  cur = 0;
  needNew = false;
  newFlags = 0;
  /** Head of the list of blocks flowing into the next block (-1: none). */
  srcs = -1;
  hasCalls = false;
  hasCarryCalls = false;
  needsWrapper = false;
  hostReturnAt = -1;
  perInstr = false;

  reset(perInstr: boolean): void {
    this.nEv = this.nB = this.nE = this.nR = this.nF = this.nL = this.nC = 0;
    this.cur = 0;
    this.needNew = false;
    this.newFlags = 0;
    this.srcs = -1;
    this.hasCalls = this.hasCarryCalls = this.needsWrapper = false;
    this.hostReturnAt = -1;
    this.perInstr = perInstr;
    this.addBlock(BF.check | BF.entry);
    this.pushFrame(F_FUNC, -1, -1);
  }

  ev(pos: number, kind: number, arg: number): void {
    const n = this.nEv;
    if (n === this.evPos.length) {
      this.evPos = grow32(this.evPos);
      this.evKind = grow32(this.evKind);
      this.evArg = grow32(this.evArg);
    }
    this.evPos[n] = pos;
    this.evKind[n] = kind;
    this.evArg[n] = arg;
    this.nEv = n + 1;
  }

  addBlock(fl: number): number {
    const b = this.nB;
    if (b === this.cost.length) {
      this.cost = grow64(this.cost);
      this.flags = grow32(this.flags);
    }
    this.cost[b] = 0;
    this.flags[b] = fl;
    this.nB = b + 1;
    return b;
  }

  node(val: number, next: number): number {
    const k = this.nL;
    if (k === this.lVal.length) {
      this.lVal = grow32(this.lVal);
      this.lNext = grow32(this.lNext);
    }
    this.lVal[k] = val;
    this.lNext[k] = next;
    this.nL = k + 1;
    return k;
  }

  pushFrame(kind: number, ifBlock: number, arity: number): void {
    const i = this.nF;
    if (i === this.fKind.length) {
      this.fKind = grow32(this.fKind);
      this.fHead = grow32(this.fHead);
      this.fIf = grow32(this.fIf);
      this.fArity = grow32(this.fArity);
    }
    this.fKind[i] = kind;
    this.fHead[i] = -1;
    this.fIf[i] = ifBlock;
    this.fArity[i] = arity;
    this.nF = i + 1;
  }

  begin(pos: number, fl: number): void {
    const b = this.addBlock(fl);
    if ((fl & BF.check) === 0) {
      for (let x = this.srcs; x >= 0; x = this.lNext[x] as number) {
        const e = this.nE;
        if (e === this.eSrc.length) {
          this.eSrc = grow32(this.eSrc);
          this.eDst = grow32(this.eDst);
        }
        this.eSrc[e] = this.lVal[x] as number;
        this.eDst[e] = b;
        this.nE = e + 1;
      }
    }
    if (!this.perInstr) this.ev(pos, Ev.block, b);
    this.cur = b;
    this.needNew = false;
    this.newFlags = 0;
    this.srcs = -1;
  }

  /** Adds the current path's tail (the pending sources, or the current block) to frame i. */
  tailTo(i: number): void {
    if (!this.needNew) {
      this.fHead[i] = this.node(this.cur, this.fHead[i] as number);
      return;
    }
    for (let x = this.srcs; x >= 0; x = this.lNext[x] as number)
      this.fHead[i] = this.node(this.lVal[x] as number, this.fHead[i] as number);
  }

  terminate(): void {
    this.needNew = true;
    this.newFlags = 0;
    this.srcs = -1;
  }

  fallTo(fl: number): void {
    this.needNew = true;
    this.newFlags = fl;
    this.srcs = this.node(this.cur, -1);
  }

  target(depth: number): void {
    const i = this.nF - 1 - depth;
    if (i < 0) throw new PlacementError('invalid', 'branch depth out of range');
    const k = this.fKind[i] as number;
    if (k === F_FUNC) this.needsWrapper = true;
    else if (k !== F_LOOP) this.fHead[i] = this.node(this.cur, this.fHead[i] as number);
  }

  afterCall(
    pos: number,
    next: number,
    host: boolean,
    carry: boolean,
    twin: number,
    split: boolean,
  ): void {
    this.hasCalls = true;
    if (this.perInstr) {
      if (host) this.hostReturnAt = next; // after the call's own charge event
      return;
    }
    if (carry) this.hasCarryCalls = true;
    this.ev(pos, Ev.preCall, carry ? 1 : 0);
    if (twin >= 0) this.ev(pos, Ev.callTwin, twin);
    this.ev(next, Ev.postCall, (this.cur << 2) | (carry ? 2 : 0) | (host ? 1 : 0));
    // A call may not return: an exception thrown by the host (or a trap) unwinds it, and a
    // JavaScript caller may catch it and go on. Ending the block here keeps the code after the
    // call unpaid until it runs, so the fuel written before the call is exact either way.
    if (split) this.fallTo(0);
  }
}
