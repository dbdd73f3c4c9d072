/**
 * The host side of fuel: a meter over one instance of an instrumented module, outcome
 * classification after a trap, and the billing rule.
 *
 * Protocol for each guest call: `setBudget(n)` → call → `settle(err?)` (or `remaining()` /
 * `classifyTrap`). After any trap, discard the instance: the guest may have been mid-update.
 *
 * Billing rule: a call that completes is billed exactly `budget - remaining` (the sum of its
 * executed operators' costs plus host charges). A call that ends in any trap — out of fuel,
 * depth limit, stack overflow, any other trap or host exception — is billed the full budget:
 * the cached counter may not have been written back when the trap hit, and a deterministic
 * bill is worth more than a precise one for a call that failed anyway.
 */
import { DEPTH_GLOBAL, EXHAUSTED_GLOBAL, ExhaustedFlag, FUEL_GLOBAL } from './abi.ts';

export type TrapKind = 'out_of_fuel' | 'stack_overflow' | 'trapped';

export type FuelPhase = 'init' | 'discovery' | 'run' | 'cleanup';

/** Default per-phase budgets (operators at cost-table `hg-costs/2`). */
export const DEFAULT_PHASE_BUDGETS: Readonly<Record<FuelPhase, bigint>> = Object.freeze({
  init: 1_000_000_000n,
  discovery: 100_000_000n,
  run: 1_000_000_000n,
  cleanup: 100_000_000n,
});

const MAX_FUEL = 0x7fffffffffffffffn;

function globalExport(instance: WebAssembly.Instance, name: string): WebAssembly.Global {
  const g = instance.exports[name];
  if (!(g instanceof WebAssembly.Global)) {
    throw new TypeError(`the instance has no '${name}' global: was the module instrumented?`);
  }
  return g;
}

export class FuelMeter {
  private readonly fuel: WebAssembly.Global;
  private readonly flag: WebAssembly.Global;
  private readonly depth: WebAssembly.Global;
  private budget = 0n;

  constructor(instance: WebAssembly.Instance) {
    this.fuel = globalExport(instance, FUEL_GLOBAL);
    this.flag = globalExport(instance, EXHAUSTED_GLOBAL);
    this.depth = globalExport(instance, DEPTH_GLOBAL);
  }

  /** Sets the budget of the next call and clears the exhausted flag. */
  setBudget(n: bigint | number): void {
    const b = BigInt(n);
    if (b < 0n || b > MAX_FUEL) throw new RangeError('a fuel budget must be in [0, 2^63)');
    this.budget = b;
    this.fuel.value = b;
    this.flag.value = ExhaustedFlag.none;
  }

  /** The budget last set (or 0). */
  currentBudget(): bigint {
    return this.budget;
  }

  /** Fuel left. Exact after a completed call; after a trap, see the billing rule. */
  remaining(): bigint {
    return this.fuel.value as bigint;
  }

  /** Fuel used since `setBudget` (exact after a completed call). */
  used(): bigint {
    return this.budget - this.remaining();
  }

  /** The instrumented code ran out of fuel and trapped. */
  exhausted(): boolean {
    return this.flag.value === ExhaustedFlag.fuel;
  }

  /** The instrumented code hit the call-depth limit and trapped. */
  depthExceeded(): boolean {
    return this.flag.value === ExhaustedFlag.depth;
  }

  /**
   * A host-side dynamic charge (e.g. per byte a host function moves). Returns false when the
   * fuel does not cover it; the counter is then left negative, and the guest traps out of fuel
   * at its next check (right after a direct or indirect host call): the host function should
   * skip the work and return.
   */
  charge(n: bigint | number): boolean {
    const c = BigInt(n);
    if (c < 0n) throw new RangeError('a charge must be >= 0');
    const left = this.remaining() - c;
    this.fuel.value = left < -MAX_FUEL ? -MAX_FUEL : left;
    return left >= 0n;
  }

  /** Clears flag, depth and fuel (a fresh instance is still preferred after a trap). */
  reset(): void {
    this.budget = 0n;
    this.fuel.value = 0n;
    this.flag.value = ExhaustedFlag.none;
    this.depth.value = 0;
  }

  /** Outcome and bill of the call that just ended; `err` is what it threw, if anything. */
  settle(err?: unknown): { outcome: 'ok' | TrapKind; fuelUsed: bigint } {
    if (err === undefined) {
      const used = this.used();
      return { outcome: 'ok', fuelUsed: used > this.budget ? this.budget : used };
    }
    return { outcome: classifyTrap(this, err), fuelUsed: this.budget };
  }
}

/**
 * Out of fuel is told apart from other traps only by the flag (the RuntimeError message is
 * the same as `unreachable`'s). Stack overflow is the depth limit (deterministic) or V8's own
 * RangeError (a guest whose frames are large enough to hit it first).
 */
export function classifyTrap(meter: FuelMeter, err: unknown): TrapKind {
  if (meter.exhausted()) return 'out_of_fuel';
  if (meter.depthExceeded()) return 'stack_overflow';
  if (err instanceof RangeError && /call stack/i.test(err.message)) return 'stack_overflow';
  return 'trapped';
}
