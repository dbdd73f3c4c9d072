/**
 * Re-emits one function body from its placement plan: the original instructions are copied
 * byte for byte, with fuel code inserted at the plan's events. Three locals are appended to
 * the function: the cached fuel counter `f` (i64), an i32 scratch `t` for operand-priced
 * instructions, and the depth on entry `d` (i32).
 *
 * Metered-blocks placement (the default):
 *   entry         f = global - c; if f < W - c: out of fuel      (then the depth check)
 *   block         f -= c
 *   loop header   f -= c; if f < W - c: out of fuel
 *   priced op     t = operand; f -= c + price(t); if f < W - c: out of fuel
 *   call          global = f; call; f = global [; if f < succ: out of fuel]
 *   exit          global = f; depth = d; return / return_call / fall off the end
 *   landing       depth = d + 1; f = global - c; if f < W - c: out of fuel
 *   out of fuel   global = f; exhausted = 1; unreachable
 *
 * A carrying function (see instrument.ts) has `f` and `d` as parameters: its entry charges
 * `f` without reading the global and checks `d` against the limit; a call to a carrying callee
 * pushes `f, d + 1` after the arguments and pops the returned fuel into `f` (no global
 * traffic); a call to any other function writes the global first (and the depth global when
 * the caller carries or calls carrying functions); exit pushes `f` as the last result.
 *
 * Per-instruction placement (a reference for tests): every priced instruction is preceded by
 * `global -= c; if global < 0: out of fuel`; there is no cached local.
 */
import { ByteReader } from '../wasm/byte-reader.ts';
import { ByteWriter } from '../wasm/byte-writer.ts';
import { Op } from '../wasm/opcodes.ts';
import type { CompiledCosts } from './cost-table.ts';
import { BF, Dyn, Ev } from './placement.ts';
import { CK, CL } from './plan-types.ts';
import type { FunctionPlan, Placement } from './placement.ts';

export interface EmitContext {
  readonly placement: Placement;
  readonly costs: CompiledCosts;
  readonly fuelGlobal: number;
  readonly flagGlobal: number;
  readonly depthGlobal: number;
  /** 0 disables the depth counter. */
  readonly maxCallDepth: number;
}

/** Values of the exhausted flag global. */
export const ExhaustedFlag = { none: 0, fuel: 1, depth: 2 } as const;

const I64 = 0x7e;
const I32 = 0x7f;
const IF_EMPTY = [Op.if, 0x40] as const;
const I32_NE = 0x47;
const I32_LT_U = 0x49;
const I64_LE_U = 0x58;
const I64_GE_S = 0x59;
const I32_AND = 0x71;
const I32_LE_U = 0x4d;

/** Where the last `readLeb` ended. */
let lebNext = 0;

/** The u32 LEB128 at `at` of a validated body (no checks: the module validated). */
function readLeb(src: Uint8Array, at: number): number {
  let result = 0;
  let shift = 0;
  let b: number;
  do {
    b = src[at++] as number;
    result |= (b & 0x7f) << shift;
    shift += 7;
  } while ((b & 0x80) !== 0);
  lebNext = at;
  return result >>> 0;
}

export class BodyEmitter {
  private w = new ByteWriter(4096);
  private f = 0;
  private t = 0;
  private d = 0;
  private depthOn = false;
  private carry = false;
  private resetDepth = false;
  /** This body's out-of-fuel path after the `if` (write back, flag, trap, end), pre-encoded. */
  private oof = new ByteWriter(32);
  /** `global.get flag; if; unreachable; end` (after a call that may have run JavaScript). */
  private flagTrap: Uint8Array;

  constructor(private readonly ctx: EmitContext) {
    this.flagTrap = new ByteWriter(16)
      .byte(Op.globalGet)
      .u32(ctx.flagGlobal)
      .raw(IF_EMPTY)
      .byte(Op.unreachable)
      .byte(Op.end)
      .bytes();
  }

