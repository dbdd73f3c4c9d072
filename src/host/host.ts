/**
 * The host: owns the store, the sandbox, the scheduler and the plugin registry; loads plugins
 * (manifest → compile → discovery → reconcile), answers host-function calls, executes runs, and
 * applies operator commands. Everything runs on one thread; guest code runs inside the
 * `Sandbox` (in-thread by default).
 */
import { readFileSync } from 'node:fs';
import { type Capability } from '../capabilities.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { HostConfig, PluginEntry, TenantConfig, TenantQuotas } from '../config/host-config.ts';
import { errorMessage, HourglassError, isHourglassError } from '../errors.ts';
import {
  capLimits,
  loadManifest,
  type PluginLimits,
  type PluginManifest,
} from '../plugin/manifest.ts';
import { InThreadSandbox } from '../sandbox/in-thread-sandbox.ts';
import { WorkerPoolSandbox } from '../sandbox/pool/worker-pool-sandbox.ts';
import type { CallerContext, HostCallHandler, Sandbox } from '../sandbox/types.ts';
import { parseDeclarationList } from '../schedule/declaration.ts';
import { cronFor, isValidTimeZone } from '../schedule/spec.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import type { OperatorAction, PluginRecord, Store } from '../store/types.ts';
import { dispatchHostCall, HOST_CALL_FUEL } from '../../host-functions/registry.ts';
import {
  guestError,
  type HostResult,
  type HostServices,
  type JobContract,
} from '../../host-functions/types.ts';
import { HostEvents } from './events.ts';
import { liveCountAfter, reconcile } from './reconcile.ts';
import { createRunExecutor } from './run-executor.ts';
import { ScheduleOps, type OpResult } from './schedule-ops.ts';

export interface HostOptions {
  /** @defaultValue the system clock */
  readonly clock?: Clock;
  /** Builds the sandbox; @defaultValue an in-thread Extism sandbox */
  readonly sandbox?: (hostCall: HostCallHandler) => Sandbox;
  /** Use this store instead of opening `config.store.path`. */
  readonly store?: Store;
  /** @defaultValue 1000 */
  readonly misfireGraceMs?: number;
}

export interface LoadedPlugin {
  readonly id: string;
  readonly tenant: string;
  readonly manifest: PluginManifest;
  readonly granted: ReadonlySet<Capability>;
  /** The manifest's limits within the tenant's caps: what the sandbox enforces. */
  readonly limits: PluginLimits;
}

type State = 'new' | 'started' | 'stopping' | 'stopped';

export class Host implements HostServices {
  readonly config: HostConfig;
  readonly events = new HostEvents();
  readonly store: Store;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly schedules: ScheduleOps;
  readonly #sandbox: Sandbox;
  readonly #tenants: Map<string, TenantConfig>;
  readonly #plugins = new Map<string, LoadedPlugin>();
  /** Contracts registered during the discovery in progress, per plugin. */
  readonly #discovering = new Map<string, Map<string, JobContract>>();
  #state: State = 'new';
  #poll: NodeJS.Timeout | null = null;

