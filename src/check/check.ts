/**
 * `hourglass check GUEST.wasm [--manifest FILE] [--run [--payload JSON]] [--json]`: a conformance
 * checker for guests. It does not re-implement the host's rules: it loads the guest into a
 * throwaway `Host` (in-memory SQLite store, a manual clock that never fires) exactly as
 * `hourglass start` would — binary validation, import/export rules, `schedules()` under the
 * discovery phase, declaration parsing, job contracts — and reports what happened, plus a
 * static listing of the module's imports, exports and memory.
 *
 * Exit codes: 0 the guest is accepted; 1 it would be refused (or a check failed: a rejected
 * job contract, a failing `run()` under --run); 2 usage (unreadable file, bad --payload).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { HOST_CALL_FUEL } from '../../host-functions/registry.ts';
import { CAPABILITIES, isCapability } from '../capabilities.ts';
import { ManualClock } from '../clock.ts';
import { DEFAULT_MAX_WASM_BYTES, parseHostConfig } from '../config/host-config.ts';
import { readJsonFile, readOperatorFile } from '../config/operator-file.ts';
import { errorMessage } from '../errors.ts';
import { sha256Hex } from '../fuel/cache.ts';
import { Host } from '../host/host.ts';
import {
  DEFAULT_LIMITS,
  loadManifest,
  MAX_MANIFEST_BYTES,
  type PluginManifest,
} from '../plugin/manifest.ts';
import {
  EXTISM_KERNEL,
  GUEST_EXPORTS,
  HOST_NAMESPACE,
  REQUIRED_EXPORTS,
} from '../sandbox/guest-module.ts';
import { InThreadSandbox } from '../sandbox/in-thread-sandbox.ts';
import type { CallOutcome, HostCallHandler, Phase, Sandbox } from '../sandbox/types.ts';
import { asHostCallAnswer } from '../sandbox/types.ts';
import { nextFireAfter, type ScheduleSpec } from '../schedule/spec.ts';
import type { ScheduleRecord } from '../store/types.ts';
import { memoryLimits, type MemoryLimits } from './wasm-info.ts';

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

const CHECK_TENANT = 'check';
const CHECK_SCHEDULE = 'hourglass-check';

function usage(message: string, json: boolean | undefined): CheckResult {
  const text = json
    ? JSON.stringify({
        verdict: 'usage',
        problems: [{ severity: 'error', phase: 'usage', message }],
      })
    : `hourglass check: ${message}`;
  return { exitCode: 2, text };
}

/** A sandbox that records every guest call's outcome and every host-function answer. */
class RecordingSandbox implements Sandbox {
  readonly outcomes: { phase: Phase; outcome: CallOutcome }[] = [];
  readonly hostCalls: { phase: Phase; fn: string; answer: string }[] = [];
  readonly #inner: Sandbox;

