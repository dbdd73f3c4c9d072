/**
 * Dispatch of host-function calls. The order of checks is fixed and documented: capability,
 * phase, the tenant's main-thread share (`busy`), JSON syntax and depth, schema, then the
 * handler (which checks quotas and scope). Every failure is an `{"error":…}` answer; a handler
 * that throws is reported as `internal`, never thrown into the guest. The result is data
 * (`Dispatched`): the answer and the fuel of the work the handler did, which the sandbox
 * charges after the call.
 */
import { HOST_FUNCTIONS as HOST_FUNCTION_NAMES, type Capability } from '../src/capabilities.ts';
import type { CallerContext } from '../src/sandbox/types.ts';
import { compile, parseGuestJson, type Validator } from '../src/validation.ts';
import { jobsRegister } from './jobs-register.ts';
import { scheduleCreate } from './schedule-create.ts';
import { scheduleDelete } from './schedule-delete.ts';
import { scheduleGet } from './schedule-get.ts';
import { scheduleList } from './schedule-list.ts';
import { schedulePause } from './schedule-pause.ts';
import { scheduleResume } from './schedule-resume.ts';
import {
  guestError,
  type GuestErrorCode,
  type HostFunctionDef,
  type HostResult,
  type HostServices,
} from './types.ts';

interface Entry {
  readonly def: HostFunctionDef<never>;
  readonly validate: Validator<unknown>;
}

const DEFS = [
  jobsRegister,
  scheduleCreate,
  schedulePause,
  scheduleResume,
  scheduleDelete,
  scheduleGet,
  scheduleList,
];

export const HOST_FUNCTIONS: ReadonlyMap<string, Entry> = new Map(
  DEFS.map((def) => [
    def.name,
    { def: def as HostFunctionDef<never>, validate: compile<unknown>(def.schema) },
  ]),
);

// Every host-function capability has exactly one host function.
for (const cap of HOST_FUNCTION_NAMES) {
  if (!HOST_FUNCTIONS.has(cap)) throw new Error(`host function '${cap}' is not registered`);
}

/** Each host function's static fuel price, as data for the sandbox (see `InThreadSandbox`). */
export const HOST_CALL_FUEL: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(DEFS.map((def) => [def.name, def.fuelCost])),
);

export function hostFunction(name: string): HostFunctionDef<never> | undefined {
  return HOST_FUNCTIONS.get(name)?.def;
}

/** What one dispatched call produced: the answer as data, and the fuel of its work. */
export interface Dispatched {
  readonly result: HostResult;
  /** Fuel for the work the handler did (`HostFunctionDef.workFuel`); 0 when it did not run. */
  readonly fuel: number;
}

export interface DispatchOptions {
  /** Told about a handler that threw (the guest gets `internal`). */
  readonly onInternalError?: (err: unknown) => void;
  /**
   * Asked after the capability and phase checks: a message when the caller's tenant has used
   * its share of the main thread (the guest gets `busy`, and the handler does not run).
   */
  readonly busy?: (caller: CallerContext) => string | null;
}

export function dispatchHostCall(
  services: HostServices,
  caller: CallerContext,
  fn: string,
  requestText: string,
  opts: DispatchOptions = {},
): Dispatched {
  const refuse = (code: GuestErrorCode, message: string): Dispatched => ({
    result: guestError(code, message),
    fuel: 0,
  });
  const entry = HOST_FUNCTIONS.get(fn);
  if (!entry) return refuse('invalid_argument', `unknown host function '${fn}'`);
  if (!services.granted(caller).has(fn as Capability)) {
    return refuse('capability', `plugin ${caller.pluginId} was not granted '${fn}'`);
  }
  if (!entry.def.phases.includes(caller.phase)) {
    return refuse(
      'phase',
      `'${fn}' is not allowed during ${caller.phase} (allowed: ${entry.def.phases.join(', ')})`,
    );
  }
  const busy = opts.busy?.(caller) ?? null;
  if (busy !== null) return refuse('busy', busy);
  let request: unknown;
  try {
    request = requestText.length === 0 ? {} : parseGuestJson(requestText);
  } catch (err) {
    return refuse('invalid_argument', `request is not valid JSON: ${(err as Error).message}`);
  }
  const checked = entry.validate(request);
  if (!checked.ok)
    return refuse('invalid_argument', `${checked.issue.field}: ${checked.issue.problem}`);
  let result: HostResult;
  try {
    result = entry.def.handle(services, caller, checked.value as never);
  } catch (err) {
    opts.onInternalError?.(err);
    return refuse('internal', 'the host failed to handle this call; try again later');
  }
  const work = entry.def.workFuel?.(checked.value as never, result) ?? 0;
  return { result, fuel: Number.isFinite(work) && work > 0 ? Math.ceil(work) : 0 };
}
