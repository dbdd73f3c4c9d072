/**
 * What a guest call that did not simply return is reported as: the outcome's status and reason
 * from what ended it. The in-thread sandbox (in-thread-sandbox.ts) settles the fuel meter and
 * discards the instance; `classifyFailure` then decides, in this order (the first that applies):
 * a host refusal (`host_call_denied`); a kernel fault (its own status and reason); out of fuel
 * or the call-depth limit, as the meter tells them (a drained call looks out of fuel to the
 * meter, so only when no fault drained it); the memory cap (a trap with memory at the cap is
 * `memory_limit`, whatever trap it was); `env.abort`; V8's own stack limit; any other wasm trap;
 * any other exception. `proc_exit` is told apart before (`exitOutcome`), as it may end a call
 * that returned. `abortFault` builds the fault of AssemblyScript's `env.abort`.
 */
import type { FuelMeter } from '../fuel/meter.ts';
import type { KernelFault } from './kernel/extism-kernel.ts';
import type { CallOutcome, CallerContext } from './types.ts';

/** What ends a call early: a kernel fault, or `env.abort` (status `trapped`, reason `abort`). */
export type CallFault = KernelFault | { status: 'trapped'; reason: 'abort'; message: string };

/** The state of the call an instance runs. */
export interface CallState {
  caller: CallerContext;
  /** Why a host call was refused for capability or phase (ends the call). */
  denied: string | null;
  /** The first fault of the call (it ends the call). */
  fault: CallFault | null;
}

export type FailureStatus = Extract<CallOutcome, { ok: false }>['status'];

export function failure(
  status: FailureStatus,
  reason: string,
  message: string,
  durationMs: number,
  fuelUsed: number | null,
): CallOutcome {
  return { ok: false, status, reason, message, durationMs, fuelUsed };
}

/** What a call the host ended (a refusal, a fault) counts as having thrown. */
export function endedByHost(): Error {
  return new Error('the call was ended by the host');
}

/** A call that trapped, threw, or was ended by the host, with what is known of its end. */
export interface EndedCall {
  /** The export called. */
  readonly fn: string;
  readonly state: CallState;
  /** What the call threw (`endedByHost` when the host ended it and it returned). */
  readonly err: unknown;
  /** The instance's meter, and what `settle(err)` said. */
  readonly meter: FuelMeter;
  readonly settled: ReturnType<FuelMeter['settle']>;
  /** The instance's memory size when the call ended, in pages, and the plugin's cap. */
  readonly pages: number;
  readonly memoryPages: number;
  /** Milliseconds since the call started (read when the outcome is made). */
  readonly elapsed: () => number;
}

/** The outcome of a call that did not simply return (see the module comment for the order). */
export function classifyFailure(call: EndedCall): CallOutcome {
  const { state, settled, meter, fn, err } = call;
  const message = err instanceof Error ? err.message : String(err);
  const fuelUsed = Number(settled.fuelUsed);
  const fail = (status: FailureStatus, reason: string, text: string): CallOutcome =>
    failure(status, reason, text, call.elapsed(), fuelUsed);
  if (state.denied) return fail('host_call_denied', 'host_call_denied', state.denied);
  const fault = state.fault;
  // A drained call looks out of fuel to the meter: the fault says what really happened.
  if (fault && fault.reason !== 'abort') return fail(fault.status, fault.reason, fault.message);
  if (!fault && settled.outcome === 'out_of_fuel') {
    return fail(
      'out_of_fuel',
      'out_of_fuel',
      `${fn}() used its whole budget of ${meter.currentBudget()} fuel`,
    );
  }
  if (!fault && settled.outcome === 'stack_overflow' && meter.depthExceeded()) {
    return fail('stack_overflow', 'call_depth', `${fn}() exceeded the call-depth limit`);
  }
  if (call.pages >= call.memoryPages) {
    const why = fault?.message ?? message;
    return fail(
      'memory_limit',
      'memory_cap',
      `trapped with its memory at the plugin's cap of ${call.pages} pages: ${why}`,
    );
  }
  if (fault) return fail('trapped', 'abort', fault.message);
  if (err instanceof RangeError && /call stack/i.test(message))
    return fail('stack_overflow', 'stack_overflow', message);
  if (err instanceof WebAssembly.RuntimeError) return fail('trapped', 'trap', message);
  return fail('trapped', 'exception', message);
}

/** The outcome of a call that called `proc_exit`: exit 0 succeeds without output. */
export function exitOutcome(
  fn: string,
  exit: { code: number; fuelUsed: bigint },
  durationMs: number,
): CallOutcome {
  const fuelUsed = Number(exit.fuelUsed);
  if (exit.code === 0) return { ok: true, output: null, durationMs, fuelUsed };
  return failure(
    'failed',
    'proc_exit',
    `${fn}() called proc_exit(${exit.code})`,
    durationMs,
    fuelUsed,
  );
}

/** AssemblyScript's `env.abort(msg, file, line, col)` as a fault, its strings read from memory. */
export function abortFault(
  memory: WebAssembly.Memory | null,
  msg: number,
  file: number,
  line: number,
  col: number,
): CallFault {
  const text = `abort: ${readAscString(memory, msg) ?? '?'} at ${readAscString(memory, file) ?? '?'}:${line}:${col}`;
  return { status: 'trapped', reason: 'abort', message: text };
}

/** Reads an AssemblyScript string (UTF-16, byte length at ptr-4) from guest memory, bounded. */
function readAscString(memory: WebAssembly.Memory | null, ptr: number): string | null {
  try {
    if (!memory || ptr < 4) return null;
    const view = new DataView(memory.buffer);
    const len = Math.min(view.getUint32(ptr - 4, true), 2048) >>> 1;
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(view.getUint16(ptr + i * 2, true));
    return s;
  } catch {
    return null;
  }
}
