/**
 * Running a new instance's init: the module's start function, then `_initialize` (a reactor,
 * e.g. Go's c-shared build or wasi-libc) or, without it, `_start` (a command), as Extism
 * would, but by the sandbox, after memory, the fuel meter and WASI are bound. The entry
 * rewrite (entry-rewrite.ts) renamed them so that Extism does not call them itself.
 *
 * All of init shares one budget, `limits.fuel.discovery`, and how it ends is typed: out of
 * fuel is `out_of_fuel` (the load fails with `HG_PLUGIN_INIT_FUEL`), where Extism used to
 * report the instrumenter's trap as "unreachable"; `proc_exit(0)` ends init successfully
 * (wasi-libc's convention for a command whose `main` returned 0); a non-zero exit fails with
 * reason `proc_exit`; any other trap is `trapped` / `instantiate`.
 */
import type { FuelMeter } from '../../fuel/meter.ts';
import type { CallFailureStatus } from '../types.ts';
import { INITIALIZE_EXPORT, START_EXPORT, START_SECTION_EXPORT } from './entry-rewrite.ts';
import type { WasiKernel } from './wasi.ts';

export class GuestInitError extends Error {
  readonly status: CallFailureStatus;
  /** `init_out_of_fuel`, `proc_exit`, `stack_overflow` or `instantiate`. */
  readonly reason: string;
  constructor(status: CallFailureStatus, reason: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'GuestInitError';
    this.status = status;
    this.reason = reason;
  }
}

/** Runs the instance's init entries; throws `GuestInitError` when init does not complete. */
export function runGuestInit(
  instance: WebAssembly.Instance,
  meter: FuelMeter,
  wasi: WasiKernel | null,
  budget: number,
): void {
  const entryNames = [
    START_SECTION_EXPORT,
    INITIALIZE_EXPORT in instance.exports ? INITIALIZE_EXPORT : START_EXPORT,
  ];
  const entries = entryNames
    .map((name) => [name, instance.exports[name]] as const)
    .filter((e): e is readonly [string, () => unknown] => typeof e[1] === 'function');
  if (entries.length === 0) return;
  meter.setBudget(budget);
  wasi?.begin(undefined);
  let current = '';
  try {
    for (const [name, fn] of entries) {
      current = name;
      fn();
    }
  } catch (err) {
    const what = describe(current);
    const exit = wasi?.exit;
    if (exit) {
      if (exit.code === 0) return;
      throw new GuestInitError('failed', 'proc_exit', `${what} called proc_exit(${exit.code})`);
    }
    const kind = meter.settle(err).outcome;
    if (kind === 'out_of_fuel') {
      throw new GuestInitError(
        'out_of_fuel',
        'init_out_of_fuel',
        `${what} ran out of fuel (limits.fuel.discovery = ${budget})`,
        err,
      );
    }
    if (kind === 'stack_overflow') {
      throw new GuestInitError('stack_overflow', 'stack_overflow', `${what} overflowed its stack`);
    }
    const message = err instanceof Error ? err.message : String(err);
    throw new GuestInitError('trapped', 'instantiate', `${what} trapped: ${message}`, err);
  } finally {
    wasi?.end();
  }
  // An exit the guest caught (it cannot catch the trap that follows) still ends init.
  const exit = wasi?.exit;
  if (exit && exit.code !== 0) {
    throw new GuestInitError(
      'failed',
      'proc_exit',
      `${describe(current)} called proc_exit(${exit.code})`,
    );
  }
}

function describe(entry: string): string {
  if (entry === START_SECTION_EXPORT) return 'the start function';
  if (entry === INITIALIZE_EXPORT) return '_initialize';
  return '_start';
}
