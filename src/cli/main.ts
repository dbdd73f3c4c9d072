#!/usr/bin/env node
/**
 * `hourglass` — the operator's command line. Every command has `--help`; errors print one line
 * (`hourglass: <code>: <reason>`) and exit non-zero (1 for failures, 2 for usage).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage, HourglassError, isHourglassError } from '../errors.ts';
import { openHost } from '../cluster/open-host.ts';
import { RunStatuses, type RunStatus } from '../store/types.ts';
import { runCheck } from '../check/check.ts';
import { runFuelCommand, runInstrumentCommand, type CommandResult } from '../fuel/cli-commands.ts';
import type { Logger } from 'pino';
import {
  DEFAULT_CONFIG_SOURCE,
  defaultHostConfig,
  loadHostConfig,
  PROJECT_ROOT,
  TENANT_ID_PATTERN,
  type HostConfig,
} from '../config/host-config.ts';
import { hashToken, newToken } from '../api/auth.ts';
import { createLogger, LOG_FORMATS, LOG_LEVELS, logHostEvents } from '../observability/log.ts';
import { isoOrDash, table, truncate } from './format.ts';
import { openOperatorStore, resolveConfig } from '../operator/store-access.ts';
import { serveApi } from '../api/serve.ts';
import { withUploads } from '../operator/uploads.ts';
import { openHttpOperatorStore, TOKEN_ENV, URL_ENV } from '../operator/http-access.ts';
import type { OperatorStore } from '../operator/operator-store.ts';
import { reloadConfig, type ReloadReport } from '../operator/hot-reload.ts';
import type { RunningApi } from '../api/server.ts';
import { stateEntries } from '../host/plugin-state.ts';
import { createInterface } from 'node:readline';
import { parseTime, planBackfill, renderPlan } from './backfill.ts';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  readonly positionals?: number;
  run(values: Values, positionals: string[]): Promise<number>;
}

const common: Options = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
};
const storeOpt: Options = { store: { type: 'string' }, url: { type: 'string' } };

/**
 * The store a store command reads and acts on: a remote host's API (`--url`, or HOURGLASS_URL;
 * the token in HOURGLASS_TOKEN), else the local store (`--store`, or the config's).
 */
async function openStoreOf(v: Values): Promise<OperatorStore> {
  const url = str(v, 'url') ?? (process.env[URL_ENV] || undefined);
  if (url !== undefined && str(v, 'store') === undefined) {
    const token = process.env[TOKEN_ENV];
    if (!token)
      throw new HourglassError(
        'HG_CLI_USAGE',
        `--url needs an API token in ${TOKEN_ENV} (make one with hourglass token)`,
      );
    return openHttpOperatorStore(url, token);
  }
  return openOperatorStore(resolveConfig(str(v, 'config')), str(v, 'store'));
}

const out = (s: string) => process.stdout.write(`${s}\n`);

/** Prints a fuel command's result; returns its exit code. */
function emit(r: CommandResult): number {
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.exitCode;
}

/** A non-negative integer option, or a usage error naming it. */
function intOpt(v: Values, k: string): number | undefined {
  const x = str(v, k);
  if (x === undefined) return undefined;
  if (!/^\d+$/.test(x) || !Number.isSafeInteger(Number(x)))
    throw new HourglassError('HG_CLI_USAGE', `--${k} must be a non-negative integer, got '${x}'`);
  return Number(x);
}