  constructor(config: HostConfig, opts: HostOptions = {}) {
    this.config = config;
    this.clock = opts.clock ?? systemClock;
    this.#tenants = new Map(config.tenants.map((t) => [t.id, t]));
    this.store = opts.store ?? new SqliteStore(config.store.path, { groupCommit: true });
    const hostCall: HostCallHandler = (caller, fn, request) => this.#hostCall(caller, fn, request);
    const onGuestLog = (e: { pluginId: string; level: string; message: string }) =>
      this.events.emit('guest:log', e);
    this.#sandbox = opts.sandbox
      ? opts.sandbox(hostCall)
      : config.sandbox.mode === 'in-thread'
        ? new InThreadSandbox({ hostCall, onGuestLog, hostCallFuel: HOST_CALL_FUEL })
        : new WorkerPoolSandbox({
            hostCall,
            hostCallFuel: HOST_CALL_FUEL,
            onGuestLog,
            ...(config.sandbox.workers === null ? {} : { size: config.sandbox.workers }),
          });
    const quotas = (tenant: string) => this.quotas(tenant);
    this.scheduler = new Scheduler({
      store: this.store,
      clock: this.clock,
      maxRunsInFlight: (tenant) => quotas(tenant).maxRunsInFlight,
      ...(opts.misfireGraceMs === undefined ? {} : { misfireGraceMs: opts.misfireGraceMs }),
      execute: createRunExecutor({
        store: this.store,
        sandbox: this.#sandbox,
        clock: this.clock,
        quotas,
        runFuelBudget: (pluginId) => this.#plugins.get(pluginId)?.limits.fuel.run ?? null,
        onFinished: (run) => this.events.emit('run:finished', run),
      }),
      events: {
        onStarted: (run) => this.events.emit('run:started', run),
        onSkipped: (schedule, status, reason) =>
          this.events.emit('schedule:skipped', { schedule, status, reason }),
      },
    });
    this.schedules = new ScheduleOps({
      store: this.store,
      scheduler: this.scheduler,
      clock: this.clock,
      quotas,
    });
  }

  quotas(tenant: string): TenantQuotas {
    const t = this.#tenants.get(tenant);
    if (!t) throw new HourglassError('HG_HOST_STATE', `unknown tenant '${tenant}'`);
    return t.quotas;
  }

  get plugins(): readonly LoadedPlugin[] {
    return [...this.#plugins.values()];
  }

  /**
   * Starts the host: marks runs left `running` by a previous process as `abandoned`, loads
   * every configured plugin (a plugin that fails is recorded and skipped), and starts firing.
   */
  async start(): Promise<{ loaded: string[]; failed: { pluginId: string; message: string }[] }> {
    if (this.#state !== 'new')
      throw new HourglassError('HG_HOST_STATE', `host cannot start: it is ${this.#state}`);
    this.#state = 'started';
    this.store.abandonRunning(this.clock.now(), 'the host stopped before the run finished');
    // Tenants load concurrently (at most LOAD_CONCURRENCY at a time), so one plugin's slow
    // load (instrumentation, a start function, discovery: all in sandbox workers) delays no
    // other tenant's loading; a tenant's own plugins load in order, so a second plugin with the
    // same name is still refused as a duplicate. Results keep the config's order.
    const LOAD_CONCURRENCY = 8;
    const results: ({ id: string } | { pluginId: string; message: string })[][] =
      this.config.tenants.map(() => []);
    let next = 0;
    const loadTenants = async (): Promise<void> => {
      for (let t = next++; t < this.config.tenants.length; t = next++) {
        const tenant = this.config.tenants[t] as TenantConfig;
        for (const entry of tenant.plugins) {
          try {
            results[t]?.push({ id: (await this.loadPlugin(tenant.id, entry)).id });
          } catch (err) {
            const pluginId =
              (isHourglassError(err) && err.pluginId) || `${tenant.id}/(${entry.manifest})`;
            results[t]?.push({ pluginId, message: errorMessage(err) });
          }
        }
      }
    };
    await Promise.all(Array.from({ length: LOAD_CONCURRENCY }, loadTenants));
    const loaded: string[] = [];
    const failed: { pluginId: string; message: string }[] = [];
    for (const r of results.flat()) {
      if ('id' in r) loaded.push(r.id);
      else failed.push(r);
    }
    this.#heartbeat();
    this.#poll = setInterval(() => {
      // A timer must never take the host down: a store failure here is reported, not thrown.
      try {
        this.applyOperatorCommands();
        this.#heartbeat();
      } catch (err) {
        this.events.emit('host:error', {
          message: `operator command poll failed: ${errorMessage(err)}`,
          cause: err,
        });
      }
    }, this.config.commandPollMs);
    this.#poll.unref();
    return { loaded, failed };
  }