  /**
   * Emits the body (without its size prefix) into a buffer reused by the next call: copy the
   * result before emitting again. `wrapperType` is the encoded block type.
   * `carry`: the function gets its fuel (i64) and depth (i32) as two parameters after its own
   * and returns its remaining fuel as an extra last result (the plan renumbers its locals).
   */
  emit(
    src: Uint8Array,
    plan: FunctionPlan,
    numParams: number,
    wrapperType: readonly number[] | null,
    carry = false,
  ): Uint8Array {
    const { ctx } = this;
    // One writer for every body: the caller copies the result before the next call.
    const w = this.w;
    w.length = 0;
    const extra = carry ? 2 : 0;
    const base = numParams + extra + plan.numLocals;
    this.carry = carry;
    this.f = carry ? numParams : base;
    this.t = base + 1;
    this.d = carry ? numParams + 1 : base + 2;
    this.depthOn = ctx.maxCallDepth > 0 && plan.hasCalls;
    // Carrying callees do not maintain the depth global: before a call to a function that
    // reads it, a function that also calls carrying ones (or carries itself) sets it again.
    this.resetDepth = this.depthOn && (carry || plan.hasCarryCalls);
    const perInstr = ctx.placement === 'per-instruction';
    const oof = this.oof;
    oof.length = 0;
    oof.byte(Op.localGet).u32(this.f).byte(Op.globalSet).u32(ctx.fuelGlobal);
    oof.byte(Op.i32Const).s32(ExhaustedFlag.fuel).byte(Op.globalSet).u32(ctx.flagGlobal);
    oof.byte(Op.unreachable).byte(Op.end);

    // Locals: the original declarations, then (1 × i64) (2 × i32).
    const r = new ByteReader(src, plan.localsStart, plan.instrStart);
    const nDecl = r.u32();
    w.u32(nDecl + 2).copy(src, r.pos, plan.instrStart);
    w.u32(1).byte(I64).u32(2).byte(I32);

    // Prologue.
    if (!perInstr) {
      this.charge(0, plan, true);
    }
    if (this.depthOn && carry) {
      w.byte(Op.localGet).u32(this.d);
      w.byte(Op.i32Const).s32(ctx.maxCallDepth).byte(Op.i32GeU).raw(IF_EMPTY);
      w.byte(Op.i32Const).s32(ExhaustedFlag.depth).byte(Op.globalSet).u32(ctx.flagGlobal);
      w.byte(Op.unreachable).byte(Op.end);
    } else if (this.depthOn) {
      w.byte(Op.globalGet).u32(ctx.depthGlobal).byte(Op.localTee).u32(this.d);
      w.byte(Op.i32Const).s32(ctx.maxCallDepth).byte(Op.i32GeU).raw(IF_EMPTY);
      w.byte(Op.i32Const).s32(ExhaustedFlag.depth).byte(Op.globalSet).u32(ctx.flagGlobal);
      w.byte(Op.unreachable).byte(Op.end);
      w.byte(Op.localGet).u32(this.d).byte(Op.i32Const).s32(1).byte(Op.i32Add);
      w.byte(Op.globalSet).u32(ctx.depthGlobal);
    }
    if (wrapperType) w.byte(Op.block).raw(wrapperType);

    let at = plan.instrStart;
    const n = plan.evPos.length;
    for (let i = 0; i < n; i++) {
      const pos = plan.evPos[i] as number;
      if (pos > at) {
        w.copy(src, at, pos);
        at = pos;
      }
      const arg = plan.evArg[i] as number;
      switch (plan.evKind[i]) {
        case Ev.block:
          this.charge(arg, plan, false);
          break;
        case Ev.preCall:
          if (arg === 1) {
            // A carrying callee: fuel and the callee's depth travel as arguments.
            w.byte(Op.localGet).u32(this.f);
            if (this.depthOn)
              w.byte(Op.localGet).u32(this.d).byte(Op.i32Const).s32(1).byte(Op.i32Add);
            else w.byte(Op.i32Const).s32(0);
            break;
          }
          w.byte(Op.localGet).u32(this.f).byte(Op.globalSet).u32(ctx.fuelGlobal);
          if (this.resetDepth) {
            w.byte(Op.localGet).u32(this.d).byte(Op.i32Const).s32(1).byte(Op.i32Add);
            w.byte(Op.globalSet).u32(ctx.depthGlobal);
          }
          break;
        case Ev.throw:
          w.byte(Op.localGet).u32(this.f).byte(Op.globalSet).u32(ctx.fuelGlobal);
          break;
        case Ev.postCall: {
          const thr = plan.succ[arg >> 2] as number;
          // A carrying callee left its remaining fuel on the stack, above its results.
          if ((arg & 2) === 0) w.byte(Op.globalGet).u32(ctx.fuelGlobal);
          if ((arg & 1) !== 0 || thr > 0) this.checkTee(thr);
          else w.byte(Op.localSet).u32(this.f);
          if ((arg & 1) !== 0) this.afterHost();
          break;
        }
        case Ev.hostReturn:
          this.afterHost();
          break;
        case Ev.countedLoop:
          i = this.countedLoop(src, plan, i, arg);
          at = plan.counted[arg + CL.end] as number;
          break;
        case Ev.callTwin: {
          readLeb(src, pos + 1);
          w.byte(Op.call).u32(arg);
          at = lebNext;
          break;
        }
        case Ev.brIfRefund: {
          const give = plan.refund[arg] as number;
          if (give === 0) break; // nothing prepaid after it: copy the br_if as is
          // br_if L  →  if  f += give; br L+1  end
          const depth = readLeb(src, pos + 1);
          w.raw(IF_EMPTY).byte(Op.localGet).u32(this.f).byte(Op.i64Const).s64(give);
          w.byte(Op.i64Add)
            .byte(Op.localSet)
            .u32(this.f)
            .byte(Op.br)
            .u32(depth + 1)
            .byte(Op.end);
          at = lebNext;
          break;
        }
        case Ev.local: {
          // Renumber a declared local past the two inserted parameters.
          const idx = readLeb(src, pos + 1);
          w.byte(src[pos] as number).u32(idx + 2);
          at = lebNext;
          break;
        }
        case Ev.exit:
          this.exit(perInstr);
          break;
        case Ev.wrapClose:
          w.byte(Op.end);
          this.exit(perInstr);
          break;
        case Ev.instr:
          this.chargeInstr(arg & 0xffffff, arg >>> 24);
          break;
        case Ev.landing:
          this.restoreDepth();
          break;
        default:
          throw new Error(`unknown event ${plan.evKind[i]}`);
      }
    }
    w.copy(src, at, plan.end);
    return w.bytes();
  }

