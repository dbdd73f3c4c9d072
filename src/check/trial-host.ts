/**
 * The dynamic half of `hourglass check`: the guest is loaded into a throwaway `Host` (in-memory
 * SQLite store, a manual clock that never fires, an in-thread sandbox that records every call's
 * outcome and every host-function answer) exactly as `hourglass start` would load it: the
 * real loader, discovery, declaration rules and job contracts; `run()` once on request.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOST_CALL_FUEL } from '../../host-functions/registry.ts';
import { ManualClock } from '../clock.ts';
import { parseHostConfig } from '../config/host-config.ts';
import { errorMessage } from '../errors.ts';
import { Host } from '../host/host.ts';
import { DEFAULT_LIMITS, type PluginLimits } from '../plugin/manifest.ts';
import { InThreadSandbox } from '../sandbox/in-thread-sandbox.ts';
import type { CallOutcome, HostCallHandler, Phase, Sandbox } from '../sandbox/types.ts';
import { asHostCallAnswer } from '../sandbox/types.ts';
import { nextFireAfter } from '../schedule/spec.ts';
import type { ScheduleRecord } from '../store/types.ts';
import type { CheckReport, Finding, PhaseReport, ScheduleReport } from './types.ts';

export const CHECK_TENANT = 'check';
const CHECK_SCHEDULE = 'hourglass-check';

export interface TrialRequest {
  /** The manifest's fields (its `wasm` is replaced by `wasmPath`). */
  readonly rawManifest: Record<string, unknown>;
  readonly wasmPath: string;
  readonly pluginId: string;
  readonly now: number;
  /** Call `run()` once; `payload` (when defined) on a check schedule of its own. */
  readonly run: boolean;
  readonly payload: unknown;
  /** The fuel budgets reported beside each phase. */
  readonly limits: PluginLimits | null;
}

export interface TrialResult {
  /** Why the host refused the guest (its error code and words), or null. */
  readonly loadFailure: { readonly code: string; readonly message: string } | null;
  /** The host threw while loading (the message), or null. */
  readonly crashed: string | null;
  readonly phases: Partial<Record<Phase, PhaseReport>>;
  readonly contracts: unknown[];
  readonly schedules: ScheduleReport[];
  readonly run: CheckReport['run'];
  /** What the host calls and phases said (rejected contracts, failing calls, cleanup). */
  readonly problems: Finding[];
}

/** A sandbox that records every guest call's outcome and every host-function answer. */
class RecordingSandbox implements Sandbox {
  readonly outcomes: { phase: Phase; outcome: CallOutcome }[] = [];
  readonly hostCalls: { phase: Phase; fn: string; answer: string }[] = [];
  readonly #inner: Sandbox;

  constructor(hostCall: HostCallHandler) {
    this.#inner = new InThreadSandbox({
      hostCall: (caller, fn, request) => {
        const answer = asHostCallAnswer(hostCall(caller, fn, request), fn);
        this.hostCalls.push({ phase: caller.phase, fn, answer: answer.answer });
        return answer;
      },
      hostCallFuel: HOST_CALL_FUEL,
    });
  }
  load: Sandbox['load'] = (spec) => this.#inner.load(spec);
  unload: Sandbox['unload'] = (id) => this.#inner.unload(id);
  close: Sandbox['close'] = () => this.#inner.close();
  call: Sandbox['call'] = async (pluginId, req) => {
    const outcome = await this.#inner.call(pluginId, req);
    this.outcomes.push({ phase: req.caller.phase, outcome });
    return outcome;
  };
}

/** "YYYY-MM-DD HH:mm:ss ZONE" in `timeZone`. */
function wallClock(ms: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  }).formatToParts(new Date(ms));
  const p = (type: Intl.DateTimeFormatPartTypes) => parts.find((x) => x.type === type)?.value ?? '';
  return `${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')}:${p('second')} ${p('timeZoneName')}`;
}

function scheduleReport(s: ScheduleRecord, now: number): ScheduleReport {
  const zone = s.spec.kind === 'cron' ? s.spec.timezone : 'UTC';
  const next: number[] = [];
  let after = now;
  while (next.length < 5) {
    const t = nextFireAfter(s.spec, after, s.anchorAt);
    if (t === null) break;
    next.push(t);
    after = t;
  }
  const spec =
    s.spec.kind === 'cron'
      ? `cron "${s.spec.cron}"`
      : s.spec.kind === 'every'
        ? `every ${s.spec.every}`
        : `at ${s.spec.at}`;
  return {
    id: s.localId,
    origin: s.origin,
    state: s.state,
    kind: s.spec.kind,
    spec: `${spec}${s.jitter ? ` (jitter ${s.jitter})` : ''}`,
    timezone: zone,
    payload: s.payload === null ? null : (JSON.parse(s.payload) as unknown),
    next: next.map((t) => new Date(t).toISOString()),
    nextLocal: next.map((t) => wallClock(t, zone)),
  };
}

function phaseReport(sandbox: RecordingSandbox, phase: Phase, fuelBudget: number): PhaseReport {
  const hostCalls = sandbox.hostCalls
    .filter((c) => c.phase === phase)
    .map((c) => ({ fn: c.fn, answer: c.answer }));
  const last = sandbox.outcomes.filter((o) => o.phase === phase).at(-1)?.outcome;
  if (!last) {
    return {
      status: 'not_called',
      durationMs: null,
      fuelUsed: null,
      fuelBudget,
      fuel: 'not called',
      detail: null,
      hostCalls,
    };
  }
  return {
    status: last.ok ? 'ok' : 'failed',
    durationMs: Math.round(last.durationMs * 1000) / 1000,
    fuelUsed: last.fuelUsed,
    fuelBudget,
    fuel: `${last.fuelUsed ?? '?'} of ${fuelBudget}`,
    detail: last.ok ? null : `${last.status} (${last.reason}): ${last.message}`,
    hostCalls,
  };
}