  #heartbeat(): void {
    const now = Date.now();
    const lease = this.store.readLease();
    this.store.writeLease({
      pid: process.pid,
      startedAt: lease?.pid === process.pid ? lease.startedAt : now,
      heartbeatAt: now,
    });
  }

  /** Loads (or reloads) one plugin: manifest, compile, discovery, reconcile, schedule. */
  async loadPlugin(tenantId: string, entry: PluginEntry): Promise<LoadedPlugin> {
    const tenant = this.#tenants.get(tenantId);
    if (!tenant) throw new HourglassError('HG_HOST_STATE', `unknown tenant '${tenantId}'`);
    let manifest: PluginManifest | null = null;
    let pluginId = `${tenantId}/(${entry.manifest})`;
    try {
      manifest = loadManifest(entry.manifest);
      pluginId = `${tenantId}/${manifest.name}`;
      const other = this.#plugins.get(pluginId);
      if (other && other.manifest.file !== manifest.file) {
        throw new HourglassError(
          'HG_PLUGIN_DUPLICATE',
          `plugin ${pluginId}: tenant '${tenantId}' already has a plugin named '${manifest.name}' (${other.manifest.file})`,
        );
      }
      const plugin = await this.#load(tenant, entry, manifest, pluginId);
      return plugin;
    } catch (err) {
      const code = isHourglassError(err) ? err.code : 'HG_PLUGIN_LOAD';
      const message = errorMessage(err);
      if (manifest && !(isHourglassError(err) && err.code === 'HG_PLUGIN_DUPLICATE')) {
        this.store.upsertPlugin(
          this.#pluginRecord(pluginId, tenantId, manifest, null, 'failed', message),
        );
      }
      this.events.emit('plugin:failed', { pluginId, code, message });
      throw new HourglassError(code, message, { cause: err, pluginId });
    }
  }

  async #load(
    tenant: TenantConfig,
    entry: PluginEntry,
    manifest: PluginManifest,
    pluginId: string,
  ): Promise<LoadedPlugin> {
    let wasm: Uint8Array<ArrayBuffer>;
    try {
      wasm = new Uint8Array(readFileSync(manifest.wasm));
    } catch (err) {
      throw new HourglassError(
        'HG_PLUGIN_LOAD',
        `plugin ${pluginId}: cannot read ${manifest.wasm}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
        { cause: err },
      );
    }
    if (this.#plugins.has(pluginId)) await this.unloadPlugin(pluginId);
    const allowed = new Set<Capability>(tenant.capabilities);
    const plugin: LoadedPlugin = {
      id: pluginId,
      tenant: tenant.id,
      manifest,
      granted: new Set(manifest.capabilities.filter((c) => allowed.has(c))),
      limits: capLimits(manifest.limits, tenant.quotas),
    };
    const info = await this.#sandbox.load({
      pluginId,
      tenant: tenant.id,
      wasm,
      config: { ...manifest.config, ...entry.config },
      limits: plugin.limits,
    });
    this.#plugins.set(pluginId, plugin);
    try {
      const result = await this.#discover(plugin, info.sha256);
      this.scheduler.addPlugin(pluginId);
      this.events.emit('plugin:loaded', {
        pluginId,
        schedules: result.created.length + result.updated.length + result.unchanged.length,
        reconcile: result,
      });
      return plugin;
    } catch (err) {
      this.#plugins.delete(pluginId);
      await this.#sandbox.unload(pluginId);
      throw err;
    }
  }

  async #discover(plugin: LoadedPlugin, sha256: string) {
    const contracts = new Map<string, JobContract>();
    this.#discovering.set(plugin.id, contracts);
    let outcome;
    try {
      outcome = await this.#sandbox.call(plugin.id, {
        fn: 'schedules',
        caller: { pluginId: plugin.id, tenant: plugin.tenant, phase: 'discovery' },
      });
    } finally {
      this.#discovering.delete(plugin.id);
    }
    if (!outcome.ok) {
      throw new HourglassError(
        'HG_DISCOVERY_FAILED',
        `plugin ${plugin.id}: schedules() ${outcome.status} (${outcome.reason}): ${outcome.message}`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(
        new TextDecoder('utf-8', { fatal: true }).decode(outcome.output ?? new Uint8Array()),
      );
    } catch (err) {
      throw new HourglassError(
        'HG_DISCOVERY_FAILED',
        `plugin ${plugin.id}: schedules() did not return JSON: ${errorMessage(err)}`,
      );
    }
    const quotas = this.quotas(plugin.tenant);
    const now = this.clock.now();
    const parsed = parseDeclarationList(value, quotas, now);
    if (!parsed.ok) {
      const which =
        parsed.index < 0
          ? 'its output'
          : `declaration ${parsed.id === null ? `#${parsed.index}` : `'${parsed.id}'`}`;
      throw new HourglassError(
        parsed.issue.code === 'quota_exceeded' ? 'HG_QUOTA_EXCEEDED' : 'HG_DECLARATION_INVALID',
        `plugin ${plugin.id}: ${which}: ${parsed.issue.field} ${parsed.issue.message}`,
      );
    }
    return this.store.transaction(() => {
      const others =
        this.store.countLiveSchedules(plugin.tenant) -
        this.store.listSchedules({ pluginId: plugin.id }).length;
      const total = others + liveCountAfter(this.store, plugin.id, parsed.value);
      if (total > quotas.maxSchedules) {
        throw new HourglassError(
          'HG_QUOTA_EXCEEDED',
          `plugin ${plugin.id}: tenant '${plugin.tenant}' would have ${total} schedules (limit ${quotas.maxSchedules})`,
        );
      }
      const result = reconcile(this.store, plugin.id, plugin.tenant, parsed.value, now);
      this.store.replaceJobContracts(
        plugin.id,
        [...contracts.values()].map((c) => ({
          pluginId: plugin.id,
          name: c.name,
          contract: JSON.stringify(c),
          updatedAt: now,
        })),
      );
      this.store.upsertPlugin(
        this.#pluginRecord(plugin.id, plugin.tenant, plugin.manifest, sha256, 'loaded', null),
      );
      return result;
    });
  }

  #pluginRecord(
    id: string,
    tenant: string,
    m: PluginManifest,
    sha: string | null,
    status: PluginRecord['status'],
    error: string | null,
  ): PluginRecord {
    return {
      id,
      tenant,
      name: m.name,
      version: m.version,
      manifestPath: m.file,
      wasmSha256: sha,
      status,
      error,
      updatedAt: this.clock.now(),
    };
  }

  /** Stops scheduling a plugin, lets its runs finish, calls `cleanup()`, and unloads it. */
  async unloadPlugin(pluginId: string): Promise<void> {
    const plugin = this.#plugins.get(pluginId);
    if (!plugin) return;
    this.scheduler.removePlugin(pluginId);
    await this.scheduler.settle();
    await this.#cleanup(plugin);
    this.#plugins.delete(pluginId);
    await this.#sandbox.unload(pluginId);
    const rec = this.store.getPlugin(pluginId);
    if (rec) this.store.upsertPlugin({ ...rec, status: 'unloaded', updatedAt: this.clock.now() });
    this.events.emit('plugin:unloaded', { pluginId });
  }

  async #cleanup(plugin: LoadedPlugin): Promise<void> {
    const out = await this.#sandbox.call(plugin.id, {
      fn: 'cleanup',
      caller: { pluginId: plugin.id, tenant: plugin.tenant, phase: 'cleanup' },
    });
    if (!out.ok)
      this.events.emit('host:error', {
        message: `plugin ${plugin.id}: cleanup() ${out.status}: ${out.message}`,
        cause: null,
      });
  }

  // ---- host functions ----

  #hostCall(caller: CallerContext, fn: string, request: string): string {
    const result = dispatchHostCall(this, caller, fn, request, (err) =>
      this.events.emit('host:error', {
        message: `host function ${fn} failed: ${errorMessage(err)}`,
        cause: err,
      }),
    );
    return JSON.stringify(result);
  }

  granted(caller: CallerContext): ReadonlySet<Capability> {
    return this.#plugins.get(caller.pluginId)?.granted ?? new Set();
  }

  registerJob(caller: CallerContext, contract: JobContract): HostResult<{ name: string }> {
    const contracts = this.#discovering.get(caller.pluginId);
    if (!contracts) return guestError('phase', 'jobs_register is only allowed during discovery');
    const tz = contract.timezone ?? 'UTC';
    if (!isValidTimeZone(tz))
      return guestError('invalid_argument', `/timezone: unknown time zone '${tz}'`);
    if (contract.cron !== undefined) {
      try {
        cronFor(contract.cron, tz);
      } catch (err) {
        return guestError(
          'invalid_argument',
          `/cron: invalid cron '${contract.cron}': ${errorMessage(err)}`,
        );
      }
    }
    if (!contracts.has(contract.name) && contracts.size >= 1000) {
      return guestError('quota_exceeded', 'a plugin may register at most 1000 job contracts');
    }
    contracts.set(contract.name, contract);
    return { ok: { name: contract.name } };
  }

  // ---- operator actions (any schedule, by key "<tenant>/<plugin>/<id>") ----

  operate(
    key: string,
    action: OperatorAction,
    note: string | null = null,
  ):
    | OpResult
    | { ok: true; trigger: 'started' | 'skipped' }
    | { ok: false; code: 'not_found'; message: string } {
    switch (action) {
      case 'pause':
        return this.schedules.pauseKey(key, note);
      case 'resume':
        return this.schedules.resumeKey(key);
      case 'delete':
        return this.schedules.deleteKey(key);
      case 'trigger': {
        const r = this.scheduler.trigger(key);
        return r === 'not_found'
          ? {
              ok: false,
              code: 'not_found',
              message: `schedule '${key}' does not exist or its plugin is not loaded`,
            }
          : { ok: true, trigger: r };
      }
    }
  }

  /** Applies commands the CLI queued in the store. Called on a timer while the host runs. */
  applyOperatorCommands(): number {
    if (this.#state !== 'started') return 0;
    const pending = this.store.pendingCommands();
    for (const cmd of pending) {
      let result: string;
      try {
        const r = this.operate(cmd.scheduleKey, cmd.action, cmd.note);
        result = r.ok
          ? JSON.stringify({ ok: 'trigger' in r ? r.trigger : r.schedule.state })
          : JSON.stringify({ error: { code: r.code, message: r.message } });
      } catch (err) {
        result = JSON.stringify({ error: { code: 'internal', message: errorMessage(err) } });
      }
      this.store.completeCommand(cmd.id, result, Date.now());
    }
    return pending.length;
  }

  /**
   * Stops the host: no new ticks fire; runs in flight get `graceMs` to finish; every plugin's
   * `cleanup()` is called; runs still unfinished are recorded `abandoned`; the store closes.
   */
  async stop(graceMs: number = this.config.shutdownGraceMs): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    const wasStarted = this.#state === 'started';
    this.#state = 'stopping';
    if (this.#poll) clearInterval(this.#poll);
    this.scheduler.stop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.scheduler.settle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    for (const plugin of this.#plugins.values()) {
      try {
        await this.#cleanup(plugin);
      } catch (err) {
        this.events.emit('host:error', {
          message: `cleanup of ${plugin.id} failed: ${errorMessage(err)}`,
          cause: err,
        });
      }
    }
    await this.#sandbox.close();
    this.store.abandonRunning(this.clock.now(), 'the host shut down before the run finished');
    if (wasStarted) this.store.writeLease(null);
    this.store.close();
    this.#state = 'stopped';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