function str(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

const operatorCommand = (
  action: 'pause' | 'resume' | 'trigger' | 'delete',
  summary: string,
): Command => ({
  summary,
  usage:
    `hourglass ${action} <tenant/plugin/schedule-id> [--config FILE] [--store PATH | --url URL]${action === 'pause' ? ' [--note TEXT]' : action === 'trigger' ? ' [--payload JSON]' : ''}\n` +
    '  On PostgreSQL (store.postgres or HOURGLASS_POSTGRES_URL) the host owning the tenant applies it;\n' +
    '  with no live owner it stays queued until a host takes the tenant. With --url (or HOURGLASS_URL)\n' +
    "  it goes to a remote host's HTTP API, with the token in HOURGLASS_TOKEN.",
  options: {
    ...common,
    ...storeOpt,
    ...(action === 'pause' ? { note: { type: 'string' } } : {}),
    ...(action === 'trigger' ? { payload: { type: 'string' } } : {}),
  },
  positionals: 1,
  async run(v, [key]) {
    const store = await openStoreOf(v);
    try {
      // The action's argument: a pause's note, or a trigger's own payload (JSON).
      const arg = str(v, action === 'trigger' ? 'payload' : 'note') ?? null;
      const r = await store.applyCommand(key as string, action, arg);
      if (!r.ok) throw new HourglassError('HG_SCHEDULE_NOT_FOUND', r.message);
      out(r.message);
      return 0;
    } finally {
      await store.close();
    }
  },
});

/**
 * A variable's value for a listing: its text, quoted, when it is printable UTF-8; else its first
 * bytes in hex.
 */
function preview(value: Uint8Array): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(value);
    if (!/[\p{Cc}\p{Cs}]/u.test(text.replace(/[\t\n]/g, ' ')))
      return truncate(JSON.stringify(text), 60);
  } catch {
    // not UTF-8: hex below
  }
  const hex = Buffer.from(value.subarray(0, 24)).toString('hex');
  return `0x${hex}${value.length > 24 ? '…' : ''}`;
}

const stateCommand: Command = {
  summary: "a plugin's state (its Extism variables): list them, or clear them",
  usage:
    'hourglass state list <tenant/plugin> [--json] [--config FILE] [--store PATH | --url URL]\n' +
    '       hourglass state clear <tenant/plugin> [--key KEY] [--config FILE] [--store PATH | --url URL]\n' +
    '  A clear goes through the running host that serves the plugin (its variables in memory\n' +
    "  too); with no host running, to the store (SQLite) or queued for the tenant's next owner\n" +
    '  (PostgreSQL). Without --key every variable is cleared.',
  options: { ...common, ...storeOpt, key: { type: 'string' }, json: { type: 'boolean' } },
  positionals: 2,
  async run(v, [sub, pluginId]) {
    if (sub !== 'list' && sub !== 'clear')
      throw new HourglassError('HG_CLI_USAGE', `expected 'list' or 'clear', got '${String(sub)}'`);
    if (!/^[^/]+\/[^/]+$/.test(pluginId as string))
      throw new HourglassError(
        'HG_CLI_USAGE',
        `a plugin is named <tenant>/<plugin>, got '${String(pluginId)}'`,
      );
    const store = await openStoreOf(v);
    try {
      if (sub === 'clear') {
        const r = await store.applyCommand(
          pluginId as string,
          'clear_state',
          str(v, 'key') ?? null,
        );
        if (!r.ok) throw new HourglassError('HG_STATE_NOT_FOUND', r.message);
        out(r.message);
        return 0;
      }
      const rec = await store.getPluginState(pluginId as string);
      const entries = rec ? stateEntries(rec.vars) : [];
      if (v.json) {
        out(
          JSON.stringify(
            {
              plugin: pluginId,
              bytes: rec?.bytes ?? 0,
              updatedAt: rec?.updatedAt ?? null,
              vars: entries.map((e) => ({
                key: e.key,
                bytes: e.value.length,
                counts: e.size,
                base64: Buffer.from(e.value).toString('base64'),
              })),
            },
            null,
            2,
          ),
        );
        return 0;
      }
      out(
        table(
          ['KEY', 'BYTES', 'COUNTS', 'VALUE'],
          entries.map((e) => [
            truncate(e.key, 40),
            String(e.value.length),
            String(e.size),
            preview(e.value),
          ]),
        ),
      );
      out(
        `${entries.length} variable(s), ${rec?.bytes ?? 0} bytes counted against the plugin's varBytes${rec ? ` (changed ${isoOrDash(rec.updatedAt)})` : ''}`,
      );
      return 0;
    } finally {
      await store.close();
    }
  },
};

