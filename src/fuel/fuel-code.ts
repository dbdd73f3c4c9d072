/**
 * The fuel code sequences the body emitter inserts (charges, checks, the out-of-fuel path, exits,
 * the depth counter), each written at position `p` of the body's buffer `b` (capacity reserved
 * by the emitter) and returning the position after it. See body-emitter.ts for where each goes.
 */
import { ps64, pu32 } from '../wasm/leb-write.ts';
import { ExhaustedFlag } from './abi.ts';
import type { CompiledCosts } from './cost-table.ts';
import { BF, Dyn } from './placement.ts';
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

export { ExhaustedFlag };

// Opcodes as plain constants (the hot path writes them inline).
const UNREACHABLE = 0x00;
const IF = 0x04;
const END = 0x0b;
const BR = 0x0c;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const GLOBAL_GET = 0x23;
const GLOBAL_SET = 0x24;
const I32_CONST = 0x41;
const I64_CONST = 0x42;
const I64_LT_S = 0x53;
const I32_ADD = 0x6a;
const I64_ADD = 0x7c;
const I64_SUB = 0x7d;
const I64_MUL = 0x7e;
const I64_SHR_U = 0x88;
const I64_EXTEND_I32_U = 0xad;
const EMPTY = 0x40;

export class FuelCode {
  /** The output buffer of the body being emitted (capacity reserved for the whole body). */
  protected b: Uint8Array = new Uint8Array(0);
  /** The fuel local (or parameter), the price scratch local, the depth-on-entry local. */
  protected f = 0;
  protected t = 0;
  protected d = 0;
  protected depthOn = false;
  protected carry = false;

  constructor(protected readonly ctx: EmitContext) {}

  protected exit(p: number, perInstr: boolean): number {
    const { b } = this;
    if (this.carry) {
      b[p++] = LOCAL_GET;
      return pu32(b, p, this.f);
    }
    // The reference placement has no fuel local to write back.
    if (!perInstr) {
      b[p++] = LOCAL_GET;
      p = pu32(b, p, this.f);
      b[p++] = GLOBAL_SET;
      p = pu32(b, p, this.ctx.fuelGlobal);
    }
    if (this.depthOn) {
      b[p++] = LOCAL_GET;
      p = pu32(b, p, this.d);
      b[p++] = GLOBAL_SET;
      p = pu32(b, p, this.ctx.depthGlobal);
    }
    return p;
  }

  /**
   * After a call that may have run JavaScript, which may have caught an exception or a trap
   * that unwound instrumented frames: restore the depth counter (the unwound frames never
   * restored it), and trap again if the flag says a fuel or depth trap was swallowed (the
   * limits must hold whatever the host's glue catches).
   */
  /** A `br_if` whose taken branch refunds `give`: `if  f += give; br depth+1  end`. */
  protected refundingBr(p: number, give: number, depth: number): number {
    const { b } = this;
    b[p++] = IF;
    b[p++] = EMPTY;
    b[p++] = LOCAL_GET;
    p = pu32(b, p, this.f);
    b[p++] = I64_CONST;
    p = ps64(b, p, give);
    b[p++] = I64_ADD;
    b[p++] = LOCAL_SET;
    p = pu32(b, p, this.f);
    b[p++] = BR;
    p = pu32(b, p, depth + 1);
    b[p++] = END;
    return p;
  }

  protected afterHost(p: number): number {
    p = this.restoreDepth(p);
    const { b } = this;
    b[p++] = GLOBAL_GET;
    p = pu32(b, p, this.ctx.flagGlobal);
    b[p++] = IF;
    b[p++] = EMPTY;
    b[p++] = UNREACHABLE;
    b[p++] = END;
    return p;
  }

  protected restoreDepth(p: number): number {
    return this.depthOn ? this.depthPlusOne(p) : p;
  }

  /** `d + 1` on the stack. */
  private dPlusOne(p: number): number {
    const { b } = this;
    b[p++] = LOCAL_GET;
    p = pu32(b, p, this.d);
    b[p++] = I32_CONST;
    b[p++] = 1;
    b[p++] = I32_ADD;
    return p;
  }

  /** `depth = d + 1`. */
  protected depthPlusOne(p: number): number {
    p = this.dPlusOne(p);
    this.b[p++] = GLOBAL_SET;
    return pu32(this.b, p, this.ctx.depthGlobal);
  }

  /**
   * A carrying call's extra arguments: the fuel local, then the callee's depth (`d + 1`, or 0
   * when the depth limit is off).
   */
  protected carryArgs(p: number): number {
    const { b } = this;
    b[p++] = LOCAL_GET;
    p = pu32(b, p, this.f);
    if (this.depthOn) return this.dPlusOne(p);
    b[p++] = I32_CONST;
    b[p++] = 0;
    return p;
  }

