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
 *
 * Speed: a large module has about one event per 8 input bytes (binaryen.js: 1.15 M events,
 * 912 k copied spans of 9.4 bytes on average), so the per-event cost is what matters. Each body
 * is written straight into the code section's buffer: capacity is reserved once per body from
 * an upper bound (its length + 256 + 128 bytes per event, `MAX_EVENT_BYTES`; twice the length
 * and events with a guard each when it has counted loops, counted-code.ts), and every write
 * is an unchecked store at a position kept in a local (`p` in, `p` out), not a method call
 * that checks capacity per byte. The size prefix is written last, the body moved down over the
 * unused part of its 5 reserved bytes. The bytes are the same as the per-byte writer's.
 */
import { copyBytes } from '../wasm/byte-writer.ts';
import type { ByteWriter } from '../wasm/byte-writer.ts';
import { ps32, pu32, u32Size } from '../wasm/leb-write.ts';
import { CountedCode, MAX_GUARD_BYTES } from './counted-code.ts';
import { ExhaustedFlag } from './fuel-code.ts';
import type { Ev } from './placement.ts';
import type { FunctionPlan } from './placement.ts';
import { CL, COUNTED_FIELDS } from './plan-types.ts';

export { ExhaustedFlag } from './fuel-code.ts';
export type { EmitContext } from './fuel-code.ts';

// Opcodes as plain constants of this module (the hot path writes them inline).
const UNREACHABLE = 0x00;
const BLOCK = 0x02;
const IF = 0x04;
const END = 0x0b;
const CALL = 0x10;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const GLOBAL_GET = 0x23;
const GLOBAL_SET = 0x24;
const I32_CONST = 0x41;
const I32_GE_U = 0x4f;
const EMPTY = 0x40;
const I64 = 0x7e;
const I32 = 0x7f;

/**
 * The most bytes one event inserts: a block charge with a depth restore, an operand price and
 * a check with its out-of-fuel path is 125 with 5-byte indices and 10-byte constants.
 */
const MAX_EVENT_BYTES = 128;

// Event kinds as literals (case labels TurboFan compares without loading `Ev`'s fields); the
// types keep them equal to `Ev`'s (plan-types.ts).
const EV_BLOCK: typeof Ev.block = 1;
const EV_PRE_CALL: typeof Ev.preCall = 2;
const EV_POST_CALL: typeof Ev.postCall = 3;
const EV_EXIT: typeof Ev.exit = 4;
const EV_THROW: typeof Ev.throw = 5;
const EV_WRAP_CLOSE: typeof Ev.wrapClose = 6;
const EV_INSTR: typeof Ev.instr = 7;
const EV_LANDING: typeof Ev.landing = 8;
const EV_LOCAL: typeof Ev.local = 9;
const EV_BR_IF_REFUND: typeof Ev.brIfRefund = 10;
const EV_HOST_RETURN: typeof Ev.hostReturn = 11;
const EV_CALL_TWIN: typeof Ev.callTwin = 12;
const EV_COUNTED_LOOP: typeof Ev.countedLoop = 13;
/** The most bytes of a prologue besides the copied local declarations. */
const MAX_PROLOGUE_BYTES = 256;

export class BodyEmitter extends CountedCode {
  private resetDepth = false;
  /** DataViews of the output buffer and of the input, for copying spans 4 bytes at a time. */
  private dvo: DataView = new DataView(new ArrayBuffer(0));
  private dvoOf: Uint8Array | null = null;
  private dvi: DataView = new DataView(new ArrayBuffer(0));
  private dviOf: Uint8Array | null = null;