/** A value of `--k` among `allowed`, or a usage error naming them. */
function oneOf<T extends string>(v: Values, k: string, allowed: readonly T[]): T | undefined {
  const x = str(v, k);
  if (x === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(x))
    throw new HourglassError(
      'HG_CLI_USAGE',
      `--${k} must be one of ${allowed.join(', ')}, got '${x}'`,
    );
  return x as T;
}

/** `hourglass start`: runs the host until a signal or an ending event; the exit code. */
async function runHost(
  config: HostConfig,
  log: Logger,
  exitOnStoreFailure: boolean,
): Promise<number> {
  const opened = await openHost(config, {
    clusterEvents: {
      onAdopted: (e) =>
        log.info(
          { tenant: e.tenant, epoch: e.epoch, from: e.from ?? null, abandoned: e.abandoned },
          'took tenant',
        ),
      onDropped: (e) =>
        log.info({ tenant: e.tenant }, e.lost ? 'lost tenant' : 'handed over tenant'),
    },
  });
  const host = opened.host;
  /** An event that ends the host (exit code, why); acted on once the host has started. */
  let ending: [number, string] | null = null;
  let endWith = (code: number, why: string) => {
    ending ??= [code, why];
  };
  logHostEvents(host.events, log);
  host.events.on('store:failed', (e) => {
    if (exitOnStoreFailure) endWith(3, `store failed (${e.code}); exiting as asked`);
  });
  host.events.on('lease:lost', () => endWith(4, 'lease lost to another host'));
  log.info({ store: opened.storeName, config: config.source }, 'hourglass: starting');
  let started = false;
  // Hot reload (SIGHUP or POST /v1/reload): the config file read again, one reload at a time.
  let current = config;
  let reloading: Promise<ReloadReport> = Promise.resolve({ plugins: [], restartNeeded: [] });
  const reload = (why: string): Promise<ReloadReport> =>
    (reloading = reloading
      .catch(() => undefined)
      .then(async () => {
        const next = withUploads(
          current.source === DEFAULT_CONFIG_SOURCE
            ? defaultHostConfig()
            : loadHostConfig(current.source),
        );
        const report = await reloadConfig(opened.host, current, next);
        current = next;
        log.info(
          { why, plugins: report.plugins, restartNeeded: report.restartNeeded },
          `hourglass: config reloaded (${report.plugins.filter((p) => p.action !== 'unchanged').length} plugin change(s))`,
        );
        return report;
      }));
  // Registered at once: Node's default for SIGHUP is to exit.
  const onHangUp = () => {
    if (!started) return log.warn('hourglass: SIGHUP ignored: the host is still starting');
    reload('SIGHUP').catch((err: unknown) =>
      log.error({ error: errorMessage(err) }, 'hourglass: config reload failed; nothing changed'),
    );
  };
  process.on('SIGHUP', onHangUp);
  let api: RunningApi | null;
  try {
    api = await serveApi(opened, config, log, {
      version: packageVersion(),
      started: () => started,
      configNow: () => current,
      reloadConfig: () => reload('api'),
    });
  } catch (err) {
    await opened.stop(0).catch(() => undefined);
    throw err;
  }
  let loadedAndFailed: Awaited<ReturnType<typeof opened.start>>;
  try {
    loadedAndFailed = await opened.start();
  } catch (err) {
    await api?.close().catch(() => undefined);
    throw err;
  }
  started = true;
  const { loaded, failed } = loadedAndFailed;
  log.info(
    { plugins: loaded.length, failed: failed.length },
    `hourglass: running with ${loaded.length} plugin(s)${failed.length ? `, ${failed.length} failed` : ''}; Ctrl-C to stop`,
  );
  // The host's own timers are unref'd (embedding must not keep a process alive): hold it here.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, exitCode: number) => {
      if (stopping) return;
      stopping = true;
      log.info({ why, graceMs: config.shutdownGraceMs }, `hourglass: ${why}: stopping`);
      process.removeAllListeners('SIGINT');
      process.removeAllListeners('SIGTERM');
      process.off('SIGHUP', onHangUp);
      // The host first (readiness turns false at once, in-flight runs finish), then the API.
      opened
        .stop()
        .finally(() => api?.close())
        .then(
          () => resolve(exitCode),
          (err: unknown) => {
            log.error({ error: errorMessage(err) }, 'hourglass: error while stopping');
            resolve(exitCode || 1);
          },
        );
    };
    endWith = (exitCode, why) => stop(why, exitCode);
    if (ending) stop(ending[1], ending[0]);
    process.once('SIGINT', () => stop('SIGINT', 0));
    process.once('SIGTERM', () => stop('SIGTERM', 0));
  });
  clearInterval(keepAlive);
  log.info({ exitCode: code }, 'hourglass: stopped');
  return code;
}

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'run the host: load plugins, fire schedules, record runs (until SIGINT/SIGTERM)',
    usage:
      'hourglass start [--config FILE] [--exit-on-store-failure] [--log-format json|pretty] [--log-level LEVEL]\n' +
      '  Without --config: ./data/hourglass.db and the example plugins. Logs are JSON lines on stdout\n' +
      '  (pino: time, level, msg and the ids that apply: tenant, plugin, schedule, run); --log-format\n' +
      '  pretty for a terminal; --log-level trace|debug|info|warn|error (default info).\n' +
      '  Refused (exit 1) while another live host holds the store. When the store cannot take writes\n' +
      '  (disk full, I/O error) the host stops firing and retries; with --exit-on-store-failure it\n' +
      '  stops and exits 3 instead. A host that loses its lease to another stops and exits 4.',
    options: {
      ...common,
      'exit-on-store-failure': { type: 'boolean' },
      'log-format': { type: 'string' },
      'log-level': { type: 'string' },
    },
    async run(v) {
      const format = oneOf(v, 'log-format', LOG_FORMATS) ?? 'json';
      const level = oneOf(v, 'log-level', LOG_LEVELS) ?? 'info';
      // Plugins with a version uploaded through the API load it (src/operator/uploads.ts).
      const config = withUploads(resolveConfig(str(v, 'config')));
      const log = createLogger({ format, level });
      try {
        return await runHost(config, log, v['exit-on-store-failure'] === true);
      } finally {
        log.flush();
      }
    },
  },
  token: {
    summary: "make an HTTP API token: prints it once, and its entry for the config's api.tokens",
    usage:
      'hourglass token --name NAME [--tenant TENANT]\n' +
      '  Prints a new random token (keep it: it is not stored anywhere) and the JSON entry to add to\n' +
      "  the config's api.tokens, which holds only the token's SHA-256. With --tenant the token sees\n" +
      '  and acts on that tenant only; without, it is an operator token (everything).',
    options: { help: common.help!, name: { type: 'string' }, tenant: { type: 'string' } },
    async run(v) {
      const name = str(v, 'name');
      const tenant = str(v, 'tenant');
      if (!name || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name))
        throw new HourglassError(
          'HG_CLI_USAGE',
          '--name NAME is required ([A-Za-z0-9._@-], 64 at most)',
        );
      if (tenant !== undefined && !new RegExp(TENANT_ID_PATTERN).test(tenant))
        throw new HourglassError('HG_CLI_USAGE', `--tenant '${tenant}' is not a tenant id`);
      const token = newToken();
      out(`token: ${token}`);
      out(
        `config entry (api.tokens): ${JSON.stringify({ name, sha256: hashToken(token), ...(tenant ? { tenant } : {}) })}`,
      );
      return 0;
    },
  },
  plugins: {
    summary: 'list plugins with their version, state and load error',
    usage: 'hourglass plugins [--json] [--config FILE] [--store PATH | --url URL]',
    options: { ...common, ...storeOpt, json: { type: 'boolean' } },
    async run(v) {
      const store = await openStoreOf(v);
      try {
        const rows = await store.listPlugins();
        if (v.json) {
          out(JSON.stringify(rows, null, 2));
          return 0;
        }
        out(
          table(
            ['PLUGIN', 'VERSION', 'STATE', 'SINCE', 'MODULE', 'ERROR'],
            rows.map((p) => [
              p.id,
              truncate(p.version, 20),
              p.status,
              isoOrDash(p.updatedAt),
              p.wasmSha256 === null ? '-' : p.wasmSha256.slice(0, 12),
              truncate(p.error, 100),
            ]),
          ),
        );
        return 0;
      } finally {
        await store.close();
      }
    },
  },
  schedules: {
    summary: 'list schedules with their state and next run',
    usage:
      'hourglass schedules [--plugin TENANT/NAME] [--all] [--json] [--config FILE] [--store PATH | --url URL]',
    options: {
      ...common,
      ...storeOpt,
      plugin: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    async run(v) {
      const store = await openStoreOf(v);
      try {
        const plugin = str(v, 'plugin');
        const rows = await store.listSchedules({
          ...(plugin ? { pluginId: plugin } : {}),
          ...(v.all
            ? { states: ['active', 'paused', 'completed', 'deleted', 'retired'] as const }
            : {}),
        });
        if (v.json) {
          out(JSON.stringify(rows, null, 2));
          return 0;
        }
        const spec = (s: (typeof rows)[number]) =>
          s.spec.kind === 'cron'
            ? `cron ${s.spec.cron} ${s.spec.timezone}`
            : s.spec.kind === 'every'
              ? `every ${s.spec.every}`
              : `at ${s.spec.at}`;
        out(
          table(
            ['SCHEDULE', 'ORIGIN', 'STATE', 'NEXT RUN', 'WHEN', 'NOTE'],
            rows.map((s) => [
              s.key,
              s.scope === 'host' ? `${s.origin}, every host` : s.origin,
              s.state,
              isoOrDash(s.nextAt),
              spec(s),
              truncate(s.pauseNote, 40),
            ]),
          ),
        );
        return 0;
      } finally {
        await store.close();
      }
    },
  },
  runs: {
    summary: 'recent runs, newest first, of a schedule or a plugin (or all)',
    usage:
      'hourglass runs [--schedule TENANT/PLUGIN/ID | --plugin TENANT/NAME] [--status S] [--limit N] [--json] [--config FILE] [--store PATH | --url URL]',
    options: {
      ...common,
      ...storeOpt,
      schedule: { type: 'string' },
      plugin: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(v) {
      const limit = Number(str(v, 'limit') ?? '20');
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw new HourglassError('HG_CLI_USAGE', '--limit must be an integer from 1 to 10000');
      const status = str(v, 'status');
      if (status !== undefined && !(RunStatuses as readonly string[]).includes(status)) {
        throw new HourglassError(
          'HG_CLI_USAGE',
          `--status must be one of ${RunStatuses.join(', ')}`,
        );
      }
      const store = await openStoreOf(v);
      try {
        const schedule = str(v, 'schedule');
        const plugin = str(v, 'plugin');
        const rows = await store.listRuns({
          limit,
          ...(schedule ? { scheduleKey: schedule } : {}),
          ...(plugin ? { pluginId: plugin } : {}),
          ...(status ? { status: status as RunStatus } : {}),
        });
        if (v.json) {
          out(JSON.stringify(rows, null, 2));
          return 0;
        }
        out(
          table(
            [
              'RUN',
              'SCHEDULE',
              'TRIGGER',
              'STATUS',
              'SCHEDULED',
              'STARTED',
              'MS',
              'FUEL',
              'DETAIL',
            ],
            rows.map((r) => [
              String(r.id),
              r.scheduleKey,
              r.trigger,
              r.status,
              isoOrDash(r.scheduledAt),
              isoOrDash(r.startedAt),
              r.finishedAt === null ? '-' : String(r.finishedAt - r.startedAt),
              r.fuelUsed === null ? '-' : String(r.fuelUsed),
              truncate(
                r.error ? `${r.reason ?? ''}: ${r.error}` : (r.reason ?? r.result ?? ''),
                80,
              ),
            ]),
          ),
        );
        return 0;
      } finally {
        await store.close();
      }
    },
  },
  check: {
    summary: 'check a guest .wasm against the guest ABI (exit 1 if Hourglass would refuse it)',
    usage: 'hourglass check GUEST.wasm [--manifest FILE] [--run] [--payload JSON] [--json]',
    options: {
      help: { type: 'boolean', short: 'h' },
      manifest: { type: 'string' },
      run: { type: 'boolean' },
      payload: { type: 'string' },
      json: { type: 'boolean' },
    },
    positionals: 1,
    async run(v, [wasm]) {
      const manifest = str(v, 'manifest');
      const payload = str(v, 'payload');
      const r = await runCheck({
        wasm: wasm as string,
        ...(manifest === undefined ? {} : { manifest }),
        ...(payload === undefined ? {} : { payload }),
        run: v.run === true,
        json: v.json === true,
      });
      out(r.text);
      return r.exitCode;
    },
  },
  instrument: {
    summary: 'write the fuel-metered version of a .wasm (what the sandbox runs; docs/fuel.md)',
    usage:
      'hourglass instrument IN.wasm -o OUT.wasm [--cost-table FILE.json] [--memory-pages N] [--max-depth N]',
    options: {
      help: { type: 'boolean', short: 'h' },
      output: { type: 'string', short: 'o' },
      'cost-table': { type: 'string' },
      'memory-pages': { type: 'string' },
      'max-depth': { type: 'string' },
    },
    positionals: 1,
    async run(v, [input]) {
      const output = str(v, 'output');
      if (output === undefined) throw new HourglassError('HG_CLI_USAGE', '-o OUT.wasm is required');
      const costTable = str(v, 'cost-table');
      const memoryMaxPages = intOpt(v, 'memory-pages');
      const maxCallDepth = intOpt(v, 'max-depth');
      return emit(
        await runInstrumentCommand({
          input: input as string,
          output,
          ...(costTable === undefined ? {} : { costTable }),
          ...(memoryMaxPages === undefined ? {} : { memoryMaxPages }),
          ...(maxCallDepth === undefined ? {} : { maxCallDepth }),
        }),
      );
    },
  },
  fuel: {
    summary: 'call one export of a guest under a fuel budget; print the fuel used and the outcome',
    usage:
      'hourglass fuel GUEST.wasm --call EXPORT [--input TEXT] [--budget N] [--cost-table FILE.json]',
    options: {
      help: { type: 'boolean', short: 'h' },
      call: { type: 'string' },
      input: { type: 'string' },
      budget: { type: 'string' },
      'cost-table': { type: 'string' },
    },
    positionals: 1,
    async run(v, [guest]) {
      const call = str(v, 'call');
      if (call === undefined) throw new HourglassError('HG_CLI_USAGE', '--call EXPORT is required');
      const input = str(v, 'input');
      const budget = intOpt(v, 'budget');
      const costTable = str(v, 'cost-table');
      return emit(
        await runFuelCommand({
          guest: guest as string,
          call,
          ...(input === undefined ? {} : { input }),
          ...(budget === undefined ? {} : { budget }),
          ...(costTable === undefined ? {} : { costTable }),
        }),
      );
    },
  },
  pause: operatorCommand('pause', 'pause a schedule (through the running host if there is one)'),
  resume: operatorCommand('resume', 'resume a paused schedule from its next tick'),
  trigger: operatorCommand('trigger', 'run a schedule now (at most one run at a time still holds)'),
  delete: operatorCommand('delete', 'delete a schedule (its runs are kept)'),
  state: stateCommand,
  backfill: {
    summary: "run a schedule's past ticks again: lists them and their cost, then asks",
    usage:
      'hourglass backfill <tenant/plugin/schedule-id> --from TIME --to TIME [--all] [--dry-run | --yes] [--json]\n' +
      '                   [--config FILE] [--store PATH | --url URL]\n' +
      '       hourglass backfill <tenant/plugin/schedule-id> --cancel\n' +
      '  Lists the nominal ticks in [--from, --to] (ISO 8601 or ms since the epoch; ticks that already\n' +
      '  succeeded are left out unless --all) with their estimated fuel and time (median and p95 of the\n' +
      "  schedule's recent runs), asks, then queues them on the host serving the schedule: trigger\n" +
      '  `backfill`, one run at a time at the rate of backfill.intervalMs, below every priority, never\n' +
      '  beside a live run. --dry-run only lists; --yes does not ask; --cancel drops the ticks not run yet.',
    options: {
      ...common,
      ...storeOpt,
      from: { type: 'string' },
      to: { type: 'string' },
      all: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      yes: { type: 'boolean', short: 'y' },
      json: { type: 'boolean' },
      cancel: { type: 'boolean' },
    },
    positionals: 1,
    async run(v, [key]) {
      const k = key as string;
      const cancel = v.cancel === true;
      const from = str(v, 'from');
      const to = str(v, 'to');
      if (cancel && (from !== undefined || to !== undefined || v.all || v['dry-run']))
        throw new HourglassError('HG_CLI_USAGE', '--cancel takes no span or other option');
      if (!cancel && (from === undefined || to === undefined))
        throw new HourglassError('HG_CLI_USAGE', 'backfill needs --from and --to (or --cancel)');
      const limits = resolveConfig(str(v, 'config')).backfill;
      const store = await openStoreOf(v);
      try {
        if (cancel) return await sendBackfill(store, k, { cancel: true });
        const plan = await planBackfill(
          store,
          k,
          {
            from: parseTime(from as string, 'from'),
            to: parseTime(to as string, 'to'),
            all: v.all === true,
          },
          limits.maxTicks,
          Date.now(),
        );
        out(v.json ? JSON.stringify(plan, null, 2) : renderPlan(plan, limits.intervalMs));
        if (v['dry-run'] || plan.ticks.length === 0) return 0;
        if (!v.yes && !(await confirm(`queue these ${plan.ticks.length} ticks? [y/N] `))) {
          process.stderr.write('hourglass: backfill not confirmed; nothing was queued\n');
          return 1;
        }
        return await sendBackfill(store, k, { ticks: plan.ticks });
      } finally {
        await store.close();
      }
    },
  },
};

/** Sends a backfill to the host serving the schedule; prints its answer. */
async function sendBackfill(
  store: OperatorStore,
  key: string,
  request: { ticks: readonly number[] } | { cancel: true },
): Promise<number> {
  const r = await store.applyCommand(key, 'backfill', JSON.stringify(request));
  if (!r.ok)
    throw new HourglassError(
      r.code === 'not_found' ? 'HG_SCHEDULE_NOT_FOUND' : 'HG_BACKFILL_REFUSED',
      r.message,
    );
  out(r.message);
  return 0;
}

/**
 * Asks on stderr and reads one line of stdin (a terminal or a pipe: `echo y | hourglass ...`);
 * yes only for `y` / `yes`, no at the end of input.
 */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string | null>((resolve) => {
      rl.once('close', () => resolve(null));
      rl.question(question, resolve);
    });
    return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

function help(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return [
    'hourglass — WebAssembly-sandboxed plugin runtime and job scheduler',
    '',
    'usage: hourglass <command> [options]   (hourglass <command> --help for details)',
    '       hourglass --version',
    '',
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n]?.summary}`),
  ].join('\n');
}

/** The installed package's version (its package.json, beside src/ and dist/). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(help());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    out(`hourglass ${packageVersion()}`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`hourglass: unknown command '${name}' (try hourglass --help)\n`);
    return 2;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: cmd.options,
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] });
  } catch (err) {
    process.stderr.write(`hourglass ${name}: ${errorMessage(err)}\nusage: ${cmd.usage}\n`);
    return 2;
  }
  if (values.help) {
    out(`${cmd.summary}\n\nusage: ${cmd.usage}`);
    return 0;
  }
  if (positionals.length !== (cmd.positionals ?? 0)) {
    process.stderr.write(
      `hourglass ${name}: expected ${cmd.positionals ?? 0} argument(s), got ${positionals.length}\nusage: ${cmd.usage}\n`,
    );
    return 2;
  }
  try {
    return await cmd.run(values, positionals);
  } catch (err) {
    const code = isHourglassError(err) ? `${err.code}: ` : '';
    process.stderr.write(`hourglass: ${code}${errorMessage(err).split('\n')[0]}\n`);
    return isHourglassError(err) && err.code === 'HG_CLI_USAGE' ? 2 : 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli/main.ts')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
