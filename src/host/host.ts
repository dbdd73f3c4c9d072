/**
 * The host: owns the store, the sandbox, the scheduler and the plugin registry; loads plugins
 * (manifest → compile → discovery → reconcile), answers host-function calls, executes runs, and
 * applies operator commands. The host runs on the main thread; guest code runs inside the
 * `Sandbox` (a worker pool by default, where loading runs too), and the store's lease and health
 * are watched by the `StoreSupervisor`; run history is pruned by `RunRetention` (retention.ts).
 */
import { checkTicks, parseBackfillRequest } from '../schedule/backfill.ts';
import { resolveHttpPolicy } from '../sandbox/http/policy.ts';
import { performance } from 'node:perf_hooks';
import { type Capability } from '../capabilities.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { HostConfig, PluginEntry, TenantConfig, TenantQuotas } from '../config/host-config.ts';
import { errorMessage, HourglassError, isHourglassError } from '../errors.ts';
import { parseGuestJson } from '../validation.ts';
import {
  capLimits,
  loadManifest,
  readWasmFile,
  type PluginLimits,
  type PluginManifest,
} from '../plugin/manifest.ts';
import { InThreadSandbox } from '../sandbox/in-thread-sandbox.ts';
import { WorkerPoolSandbox } from '../sandbox/pool/worker-pool-sandbox.ts';
import type {
  CallerContext,
  GuestInfo,
  GuestSpec,
  HostCallAnswer,
  HostCallHandler,
  Sandbox,
  SandboxStats,
} from '../sandbox/types.ts';
import { parseDeclarationList, type ParsedDeclaration } from '../schedule/declaration.ts';
import { parseRetry, type RetryPolicy } from '../schedule/retry.ts';
import { cronFor, isValidTimeZone } from '../schedule/spec.ts';
import { FuelWindows } from '../scheduler/fuel-windows.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { openSqliteStore } from '../store/sqlite-writer/threaded-store.ts';
import type { OperatorAction, PluginRecord, ScheduleRecord, Store } from '../store/types.ts';
import { MainThreadShare } from '../../host-functions/main-thread-share.ts';
import { dispatchHostCall, HOST_CALL_FUEL } from '../../host-functions/registry.ts';
import {
  guestError,
  type HostResult,
  type HostServices,
  type JobContract,
} from '../../host-functions/types.ts';
import { HostEvents, type GuestHttpRecord } from './events.ts';
import { liveCountAfter, pluginSchedules, reconcile, type ReconcileResult } from './reconcile.ts';
import { baseTenant, replicaOwner, syncCopies } from './replica.ts';
import { createRunExecutor } from './run-executor.ts';
import { PluginStateBook } from './plugin-state.ts';
import type { PluginVars } from '../sandbox/plugin-vars.ts';
import { ScheduleOps, type OpResult } from './schedule-ops.ts';
import { StoreSupervisor } from './store-supervisor.ts';
import { RunRetention } from './retention.ts';

export interface HostOptions {
  /** @defaultValue the system clock */
  readonly clock?: Clock;
  /** Builds the sandbox; @defaultValue an in-thread Extism sandbox */
  readonly sandbox?: (hostCall: HostCallHandler) => Sandbox;
  /** Use this store instead of opening `config.store.path`. */
  readonly store?: Store;
  /** @defaultValue 1000 */
  readonly misfireGraceMs?: number;
  /**
   * Tenants are owned through the cluster (src/cluster/, a PostgreSQL store): `start()` loads
   * none; the cluster calls `adoptTenant` / `dropTenant` as it takes and gives up their leases.
   */
  readonly clustered?: boolean;
}

export interface LoadedPlugin {
  readonly id: string;
  readonly tenant: string;
  readonly manifest: PluginManifest;
  readonly granted: ReadonlySet<Capability>;
  /** The manifest's limits within the tenant's caps: what the sandbox enforces. */
  readonly limits: PluginLimits;
  /**
   * The id this version is loaded under in the sandbox: the plugin id, or `<id>#2` for a new
   * version loaded beside the old one during a reload (they alternate).
   */
  readonly sandboxId: string;
  /** The SHA-256 of the module this version loaded. */
  readonly wasmSha256: string;
}

/** A new version of a plugin, loaded and discovered, not yet in service. */
interface CheckedVersion {
  readonly plugin: LoadedPlugin;
  readonly sha256: string;
  readonly declarations: ReturnType<typeof parseDeclarationList> & { ok: true };
  readonly contracts: ReadonlyMap<string, JobContract>;
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
  /** Versions being discovered (their grants answer discovery-phase host calls). */
  readonly #staging = new Map<string, LoadedPlugin>();
  /** Loads and reloads of one plugin run one after another. */
  readonly #loading = new Map<string, Promise<unknown>>();
  /** Contracts registered during the discovery in progress, per plugin. */
  readonly #discovering = new Map<string, Map<string, JobContract>>();
  /**
   * Each loaded plugin's job contracts, by name, with their retry policy (the default of the
   * schedules naming them; null: none).
   */
  readonly #jobRetry = new Map<string, Map<string, RetryPolicy | null>>();
  #state: State = 'new';
  #poll: NodeJS.Timeout | null = null;
  /** Tenants whose plugins `adoptTenant` is loading: their operator commands wait until it ends. */
  readonly #adopting = new Set<string>();
  /** Per replica copy, the template state last applied to it (replica.ts `syncCopies`). */
  readonly #replicaSeen = new Map<string, string>();
  /** Each tenant's share of the main thread for host calls (see `#hostCall`). */
  readonly #share = new MainThreadShare((tenant) => this.quotas(tenant).hostCallMsPerSecond);
  /** The lease and the store's health (store-supervisor.ts). */
  readonly #supervisor: StoreSupervisor;
  /** Each loaded plugin's state, its Extism variables (plugin-state.ts). */
  readonly #pluginState: PluginStateBook;
  readonly #clustered: boolean;
  /** Each tenant's fuel used in its current fuel window (fuel-windows.ts). */
  readonly #fuel: FuelWindows;
  /** Run-history retention (retention.ts): prune rounds on the host's clock. */
  readonly retention: RunRetention;
  #stopping: Promise<void> | null = null;

