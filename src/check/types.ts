/** What `hourglass check` reports (check.ts builds it; format.ts prints it for people). */
import type { Phase } from '../sandbox/types.ts';
import type { ScheduleSpec } from '../schedule/spec.ts';
import type { MemoryLimits } from './wasm-info.ts';

export interface CheckOptions {
  /** Path of the guest's `.wasm`. */
  readonly wasm: string;
  /** The plugin's manifest; without it, one granting every capability is synthesized. */
  readonly manifest?: string;
  /** Also call `run()` once (the first declared schedule, or a check schedule). */
  readonly run?: boolean;
  /** JSON payload for the `run()` call (implies `run`). */
  readonly payload?: string;
  /** Print the report as JSON. */
  readonly json?: boolean;
  /** "Now" for discovery and next fire times. @defaultValue Date.now() */
  readonly now?: number;
}

export interface CheckResult {
  readonly exitCode: number;
  readonly text: string;
}

export type ImportRole = 'extism_kernel' | 'host_function' | 'abort' | 'wasi' | 'unknown';

export interface Finding {
  readonly severity: 'error' | 'warning';
  readonly phase: 'usage' | 'manifest' | 'binary' | 'imports' | 'exports' | 'discovery' | 'run';
  readonly message: string;
}

export interface PhaseReport {
  readonly status: 'ok' | 'failed' | 'not_called';
  readonly durationMs: number | null;
  /** Fuel used (a trapped call is billed its whole budget), or null when not called. */
  readonly fuelUsed: number | null;
  /** The phase's fuel budget (the manifest's, or the default). */
  readonly fuelBudget: number;
  /** `used of budget`, for people. */
  readonly fuel: string;
  readonly detail: string | null;
  readonly hostCalls: readonly { fn: string; answer: string }[];
}

export interface ScheduleReport {
  readonly id: string;
  readonly origin: string;
  readonly state: string;
  readonly kind: ScheduleSpec['kind'];
  readonly spec: string;
  readonly timezone: string;
  readonly payload: unknown;
  /** Up to five next nominal fire times (ISO, UTC). */
  readonly next: readonly string[];
  /** The same times as wall-clock time in the schedule's zone. */
  readonly nextLocal: readonly string[];
}

export interface CheckReport {
  readonly guest: string;
  readonly manifest: string | null;
  readonly verdict: 'accepted' | 'refused' | 'failed';
  readonly problems: readonly Finding[];
  readonly binary: {
    readonly bytes: number;
    readonly sha256: string;
    readonly valid: boolean;
    readonly memory: MemoryLimits | null;
    /** The manifest's `limits.memoryPages`: the cap on the guest's linear memory. */
    readonly manifestMemoryPages: number;
  } | null;
  readonly imports: readonly { name: string; kind: string; role: ImportRole; note: string }[];
  readonly exports: readonly { name: string; kind: string; role: string }[];
  readonly phases: Partial<Record<Phase, PhaseReport>>;
  readonly contracts: readonly unknown[];
  readonly schedules: readonly ScheduleReport[];
  readonly run: {
    readonly scheduleId: string;
    readonly payload: unknown;
    readonly status: string;
    readonly reason: string | null;
    readonly error: string | null;
    readonly result: unknown;
    readonly cursor: unknown;
  } | null;
}
