/**
 * The code the body emitter writes at a counted loop (counted-loops.ts, `matchCounted`): a
 * guard, then two copies of the loop, in the same in-place style as fuel-code.ts (each write
 * an unchecked store at `p` of the body's buffer `b`; body-emitter.ts reserves room for both
 * copies). Kept apart from body-emitter.ts so that its hot loop stays small; counted loops are
 * rare by comparison (a few per function at most), so the copies here favour plainness over
 * the hot loop's tricks (spans are copied with `set`, not 8 bytes at a time).
 */
import { copyBytes } from '../wasm/byte-writer.ts';
import { ps32, ps64, pu32 } from '../wasm/leb-write.ts';
import { FuelCode } from './fuel-code.ts';
import { BF, Ev } from './placement.ts';
import type { FunctionPlan } from './placement.ts';
import { CK, CL } from './plan-types.ts';

const IF = 0x04;
const ELSE = 0x05;
const END = 0x0b;
const BR_IF = 0x0d;
const CALL = 0x10;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_CONST = 0x41;
const I64_CONST = 0x42;
const I32_NE = 0x47;
const I32_LT_U = 0x49;
const I32_LE_U = 0x4d;
const I64_LE_U = 0x58;
const I64_GE_S = 0x59;
const I32_SUB = 0x6b;
const I32_AND = 0x71;
const I64_ADD = 0x7c;
const I64_SUB = 0x7d;
const I64_MUL = 0x7e;
const I64_EXTEND_I32_U = 0xad;
const EMPTY = 0x40;

/** The most bytes of a counted loop's guard and its `if … else … end` (about 100). */
export const MAX_GUARD_BYTES = 128;

export class CountedCode extends FuelCode {
  /** Where the last `leb` ended. */
  protected lebNext = 0;
  /** Set by `countedLoop`: the index of the loop's last event. */
  protected countedLast = 0;

  /**
   * A counted loop at the `loop` opcode of event `i0` (`c`: its offset in `plan.counted`):
   *
   *   if (j < n && s != 0 && n + s <= 2^32 && f >= (n - j + 1) × (W(header) + calls))
   *     the loop, its header charged without a check, no check after its calls
   *   else
   *     the loop as usual
   *   end
   *
   * (count-down form: `if (j != 0 && f >= (j + 1) × (W(header) + calls))`). Both copies charge
   * the same, so the fuel used is the same; a top-tested exit `br_if` gains one label (the
   * `if`). Returns the position after the `end`; `countedLast` is the loop's last event.
   */
  protected countedLoop(
    p: number,
    src: Uint8Array,
    plan: FunctionPlan,
    i0: number,
    c: number,
  ): number {
    const { b } = this;
    const cl = plan.counted;
    const loopEnd = cl[c + CL.end] as number;
    const j = cl[c + CL.j] as number;
    const n = cl[c + CL.n] as number;
    const s = cl[c + CL.s] as number;
    let iEnd = i0 + 1;
    while (iEnd < plan.nEv && (plan.evPos[iEnd] as number) < loopEnd) iEnd++;
    let header = -1;
    for (let i = i0 + 1; i < iEnd && header < 0; i++)
      if (plan.evKind[i] === Ev.block) header = plan.evArg[i] as number;
    if (header < 0) throw new Error('counted loop without a header block');
    const perTrip = (plan.w[header] as number) + (cl[c + CL.calls] as number);
    const nk = cl[c + CL.nk] as number;
    const pushN = (q: number): number => {
      if (n >= 0) {
        b[q++] = LOCAL_GET;
        return pu32(b, q, n);
      }
      b[q++] = I32_CONST;
      return ps32(b, q, nk);
    };
    if (cl[c + CL.kind] === CK.down) {
      // j != 0 && f >= (j + 1) × perTrip
      b[p++] = LOCAL_GET;
      p = pu32(b, p, j);
      b[p++] = I32_CONST;
      b[p++] = 0;
      b[p++] = I32_NE;
      b[p++] = LOCAL_GET;
      p = pu32(b, p, this.f);
      b[p++] = LOCAL_GET;
      p = pu32(b, p, j);
      b[p++] = I64_EXTEND_I32_U;
    } else {
      b[p++] = LOCAL_GET;
      p = pu32(b, p, j);
      p = pushN(p);
      b[p++] = I32_LT_U;
      const k = (cl[c + CL.k] as number) >>> 0;
      if (s >= 0) {
        // s != 0 && n + s <= 2^32
        b[p++] = LOCAL_GET;
        p = pu32(b, p, s);
        b[p++] = I32_CONST;
        b[p++] = 0;
        b[p++] = I32_NE;
        b[p++] = I32_AND;
        p = pushN(p);
        b[p++] = I64_EXTEND_I32_U;
        b[p++] = LOCAL_GET;
        p = pu32(b, p, s);
        b[p++] = I64_EXTEND_I32_U;
        b[p++] = I64_ADD;
        b[p++] = I64_CONST;
        p = ps64(b, p, 0x1_0000_0000);
        b[p++] = I64_LE_U;
        b[p++] = I32_AND;
      } else if (k !== 1) {
        // n <= 2^32 - k (a step of 1 never wraps below n)
        p = pushN(p);
        b[p++] = I32_CONST;
        p = ps32(b, p, (0x1_0000_0000 - k) | 0);
        b[p++] = I32_LE_U;
        b[p++] = I32_AND;
      }
      // f >= (n - j + 1) × perTrip
      b[p++] = LOCAL_GET;
      p = pu32(b, p, this.f);
      p = pushN(p);
      b[p++] = LOCAL_GET;
      p = pu32(b, p, j);
      b[p++] = I32_SUB;
      b[p++] = I64_EXTEND_I32_U;
    }
    b[p++] = I64_CONST;
    b[p++] = 1;
    b[p++] = I64_ADD;
    b[p++] = I64_CONST;
    p = ps64(b, p, perTrip);
    b[p++] = I64_MUL;
    b[p++] = I64_GE_S;
    b[p++] = I32_AND;
    b[p++] = IF;
    b[p++] = EMPTY;
    p = this.loopCopy(p, src, plan, i0, iEnd, c, true);
    b[p++] = ELSE;
    p = this.loopCopy(p, src, plan, i0, iEnd, c, false);
    b[p++] = END;
    this.countedLast = iEnd - 1;
    return p;
  }

