/**
 * Executing one run: build the run context, call the guest's `run()` through the sandbox,
 * interpret its output (cursor and result), and record the outcome and the new cursor in one
 * transaction. A guest failure is a value here; nothing a guest does can throw out of `execute`.
 *
 * The schedule the run got from the scheduler is current (the scheduler keeps its records,
 * cursors included, in memory while the host owns them): nothing is read before the call. The
 * outcome is one transaction (the row's outcome, and the cursor); a row its start's rolled-back
 * commit left missing is written whole under its id (`finishRun` reports it), so no read before
 * the write.
 *
 * Recording the outcome is retried until it sticks: a write that throws, one that changed no
 * row (the run's row exists but the update did not take), or one that a failed group commit
 * rolled back (`Store.committed()` rejects) is reported (`onWriteFailed`) and tried again with
 * backoff (nothing is read back: the statements' own change counts tell), so a run is never left `running`
 * while the host is up. The run keeps its slot (and its schedule stays busy) meanwhile, so no
 * later run can start from a cursor that is not yet written. Once the host stops, the last
 * failure ends the loop: the next start records the run `abandoned`.
 *
 * The cursor is written only into the incarnation of the schedule the run started from
 * (`Store.writeCursor`): a schedule deleted and re-created during the run keeps its fresh cursor.
 */
import type { Clock } from '../clock.ts';
import type { TenantQuotas } from '../config/host-config.ts';
import { errorMessage } from '../errors.ts';
import type { Sandbox } from '../sandbox/types.ts';
import type { PluginVars } from '../sandbox/plugin-vars.ts';
import type { RunEnd, StartedRun } from '../scheduler/scheduler.ts';
import type { RunRecord, RunStatus, Store } from '../store/types.ts';
import { compile, parseGuestJson } from '../validation.ts';
import { baseTenant } from './replica.ts';

/** What a guest's `run()` gets, as JSON (`runInput`). */
export interface RunContext {
  scheduleId: string;
  runId: string;
  plugin: string;
  scheduledAt: string;
  firedAt: string;
  attempt: number;
  catchUp: boolean;
  trigger: string;
  payload: unknown;
  cursor: unknown;
}

interface RunOutput {
  cursor?: unknown;
  result?: unknown;
}

const validateOutput = compile<RunOutput>({
  type: 'object',
  additionalProperties: false,
  properties: { cursor: {}, result: {} },
});