  /**
   * The body left at an exported function's index when its code moved to a carrying twin:
   * `args…, fuel, depth; call twin; fuel = last result; depth = depth on entry`. It charges
   * nothing (the twin's entry does), so the fuel is the same as the original function's.
   */
  wrapper(numParams: number, twin: number): Uint8Array {
    const { ctx } = this;
    const w = new ByteWriter(24 + numParams * 2);
    const save = numParams;
    w.u32(1).u32(1).byte(I32);
    for (let i = 0; i < numParams; i++) w.byte(Op.localGet).u32(i);
    w.byte(Op.globalGet).u32(ctx.fuelGlobal);
    w.byte(Op.globalGet).u32(ctx.depthGlobal).byte(Op.localTee).u32(save);
    w.byte(Op.call).u32(twin).byte(Op.globalSet).u32(ctx.fuelGlobal);
    w.byte(Op.localGet).u32(save).byte(Op.globalSet).u32(ctx.depthGlobal);
    w.byte(Op.end);
    return w.bytes();
  }

  /**
   * A counted loop (counted-loops.ts, `matchCounted`) at the `loop` opcode of event `i0`:
   *
   *   if (j < n && s != 0 && n + s <= 2^32 && f >= (n - j + 1) × (W(header) + calls))
   *     the loop, its header charged without a check, no check after its calls
   *   else
   *     the loop as usual
   *   end
   *
   * (count-down form: `if (j != 0 && f >= (j + 1) × (W(header) + calls))`). Both copies charge
   * the same, so the fuel used is the same; a top-tested exit `br_if` gains one label (the
   * `if`). Returns the index of the loop's last event.
   */
  private countedLoop(src: Uint8Array, plan: FunctionPlan, i0: number, c: number): number {
    const { w } = this;
    const cl = plan.counted;
    const loopEnd = cl[c + CL.end] as number;
    const j = cl[c + CL.j] as number;
    const n = cl[c + CL.n] as number;
    const s = cl[c + CL.s] as number;
    let iEnd = i0 + 1;
    while (iEnd < plan.evPos.length && (plan.evPos[iEnd] as number) < loopEnd) iEnd++;
    let header = -1;
    for (let i = i0 + 1; i < iEnd && header < 0; i++)
      if (plan.evKind[i] === Ev.block) header = plan.evArg[i] as number;
    if (header < 0) throw new Error('counted loop without a header block');
    const perTrip = (plan.w[header] as number) + (cl[c + CL.calls] as number);
    const pushN = (): void => {
      if (n >= 0) w.byte(Op.localGet).u32(n);
      else w.byte(Op.i32Const).s32(cl[c + CL.nk] as number);
    };
    if (cl[c + CL.kind] === CK.down) {
      // j != 0 && f >= (j + 1) × perTrip
      w.byte(Op.localGet).u32(j).byte(Op.i32Const).s32(0).byte(I32_NE);
      w.byte(Op.localGet).u32(this.f).byte(Op.localGet).u32(j).byte(Op.i64ExtendI32U);
    } else {
      w.byte(Op.localGet).u32(j);
      pushN();
      w.byte(I32_LT_U);
      const k = (cl[c + CL.k] as number) >>> 0;
      if (s >= 0) {
        // s != 0 && n + s <= 2^32
        w.byte(Op.localGet).u32(s).byte(Op.i32Const).s32(0).byte(I32_NE).byte(I32_AND);
        pushN();
        w.byte(Op.i64ExtendI32U).byte(Op.localGet).u32(s).byte(Op.i64ExtendI32U);
        w.byte(Op.i64Add).byte(Op.i64Const).s64(0x1_0000_0000).byte(I64_LE_U).byte(I32_AND);
      } else if (k !== 1) {
        // n <= 2^32 - k (a step of 1 never wraps below n)
        pushN();
        w.byte(Op.i32Const).s32((0x1_0000_0000 - k) | 0);
        w.byte(I32_LE_U).byte(I32_AND);
      }
      // f >= (n - j + 1) × perTrip
      w.byte(Op.localGet).u32(this.f);
      pushN();
      w.byte(Op.localGet).u32(j).byte(Op.i32Sub).byte(Op.i64ExtendI32U);
    }
    w.byte(Op.i64Const).s64(1).byte(Op.i64Add).byte(Op.i64Const).s64(perTrip);
    w.byte(Op.i64Mul).byte(I64_GE_S).byte(I32_AND).raw(IF_EMPTY);
    this.loopCopy(src, plan, i0, iEnd, c, true);
    w.byte(Op.else);
    this.loopCopy(src, plan, i0, iEnd, c, false);
    w.byte(Op.end);
    return iEnd - 1;
  }