  constructor(config: HostConfig, opts: HostOptions = {}) {
    this.config = config;
    this.clock = opts.clock ?? systemClock;
    this.#tenants = new Map(config.tenants.map((t) => [t.id, t]));
    this.#clustered = opts.clustered ?? false;
    this.store = opts.store ?? openSqliteStore(config.store);
    const hostCall: HostCallHandler = (caller, fn, request) => this.#hostCall(caller, fn, request);
    const onGuestLog = (e: {
      pluginId: string;
      level: string;
      message: string;
      runId?: number | null;
      http?: GuestHttpRecord;
    }) => {
      const pluginId = e.pluginId.replace(/#\d+$/, '');
      if (e.http === undefined) this.events.emit('guest:log', { ...e, pluginId });
      else
        this.events.emit('guest:http', {
          ...e.http,
          pluginId,
          tenant: this.#plugins.get(pluginId)?.tenant ?? pluginId.split('/')[0] ?? '',
        });
    };
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
    this.#fuel = new FuelWindows({
      store: this.store,
      // A tenant no longer configured (a reload dropped it while its runs end) has none.
      window: (tenant) => this.#tenants.get(baseTenant(tenant))?.quotas.fuelWindow ?? null,
      onExhausted: (e) => this.events.emit('tenant:quota_exhausted', e),
    });
    this.#pluginState = new PluginStateBook({
      store: this.store,
      now: () => this.clock.now(),
      onError: (message, cause) => this.#reportError(message, cause),
    });
    this.scheduler = new Scheduler({
      store: this.store,
      clock: this.clock,
      maxRunsInFlight: (tenant) => quotas(tenant).maxRunsInFlight,
      agingMs: (tenant) => quotas(tenant).priorityAgingMs,
      admit: (tenant, now) => this.#fuel.check(tenant, now),
      ...(opts.misfireGraceMs === undefined ? {} : { misfireGraceMs: opts.misfireGraceMs }),
      execute: createRunExecutor({
        store: this.store,
        sandbox: this.#sandbox,
        clock: this.clock,
        quotas,
        runFuelBudget: (pluginId) => this.#plugins.get(pluginId)?.limits.fuel.run ?? null,
        served: (pluginId) => this.#plugins.get(pluginId),
        vars: (pluginId) => this.#pluginState.get(pluginId),
        onFinished: (run) => {
          this.#fuel.add(run.tenant, run.startedAt, run.fuelUsed);
          this.events.emit('run:finished', run);
        },
        onWriteFailed: (runId, err, attempt) =>
          this.#reportError(
            `recording the outcome of run ${runId} failed (attempt ${attempt}; retrying): ${errorMessage(err)}`,
            err,
          ),
        stopped: () => this.#state !== 'started',
      }),
      // A tenant's every-host schedules fire as each host's copies (replica.ts), not from the
      // owner's rows; on one host they fire from their rows.
      ...(this.#clustered
        ? {
            firesHere: (s: ScheduleRecord) => s.scope !== 'host' || replicaOwner(s.tenant) !== null,
          }
        : {}),
      jobRetry: (s) =>
        s.job === null ? undefined : (this.#jobRetry.get(s.pluginId)?.get(s.job) ?? undefined),
      breakerAfter: (tenant) => quotas(tenant).breakerAfterFailures,
      backfillIntervalMs: config.backfill.intervalMs,
      events: {
        onStarted: (run) => this.events.emit('run:started', run),
        onRetrying: (retry) => this.events.emit('run:retrying', retry),
        onTripped: (schedule, failures, note) =>
          this.events.emit('schedule:tripped', { schedule, failures, note }),
        onSkipped: (schedule, status, reason) =>
          this.events.emit('schedule:skipped', { schedule, status, reason }),
        onError: (err, during) => this.#supervisor.reportError(err, `scheduler: ${during}`),
      },
    });
    this.#supervisor = new StoreSupervisor({
      store: this.store,
      storeName: config.store.path,
      heartbeatMs: config.leaseHeartbeatMs,
      suspend: () => this.scheduler.suspend(),
      resume: (stillRecovering) => this.#resync(stillRecovering),
      on: {
        failed: (e) => this.events.emit('store:failed', e),
        recovered: (e) => this.events.emit('store:recovered', e),
        leaseLost: (e) => this.events.emit('lease:lost', e),
        error: (message, cause) => this.#reportError(message, cause),
      },
    });
    this.retention = new RunRetention({
      store: this.store,
      clock: this.clock,
      config: config.retention,
      tenants: config.tenants,
      healthy: () => this.#supervisor.state === 'healthy',
      pruned: (tenant, count) => this.events.emit('runs:pruned', { tenant, count }),
      error: (err, what) => this.#supervisor.reportError(err, what),
    });
    this.schedules = new ScheduleOps({
      store: this.store,
      scheduler: this.scheduler,
      clock: this.clock,
      quotas,
      jobExists: (pluginId, name) => this.#jobRetry.get(pluginId)?.has(name) ?? false,
    });
  }

  /** Emits `host:error`; a throwing listener must not break the caller (a timer, a teardown step). */
  #reportError(message: string, cause: unknown): void {
    try {
      this.events.emit('host:error', { message, cause });
    } catch {
      // Nowhere left to report a failing error listener.
    }
  }

  /** A tenant's quotas (a replica shard's are its tenant's: replica.ts). */
  quotas(tenant: string): TenantQuotas {
    const t = this.#tenants.get(baseTenant(tenant));
    if (!t) throw new HourglassError('HG_HOST_STATE', `unknown tenant '${tenant}'`);
    return t.quotas;
  }

  /** The plugins loaded now: a new array each call (for one plugin, `plugin(id)`). */
  get plugins(): readonly LoadedPlugin[] {
    return [...this.#plugins.values()];
  }

  /** The plugin loaded as `pluginId` (`<tenant>/<name>`), if any. */
  plugin(pluginId: string): LoadedPlugin | undefined {
    return this.#plugins.get(pluginId);
  }

  /**
   * Starts the host: takes the store's lease (refused with `HG_STORE_LEASE`, naming the holder,
   * while another live host holds it; the host is then stopped), marks runs left `running` by a
   * previous process as `abandoned`, loads every configured plugin (a plugin that fails is
   * recorded and skipped), and starts firing.
   */
  async start(): Promise<{ loaded: string[]; failed: { pluginId: string; message: string }[] }> {
    if (this.#state !== 'new')
      throw new HourglassError('HG_HOST_STATE', `host cannot start: it is ${this.#state}`);
    try {
      this.#supervisor.acquire();
    } catch (err) {
      await this.stop(0).catch(() => undefined);
      throw err;
    }
    this.#state = 'started';
    let order: number[];
    try {
      this.store.abandonRunning(this.clock.now(), 'the host stopped before the run finished');
      order = this.#loadOrder();
    } catch (err) {
      // A store that cannot take this first write: start fails, and leaves nothing running.
      await this.stop(0).catch(() => undefined);
      throw err;
    }
    // Tenants load concurrently (at most LOAD_CONCURRENCY at a time), so one plugin's slow
    // load (instrumentation, a start function, discovery: all in sandbox workers) delays no
    // other tenant's loading; a tenant's own plugins load in order, so a second plugin with the
    // same name is still refused as a duplicate. Tenants start loading most urgent first
    // (`#loadOrder`); results keep the config's order.
    const LOAD_CONCURRENCY = 8;
    if (this.#clustered) order = [];
    const results: ({ id: string } | { pluginId: string; message: string })[][] =
      this.config.tenants.map(() => []);
    let next = 0;
    const loadTenants = async (): Promise<void> => {
      for (let i = next++; i < order.length; i = next++) {
        const t = order[i] as number;
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
    this.#poll = setInterval(() => {
      // A timer must never take the host down: a store failure here is reported, not thrown.
      // While the store fails (or the lease is lost) commands wait in the store.
      if (this.#supervisor.state !== 'healthy') return;
      try {
        this.applyOperatorCommands();
      } catch (err) {
        this.#supervisor.reportError(err, 'operator command poll failed');
      }
    }, this.config.commandPollMs);
    this.#poll.unref();
    this.retention.start();
    return { loaded, failed };
  }

  /**
   * Loads every plugin of a tenant this host now owns (the cluster has copied its rows into the
   * store). A plugin that fails is recorded and skipped, as at `start()`.
   */
  async adoptTenant(tenantId: string): Promise<{ loaded: string[]; failed: string[] }> {
    const tenant = this.config.tenants.find((t) => t.id === tenantId);
    if (!tenant) throw new HourglassError('HG_HOST_STATE', `unknown tenant '${tenantId}'`);
    const loaded: string[] = [];
    const failed: string[] = [];
    // Another host may have run the tenant meanwhile: its fuel window is counted again, from the
    // durable copy when the store can sum it there (PostgreSQL: every host's runs).
    this.#fuel.forget(tenantId);
    const from = this.#fuel.windowStartOf(tenantId, this.clock.now());
    if (from !== null && this.store.fuelUsedSince) {
      try {
        this.#fuel.prime(tenantId, from, await this.store.fuelUsedSince(tenantId, from));
      } catch (err) {
        // Counted from this host's copy instead (its latest runs of the tenant).
        this.#reportError(`summing the fuel window of tenant ${tenantId} failed`, err);
      }
    }
    this.#adopting.add(tenantId);
    try {
      for (const entry of tenant.plugins) {
        if (this.#state !== 'started') break;
        try {
          loaded.push((await this.loadPlugin(tenant.id, entry)).id);
        } catch (err) {
          failed.push(
            (isHourglassError(err) && err.pluginId) || `${tenant.id}/(${entry.manifest})`,
          );
        }
      }
    } finally {
      this.#adopting.delete(tenantId);
    }
    // Commands queued while no host served the tenant (the store copied them in): now.
    if (this.#supervisor.state === 'healthy') {
      try {
        this.applyOperatorCommands();
      } catch (err) {
        this.#supervisor.reportError(err, 'operator commands failed');
      }
    }
    return { loaded, failed };
  }

  /**
   * Stops serving a tenant. Given up (`lost` false): like unloading its plugins (their runs
   * finish, `cleanup()` runs, all of it written). Lost (another host took it over): nothing of
   * it fires or starts from now on and its plugins leave the sandbox at once; runs already in a
   * worker end by themselves (within their deadline), and what they write is refused by the
   * store's fencing.
   */
  async dropTenant(tenantId: string, lost: boolean): Promise<void> {
    this.#fuel.forget(tenantId);
    for (const key of this.#replicaSeen.keys())
      if (key.startsWith(`${tenantId}/`)) this.#replicaSeen.delete(key);
    const ids = [...this.#plugins.values()].filter((p) => p.tenant === tenantId).map((p) => p.id);
    if (!lost) {
      for (const id of ids) await this.unloadPlugin(id);
      return;
    }
    for (const id of ids) {
      const plugin = this.#plugins.get(id);
      if (!plugin) continue;
      this.scheduler.removePlugin(id);
      this.#plugins.delete(id);
      this.#pluginState.forget(id);
      await this.#sandbox.unload(plugin.sandboxId);
      this.events.emit('plugin:unloaded', { pluginId: id });
    }
  }

  /**
   * Brings this host's replica shard of a tenant (`<tenant>@<owner>`, replica.ts) in line with
   * the tenant's every-host templates, as its owner wrote them: loads the plugins that have
   * templates (into the sandbox only: no discovery, which the owner did), creates, changes,
   * pauses, resumes and retires the copies, and unloads plugins left without templates. The
   * cluster calls it after taking the shard and then every round.
   */
  async syncReplica(shard: string, templates: readonly ScheduleRecord[]): Promise<void> {
    const tenantId = baseTenant(shard);
    const tenant = this.#tenants.get(tenantId);
    if (!tenant) throw new HourglassError('HG_HOST_STATE', `unknown tenant '${tenantId}'`);
    const byPlugin = new Map<string, ScheduleRecord[]>();
    for (const t of templates) {
      const name = t.pluginId.slice(tenantId.length + 1);
      let list = byPlugin.get(name);
      if (!list) byPlugin.set(name, (list = []));
      list.push(t);
    }
    const deps = {
      store: this.store,
      scheduler: this.scheduler,
      schedules: this.schedules,
      quotas: (t: string) => this.quotas(t),
      now: () => this.clock.now(),
      onError: (message: string) => this.#reportError(message, null),
    };
    for (const [name, list] of byPlugin) {
      if (this.#state !== 'started') return;
      const pluginId = `${shard}/${name}`;
      const serving = list.some((t) => t.state !== 'deleted' && t.state !== 'retired');
      if (!this.#plugins.has(pluginId)) {
        if (!serving) continue;
        await this.#serially(pluginId, () => this.#loadReplica(tenant, shard, name, list, deps));
      } else {
        syncCopies(deps, pluginId, shard, list, this.#replicaSeen);
        if (!serving) await this.unloadPlugin(pluginId);
      }
    }
    // A plugin whose templates all went (the plugin was removed from the tenant's config).
    for (const p of [...this.#plugins.values()]) {
      if (p.tenant !== shard || byPlugin.has(p.id.slice(shard.length + 1))) continue;
      syncCopies(deps, p.id, shard, [], this.#replicaSeen);
      await this.unloadPlugin(p.id);
    }
  }

  /** Loads a plugin of a replica shard (no discovery), writes its copies, and arms them. */
  async #loadReplica(
    tenant: TenantConfig,
    shard: string,
    name: string,
    templates: readonly ScheduleRecord[],
    deps: Parameters<typeof syncCopies>[0],
  ): Promise<void> {
    const pluginId = `${shard}/${name}`;
    let manifest: PluginManifest | null = null;
    let entry: PluginEntry | undefined;
    for (const e of tenant.plugins) {
      const m = loadManifest(e.manifest);
      if (m.name === name) {
        manifest = m;
        entry = e;
        break;
      }
    }
    if (!manifest || !entry) {
      // The tenant's owner runs a plugin this host's config does not have.
      this.#reportError(
        `replica ${pluginId}: no plugin named '${name}' in tenant '${tenant.id}'`,
        null,
      );
      return;
    }
    const { plugin, info } = await this.#sandboxLoad(
      tenant,
      shard,
      entry,
      manifest,
      pluginId,
      pluginId,
      readWasmFile(manifest, this.config.maxWasmBytes, pluginId),
    );
    try {
      this.#pluginState.open(pluginId, shard, plugin.limits.varBytes);
      this.store.upsertPlugin(
        this.#pluginRecord(pluginId, shard, manifest, info.sha256, 'loaded', null),
      );
      syncCopies(deps, pluginId, shard, templates, this.#replicaSeen);
    } catch (err) {
      this.#pluginState.forget(pluginId);
      await this.#sandbox.unload(pluginId);
      throw err;
    }
    this.#plugins.set(pluginId, plugin);
    // Reads the copies back: a shard taken again after a lapse has rows with old next times,
    // which the misfire policies cover.
    this.scheduler.addPlugin(pluginId);
    this.events.emit('plugin:loaded', {
      pluginId,
      schedules: templates.length,
      reconcile: { created: [], updated: [], retired: [], unchanged: [] },
    });
  }

  /**
   * The order tenants start loading in: by the earliest stored next time of their active
   * schedules, then the tenants with none, in config order. A schedule that came due while the
   * host was down fires as soon as its own tenant is loaded, not after every tenant before it in
   * the config (a plugin's schedules start firing when it is loaded, while others still load).
   */
  #loadOrder(): number[] {
    const due = this.store.earliestDueByTenant();
    const at = (t: number): number =>
      due.get((this.config.tenants[t] as TenantConfig).id) ?? Number.POSITIVE_INFINITY;
    // Array.prototype.sort is stable: ties keep the config's order.
    return this.config.tenants.map((_, t) => t).sort((a, b) => at(a) - at(b) || 0);
  }

  /** Whether the store takes writes and this host holds its lease (see `StoreSupervisor`). */
  /** Whether `stop()` has been called (the host is stopping or stopped). */
  get stopping(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped';
  }

  /** The sandbox's queue, busy workers and replacements now (null: it does not say). */
  get sandboxStats(): SandboxStats | null {
    return this.#sandbox.stats?.() ?? null;
  }

  get storeHealth(): StoreSupervisor['state'] {
    return this.#supervisor.state;
  }

  /**
   * After the store failed: waits for runs in flight (a rolled-back group commit may have
   * freed their run ids; nothing new may take one before they are recorded), then lets the
   * scheduler rebuild its due queue from the store and fire again (`Scheduler.resume()`).
   */
  async #resync(stillRecovering: () => boolean): Promise<void> {
    await this.scheduler.settle();
    if (!stillRecovering() || this.#state !== 'started') return;
    this.scheduler.resume();
    // It stays suspended when rebuilding failed (reported through onError): retry later.
    if (this.scheduler.suspended && stillRecovering())
      throw new HourglassError('HG_STORE', 'the scheduler could not resume from the store');
  }

  /**
   * Loads (or reloads) one plugin: manifest, compile, discovery, reconcile, schedule. A reload
   * builds and checks the new version (load, discovery, declarations, quotas) beside the old
   * one, which keeps serving until the new one has passed; only then are the plugin's own runs
   * awaited and the old version replaced. A version that fails leaves the old one in service.
   */
  async loadPlugin(
    tenantId: string,
    entry: PluginEntry,
    opts: {
      /** The new version's manifest is another file (an upload): replace the plugin's. */
      readonly newManifestFile?: boolean;
    } = {},
  ): Promise<LoadedPlugin> {
    const tenant = this.#tenants.get(tenantId);
    if (!tenant) throw new HourglassError('HG_HOST_STATE', `unknown tenant '${tenantId}'`);
    let manifest: PluginManifest | null = null;
    let pluginId = `${tenantId}/(${entry.manifest})`;
    try {
      manifest = loadManifest(entry.manifest);
      pluginId = `${tenantId}/${manifest.name}`;
      const other = this.#plugins.get(pluginId);
      if (other && other.manifest.file !== manifest.file && !opts.newManifestFile) {
        throw new HourglassError(
          'HG_PLUGIN_DUPLICATE',
          `plugin ${pluginId}: tenant '${tenantId}' already has a plugin named '${manifest.name}' (${other.manifest.file})`,
        );
      }
      const m = manifest;
      const id = pluginId;
      return await this.#serially(id, () => this.#load(tenant, entry, m, id));
    } catch (err) {
      const code = isHourglassError(err) ? err.code : 'HG_PLUGIN_LOAD';
      const message = errorMessage(err);
      try {
        if (this.#plugins.has(pluginId)) {
          // A failed reload: the old version serves on; the record says why the new one did not.
          const rec = this.store.getPlugin(pluginId);
          if (rec) this.store.upsertPlugin({ ...rec, error: `reload failed: ${message}` });
        } else if (manifest && !(isHourglassError(err) && err.code === 'HG_PLUGIN_DUPLICATE')) {
          this.store.upsertPlugin(
            this.#pluginRecord(pluginId, tenantId, manifest, null, 'failed', message),
          );
        }
      } catch (recordErr) {
        this.#reportError(
          `plugin ${pluginId}: recording the failed load failed: ${errorMessage(recordErr)}`,
          recordErr,
        );
      }
      this.events.emit('plugin:failed', { pluginId, code, message });
      throw new HourglassError(code, message, { cause: err, pluginId });
    }
  }

  async #serially<T>(pluginId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#loading.get(pluginId) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    const settled = mine.catch(() => undefined);
    this.#loading.set(pluginId, settled);
    try {
      return await mine;
    } finally {
      if (this.#loading.get(pluginId) === settled) this.#loading.delete(pluginId);
    }
  }

  async #load(
    tenant: TenantConfig,
    entry: PluginEntry,
    manifest: PluginManifest,
    pluginId: string,
  ): Promise<LoadedPlugin> {
    const wasm = readWasmFile(manifest, this.config.maxWasmBytes, pluginId);
    const old = this.#plugins.get(pluginId);
    // 1. Build and check the new version beside the old one.
    const { plugin, info } = await this.#sandboxLoad(
      tenant,
      tenant.id,
      entry,
      manifest,
      pluginId,
      old?.sandboxId === pluginId ? `${pluginId}#2` : pluginId,
      wasm,
    );
    let checked: CheckedVersion;
    try {
      // The plugin's state (kept across reloads: the old version's runs share it).
      this.#pluginState.open(pluginId, tenant.id, plugin.limits.varBytes);
      checked = await this.#discover(plugin, info.sha256);
    } catch (err) {
      if (!old) this.#pluginState.forget(pluginId);
      await this.#sandbox.unload(plugin.sandboxId);
      throw err;
    }
    // 2. It passed: stop the plugin's schedules, wait for its own runs, and swap.
    if (old) {
      this.scheduler.holdPlugin(pluginId);
      await this.scheduler.settle(pluginId);
    }
    let result: ReconcileResult;
    const rows: ScheduleRecord[] = [];
    try {
      result = this.#commit(checked, rows);
    } catch (err) {
      if (!old) this.#pluginState.forget(pluginId);
      await this.#sandbox.unload(plugin.sandboxId);
      if (old) this.scheduler.addPlugin(pluginId);
      throw err;
    }
    if (old) {
      try {
        await this.#cleanup(old);
      } finally {
        await this.#sandbox.unload(old.sandboxId);
      }
    }
    this.#plugins.set(pluginId, plugin);
    // A first load queues the rows it just wrote (nothing ran in between); a reload awaited
    // the old version's cleanup(), which may have changed its schedules: read them again.
    this.scheduler.addPlugin(pluginId, old ? undefined : rows);
    this.events.emit('plugin:loaded', {
      pluginId,
      schedules: result.created.length + result.updated.length + result.unchanged.length,
      reconcile: result,
    });
    return plugin;
  }

  /**
   * A plugin's grants and limits (the manifest's, within the tenant's), and its module loaded
   * into the sandbox as `sandboxId`, for `shard` (the tenant, or a replica shard of it).
   */
  async #sandboxLoad(
    tenant: TenantConfig,
    shard: string,
    entry: PluginEntry,
    manifest: PluginManifest,
    pluginId: string,
    sandboxId: string,
    wasm: GuestSpec['wasm'],
  ): Promise<{ plugin: LoadedPlugin; info: GuestInfo }> {
    const allowed = new Set<Capability>(tenant.capabilities);
    const limits = capLimits(manifest.limits, tenant.quotas);
    const granted = new Set(manifest.capabilities.filter((c) => allowed.has(c)));
    const info = await this.#sandbox.load({
      pluginId: sandboxId,
      tenant: shard,
      wasm,
      config: { ...manifest.config, ...entry.config },
      limits,
      ...(granted.has('http') ? { http: resolveHttpPolicy(manifest.http, tenant.http) } : {}),
    });
    const plugin: LoadedPlugin = {
      id: pluginId,
      tenant: shard,
      manifest,
      granted,
      limits,
      sandboxId,
      wasmSha256: info.sha256,
    };
    return { plugin, info };
  }

  /** Discovery and validation of a version (no store change): `schedules()`, declarations. */
  async #discover(plugin: LoadedPlugin, sha256: string): Promise<CheckedVersion> {
    const contracts = new Map<string, JobContract>();
    this.#discovering.set(plugin.id, contracts);
    this.#staging.set(plugin.id, plugin);
    let outcome;
    try {
      outcome = await this.#sandbox.call(plugin.sandboxId, {
        fn: 'schedules',
        caller: { pluginId: plugin.id, tenant: plugin.tenant, phase: 'discovery' },
        vars: this.#pluginState.get(plugin.id),
      });
    } finally {
      this.#discovering.delete(plugin.id);
      this.#staging.delete(plugin.id);
    }
    if (!outcome.ok) {
      throw new HourglassError(
        'HG_DISCOVERY_FAILED',
        `plugin ${plugin.id}: schedules() ${outcome.status} (${outcome.reason}): ${outcome.message}`,
      );
    }
    let value: unknown;
    try {
      value = parseGuestJson(
        new TextDecoder('utf-8', { fatal: true }).decode(outcome.output ?? new Uint8Array()),
      );
    } catch (err) {
      throw new HourglassError(
        'HG_DISCOVERY_FAILED',
        `plugin ${plugin.id}: schedules() did not return JSON: ${errorMessage(err)}`,
      );
    }
    const quotas = this.quotas(plugin.tenant);
    const parsed = parseDeclarationList(value, quotas, this.clock.now());
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
    for (const d of parsed.value) {
      if (d.job !== null && !contracts.has(d.job))
        throw new HourglassError(
          'HG_DECLARATION_INVALID',
          `plugin ${plugin.id}: declaration '${d.id}': /job names no job contract registered in this discovery ('${d.job}')`,
        );
    }
    // A reload is refused here, before the old version is held; a first load is checked once,
    // in `#commit` (the same check, in the transaction that writes the rows).
    if (this.#plugins.has(plugin.id)) this.#checkQuota(plugin, parsed.value);
    return { plugin, sha256, declarations: parsed, contracts };
  }

  /**
   * Refuses a version whose schedules would take the tenant over its quota. `rows` are the
   * plugin's schedule rows (`pluginSchedules`); the tenant's other plugins are counted from the
   * store's kept counts, not row by row.
   */
  #checkQuota(
    plugin: LoadedPlugin,
    decls: readonly ParsedDeclaration[],
    rows: ReadonlyMap<string, ScheduleRecord> = pluginSchedules(this.store, plugin.id),
  ): void {
    const quotas = this.quotas(plugin.tenant);
    const others =
      this.store.countLiveSchedules(plugin.tenant) -
      this.store.countLiveSchedules(plugin.tenant, plugin.id);
    const total = others + liveCountAfter(rows, decls);
    if (total > quotas.maxSchedules) {
      throw new HourglassError(
        'HG_QUOTA_EXCEEDED',
        `plugin ${plugin.id}: tenant '${plugin.tenant}' would have ${total} schedules (limit ${quotas.maxSchedules})`,
      );
    }
  }

  /** Puts a checked version's declarations, contracts and record in the store (one transaction). */
  #commit(v: CheckedVersion, rows: ScheduleRecord[]): ReconcileResult {
    const { plugin } = v;
    const now = this.clock.now();
    return this.store.transaction(() => {
      // One read of the plugin's rows serves the quota check and the reconcile.
      const existing = pluginSchedules(this.store, plugin.id);
      this.#checkQuota(plugin, v.declarations.value, existing);
      const result = reconcile(
        this.store,
        plugin.id,
        plugin.tenant,
        v.declarations.value,
        now,
        existing,
        rows,
      );
      this.store.replaceJobContracts(
        plugin.id,
        [...v.contracts.values()].map((c) => ({
          pluginId: plugin.id,
          name: c.name,
          contract: JSON.stringify(c),
          updatedAt: now,
        })),
      );
      this.store.upsertPlugin(
        this.#pluginRecord(plugin.id, plugin.tenant, plugin.manifest, v.sha256, 'loaded', null),
      );
      this.#jobRetry.set(plugin.id, jobRetries(v.contracts));
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

  /**
   * Stops scheduling a plugin (ticks it had accepted are recorded `cancelled`), lets its own
   * runs finish, calls `cleanup()`, and unloads it.
   */
  async unloadPlugin(pluginId: string): Promise<void> {
    await this.#serially(pluginId, () => this.#unload(pluginId));
  }

  async #unload(pluginId: string): Promise<void> {
    const plugin = this.#plugins.get(pluginId);
    if (!plugin) return;
    this.scheduler.removePlugin(pluginId);
    await this.scheduler.settle(pluginId);
    try {
      await this.#cleanup(plugin);
    } finally {
      this.#plugins.delete(pluginId);
      this.#pluginState.forget(pluginId);
      await this.#sandbox.unload(plugin.sandboxId);
    }
    const rec = this.store.getPlugin(pluginId);
    if (rec) this.store.upsertPlugin({ ...rec, status: 'unloaded', updatedAt: this.clock.now() });
    this.events.emit('plugin:unloaded', { pluginId });
  }

  async #cleanup(plugin: LoadedPlugin): Promise<void> {
    const out = await this.#sandbox.call(plugin.sandboxId, {
      fn: 'cleanup',
      caller: { pluginId: plugin.id, tenant: plugin.tenant, phase: 'cleanup' },
      vars: this.#pluginState.get(plugin.id),
    });
    if (!out.ok)
      this.events.emit('host:error', {
        message: `plugin ${plugin.id}: cleanup() ${out.status}: ${out.message}`,
        cause: null,
      });
  }

  // ---- host functions ----

  /**
   * Answers a guest's host call within the tenant's main-thread share (`#share`): the answer,
   * the fuel of the handler's work, and whether it was refused in a way that ends the call.
   */
  #hostCall(caller: CallerContext, fn: string, request: string): HostCallAnswer {
    const started = performance.now();
    let admitted = false;
    const { result, fuel } = dispatchHostCall(this, caller, fn, request, {
      onInternalError: (err) =>
        this.events.emit('host:error', {
          message: `host function ${fn} failed: ${errorMessage(err)}`,
          cause: err,
        }),
      busy: (c) => {
        const why = this.#share.admit(c.tenant);
        admitted = why === null;
        return why;
      },
    });
    const answer = JSON.stringify(result);
    if (admitted) this.#share.spend(caller.tenant, performance.now() - started);
    const refusal = 'error' in result ? result.error : null;
    if (this.events.listenerCount('host:call') > 0)
      this.events.emit('host:call', {
        pluginId: caller.pluginId,
        tenant: caller.tenant,
        fn,
        code: refusal ? refusal.code : 'ok',
      });
    const denied =
      refusal && (refusal.code === 'capability' || refusal.code === 'phase')
        ? `${fn}: ${refusal.code}: ${refusal.message}`
        : null;
    return { answer, fuel, denied };
  }

  granted(caller: CallerContext): ReadonlySet<Capability> {
    const staged = caller.phase === 'discovery' ? this.#staging.get(caller.pluginId) : undefined;
    return (staged ?? this.#plugins.get(caller.pluginId))?.granted ?? new Set();
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
    if (contract.retry !== undefined) {
      const r = parseRetry(contract.retry);
      if (!r.ok) return guestError('invalid_argument', `${r.field}: ${r.message}`);
    }
    if (!contracts.has(contract.name) && contracts.size >= 1000) {
      return guestError('quota_exceeded', 'a plugin may register at most 1000 job contracts');
    }
    contracts.set(contract.name, contract);
    return { ok: { name: contract.name } };
  }

  // ---- operator actions (any schedule, by key "<tenant>/<plugin>/<id>") ----

  /**
   * An operator's action on a schedule. `note`: a pause's note, or a trigger's own payload
   * (JSON text, within the tenant's `maxPayloadBytes`; null: the schedule's payload).
   */
  operate(
    key: string,
    action: OperatorAction,
    note: string | null = null,
  ):
    | OpResult
    | { ok: true; trigger: 'started' | 'skipped' }
    | { ok: true; cleared: number }
    | { ok: true; backfill: string }
    | { ok: false; code: 'not_found' | 'invalid'; message: string } {
    switch (action) {
      case 'backfill':
        return this.#backfill(key, note);
      case 'clear_state':
        return this.clearPluginState(key, note);
      case 'pause':
        return this.schedules.pauseKey(key, note);
      case 'resume':
        return this.schedules.resumeKey(key);
      case 'delete':
        return this.schedules.deleteKey(key);
      case 'trigger': {
        let payload: string | null = null;
        if (note !== null) {
          try {
            payload = JSON.stringify(JSON.parse(note));
          } catch (err) {
            return {
              ok: false,
              code: 'invalid',
              message: `the payload is not JSON: ${errorMessage(err)}`,
            };
          }
          // An unknown tenant's key is `not_found` below (the scheduler has none of its schedules).
          const tenant = this.#tenants.get(baseTenant(key.slice(0, Math.max(0, key.indexOf('/')))));
          const max = tenant?.quotas.maxPayloadBytes ?? Infinity;
          if (Buffer.byteLength(payload) > max)
            return {
              ok: false,
              code: 'invalid',
              message: `the payload is ${Buffer.byteLength(payload)} bytes; the tenant allows ${max}`,
            };
        }
        const r = this.scheduler.trigger(key, payload);
        if (r !== 'not_found') return { ok: true, trigger: r };
        const everyHost =
          this.#clustered && this.store.getSchedule(key)?.scope === 'host' && !key.includes('@');
        return {
          ok: false,
          code: 'not_found',
          message: everyHost
            ? `schedule '${key}' runs on every host: trigger one host's copy, '${key.replace('/', '@<owner>/')}' (hourglass schedules lists them)`
            : `schedule '${key}' does not exist or its plugin is not loaded`,
        };
      }
    }
  }

  /**
   * Queues the backfill ticks `note` lists (`{"ticks": [...]}`, each checked against the
   * schedule), or cancels the schedule's backfill (`{"cancel": true}`): src/schedule/backfill.ts.
   */
  #backfill(
    key: string,
    note: string | null,
  ):
    { ok: true; backfill: string } | { ok: false; code: 'not_found' | 'invalid'; message: string } {
    const req = parseBackfillRequest(note, this.config.backfill.maxTicks);
    if (typeof req === 'string') return { ok: false, code: 'invalid', message: req };
    const notFound = {
      ok: false,
      code: 'not_found',
      message: `schedule '${key}' does not exist, is deleted, or its plugin is not loaded here`,
    } as const;
    if (req.kind === 'cancel') {
      const n = this.scheduler.cancelBackfill(key);
      return n === 'not_found' ? notFound : { ok: true, backfill: `cancelled ${n} ticks` };
    }
    const s = this.store.getSchedule(key);
    if (!s) return notFound;
    const wrong = checkTicks(s, req.ticks, this.clock.now());
    if (wrong !== null) return { ok: false, code: 'invalid', message: wrong };
    const n = this.scheduler.backfill(key, req.ticks);
    if (n === 'not_found') return notFound;
    if (n === 'pending')
      return {
        ok: false,
        code: 'invalid',
        message: `schedule '${key}' has a backfill going (${this.scheduler.backfillPending(key)} ticks left); cancel it first`,
      };
    return { ok: true, backfill: `queued ${n} ticks` };
  }

  /**
   * Clears a plugin's state (its Extism variables): one variable (`key`) or all. A plugin served
   * here is cleared in memory too (its workers' copies are refreshed with their next call);
   * otherwise in the store. `not_found`: no such plugin here and no state in the store.
   */
  clearPluginState(
    pluginId: string,
    key: string | null,
  ): { ok: true; cleared: number } | { ok: false; code: 'not_found'; message: string } {
    const tenant = this.#plugins.get(pluginId)?.tenant ?? pluginId.slice(0, pluginId.indexOf('/'));
    const cleared = this.#pluginState.clear(pluginId, tenant, key);
    if (cleared === null)
      return {
        ok: false,
        code: 'not_found',
        message: `plugin '${pluginId}' is not loaded and has no state`,
      };
    return { ok: true, cleared };
  }

  /** A plugin's state as this host holds it (loaded plugins only), for operators and tests. */
  pluginVars(pluginId: string): PluginVars | undefined {
    return this.#pluginState.get(pluginId);
  }

  /**
   * `operate`, answered as the JSON an applied operator command records as its result
   * (`{"ok": <state or trigger outcome>}` or `{"error": {code, message}}`); never throws.
   */
  operateToResult(key: string, action: OperatorAction, note: string | null): string {
    try {
      const r = this.operate(key, action, note);
      return r.ok
        ? JSON.stringify({
            ok:
              'trigger' in r
                ? r.trigger
                : 'cleared' in r
                  ? `cleared ${r.cleared}`
                  : 'backfill' in r
                    ? r.backfill
                    : r.schedule.state,
          })
        : JSON.stringify({ error: { code: r.code, message: r.message } });
    } catch (err) {
      return JSON.stringify({ error: { code: 'internal', message: errorMessage(err) } });
    }
  }

  /** Applies commands the CLI queued in the store. Called on a timer while the host runs. */
  applyOperatorCommands(): number {
    if (this.#state !== 'started') return 0;
    // A tenant still loading would answer `not_found` for schedules of plugins not loaded yet.
    const pending = this.store
      .pendingCommands()
      .filter((c) => !this.#adopting.has(c.scheduleKey.slice(0, c.scheduleKey.indexOf('/'))));
    for (const cmd of pending) {
      const result = this.operateToResult(cmd.scheduleKey, cmd.action, cmd.note);
      this.store.completeCommand(cmd.id, result, Date.now());
    }
    return pending.length;
  }

  /**
   * Stops the host: no new ticks fire; runs in flight get `graceMs` to finish; every plugin's
   * `cleanup()` is called (waited for until the grace ends, or at least 300 ms); the sandbox is
   * closed (waited for until 700 ms past the grace); runs still unfinished are recorded `abandoned`; the lease is given
   * up; the store closes. Returns within `graceMs` + 1 s. Every step runs even when one before
   * it fails; the first error is rethrown at the end. A second call waits for the first.
   * Runs are abandoned and the lease released only by a host that holds the lease.
   */
  stop(graceMs: number = this.config.shutdownGraceMs): Promise<void> {
    if (this.#stopping) return this.#stopping.catch(() => undefined);
    this.#stopping = this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    const wasStarted = this.#state === 'started';
    this.#state = 'stopping';
    const deadline = Date.now() + graceMs;
    // Waiting ends 700 ms past the grace at the latest: what is left of the promised + 1 s is
    // for the synchronous steps and for timers that fire late on a loaded machine.
    const lastWait = deadline + 700;
    const errors: unknown[] = [];
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
        this.#reportError(`stop: ${what}: ${errorMessage(err)}`, err);
      }
    };
    /** Waits for `p` until `until` (wall clock); reports a step that overran. */
    const within = async (what: string, p: Promise<unknown>, until: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const late = Symbol('late');
      const r = await Promise.race([
        p,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(late), Math.max(0, until - Date.now()));
        }),
      ]).finally(() => clearTimeout(timer));
      if (r === late) this.#reportError(`stop: ${what} did not finish in time; going on`, null);
    };
    if (this.#poll) clearInterval(this.#poll);
    await step('stop the scheduler', () => this.scheduler.stop());
    await step('stop retention', () => this.retention.stop());
    if (wasStarted) {
      await step('wait for runs', () =>
        within('runs in flight', this.scheduler.settle(), deadline),
      );
      const cleanups = [...this.#plugins.values()].map((plugin) =>
        this.#cleanup(plugin).catch((err: unknown) =>
          this.#reportError(`cleanup of ${plugin.id} failed: ${errorMessage(err)}`, err),
        ),
      );
      await step('cleanup', () =>
        within(
          'cleanup()',
          Promise.all(cleanups),
          Math.min(Math.max(deadline, Date.now() + 300), lastWait - 200),
        ),
      );
    }
    await step('close the sandbox', () =>
      within('closing the sandbox', this.#sandbox.close(), Math.max(lastWait, Date.now() + 100)),
    );
    const holder = wasStarted && this.#supervisor.holdsLease;
    if (holder) {
      await step('abandon runs', () =>
        this.store.abandonRunning(this.clock.now(), 'the host shut down before the run finished'),
      );
    }
    await step('release the lease', () => this.#supervisor.close(holder));
    await step('close the store', () => this.store.close());
    this.#state = 'stopped';
    if (errors.length > 0) throw errors[0];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * A discovery's job contracts by name, with their retry policies (null: none). Every contract is
 * listed: `schedule_create` may name one without a policy (`jobExists`).
 */
function jobRetries(contracts: ReadonlyMap<string, JobContract>): Map<string, RetryPolicy | null> {
  const out = new Map<string, RetryPolicy | null>();
  for (const [name, c] of contracts) {
    // Checked when it was registered (`registerJob`).
    const r = c.retry === undefined ? null : parseRetry(c.retry);
    out.set(name, r?.ok ? r.value : null);
  }
  return out;
}
