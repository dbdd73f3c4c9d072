/**
 * Dispatch of host-function calls. The order of checks is fixed and documented: capability,
 * phase, JSON syntax, schema, then the handler (which checks quotas and scope). Every failure
 * is an `{"error":…}` answer; a handler that throws is reported as `internal`, never thrown
 * into the guest.
 */
import { CAPABILITIES, type Capability } from '../src/capabilities.ts';
import type { CallerContext } from '../src/sandbox/types.ts';
import { compile, type Validator } from '../src/validation.ts';
import { jobsRegister } from './jobs-register.ts';
import { scheduleCreate } from './schedule-create.ts';
import { scheduleDelete } from './schedule-delete.ts';
import { scheduleGet } from './schedule-get.ts';
import { scheduleList } from './schedule-list.ts';
import { schedulePause } from './schedule-pause.ts';
import { scheduleResume } from './schedule-resume.ts';
import { guestError, type HostFunctionDef, type HostResult, type HostServices } from './types.ts';

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

// Every capability has exactly one host function.
for (const cap of CAPABILITIES) {
  if (!HOST_FUNCTIONS.has(cap)) throw new Error(`host function '${cap}' is not registered`);
}

/** Each host function's static fuel price, as data for the sandbox (see `InThreadSandbox`). */
export const HOST_CALL_FUEL: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(DEFS.map((def) => [def.name, def.fuelCost])),
);

export function hostFunction(name: string): HostFunctionDef<never> | undefined {
  return HOST_FUNCTIONS.get(name)?.def;
}

export function dispatchHostCall(
  services: HostServices,
  caller: CallerContext,
  fn: string,
  requestText: string,
  onInternalError?: (err: unknown) => void,
): HostResult {
  const entry = HOST_FUNCTIONS.get(fn);
  if (!entry) return guestError('invalid_argument', `unknown host function '${fn}'`);
  if (!services.granted(caller).has(fn as Capability)) {
    return guestError('capability', `plugin ${caller.pluginId} was not granted '${fn}'`);
  }
  if (!entry.def.phases.includes(caller.phase)) {
    return guestError(
      'phase',
      `'${fn}' is not allowed during ${caller.phase} (allowed: ${entry.def.phases.join(', ')})`,
    );
  }
  let request: unknown;
  try {
    request = requestText.length === 0 ? {} : JSON.parse(requestText);
  } catch (err) {
    return guestError('invalid_argument', `request is not valid JSON: ${(err as Error).message}`);
  }
  const checked = entry.validate(request);
  if (!checked.ok)
    return guestError('invalid_argument', `${checked.issue.field}: ${checked.issue.problem}`);
  try {
    return entry.def.handle(services, caller, checked.value as never);
  } catch (err) {
    onInternalError?.(err);
    return guestError('internal', 'the host failed to handle this call; try again later');
  }
}