  /** One copy of a counted loop (events i0 + 1 … iEnd - 1); `fast`: no check at the header. */
  private loopCopy(
    src: Uint8Array,
    plan: FunctionPlan,
    i0: number,
    iEnd: number,
    c: number,
    fast: boolean,
  ): void {
    const { w } = this;
    const loopEnd = plan.counted[c + CL.end] as number;
    const brIf = plan.counted[c + CL.brIf] as number;
    const depth = plan.counted[c + CL.depth] as number;
    let at = plan.evPos[i0] as number;
    let exitDone = false;
    for (let i = i0 + 1; i < iEnd; i++) {
      const pos = plan.evPos[i] as number;
      if (pos > at) {
        w.copy(src, at, pos);
        at = pos;
      }
      const arg = plan.evArg[i] as number;
      switch (plan.evKind[i]) {
        case Ev.block: {
          const cost = plan.cost[arg] as number;
          if (!fast || ((plan.flags[arg] as number) & BF.check) === 0)
            this.charge(arg, plan, false);
          else if (cost > 0) {
            w.byte(Op.localGet).u32(this.f).byte(Op.i64Const).s64(cost).byte(Op.i64Sub);
            w.byte(Op.localSet).u32(this.f);
          }
          break;
        }
        case Ev.brIfRefund: {
          // The top-tested exit leaves the loop: one label more (the `if` around the copies).
          // Other forward `br_if`s stay inside the body.
          const give = plan.refund[arg] as number;
          const d = readLeb(src, pos + 1) + (pos === brIf ? 1 : 0);
          if (pos === brIf) {
            if (d !== depth + 1) throw new Error('counted loop: exit depth');
            exitDone = true;
          }
          if (give === 0) w.byte(Op.brIf).u32(d);
          else {
            w.raw(IF_EMPTY).byte(Op.localGet).u32(this.f).byte(Op.i64Const).s64(give);
            w.byte(Op.i64Add).byte(Op.localSet).u32(this.f);
            w.byte(Op.br)
              .u32(d + 1)
              .byte(Op.end);
          }
          at = lebNext;
          break;
        }
        case Ev.local: {
          const idx = readLeb(src, pos + 1);
          w.byte(src[pos] as number).u32(idx + 2);
          at = lebNext;
          break;
        }
        // Calls to carrying leaves (counted-loops.ts, leafBound).
        case Ev.preCall:
          if (arg !== 1) throw new Error('counted loop: a call that does not carry');
          w.byte(Op.localGet).u32(this.f);
          if (this.depthOn)
            w.byte(Op.localGet).u32(this.d).byte(Op.i32Const).s32(1).byte(Op.i32Add);
          else w.byte(Op.i32Const).s32(0);
          break;
        case Ev.callTwin:
          readLeb(src, pos + 1);
          w.byte(Op.call).u32(arg);
          at = lebNext;
          break;
        case Ev.postCall: {
          if ((arg & 3) !== 2) throw new Error('counted loop: a call that does not carry');
          const thr = plan.succ[arg >> 2] as number;
          if (!fast && thr > 0) this.checkTee(thr);
          else w.byte(Op.localSet).u32(this.f);
          break;
        }
        default:
          throw new Error(`counted loop: unexpected event ${plan.evKind[i]}`);
      }
    }
    if (!exitDone && plan.counted[c + CL.kind] === CK.top)
      throw new Error('counted loop without its exit');
    w.copy(src, at, loopEnd);
  }

