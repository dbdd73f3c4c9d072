/**
 * Plugin variables across the pool (../plugin-vars.ts has the whole design): which version of
 * each plugin's variables each worker holds, the snapshot a call carries when its worker's copy
 * is stale, and applying the changes a call reports to the main thread's copy.
 *
 * - A call carries a snapshot only when the pool does not know its worker to hold the current
 *   version: the first call of a plugin in a worker (or after the worker loaded it anew), or
 *   after the variables changed elsewhere (another worker's call, an operator's clear). A
 *   plugin that never changes its variables costs nothing after its first call per worker, and
 *   one that does, nothing more as long as its calls run on one worker at a time (its changes
 *   are applied to the worker's copy at once; the pool then knows the copy is current).
 * - A worker's copy is current after a call when the main thread's copy was at the version the
 *   call started from (`VarsDelta.base`): both then applied the same change.
 * - While a snapshot is on its way (posted with a call that has not reported), the outcomes of
 *   calls posted before it say nothing of the worker's copy (it is about to be replaced): they
 *   are applied, and the worker's known version stays the snapshot's.
 * - A call taken back before it ran, with its snapshot, leaves the worker's version unknown.
 * - Changes the main thread refuses (plugin-vars.ts: the bound, checked again) make the call
 *   fail `memory_limit` / `var_limit`; the worker, which kept them, is stale, and the main
 *   thread's version jumps by 2 so no later label of that worker's copy can match it by chance.
 */
import type { CallOutcome } from '../types.ts';
import type { VarsSnapshot } from '../plugin-vars.ts';
import type { PendingCall } from './dispatch.ts';

/** What the pool knows of one worker's copy of one plugin's variables. */
export interface VarsCopy {
  version: number;
  /** The call a snapshot was posted with, until its outcome arrives. */
  snapshotCall: PendingCall | null;
}

/** Per worker: sandbox id → its copy's version as the pool knows it. */
export type VarsCopies = Map<string, VarsCopy>;

/** The snapshot `call` must carry to a worker with `copies` (undefined: none needed). */
export function snapshotFor(copies: VarsCopies, call: PendingCall): VarsSnapshot | undefined {
  const vars = call.req.vars;
  if (vars === undefined) return undefined;
  const known = copies.get(call.pluginId);
  if (known !== undefined && known.version === vars.version) return undefined;
  copies.set(call.pluginId, { version: vars.version, snapshotCall: call });
  call.varsCopies = copies;
  return vars.snapshot();
}

/** `call` was taken back before it ran: the snapshot it carried never arrived. */
export function snapshotLost(call: PendingCall): void {
  const copies = call.varsCopies;
  if (!copies) return;
  call.varsCopies = null;
  if (copies.get(call.pluginId)?.snapshotCall === call) copies.delete(call.pluginId);
}

/**
 * `call` ended with `outcome` (from worker copies `copies`, or none when its worker is gone):
 * applies its changes to the main thread's variables; the outcome to settle it with.
 */
export function applyVars(
  call: PendingCall,
  outcome: CallOutcome,
  copies: VarsCopies | null,
): CallOutcome {
  const vars = call.req.vars;
  // A call already settled (timed out, then found journaled) keeps nothing.
  if (vars === undefined || call.settled) return outcome;
  const known = copies?.get(call.pluginId);
  let track = known !== undefined;
  if (known?.snapshotCall) {
    if (known.snapshotCall === call) known.snapshotCall = null;
    else track = false; // posted before the snapshot: see the head comment
  }
  call.varsCopies = null;
  if (!outcome.ok || outcome.vars === undefined) return outcome;
  const d = outcome.vars;
  if (!vars.apply(d.changes)) {
    vars.skip();
    copies?.delete(call.pluginId);
    return {
      ok: false,
      status: 'memory_limit',
      reason: 'var_limit',
      message: `the call's changes to its variables would take the plugin over its limit of ${vars.limit} bytes (with changes made meanwhile by its other calls); none were kept`,
      durationMs: outcome.durationMs,
      fuelUsed: outcome.fuelUsed,
    };
  }
  if (track && known) known.version = d.base + 1;
  return outcome;
}
