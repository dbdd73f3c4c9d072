/**
 * What the operator surfaces (the CLI's store commands and the HTTP API) need of a store,
 * whichever it is: the SQLite file (store-access.ts) or PostgreSQL (pg-access.ts). Async,
 * because PostgreSQL is. Reads go to the durable store (a history of runs the host's in-memory
 * mirror no longer holds); changes go through the host that serves the schedule.
 */
import type {
  JobContractRecord,
  OperatorAction,
  PluginRecord,
  PluginStateRecord,
  RunQuery,
  RunRecord,
  ScheduleQuery,
  ScheduleRecord,
} from '../store/types.ts';

export interface CommandOutcome {
  /** Applied by a running host, applied to the store directly, or queued for a later host. */
  readonly via: 'host' | 'store' | 'queued';
  readonly ok: boolean;
  readonly message: string;
  /** A refused command's code (`not_found`, `invalid_state`, ...), when the host gave one. */
  readonly code?: string;
  /** An applied command's result: the schedule's state, or a trigger's `started` / `skipped`. */
  readonly value?: string;
}

export interface OperatorStore {
  /** Every plugin the store has a row of (loaded, failed with its error, or unloaded), by id. */
  listPlugins(): Promise<PluginRecord[]>;
  listSchedules(q: ScheduleQuery): Promise<ScheduleRecord[]>;
  /** One schedule by key, in any state (deleted and retired included). */
  getSchedule(key: string): Promise<ScheduleRecord | undefined>;
  listRuns(q: RunQuery): Promise<RunRecord[]>;
  getRun(id: number): Promise<RunRecord | undefined>;
  listJobContracts(pluginId?: string): Promise<JobContractRecord[]>;
  /** A plugin's state (its Extism variables), as the store holds it. */
  getPluginState(pluginId: string): Promise<PluginStateRecord | undefined>;
  /**
   * Pause, resume, trigger or delete a schedule (through the host that serves it, if any); or
   * `clear_state` of a plugin (`key` its id, `note` the one variable to clear, null: all).
   */
  applyCommand(key: string, action: OperatorAction, note: string | null): Promise<CommandOutcome>;
  close(): Promise<void>;
}

/** The outcome of a command a host applied, from the `result` it wrote. */
export function hostOutcome(result: string, action: OperatorAction, key: string): CommandOutcome {
  const r = JSON.parse(result) as { ok?: string; error?: { code: string; message: string } };
  return r.error
    ? {
        via: 'host',
        ok: false,
        code: r.error.code,
        message: `${r.error.code}: ${r.error.message}`,
      }
    : { via: 'host', ok: true, value: r.ok, message: `${action} ${key}: ${r.ok}` };
}