  private exit(perInstr: boolean): void {
    if (this.carry) {
      this.w.byte(Op.localGet).u32(this.f);
      return;
    }
    if (!perInstr) this.w.byte(Op.localGet).u32(this.f).byte(Op.globalSet).u32(this.ctx.fuelGlobal);
    if (this.depthOn)
      this.w.byte(Op.localGet).u32(this.d).byte(Op.globalSet).u32(this.ctx.depthGlobal);
  }

  /**
   * After a call that may have run JavaScript, which may have caught an exception or a trap
   * that unwound instrumented frames: restore the depth counter (the unwound frames never
   * restored it), and trap again if the flag says a fuel or depth trap was swallowed (the
   * limits must hold whatever the host's glue catches).
   */
  private afterHost(): void {
    this.restoreDepth();
    this.w.copy(this.flagTrap);
  }

  private restoreDepth(): void {
    if (!this.depthOn) return;
    this.w.byte(Op.localGet).u32(this.d).byte(Op.i32Const).s32(1).byte(Op.i32Add);
    this.w.byte(Op.globalSet).u32(this.ctx.depthGlobal);
  }

  /** Leaves nothing on the stack: `local.tee f; i64.const thr; i64.lt_s; if (out of fuel) end`. */
  private checkTee(thr: number): void {
    const { w } = this;
    w.byte(Op.localTee).u32(this.f).byte(Op.i64Const).s64(thr).byte(Op.i64LtS).raw(IF_EMPTY);
    const oof = this.oof;
    w.copy(oof.buffer, 0, oof.length);
  }