  constructor(hostCall: HostCallHandler) {
    this.#inner = new InThreadSandbox({
      hostCall: (caller, fn, request) => {
        const answer = asHostCallAnswer(hostCall(caller, fn, request));
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

function importRole(module: string, name: string): { role: ImportRole; note: string } {
  if (module === EXTISM_KERNEL) return { role: 'extism_kernel', note: 'Extism kernel' };
  if (module === HOST_NAMESPACE) {
    return isCapability(name)
      ? { role: 'host_function', note: 'Hourglass host function' }
      : {
          role: 'unknown',
          note: `unknown Hourglass host function (known: ${CAPABILITIES.join(', ')})`,
        };
  }
  if (module === 'env' && name === 'abort') return { role: 'abort', note: 'AssemblyScript abort' };
  if (module === 'wasi_snapshot_preview1') return { role: 'wasi', note: 'WASI preview 1' };
  return { role: 'unknown', note: 'not part of the guest ABI' };
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

/** Which part of the check a host load failure belongs to. */
function loadFailurePhase(code: string, message: string): Finding['phase'] {
  if (code === 'HG_MANIFEST_INVALID') return 'manifest';
  if (code !== 'HG_PLUGIN_LOAD') return 'discovery';
  if (/missing required export|reserved prefix/.test(message)) return 'exports';
  if (/imports /.test(message)) return 'imports';
  return 'binary';
}

export async function runCheck(opts: CheckOptions): Promise<CheckResult> {
  const now = opts.now ?? Date.now();
  const wasmPath = resolve(opts.wasm);
  // A regular file of bounded size (not /dev/zero, a FIFO, a huge file), as the host reads it.
  const read = readOperatorFile(wasmPath, DEFAULT_MAX_WASM_BYTES);
  if (!read.ok) return usage(`${opts.wasm}: ${read.problem}`, opts.json);
  const bytes = read.bytes;
  let payload: unknown = undefined;
  if (opts.payload !== undefined) {
    try {
      payload = JSON.parse(opts.payload);
    } catch (err) {
      return usage(`--payload is not valid JSON: ${errorMessage(err)}`, opts.json);
    }
  }
  const wantRun = opts.run === true || opts.payload !== undefined;
  const problems: Finding[] = [];

  // The manifest: the given one (its wasm replaced by GUEST.wasm), or one granting everything.
  let manifest: PluginManifest | null = null;
  let rawManifest: Record<string, unknown>;
  if (opts.manifest !== undefined) {
    try {
      manifest = loadManifest(resolve(opts.manifest));
      if (manifest.wasm !== wasmPath) {
        problems.push({
          severity: 'warning',
          phase: 'manifest',
          message: `the manifest names ${manifest.wasm}; checking ${wasmPath} instead`,
        });
      }
    } catch (err) {
      problems.push({ severity: 'error', phase: 'manifest', message: errorMessage(err) });
    }
    const raw = readJsonFile(resolve(opts.manifest), MAX_MANIFEST_BYTES);
    rawManifest =
      raw.ok && typeof raw.value === 'object' && raw.value !== null && !Array.isArray(raw.value)
        ? (raw.value as Record<string, unknown>)
        : {};
  } else {
    const name =
      basename(wasmPath, '.wasm')
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, '-')
        .replace(/^[^a-z0-9]+/, '')
        .slice(0, 64) || 'guest';
    rawManifest = { name, version: '0.0.0', capabilities: [...CAPABILITIES] };
  }
  const pluginName = typeof rawManifest.name === 'string' ? rawManifest.name : 'guest';
  const pluginId = `${CHECK_TENANT}/${pluginName}`;

  // Static listing (the verdict on them comes from the host's own loader below).
  const valid = WebAssembly.validate(bytes);
  const imports: CheckReport['imports'][number][] = [];
  const exports: CheckReport['exports'][number][] = [];
  let memory: MemoryLimits | null = null;
  if (valid) {
    const mod = new WebAssembly.Module(bytes);
    for (const imp of WebAssembly.Module.imports(mod)) {
      const { role, note } = importRole(imp.module, imp.name);
      const fullName = `${imp.module}.${imp.name}`;
      imports.push({ name: fullName, kind: imp.kind, role, note });
      if (role === 'unknown' || imp.kind !== 'function') {
        problems.push({
          severity: 'error',
          phase: 'imports',
          message: `imports ${imp.kind} '${fullName}': ${imp.kind !== 'function' ? 'only functions can be imported' : note}`,
        });
      } else if (
        role === 'host_function' &&
        manifest &&
        !manifest.capabilities.some((c) => c === imp.name)
      ) {
        problems.push({
          severity: 'warning',
          phase: 'imports',
          message: `imports '${imp.name}' but the manifest does not ask for it: calls will answer 'capability'`,
        });
      }
    }
    const funcs = new Set<string>();
    for (const exp of WebAssembly.Module.exports(mod)) {
      const known = (GUEST_EXPORTS as readonly string[]).includes(exp.name);
      const required = (REQUIRED_EXPORTS as readonly string[]).includes(exp.name);
      if (exp.kind === 'function') funcs.add(exp.name);
      exports.push({
        name: exp.name,
        kind: exp.kind,
        role: required ? 'required' : known ? 'optional' : 'other (ignored)',
      });
    }
    for (const name of REQUIRED_EXPORTS) {
      if (!funcs.has(name)) {
        problems.push({
          severity: 'error',
          phase: 'exports',
          message: `missing required export '${name}'`,
        });
      }
    }
    memory = memoryLimits(bytes);
  } else {
    problems.push({
      severity: 'error',
      phase: 'binary',
      message: 'not a valid WebAssembly module',
    });
  }

  // Load it into a throwaway host: the real loader, discovery and declaration rules.
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-check-'));
  const manifestFile = join(dir, 'hourglass.json');
  writeFileSync(manifestFile, JSON.stringify({ ...rawManifest, wasm: wasmPath }));
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
    clock: new ManualClock(now),
    sandbox: (hostCall) => (recorder = new RecordingSandbox(hostCall)),
  });
  let loadFailure: { code: string; message: string } | null = null;
  let refused = false;
  host.events.on('plugin:failed', (e) => (loadFailure = { code: e.code, message: e.message }));
  let schedules: ScheduleReport[] = [];
  let contracts: unknown[] = [];
  let run: CheckReport['run'] = null;
  try {
    await host.start();
    const failure = loadFailure as { code: string; message: string } | null;
    if (failure) {
      const message = failure.message.replace(`plugin ${pluginId}: `, '');
      const phase = loadFailurePhase(failure.code, failure.message);
      // The static listing may already say the same thing; keep the host's words as the reason.
      const dup = problems.findIndex((p) => p.severity === 'error' && p.phase === phase);
      if (dup >= 0) problems.splice(dup, 1);
      problems.unshift({ severity: 'error', phase, message });
      refused = true;
    } else {
      schedules = host.store.listSchedules({ pluginId }).map((s) => scheduleReport(s, now));
      contracts = host.store
        .listJobContracts(pluginId)
        .map((c) => JSON.parse(c.contract) as unknown);
      if (wantRun) run = await runOnce(host, pluginId, schedules, payload, problems);
    }
  } catch (err) {
    problems.unshift({ severity: 'error', phase: 'binary', message: errorMessage(err) });
    refused = true;
  } finally {
    await host.stop(1_000).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }

  const rec = recorder as RecordingSandbox | null;
  const phases: Partial<Record<Phase, PhaseReport>> = {};
  if (rec) {
    for (const phase of ['discovery', 'run', 'cleanup'] as const) {
      const r = phaseReport(rec, phase, (manifest?.limits ?? DEFAULT_LIMITS).fuel[phase]);
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
  }
  const failed = problems.some((p) => p.severity === 'error');
  const report: CheckReport = {
    guest: wasmPath,
    manifest: opts.manifest === undefined ? null : resolve(opts.manifest),
    verdict: refused ? 'refused' : failed ? 'failed' : 'accepted',
    problems,
    binary: {
      bytes: bytes.length,
      sha256: sha256Hex(bytes),
      valid,
      memory,
      manifestMemoryPages: manifest?.limits.memoryPages ?? DEFAULT_LIMITS.memoryPages,
    },
    imports,
    exports,
    phases,
    contracts,
    schedules,
    run,
  };
  return {
    exitCode: report.verdict === 'accepted' ? 0 : 1,
    text: opts.json ? JSON.stringify(report, null, 2) : formatReport(report, opts),
  };
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

function pages(n: number): string {
  return `${n} page${n === 1 ? '' : 's'} (${n * 64} KiB)`;
}

function formatReport(r: CheckReport, opts: CheckOptions): string {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  line(`hourglass check ${opts.wasm}`);
  line(`  manifest: ${r.manifest ?? 'none given (synthesized: every capability, default limits)'}`);
  line();
  if (r.binary) {
    const b = r.binary;
    line(
      `Binary     ${b.valid ? 'valid core module' : 'NOT a valid WebAssembly module'}, ${b.bytes} bytes, sha256 ${b.sha256.slice(0, 16)}…`,
    );
    if (b.memory) {
      const m = b.memory;
      line(
        `Memory     ${m.imported ? 'imported' : 'own'} memory: initial ${pages(m.initial)}, maximum ${m.maximum === null ? 'none declared' : pages(m.maximum)}`,
      );
    } else if (b.valid) {
      line('Memory     no linear memory');
    }
    line(
      `           manifest limits.memoryPages: ${b.manifestMemoryPages} (the cap on its linear memory)`,
    );
  }
  if (r.imports.length > 0) {
    line(`Imports (${r.imports.length})`);
    const width = Math.max(...r.imports.map((i) => i.name.length));
    for (const i of r.imports) {
      const flag = i.role === 'unknown' || i.kind !== 'function' ? '  <-- REFUSED' : '';
      line(`  ${i.name.padEnd(width)}  ${i.note}${flag}`);
    }
  }
  if (r.binary?.valid) {
    line('Exports');
    for (const name of GUEST_EXPORTS) {
      const e = r.exports.find((x) => x.name === name && x.kind === 'function');
      const required = (REQUIRED_EXPORTS as readonly string[]).includes(name);
      line(
        `  ${name.padEnd(10)} ${required ? 'required' : 'optional'}  ${e ? 'present' : required ? 'MISSING' : 'absent'}`,
      );
    }
    const others = r.exports.filter((e) => !(GUEST_EXPORTS as readonly string[]).includes(e.name));
    if (others.length > 0)
      line(`  other: ${others.map((e) => `${e.name} (${e.kind})`).join(', ')} (ignored)`);
  }
  const phaseLine = (label: string, p: PhaseReport | undefined) => {
    if (!p) return;
    const took = p.durationMs === null ? '' : ` in ${p.durationMs} ms`;
    line(`${label.padEnd(10)} ${p.status}${took}; fuel used: ${p.fuel}`);
    if (p.detail) line(`           ${p.detail}`);
    for (const c of p.hostCalls) {
      const a = JSON.parse(c.answer) as { error?: { code: string; message: string } };
      line(`  ${c.fn} -> ${a.error ? `${a.error.code}: ${a.error.message}` : 'ok'}`);
    }
  };
  phaseLine('Discovery', r.phases.discovery);
  if (r.contracts.length > 0) {
    line(`Job contracts (${r.contracts.length})`);
    for (const c of r.contracts) line(`  ${JSON.stringify(c)}`);
  }
  if (r.phases.discovery?.status === 'ok' && r.verdict !== 'refused') {
    line(`Schedules (${r.schedules.length} declared)`);
    for (const s of r.schedules) {
      const zone = s.kind === 'cron' ? ` in ${s.timezone}` : '';
      line(`  ${s.id}: ${s.spec}${zone}${s.state === 'paused' ? ' (starts paused)' : ''}`);
      if (s.payload !== null) line(`    payload: ${JSON.stringify(s.payload)}`);
      if (s.next.length === 0) line('    never fires again');
      s.next.forEach((t, i) =>
        line(`    ${i === 0 ? 'next: ' : '      '}${s.nextLocal[i]}  (${t})`),
      );
    }
  }
  phaseLine('Run', r.phases.run);
  if (r.run) {
    line(
      `  schedule ${r.run.scheduleId}, payload ${JSON.stringify(r.run.payload)}: ${r.run.status}`,
    );
    if (r.run.result !== null) line(`  result: ${JSON.stringify(r.run.result)}`);
    line(`  cursor after: ${JSON.stringify(r.run.cursor)}`);
  }
  if (r.exports.some((e) => e.name === 'cleanup' && e.kind === 'function')) {
    phaseLine('Cleanup', r.phases.cleanup);
  } else if (r.phases.cleanup) {
    line('Cleanup    not exported (optional)');
  }
  line();
  for (const p of r.problems) line(`${p.severity.toUpperCase()} [${p.phase}] ${p.message}`);
  if (r.problems.length > 0) line();
  const first = r.problems.find((p) => p.severity === 'error');
  line(
    r.verdict === 'accepted'
      ? 'ACCEPTED: Hourglass would load this guest.'
      : r.verdict === 'refused'
        ? `REFUSED: Hourglass would not load this guest: ${first?.message ?? ''}`
        : `FAILED: the guest loads, but: ${first?.message ?? ''}`,
  );
  return out.join('\n');
}