  /**
   * Appends the body, with its size prefix, to `out`. `wrapperType` is the encoded block type.
   * `carry`: the function gets its fuel (i64) and depth (i32) as two parameters after its own
   * and returns its remaining fuel as an extra last result (the plan renumbers its locals).
   */
  emit(
    out: ByteWriter,
    src: Uint8Array,
    plan: FunctionPlan,
    numParams: number,
    wrapperType: readonly number[] | null,
    carry = false,
  ): void {
    const { ctx } = this;
    const evPos = plan.evPos;
    const evKind = plan.evKind;
    const evArg = plan.evArg;
    const n = plan.nEv;
    const start = out.length;
    // A counted loop is written twice (counted-code.ts), behind a guard; they do not nest.
    const loops = plan.nCounted / COUNTED_FIELDS;
    const copies = loops > 0 ? 2 : 1;
    const b = out.reserve(
      5 +
        copies * (plan.end - plan.localsStart + n * (MAX_EVENT_BYTES + 8)) +
        MAX_PROLOGUE_BYTES +
        loops * MAX_GUARD_BYTES,
    );
    this.b = b;
    if (b !== this.dvoOf) {
      this.dvoOf = b;
      this.dvo = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    if (src !== this.dviOf) {
      this.dviOf = src;
      this.dvi = new DataView(src.buffer, src.byteOffset, src.byteLength);
    }
    const dvo = this.dvo;
    const dvi = this.dvi;
    const srcLim = src.length - 8;
    let p = start + 5;
    const extra = carry ? 2 : 0;
    const base = numParams + extra + plan.numLocals;
    this.carry = carry;
    const f = carry ? numParams : base;
    this.f = f;
    this.t = base + 1;
    this.d = carry ? numParams + 1 : base + 2;
    this.depthOn = ctx.maxCallDepth > 0 && plan.hasCalls;
    // Carrying callees do not maintain the depth global: before a call to a function that
    // reads it, a function that also calls carrying ones (or carries itself) sets it again.
    this.resetDepth = this.depthOn && (carry || plan.hasCarryCalls);
    const perInstr = ctx.placement === 'per-instruction';
    const fuelGlobal = ctx.fuelGlobal;

    // Locals: the original declarations, then (1 × i64) (2 × i32).
    const nDecl = this.leb(src, plan.localsStart);
    p = pu32(b, p, nDecl + 2);
    p = copyBytes(b, p, src, this.lebNext, plan.instrStart);
    b[p++] = 1;
    b[p++] = I64;
    b[p++] = 2;
    b[p++] = I32;

    // Prologue.
    if (!perInstr) p = this.charge(p, 0, plan, true);
    if (this.depthOn) {
      if (carry) {
        b[p++] = LOCAL_GET;
        p = pu32(b, p, this.d);
      } else {
        b[p++] = GLOBAL_GET;
        p = pu32(b, p, ctx.depthGlobal);
        b[p++] = LOCAL_TEE;
        p = pu32(b, p, this.d);
      }
      b[p++] = I32_CONST;
      p = ps32(b, p, ctx.maxCallDepth);
      b[p++] = I32_GE_U;
      b[p++] = IF;
      b[p++] = EMPTY;
      b[p++] = I32_CONST;
      b[p++] = ExhaustedFlag.depth;
      b[p++] = GLOBAL_SET;
      p = pu32(b, p, ctx.flagGlobal);
      b[p++] = UNREACHABLE;
      b[p++] = END;
      if (!carry) p = this.depthPlusOne(p);
    }
    if (wrapperType) {
      b[p++] = BLOCK;
      for (const x of wrapperType) b[p++] = x;
    }

    let at = plan.instrStart;
    for (let i = 0; i < n; i++) {
      const pos = evPos[i] as number;
      if (pos > at) {
        // Copy the original code up to the event (9 bytes on average): 8 bytes a step through
        // DataViews, past the end (the reserve has room, and what follows overwrites it),
        // unless that would read past the input.
        if (pos <= srcLim) {
          for (let k = at, o = p; k < pos; k += 8, o += 8) {
            dvo.setUint32(o, dvi.getUint32(k, true), true);
            dvo.setUint32(o + 4, dvi.getUint32(k + 4, true), true);
          }
          p += pos - at;
          at = pos;
        } else {
          while (at < pos) b[p++] = src[at++] as number;
        }
      }
      const arg = evArg[i] as number;
      switch (evKind[i]) {
        case EV_BLOCK:
          p = this.charge(p, arg, plan, false);
          break;
        case EV_PRE_CALL:
          if (arg === 1) {
            // A carrying callee: fuel and the callee's depth travel as arguments.
            p = this.carryArgs(p);
            break;
          }
          b[p++] = LOCAL_GET;
          p = pu32(b, p, f);
          b[p++] = GLOBAL_SET;
          p = pu32(b, p, fuelGlobal);
          if (this.resetDepth) p = this.depthPlusOne(p);
          break;
        case EV_THROW:
          b[p++] = LOCAL_GET;
          p = pu32(b, p, f);
          b[p++] = GLOBAL_SET;
          p = pu32(b, p, fuelGlobal);
          break;
        case EV_POST_CALL: {
          const thr = plan.succ[arg >> 2] as number;
          // A carrying callee left its remaining fuel on the stack, above its results.
          if ((arg & 2) === 0) {
            b[p++] = GLOBAL_GET;
            p = pu32(b, p, fuelGlobal);
          }
          if ((arg & 1) !== 0 || thr > 0) p = this.checkTee(p, thr);
          else {
            b[p++] = LOCAL_SET;
            p = pu32(b, p, f);
          }
          if ((arg & 1) !== 0) p = this.afterHost(p);
          break;
        }
        case EV_HOST_RETURN:
          p = this.afterHost(p);
          break;
        case EV_COUNTED_LOOP:
          p = this.countedLoop(p, src, plan, i, arg);
          i = this.countedLast;
          at = plan.counted[arg + CL.end] as number;
          break;
        case EV_CALL_TWIN:
          this.leb(src, pos + 1);
          b[p++] = CALL;
          p = pu32(b, p, arg);
          at = this.lebNext;
          break;
        case EV_BR_IF_REFUND: {
          const give = plan.refund[arg] as number;
          if (give === 0) break; // nothing prepaid after it: copy the br_if as is
          // br_if L  →  if  f += give; br L+1  end
          p = this.refundingBr(p, give, this.leb(src, pos + 1));
          at = this.lebNext;
          break;
        }
        case EV_LOCAL: {
          // Renumber a declared local past the two inserted parameters.
          const idx = this.leb(src, pos + 1);
          b[p++] = src[pos] as number;
          p = pu32(b, p, idx + 2);
          at = this.lebNext;
          break;
        }
        case EV_EXIT:
          p = this.exit(p, perInstr);
          break;
        case EV_WRAP_CLOSE:
          b[p++] = END;
          p = this.exit(p, perInstr);
          break;
        case EV_INSTR:
          p = this.chargeInstr(p, arg & 0xffffff, arg >>> 24);
          break;
        case EV_LANDING:
          p = this.restoreDepth(p);
          break;
        default:
          throw new Error(`unknown event ${evKind[i]}`);
      }
    }
    p = copyBytes(b, p, src, at, plan.end);
    // The size prefix, then the body moved down next to it.
    const size = p - start - 5;
    const lebBytes = u32Size(size);
    if (lebBytes < 5) b.copyWithin(start + lebBytes, start + 5, p);
    pu32(b, start, size);
    out.length = start + lebBytes + size;
  }

  /**
   * Appends the body (with its size prefix) left at an exported function's index when its
   * code moved to a carrying twin: `args…, fuel, depth; call twin; fuel = last result;
   * depth = depth on entry`. It charges nothing (the twin's entry does), so the fuel is the
   * same as the original function's.
   */
  wrapper(out: ByteWriter, numParams: number, twin: number): void {
    const { ctx } = this;
    const start = out.length;
    const b = out.reserve(5 + 48 + numParams * 6);
    let p = start + 5;
    const save = numParams;
    b[p++] = 1;
    b[p++] = 1;
    b[p++] = I32;
    for (let i = 0; i < numParams; i++) {
      b[p++] = LOCAL_GET;
      p = pu32(b, p, i);
    }
    b[p++] = GLOBAL_GET;
    p = pu32(b, p, ctx.fuelGlobal);
    b[p++] = GLOBAL_GET;
    p = pu32(b, p, ctx.depthGlobal);
    b[p++] = LOCAL_TEE;
    p = pu32(b, p, save);
    b[p++] = CALL;
    p = pu32(b, p, twin);
    b[p++] = GLOBAL_SET;
    p = pu32(b, p, ctx.fuelGlobal);
    b[p++] = LOCAL_GET;
    p = pu32(b, p, save);
    b[p++] = GLOBAL_SET;
    p = pu32(b, p, ctx.depthGlobal);
    b[p++] = END;
    const size = p - start - 5;
    const lebBytes = u32Size(size);
    b.copyWithin(start + lebBytes, start + 5, p);
    pu32(b, start, size);
    out.length = start + lebBytes + size;
  }
}