  private outOfFuel(): void {
    this.w.byte(Op.i32Const).s32(ExhaustedFlag.fuel).byte(Op.globalSet).u32(this.ctx.flagGlobal);
    this.w.byte(Op.unreachable).byte(Op.end);
  }

  /** Pushes the operand-dependent price of `dyn` computed from local `t` (an i64). */
  private price(dyn: number): boolean {
    const { costs } = this.ctx;
    const k =
      dyn === Dyn.grow ? costs.growPerPage : dyn === Dyn.memory ? costs.bulkPer64 : costs.tablePer8;
    if (k === 0) return false;
    const w = this.w;
    w.byte(Op.localGet).u32(this.t).byte(Op.i64ExtendI32U);
    if (dyn !== Dyn.grow) {
      const shift = dyn === Dyn.memory ? 6 : 3;
      w.byte(Op.i64Const)
        .s64((1 << shift) - 1)
        .byte(Op.i64Add);
      w.byte(Op.i64Const).s64(shift).byte(Op.i64ShrU);
    }
    if (k !== 1) w.byte(Op.i64Const).s64(k).byte(Op.i64Mul);
    return true;
  }

  /** Code at the start of metered block `b` (or the function entry). */
  private charge(b: number, plan: FunctionPlan, entry: boolean): void {
    const { w, ctx } = this;
    const fl = plan.flags[b] as number;
    const c = plan.cost[b] as number;
    const thr = plan.succ[b] as number;
    const dyn = (fl & BF.dyn) !== 0 ? fl >> 8 : 0;
    const reload = (entry && !this.carry) || (fl & BF.reload) !== 0;
    if ((fl & BF.landing) !== 0) this.restoreDepth();
    if (dyn !== 0) w.byte(Op.localTee).u32(this.t);
    const check =
      (fl & BF.check) !== 0 && (dyn !== 0 || (fl & BF.landing) !== 0 || (plan.w[b] as number) > 0);
    if (reload) w.byte(Op.globalGet).u32(ctx.fuelGlobal);
    else if (c > 0 || dyn !== 0 || check) w.byte(Op.localGet).u32(this.f);
    else return;
    if (c > 0) w.byte(Op.i64Const).s64(c).byte(Op.i64Sub);
    if (dyn !== 0 && this.price(dyn)) w.byte(Op.i64Sub);
    if (check) this.checkTee(thr);
    else w.byte(Op.localSet).u32(this.f);
  }

  /** Per-instruction placement: `global -= c [+ price]; if global < 0: out of fuel`. */
  private chargeInstr(c: number, dyn: number): void {
    const { w, ctx } = this;
    if (dyn !== 0) w.byte(Op.localTee).u32(this.t);
    w.byte(Op.globalGet).u32(ctx.fuelGlobal).byte(Op.i64Const).s64(c).byte(Op.i64Sub);
    if (dyn !== 0 && this.price(dyn)) w.byte(Op.i64Sub);
    w.byte(Op.globalSet).u32(ctx.fuelGlobal);
    w.byte(Op.globalGet).u32(ctx.fuelGlobal).byte(Op.i64Const).s64(0).byte(Op.i64LtS).raw(IF_EMPTY);
    this.outOfFuel();
  }
}
