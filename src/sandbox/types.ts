/**
 * The sandbox boundary: every guest call goes through `Sandbox`. The scheduler and discovery
 * only see `CallOutcome` values, so running guests in a worker pool or under fuel metering
 * plugs in behind this interface without touching them.
 */
import type { HttpPolicy } from './http/policy.ts';
import type { PluginLimits } from '../plugin/manifest.ts';
import type { RunStatus } from '../store/types.ts';
import type { PluginVars, VarsDelta } from './plugin-vars.ts';

export type Phase = 'discovery' | 'run' | 'cleanup';
export type GuestExport = 'schedules' | 'run' | 'cleanup';

/** Who is calling a host function. Plain data, so it can cross a thread boundary. */
export interface CallerContext {
  readonly pluginId: string;
  readonly tenant: string;
  readonly phase: Phase;
  /** Set in the run phase. */
  readonly scheduleKey?: string;
  /**
   * Set in the run phase of a schedule that runs on every host (`scope: "host"`): such a run may
   * read schedules but not change them (each host runs it; see docs/cluster.md).
   */
  readonly everyHost?: boolean;
  readonly runId?: number;
  /**
   * Set in the run phase: the tick's scheduled time (ms since the Unix epoch). Guests read it
   * as their WASI wall clock (src/sandbox/kernel/wasi.ts); outside runs it reads the epoch.
   */
  readonly scheduledAt?: number;
}

/**
 * The answer to one host-function call, as data (not JSON text read back by a pattern):
 * what the guest receives, the fuel the call's work cost the host, and whether it was refused
 * in a way that ends the guest's call.
 */
export interface HostCallAnswer {
  /** The JSON response text the guest receives (`{"ok":…}` or `{"error":…}`). */
  readonly answer: string;
  /**
   * Fuel for the work the handler did (schedules scanned, crons evaluated), charged after the
   * call on top of the function's static price and one unit per byte moved. A whole number ≥ 0.
   */
  readonly fuel: number;
  /**
   * Set when the call was refused for `capability` or `phase`: the guest still receives the
   * answer, but its call ends as `host_call_denied` with this message.
   */
  readonly denied: string | null;
}

/**
 * Answers one host-function call: `request` is the guest's raw JSON text. Never throws for
 * guest input. A plain string is an answer with no work fuel and no denial (for test doubles).
 *
 * The answer may come later (a promise: a handler backed by a database or the network). The
 * worker pool waits for it (the guest's worker blocks in `Atomics.wait`, bounded by the pool's
 * `hostCallTimeoutMs`, while the main thread stays free); the in-thread sandbox cannot wait on
 * its own thread, so there a promise is answered `unavailable` at once (`asHostCallAnswer`).
 */
export type HostCallHandler = (
  caller: CallerContext,
  fn: string,
  request: string,
) => HostCallAnswer | string | Promise<HostCallAnswer>;

/** A synchronous handler result as a `HostCallAnswer`. */
export function asHostCallAnswer(r: HostCallAnswer | string): HostCallAnswer;
/**
 * A handler result as a `HostCallAnswer`; a promise (an asynchronous handler, where the caller
 * cannot wait) becomes an `unavailable` error answer, its eventual result ignored.
 */
export function asHostCallAnswer(
  r: HostCallAnswer | string | Promise<HostCallAnswer>,
  fn: string,
): HostCallAnswer;
export function asHostCallAnswer(
  r: HostCallAnswer | string | Promise<HostCallAnswer>,
  fn?: string,
): HostCallAnswer {
  if (typeof r === 'string') return { answer: r, fuel: 0, denied: null };
  if (r instanceof Promise) {
    r.catch(() => undefined); // nobody waits for it
    const message = `${fn ?? 'this host function'} answers asynchronously, which only the worker pool can wait for`;
    return {
      answer: JSON.stringify({ error: { code: 'unavailable', message } }),
      fuel: 0,
      denied: null,
    };
  }
  return r;
}

export interface GuestSpec {
  readonly pluginId: string;
  readonly tenant: string;
  readonly wasm: Uint8Array<ArrayBuffer>;
  readonly config: Readonly<Record<string, string>>;
  readonly limits: PluginLimits;
  /** Outbound HTTP the plugin may make (sandbox/http/policy.ts); absent: none. */
  readonly http?: HttpPolicy;
}

export interface GuestInfo {
  readonly exports: readonly string[];
  readonly imports: readonly string[];
  readonly sha256: string;
}

/** Outcome statuses a guest call can end with (a subset of run statuses). */
export type CallFailureStatus = Extract<
  RunStatus,
  | 'failed'
  | 'trapped'
  | 'out_of_fuel'
  | 'memory_limit'
  | 'timed_out'
  | 'stack_overflow'
  | 'host_call_denied'
  | 'worker_crashed'
  /** The sandbox was closed (the host stopping) before the call ended (reason `closed`). */
  | 'abandoned'
>;

export type CallOutcome =
  | {
      readonly ok: true;
      readonly output: Uint8Array | null;
      readonly durationMs: number;
      readonly fuelUsed: number | null;
      /**
       * The changes the call made to its plugin's variables, already applied to the
       * `CallRequest.vars` it named (plugin-vars.ts); absent when it made none.
       */
      readonly vars?: VarsDelta;
      /** The call's last guest log lines (`LOG_TAIL_LINES`), for its run record; absent: none. */
      readonly logTail?: string;
    }
  | {
      readonly ok: false;
      readonly status: CallFailureStatus;
      /** Stable machine-readable reason, e.g. `guest_error`, `nonzero_return`, `trap`, `abort`. */
      readonly reason: string;
      readonly message: string;
      readonly durationMs: number;
      readonly fuelUsed: number | null;
      readonly logTail?: string;
    };

export interface CallRequest {
  readonly fn: GuestExport;
  readonly input?: string;
  readonly caller: CallerContext;
  /**
   * The plugin's variables (Extism `var_get` / `var_set`; plugin-vars.ts), held by the caller's
   * thread: the call reads them, and its changes are applied to them if it succeeds. Absent:
   * the sandbox keeps the plugin's variables itself while it is loaded (nothing persists).
   */
  readonly vars?: PluginVars | undefined;
}

/** A sandbox's load at one moment (read by the metrics at scrape time; cheap to compute). */
export interface SandboxStats {
  /** Calls and loads waiting for a worker. */
  readonly queued: number;
  /** Workers holding at least one call or load. */
  readonly busy: number;
  /** Worker slots (the pool's size). */
  readonly workers: number;
  /** Workers replaced since the sandbox was made, by why (monotonic). */
  readonly replaced: { readonly timed_out: number; readonly worker_crashed: number };
}

export interface Sandbox {
  /** Compiles and prepares a guest. Throws `HourglassError` (`HG_PLUGIN_LOAD`) if it cannot. */
  load(spec: GuestSpec): Promise<GuestInfo>;
  /** Calls an export. Never throws for guest behaviour: failures are outcomes. */
  call(pluginId: string, req: CallRequest): Promise<CallOutcome>;
  unload(pluginId: string): Promise<void>;
  close(): Promise<void>;
  /** Its load now (optional: a sandbox without workers may not say). */
  stats?(): SandboxStats;
}