  /** Leaves nothing on the stack: `local.tee f; i64.const thr; i64.lt_s; if (out of fuel) end`. */
  protected checkTee(p: number, thr: number): number {
    const { b, f } = this;
    b[p++] = LOCAL_TEE;
    p = pu32(b, p, f);
    b[p++] = I64_CONST;
    p = ps64(b, p, thr);
    b[p++] = I64_LT_S;
    b[p++] = IF;
    b[p++] = EMPTY;
    // Out of fuel: write the counter back, set the flag, trap.
    b[p++] = LOCAL_GET;
    p = pu32(b, p, f);
    b[p++] = GLOBAL_SET;
    p = pu32(b, p, this.ctx.fuelGlobal);
    return this.outOfFuel(p);
  }

  /** `exhausted = 1; unreachable; end`. */
  protected outOfFuel(p: number): number {
    const { b } = this;
    b[p++] = I32_CONST;
    b[p++] = ExhaustedFlag.fuel;
    b[p++] = GLOBAL_SET;
    p = pu32(b, p, this.ctx.flagGlobal);
    b[p++] = UNREACHABLE;
    b[p++] = END;
    return p;
  }

  /**
   * Subtracts the operand-dependent price of `dyn`, computed from local `t` (an i64), from the
   * i64 on the stack; writes nothing when that price is always 0.
   */
  protected subtractPrice(p: number, dyn: number): number {
    const { costs } = this.ctx;
    const k =
      dyn === Dyn.grow ? costs.growPerPage : dyn === Dyn.memory ? costs.bulkPer64 : costs.tablePer8;
    if (k === 0) return p;
    const { b } = this;
    b[p++] = LOCAL_GET;
    p = pu32(b, p, this.t);
    b[p++] = I64_EXTEND_I32_U;
    if (dyn !== Dyn.grow) {
      const shift = dyn === Dyn.memory ? 6 : 3;
      b[p++] = I64_CONST;
      p = ps64(b, p, (1 << shift) - 1);
      b[p++] = I64_ADD;
      b[p++] = I64_CONST;
      p = ps64(b, p, shift);
      b[p++] = I64_SHR_U;
    }
    if (k !== 1) {
      b[p++] = I64_CONST;
      p = ps64(b, p, k);
      b[p++] = I64_MUL;
    }
    b[p++] = I64_SUB;
    return p;
  }

  /** Code at the start of metered block `blk` (or the function entry). */
  protected charge(p: number, blk: number, plan: FunctionPlan, entry: boolean): number {
    const { b } = this;
    const fl = plan.flags[blk] as number;
    const c = plan.cost[blk] as number;
    const dyn = (fl & BF.dyn) !== 0 ? fl >> 8 : 0;
    const reload = (entry && !this.carry) || (fl & BF.reload) !== 0;
    if ((fl & BF.landing) !== 0) p = this.restoreDepth(p);
    if (dyn !== 0) {
      b[p++] = LOCAL_TEE;
      p = pu32(b, p, this.t);
    }
    const check =
      (fl & BF.check) !== 0 &&
      (dyn !== 0 || (fl & BF.landing) !== 0 || (plan.w[blk] as number) > 0);
    if (reload) {
      b[p++] = GLOBAL_GET;
      p = pu32(b, p, this.ctx.fuelGlobal);
    } else if (c > 0 || dyn !== 0 || check) {
      b[p++] = LOCAL_GET;
      p = pu32(b, p, this.f);
    } else return p;
    if (c > 0) {
      b[p++] = I64_CONST;
      p = ps64(b, p, c);
      b[p++] = I64_SUB;
    }
    if (dyn !== 0) p = this.subtractPrice(p, dyn);
    if (check) return this.checkTee(p, plan.succ[blk] as number);
    b[p++] = LOCAL_SET;
    return pu32(b, p, this.f);
  }

  /** Per-instruction placement: `global -= c [+ price]; if global < 0: out of fuel`. */
  protected chargeInstr(p: number, c: number, dyn: number): number {
    const { b } = this;
    const g = this.ctx.fuelGlobal;
    if (dyn !== 0) {
      b[p++] = LOCAL_TEE;
      p = pu32(b, p, this.t);
    }
    b[p++] = GLOBAL_GET;
    p = pu32(b, p, g);
    b[p++] = I64_CONST;
    p = ps64(b, p, c);
    b[p++] = I64_SUB;
    if (dyn !== 0) p = this.subtractPrice(p, dyn);
    b[p++] = GLOBAL_SET;
    p = pu32(b, p, g);
    b[p++] = GLOBAL_GET;
    p = pu32(b, p, g);
    b[p++] = I64_CONST;
    b[p++] = 0;
    b[p++] = I64_LT_S;
    b[p++] = IF;
    b[p++] = EMPTY;
    return this.outOfFuel(p);
  }
}