  /** One copy of a counted loop (events i0 + 1 … iEnd - 1); `fast`: no check at the header. */
  private loopCopy(
    p: number,
    src: Uint8Array,
    plan: FunctionPlan,
    i0: number,
    iEnd: number,
    c: number,
    fast: boolean,
  ): number {
    const { b, f } = this;
    const loopEnd = plan.counted[c + CL.end] as number;
    const brIf = plan.counted[c + CL.brIf] as number;
    const depth = plan.counted[c + CL.depth] as number;
    let at = plan.evPos[i0] as number;
    let exitDone = false;
    for (let i = i0 + 1; i < iEnd; i++) {
      const pos = plan.evPos[i] as number;
      if (pos > at) {
        p = copyBytes(b, p, src, at, pos);
        at = pos;
      }
      const arg = plan.evArg[i] as number;
      switch (plan.evKind[i]) {
        case Ev.block: {
          const cost = plan.cost[arg] as number;
          if (!fast || ((plan.flags[arg] as number) & BF.check) === 0)
            p = this.charge(p, arg, plan, false);
          else if (cost > 0) {
            b[p++] = LOCAL_GET;
            p = pu32(b, p, f);
            b[p++] = I64_CONST;
            p = ps64(b, p, cost);
            b[p++] = I64_SUB;
            b[p++] = LOCAL_SET;
            p = pu32(b, p, f);
          }
          break;
        }
        case Ev.brIfRefund: {
          // The top-tested exit leaves the loop: one label more (the `if` around the copies).
          // Other forward `br_if`s stay inside the body.
          const give = plan.refund[arg] as number;
          const d = this.leb(src, pos + 1) + (pos === brIf ? 1 : 0);
          if (pos === brIf) {
            if (d !== depth + 1) throw new Error('counted loop: exit depth');
            exitDone = true;
          }
          if (give === 0) {
            b[p++] = BR_IF;
            p = pu32(b, p, d);
          } else p = this.refundingBr(p, give, d);
          at = this.lebNext;
          break;
        }
        case Ev.local: {
          const idx = this.leb(src, pos + 1);
          b[p++] = src[pos] as number;
          p = pu32(b, p, idx + 2);
          at = this.lebNext;
          break;
        }
        // Calls to carrying leaves (counted-loops.ts, leafBound).
        case Ev.preCall:
          if (arg !== 1) throw new Error('counted loop: a call that does not carry');
          p = this.carryArgs(p);
          break;
        case Ev.callTwin:
          this.leb(src, pos + 1);
          b[p++] = CALL;
          p = pu32(b, p, arg);
          at = this.lebNext;
          break;
        case Ev.postCall: {
          if ((arg & 3) !== 2) throw new Error('counted loop: a call that does not carry');
          const thr = plan.succ[arg >> 2] as number;
          if (!fast && thr > 0) p = this.checkTee(p, thr);
          else {
            b[p++] = LOCAL_SET;
            p = pu32(b, p, f);
          }
          break;
        }
        default:
          throw new Error(`counted loop: unexpected event ${plan.evKind[i]}`);
      }
    }
    if (!exitDone && plan.counted[c + CL.kind] === CK.top)
      throw new Error('counted loop without its exit');
    return copyBytes(b, p, src, at, loopEnd);
  }

  /** The u32 LEB128 at `at` of a validated body (no checks: the module validated). */
  protected leb(src: Uint8Array, at: number): number {
    let result = 0;
    let shift = 0;
    let x: number;
    do {
      x = src[at++] as number;
      result |= (x & 0x7f) << shift;
      shift += 7;
    } while ((x & 0x80) !== 0);
    this.lebNext = at;
    return result >>> 0;
  }
}
