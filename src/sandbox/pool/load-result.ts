/**
 * What a plugin's load in the pool comes to: the worker's answer (the compiled guest and its
 * facts, or its refusal with the guest's error code), or a failure of the pool itself (the
 * worker timed out, died, could not boot, or the pool closed), which is not the guest's answer
 * and gets the pool's code.
 */
import { HourglassError, type ErrorCode } from '../../errors.ts';
import type { PreparedGuest } from '../guest-module.ts';
import type { CallOutcome, GuestInfo } from '../types.ts';
import type { FromWorker } from './protocol.ts';

export type LoadAnswer =
  Extract<FromWorker, { type: 'prepared' }> | Extract<CallOutcome, { ok: false }>;

/** The loaded guest, or the load's error (thrown). */
export function loadResult(
  pluginId: string,
  answer: LoadAnswer,
): { prepared: PreparedGuest; info: GuestInfo } {
  if ('ok' in answer) {
    const code: ErrorCode =
      answer.reason === 'worker_boot'
        ? 'HG_SANDBOX_BOOT'
        : answer.reason === 'closed'
          ? 'HG_HOST_STATE'
          : 'HG_PLUGIN_LOAD';
    throw new HourglassError(code, `plugin ${pluginId}: ${answer.message}`, { pluginId });
  }
  if (answer.error || !answer.prepared || !answer.info) {
    const code = (answer.error?.code ?? 'HG_PLUGIN_LOAD') as ErrorCode;
    throw new HourglassError(code, answer.error?.message ?? 'the load failed', { pluginId });
  }
  return { prepared: answer.prepared, info: answer.info };
}
