/**
 * What the CLI's store commands (`plugins`, `schedules`, `runs`, `pause`, `resume`, `trigger`,
 * `delete`)
 * need of a store, whichever it is: the SQLite file (store-access.ts) or PostgreSQL
 * (pg-access.ts). Async, because PostgreSQL is.
 */
import type {
  OperatorAction,
  PluginRecord,
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
}

export interface CliStore {
  /** Every plugin the store has a row of (loaded, failed with its error, or unloaded), by id. */
  listPlugins(): Promise<PluginRecord[]>;
  listSchedules(q: ScheduleQuery): Promise<ScheduleRecord[]>;
  listRuns(q: RunQuery): Promise<RunRecord[]>;
  /** Pause, resume, trigger or delete a schedule (through the host that serves it, if any). */
  applyCommand(key: string, action: OperatorAction, note: string | null): Promise<CommandOutcome>;
  close(): Promise<void>;
}

/** The outcome of a command a host applied, from the `result` it wrote. */
export function hostOutcome(result: string, action: OperatorAction, key: string): CommandOutcome {
  const r = JSON.parse(result) as { ok?: string; error?: { code: string; message: string } };
  return r.error
    ? { via: 'host', ok: false, message: `${r.error.code}: ${r.error.message}` }
    : { via: 'host', ok: true, message: `${action} ${key}: ${r.ok}` };
}