/** Loads the guest into a throwaway host; see the head comment. */
export async function tryInHost(req: TrialRequest): Promise<TrialResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-check-'));
  const manifestFile = join(dir, 'hourglass.json');
  writeFileSync(manifestFile, JSON.stringify({ ...req.rawManifest, wasm: req.wasmPath }));
  let recorder: RecordingSandbox | null = null;
  const config = parseHostConfig(
    {
      store: { path: ':memory:' },
      tenants: [{ id: CHECK_TENANT, plugins: [{ manifest: manifestFile }] }],
    },
    '(hourglass check)',
    dir,
  );
  const host = new Host(config, {
    clock: new ManualClock(req.now),
    sandbox: (hostCall) => (recorder = new RecordingSandbox(hostCall)),
  });
  let loadFailure: TrialResult['loadFailure'] = null;
  host.events.on('plugin:failed', (e) => (loadFailure = { code: e.code, message: e.message }));
  const problems: Finding[] = [];
  let crashed: string | null = null;
  let schedules: ScheduleReport[] = [];
  let contracts: unknown[] = [];
  let run: CheckReport['run'] = null;
  try {
    await host.start();
    if (!loadFailure) {
      const { pluginId } = req;
      schedules = host.store.listSchedules({ pluginId }).map((s) => scheduleReport(s, req.now));
      contracts = host.store
        .listJobContracts(pluginId)
        .map((c) => JSON.parse(c.contract) as unknown);
      if (req.run) run = await runOnce(host, pluginId, schedules, req.payload, problems);
    }
  } catch (err) {
    crashed = errorMessage(err);
  } finally {
    await host.stop(1_000).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  const rec = recorder as RecordingSandbox | null;
  const phases = rec ? callFindings(rec, req.limits ?? DEFAULT_LIMITS, problems) : {};
  return { loadFailure, crashed, phases, contracts, schedules, run, problems };
}

/** Each phase's report, and a finding for every host call that answered an error. */
function callFindings(
  rec: RecordingSandbox,
  limits: PluginLimits,
  problems: Finding[],
): Partial<Record<Phase, PhaseReport>> {
  const phases: Partial<Record<Phase, PhaseReport>> = {};
  for (const phase of ['discovery', 'run', 'cleanup'] as const) {
    const r = phaseReport(rec, phase, limits.fuel[phase]);
    if (r.status !== 'not_called' || r.hostCalls.length > 0) phases[phase] = r;
  }
  for (const call of rec.hostCalls) {
    const answer = JSON.parse(call.answer) as { error?: { code: string; message: string } };
    // not_found and conflict are ordinary answers a guest acts on.
    if (!answer.error || ['not_found', 'conflict'].includes(answer.error.code)) continue;
    const rejectedContract = call.phase === 'discovery' && call.fn === 'jobs_register';
    problems.push({
      severity: rejectedContract ? 'error' : 'warning',
      phase: call.phase === 'discovery' ? 'discovery' : 'run',
      message: `${call.fn} during ${call.phase} answered ${answer.error.code}: ${answer.error.message}`,
    });
  }
  const cleanup = phases.cleanup;
  if (cleanup?.status === 'failed') {
    problems.push({
      severity: 'warning',
      phase: 'run',
      message: `cleanup() failed: ${cleanup.detail}`,
    });
  }
  return phases;
}

/** Calls `run()` once through the host: the first declared schedule, or a check schedule. */
async function runOnce(
  host: Host,
  pluginId: string,
  schedules: readonly ScheduleReport[],
  payload: unknown,
  problems: Finding[],
): Promise<CheckReport['run']> {
  let id = schedules.find((s) => s.state === 'active')?.id ?? schedules[0]?.id;
  if (payload !== undefined || id === undefined) {
    id = CHECK_SCHEDULE;
    const created = host.schedules.create(
      { pluginId, tenant: CHECK_TENANT, phase: 'run' },
      { id, every: '1h', ...(payload === undefined ? {} : { payload }) },
    );
    if ('error' in created) {
      problems.push({
        severity: 'error',
        phase: 'run',
        message: `cannot create the check schedule: ${created.error.message}`,
      });
      return null;
    }
  }
  const key = `${pluginId}/${id}`;
  const triggered = host.operate(key, 'trigger');
  if (!triggered.ok) {
    problems.push({ severity: 'error', phase: 'run', message: triggered.message });
    return null;
  }
  await host.scheduler.settle();
  const record = host.store.listRuns({ scheduleKey: key, limit: 1 })[0];
  const schedule = host.store.getSchedule(key);
  if (!record) {
    problems.push({ severity: 'error', phase: 'run', message: `run() was not called for ${id}` });
    return null;
  }
  if (record.status !== 'succeeded') {
    problems.push({
      severity: 'error',
      phase: 'run',
      message: `run() ${record.status}${record.reason ? ` (${record.reason})` : ''}${record.error ? `: ${record.error}` : ''}`,
    });
  }
  return {
    scheduleId: id,
    payload: schedule?.payload ? (JSON.parse(schedule.payload) as unknown) : null,
    status: record.status,
    reason: record.reason,
    error: record.error,
    result: record.result === null ? null : (JSON.parse(record.result) as unknown),
    cursor: schedule?.cursor ? (JSON.parse(schedule.cursor) as unknown) : null,
  };
}