const BILLED_IN_FULL: ReadonlySet<RunStatus> = new Set(['timed_out', 'worker_crashed']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface RunExecutorDeps {
  readonly store: Store;
  readonly sandbox: Sandbox;
  readonly clock: Clock;
  readonly quotas: (tenant: string) => TenantQuotas;
  /** The run-phase fuel budget the sandbox gives the plugin's calls (null: not metered). */
  readonly runFuelBudget?: (pluginId: string) => number | null;
  readonly onFinished?: (run: RunRecord) => void;
  /**
   * The plugin's version in service: the sandbox id it is loaded under, its manifest's version
   * and its module's hash (recorded with the run). @defaultValue the plugin id, no version
   */
  readonly served?: (pluginId: string) => ServedVersion | undefined;
  /** The plugin's variables (Extism `var_get` / `var_set`; host/plugin-state.ts). */
  readonly vars?: (pluginId: string) => PluginVars | undefined;
  /** Writing a run's outcome failed (it is retried while `stopped()` is false). */
  readonly onWriteFailed?: (runId: number, err: unknown, attempt: number) => void;
  /** The host is stopping: stop retrying failed outcome writes. */
  readonly stopped?: () => boolean;
  /** First retry delay (doubles up to 5 s). @defaultValue 50 */
  readonly retryMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface OutcomeWrite {
  readonly write: () => void;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Outcome writes wait for the loop turn's check phase and go in together: the results of
 * several workers (each its own message, its own task) then share one group commit instead of
 * one commit each. Each write stays its own transaction (a savepoint in the group, when it has
 * more than one statement). A write's promise settles once the group holding it is durable
 * (`Store.committed()`, asked once per batch, not once per run), or with the write's own error;
 * on a store that keeps its writes in order (`Store.writesKeptInOrder`: the stores that write
 * behind), once it is written: the run's slot is then free a round trip to the durable copy
 * earlier, and the next run of the slot is called only once a commit that carries this outcome
 * too is durable (the scheduler waits for its start's).
 */
class OutcomeBatch {
  readonly #store: Store;
  #writes: OutcomeWrite[] = [];

  constructor(store: Store) {
    this.#store = store;
  }

  /** Resolves when `write` ran and its write is durable (or kept); rejects on either's failure. */
  write(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#writes.length === 0) setImmediate(() => this.#flush());
      this.#writes.push({ write, resolve, reject });
    });
  }

  #flush(): void {
    const writes = this.#writes;
    this.#writes = [];
    let written = 0;
    for (const w of writes) {
      try {
        w.write();
        writes[written++] = w;
      } catch (err) {
        w.reject(err);
      }
    }
    if (written === 0) return;
    writes.length = written;
    if (this.#store.writesKeptInOrder === true) {
      for (const w of writes) w.resolve();
      return;
    }
    // A group commit that failed rolled the outcomes back: `committed()` rejects.
    let durable: Promise<void>;
    try {
      durable = this.#store.committed();
    } catch (err) {
      durable = Promise.reject(err as Error);
    }
    durable.then(
      () => {
        for (const w of writes) w.resolve();
      },
      (err: unknown) => {
        for (const w of writes) w.reject(err);
      },
    );
  }
}

/**
 * `new Date(ms).toISOString()`, remembering the last answer: runs started together share their
 * times to the millisecond (a burst's ticks, a batch of starts), and this is per run.
 */
class IsoCache {
  #ms = NaN;
  #iso = '';

  of(ms: number): string {
    if (ms !== this.#ms) {
      this.#iso = new Date(ms).toISOString();
      this.#ms = ms;
    }
    return this.#iso;
  }
}

const scheduledIso = new IsoCache();
const firedIso = new IsoCache();

/**
 * The run's input: the `RunContext` as JSON text, built directly (no context object, and the
 * payload and cursor are spliced in as the JSON text the store holds: the host wrote both with
 * `JSON.stringify`, so parsing and encoding them again per run would only allocate).
 */
export function runInput(run: StartedRun): string {
  const s = run.schedule;
  // A host's copy of an every-host schedule (replica.ts) names its plugin as configured.
  const plugin =
    s.scope === 'host' ? baseTenant(s.tenant) + s.pluginId.slice(s.tenant.length) : s.pluginId;
  return (
    `{"scheduleId":${JSON.stringify(s.localId)},"runId":"${run.runId}",` +
    `"plugin":${JSON.stringify(plugin)},` +
    `"scheduledAt":"${scheduledIso.of(run.scheduledAt)}",` +
    `"firedAt":"${firedIso.of(run.firedAt)}","attempt":${run.attempt},` +
    `"catchUp":${run.trigger === 'catch_up'},"trigger":"${run.trigger}",` +
    `"payload":${run.payload ?? s.payload ?? 'null'},"cursor":${s.cursor ?? 'null'}}`
  );
}

interface Finish {
  status: RunStatus;
  reason: string | null;
  error: string | null;
  outputBytes: number | null;
  fuelUsed: number | null;
  result: string | null;
  /** undefined: keep the cursor. */
  cursor?: string | null;
}

export interface ServedVersion {
  readonly sandboxId: string;
  readonly manifest: { readonly version: string };
  readonly wasmSha256: string;
}

export function createRunExecutor(deps: RunExecutorDeps): (run: StartedRun) => Promise<RunEnd> {
  const batch = new OutcomeBatch(deps.store);
  return async (run) => {
    const s = run.schedule;
    const fuelBudget = deps.runFuelBudget?.(s.pluginId) ?? null;
    let fin: Finish;
    // The guest's last log lines, kept with the outcome for the run's detail.
    let logTail: string | null = null;
    // The version that runs it (a reload swaps versions only between the plugin's runs).
    const served = deps.served?.(s.pluginId);
    try {
      const outcome = await deps.sandbox.call(served?.sandboxId ?? s.pluginId, {
        fn: 'run',
        input: runInput(run),
        // One literal of one shape for every run (`everyHost` false is the same as absent).
        caller: {
          pluginId: s.pluginId,
          tenant: s.tenant,
          phase: 'run',
          scheduleKey: s.key,
          everyHost: s.scope === 'host',
          runId: run.runId,
          scheduledAt: run.scheduledAt,
        },
        vars: deps.vars?.(s.pluginId),
      });
      logTail = outcome.logTail ?? null;
      if (!outcome.ok) {
        fin = {
          status: outcome.status,
          reason: outcome.reason,
          error: outcome.message,
          outputBytes: null,
          // A call the host had to stop (deadline, dead worker) is billed its whole budget,
          // like any other trap (docs/fuel.md).
          fuelUsed: outcome.fuelUsed ?? (BILLED_IN_FULL.has(outcome.status) ? fuelBudget : null),
          result: null,
        };
      } else {
        fin = interpretOutput(
          outcome.output,
          outcome.fuelUsed,
          () => deps.quotas(s.tenant).maxOutputBytes,
        );
      }
    } catch (err) {
      fin = {
        status: 'failed',
        reason: 'host_error',
        error: errorMessage(err),
        outputBytes: null,
        fuelUsed: null,
        result: null,
      };
    }
    const finishedAt = deps.clock.now();
    const record: RunRecord = {
      id: run.runId,
      scheduleKey: s.key,
      pluginId: s.pluginId,
      tenant: s.tenant,
      localId: s.localId,
      trigger: run.trigger,
      status: fin.status,
      reason: fin.reason,
      scheduledAt: run.scheduledAt,
      startedAt: run.firedAt,
      finishedAt,
      attempt: run.attempt,
      error: fin.error,
      outputBytes: fin.outputBytes,
      fuelUsed: fin.fuelUsed,
      fuelBudget,
      result: fin.result,
      coversUntil: null,
      pluginVersion: served?.manifest.version ?? null,
      wasmSha256: served?.wasmSha256 ?? null,
      logTail,
    };
    // `finishRun` takes the fields it writes from the whole record (no copy per outcome).
    // No row changed: its start's rolled-back commit left none (it is written whole, under its
    // id), or the update did not take (the row exists): nothing more is written, and the
    // outcome is tried again.
    const outcomeWritten = () =>
      deps.store.finishRun(record.id, record) || deps.store.restoreRun(record);
    const cursor = fin.cursor;
    const write =
      cursor === undefined
        ? // One statement that writes (the update, or else the insert): atomic by itself, so no
          // transaction (a savepoint and its release: two statements per run).
          () => {
            if (!outcomeWritten()) notPersisted(record.id);
          }
        : () => {
            const written = deps.store.transaction(() => {
              if (!outcomeWritten()) return false;
              if (s.generation === undefined)
                deps.store.updateSchedule(s.key, { cursor, updatedAt: finishedAt });
              else deps.store.writeCursor(s.key, s.generation, cursor, finishedAt);
              return true;
            });
            if (!written) notPersisted(record.id);
          };
    if (!(await recordOutcome(deps, record.id, () => batch.write(write)))) return {};
    deps.onFinished?.(record);
    return fin.cursor === undefined
      ? endOf(fin.status)
      : { cursor: fin.cursor, status: fin.status };
  };
}

/** A run's end that changed no cursor, one shared object per status (no object per run). */
const ENDS = new Map<RunStatus, RunEnd>();
function endOf(status: RunStatus): RunEnd {
  let end = ENDS.get(status);
  if (end === undefined) ENDS.set(status, (end = Object.freeze({ status })));
  return end;
}

function notPersisted(runId: number): never {
  throw new Error(`the outcome of run ${runId} did not persist (no row changed)`);
}

/**
 * Writes a run's outcome until it is durable; false if the host stopped first. `write`
 * resolves once the outcome is written and durable (OutcomeBatch).
 */
async function recordOutcome(
  deps: RunExecutorDeps,
  runId: number,
  write: () => Promise<void>,
): Promise<boolean> {
  let delay = deps.retryMs ?? 50;
  for (let attempt = 1; ; attempt++) {
    try {
      await write();
      return true;
    } catch (err) {
      try {
        deps.onWriteFailed?.(runId, err, attempt);
      } catch {
        // A throwing listener must not stop the retries.
      }
      if (deps.stopped?.()) return false;
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

function interpretOutput(
  output: Uint8Array | null,
  fuelUsed: number | null,
  maxOutputBytes: () => number,
): Finish {
  // The common outcome (no output): one literal, nothing to parse, no quota to look up.
  if (output === null || output.length === 0)
    return {
      status: 'succeeded',
      reason: null,
      error: null,
      outputBytes: 0,
      fuelUsed,
      result: null,
    };
  const size = output.length;
  const base = { outputBytes: size, fuelUsed, result: null };
  const max = maxOutputBytes();
  if (size > max) {
    return {
      ...base,
      status: 'failed',
      reason: 'output_too_large',
      error: `output is ${size} bytes, over the tenant's limit of ${max}`,
    };
  }
  let value: unknown;
  try {
    value = parseGuestJson(utf8.decode(output));
  } catch (err) {
    return {
      ...base,
      status: 'failed',
      reason: 'invalid_output',
      error: `output is not UTF-8 JSON: ${errorMessage(err)}`,
    };
  }
  const parsed = validateOutput(value);
  if (!parsed.ok) {
    return {
      ...base,
      status: 'failed',
      reason: 'invalid_output',
      error: `output ${parsed.issue.field} ${parsed.issue.problem} (expected {"cursor"?, "result"?})`,
    };
  }
  const out = parsed.value;
  return {
    ...base,
    status: 'succeeded',
    reason: null,
    error: null,
    result: out.result === undefined ? null : JSON.stringify(out.result),
    ...('cursor' in out ? { cursor: out.cursor === null ? null : JSON.stringify(out.cursor) } : {}),
  };
}
