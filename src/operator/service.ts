/**
 * The operator actions as one service (../shared/STRUCTURE.md §5): what the HTTP API calls, for
 * an operator (everything) or for one tenant (its plugins, schedules, runs and nothing else).
 *
 * Scoping is here, not in the routes, so no route can forget it:
 * - a tenant's listings are filtered by tenant in the store query itself (a filter naming another
 *   tenant, or another tenant's plugin or schedule, finds nothing: the query carries both);
 * - a tenant asking for one record of another tenant gets the same `not found` as for a record
 *   that does not exist, so ids cannot be probed (run ids are sequential);
 * - an action on another tenant's schedule is refused before it reaches the host.
 *
 * Reads come from the durable store (a SQLite connection of its own, or PostgreSQL), actions
 * from the host that serves the schedule (`OpenedHost.command`: at once when it is this host,
 * else queued for the owner and awaited, as the CLI does).
 */
import type { Capability } from '../capabilities.ts';
import type { HostConfig, TenantQuotas } from '../config/host-config.ts';
import type { PluginLimits } from '../plugin/manifest.ts';
import type {
  JobContractRecord,
  OperatorAction,
  PluginRecord,
  RunRecord,
  RunStatus,
  ScheduleRecord,
  ScheduleState,
} from '../store/types.ts';
import type { CommandOutcome, OperatorStore } from './operator-store.ts';
import { stateEntries } from '../host/plugin-state.ts';

/** Who is asking: the operator, or one tenant. */
export type Scope =
  { readonly kind: 'operator' } | { readonly kind: 'tenant'; readonly tenant: string };

export const OPERATOR: Scope = Object.freeze({ kind: 'operator' });

export interface TenantView {
  readonly id: string;
  readonly quotas: TenantQuotas;
  readonly capabilities: readonly Capability[];
  readonly plugins: number;
}

export interface PluginView extends PluginRecord {
  /**
   * The capabilities the plugin was granted (its manifest's among its tenant's) when it is
   * loaded on this host; else the ones its tenant grants.
   */
  readonly capabilities: readonly Capability[];
  /** What the sandbox enforces for this plugin, when it is loaded on this host. */
  readonly limits: PluginLimits | null;
}

/** A plugin's state as the API answers it (`GET /v1/plugins/:tenant/:name/state`). */
export interface PluginStateView {
  readonly plugin: string;
  readonly bytes: number;
  readonly updatedAt: number | null;
  readonly vars: readonly {
    readonly key: string;
    readonly bytes: number;
    readonly counts: number;
    readonly base64: string;
  }[];
}

export interface ScheduleFilter {
  readonly tenant?: string;
  readonly pluginId?: string;
  readonly states?: readonly ScheduleState[];
  readonly after?: string;
  readonly limit: number;
}

export interface RunFilter {
  readonly tenant?: string;
  readonly pluginId?: string;
  readonly scheduleKey?: string;
  readonly status?: RunStatus;
  readonly since?: number;
  readonly until?: number;
  /** The `next` of the previous page. */
  readonly cursor?: string;
  readonly limit: number;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `cursor` (`after` for schedules) for the next page; null on the last page. */
  readonly next: string | null;
}

/** What an action did: `ok` with the schedule's state or the trigger's outcome, or refused. */
export type ActionOutcome =
  | { readonly ok: true; readonly via: CommandOutcome['via']; readonly value: string | null }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** What a reload did: the version now serving, or why the new one was refused. */
export type ReloadOutcome =
  | { readonly ok: true; readonly version: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface OperatorHostView {
  /**
   * A plugin this host has loaded: the capabilities it was granted (its manifest's, among its
   * tenant's) and what the sandbox enforces; null when it is not loaded here.
   */
  served(pluginId: string): {
    readonly granted: ReadonlySet<Capability>;
    readonly limits: PluginLimits;
  } | null;
  command(key: string, action: OperatorAction, note: string | null): Promise<CommandOutcome>;
  /**
   * Loads the plugin again from its manifest (as its record names it): the new version is
   * built and checked beside the old one, which finishes its runs and is then replaced; a
   * version that fails leaves the old one serving.
   */
  reload(plugin: PluginRecord): Promise<ReloadOutcome>;
  /** Checks, loads and keeps a new version of a configured plugin (src/operator/uploads.ts). */
  upload(
    tenant: string,
    name: string,
    manifest: Record<string, unknown>,
    wasm: Buffer,
  ): Promise<ReloadOutcome>;
}

/** The tenant a schedule key (`tenant/plugin/id`, or `tenant@owner/...` for a host's copy) names. */
export function tenantOfKey(key: string): string {
  const slash = key.indexOf('/');
  const head = slash < 0 ? key : key.slice(0, slash);
  const at = head.indexOf('@');
  return at < 0 ? head : head.slice(0, at);
}

function tenantOfPlugin(pluginId: string): string {
  const slash = pluginId.indexOf('/');
  return slash < 0 ? pluginId : pluginId.slice(0, slash);
}

/** A run cursor, `<startedAt>.<id>`, as `encodeCursor` wrote it; undefined when malformed. */
export function decodeCursor(s: string): { startedAt: number; id: number } | undefined {
  const m = /^(\d{1,16})\.(\d{1,16})$/.exec(s);
  if (!m) return undefined;
  const startedAt = Number(m[1]);
  const id = Number(m[2]);
  return Number.isSafeInteger(startedAt) && Number.isSafeInteger(id)
    ? { startedAt, id }
    : undefined;
}

function encodeCursor(r: RunRecord): string {
  return `${r.startedAt}.${r.id}`;
}

export class OperatorService {
  readonly #store: OperatorStore;
  readonly #config: () => HostConfig;
  readonly #host: OperatorHostView;

  /** `config`: the config in service now (a hot reload replaces it). */
  constructor(store: OperatorStore, config: () => HostConfig, host: OperatorHostView) {
    this.#store = store;
    this.#config = config;
    this.#host = host;
  }

  /** May `scope` see tenant `tenant`'s records? */
  static sees(scope: Scope, tenant: string): boolean {
    return scope.kind === 'operator' || scope.tenant === tenant;
  }

  tenants(scope: Scope): TenantView[] {
    return this.#config()
      .tenants.filter((t) => OperatorService.sees(scope, t.id))
      .map((t) => ({
        id: t.id,
        quotas: t.quotas,
        capabilities: t.capabilities,
        plugins: t.plugins.length,
      }));
  }

  async plugins(scope: Scope, tenant?: string): Promise<PluginView[]> {
    const rows = await this.#store.listPlugins();
    return rows
      .filter(
        (p) =>
          OperatorService.sees(scope, p.tenant) && (tenant === undefined || p.tenant === tenant),
      )
      .map((p) => this.#pluginView(p));
  }

  async plugin(scope: Scope, pluginId: string): Promise<PluginView | undefined> {
    if (!OperatorService.sees(scope, tenantOfPlugin(pluginId))) return undefined;
    const p = (await this.#store.listPlugins()).find((x) => x.id === pluginId);
    return p && OperatorService.sees(scope, p.tenant) ? this.#pluginView(p) : undefined;
  }

  #pluginView(p: PluginRecord): PluginView {
    const tenant = this.#config().tenants.find((t) => t.id === p.tenant);
    const served = this.#host.served(p.id);
    return {
      ...p,
      capabilities: served ? [...served.granted] : (tenant?.capabilities ?? []),
      limits: served?.limits ?? null,
    };
  }

  /**
   * One page of a listing for `scope`: none when a tenant's filter names another tenant; else
   * `list` asked for the tenant in scope (or the filter's, for the operator) and for one row
   * more than `f.limit`, which tells whether there is a next page (`cursorOf` its last row).
   */
  async #page<T>(
    scope: Scope,
    f: { readonly tenant?: string; readonly limit: number },
    list: (tenant: { tenant?: string }, limit: number) => Promise<T[]>,
    cursorOf: (last: T) => string,
  ): Promise<Page<T>> {
    if (scope.kind === 'tenant' && f.tenant !== undefined && f.tenant !== scope.tenant)
      return { items: [], next: null };
    const tenant = scope.kind === 'tenant' ? scope.tenant : f.tenant;
    const items = await list(tenant === undefined ? {} : { tenant }, f.limit + 1);
    const more = items.length > f.limit;
    if (more) items.length = f.limit;
    const last = items.at(-1);
    return { items, next: more && last ? cursorOf(last) : null };
  }

  schedules(scope: Scope, f: ScheduleFilter): Promise<Page<ScheduleRecord>> {
    return this.#page(
      scope,
      f,
      (tenant, limit) =>
        this.#store.listSchedules({
          ...tenant,
          ...(f.pluginId === undefined ? {} : { pluginId: f.pluginId }),
          ...(f.states === undefined ? {} : { states: f.states }),
          ...(f.after === undefined ? {} : { after: f.after }),
          limit,
        }),
      // Within one plugin the store pages by local id, else by key.
      (last) => (f.pluginId === undefined ? last.key : last.localId),
    );
  }

  async schedule(scope: Scope, key: string): Promise<ScheduleRecord | undefined> {
    if (!OperatorService.sees(scope, tenantOfKey(key))) return undefined;
    const s = await this.#store.getSchedule(key);
    return s && OperatorService.sees(scope, s.tenant) ? s : undefined;
  }

  runs(scope: Scope, f: RunFilter): Promise<Page<RunRecord>> {
    const before = f.cursor === undefined ? undefined : decodeCursor(f.cursor);
    return this.#page(
      scope,
      f,
      (tenant, limit) =>
        this.#store.listRuns({
          ...tenant,
          ...(f.pluginId === undefined ? {} : { pluginId: f.pluginId }),
          ...(f.scheduleKey === undefined ? {} : { scheduleKey: f.scheduleKey }),
          ...(f.status === undefined ? {} : { status: f.status }),
          ...(f.since === undefined ? {} : { since: f.since }),
          ...(f.until === undefined ? {} : { until: f.until }),
          ...(before === undefined ? {} : { before }),
          limit,
        }),
      encodeCursor,
    );
  }

  async run(scope: Scope, id: number): Promise<RunRecord | undefined> {
    const r = await this.#store.getRun(id);
    return r && OperatorService.sees(scope, r.tenant) ? r : undefined;
  }

  async jobs(scope: Scope, pluginId?: string): Promise<JobContractRecord[]> {
    if (pluginId !== undefined && !OperatorService.sees(scope, tenantOfPlugin(pluginId))) return [];
    const rows = await this.#store.listJobContracts(pluginId);
    return rows.filter((c) => OperatorService.sees(scope, tenantOfPlugin(c.pluginId)));
  }

  /**
   * A plugin's state (its Extism variables) as the store holds it, for a plugin the scope sees;
   * an existing plugin without state has none (undefined: no such plugin).
   */
  async state(scope: Scope, pluginId: string): Promise<PluginStateView | undefined> {
    if (!OperatorService.sees(scope, tenantOfPlugin(pluginId))) return undefined;
    const rec = await this.#store.getPluginState(pluginId);
    if (!rec && !(await this.#store.listPlugins()).some((p) => p.id === pluginId)) return undefined;
    return {
      plugin: pluginId,
      bytes: rec?.bytes ?? 0,
      updatedAt: rec?.updatedAt ?? null,
      vars: (rec ? stateEntries(rec.vars) : []).map((e) => ({
        key: e.key,
        bytes: e.value.length,
        counts: e.size,
        base64: Buffer.from(e.value).toString('base64'),
      })),
    };
  }

  /** Clears a plugin's state (one variable, or all) through the host that serves it. */
  async clearState(scope: Scope, pluginId: string, key: string | null): Promise<ActionOutcome> {
    if (!OperatorService.sees(scope, tenantOfPlugin(pluginId)))
      return { ok: false, code: 'not_found', message: `plugin '${pluginId}' has no state` };
    const r = await this.#host.command(pluginId, 'clear_state', key);
    return r.ok
      ? { ok: true, via: r.via, value: r.value ?? null }
      : { ok: false, code: r.code ?? 'failed', message: r.message };
  }

  /** Reloads a plugin the scope may act on (see `OperatorHostView.reload`). */
  async reload(scope: Scope, pluginId: string): Promise<ReloadOutcome> {
    const rec = OperatorService.sees(scope, tenantOfPlugin(pluginId))
      ? (await this.#store.listPlugins()).find((p) => p.id === pluginId)
      : undefined;
    if (!rec) return { ok: false, code: 'not_found', message: `no plugin ${pluginId}` };
    return this.#host.reload(rec);
  }

  /** A new version (module and manifest) of a plugin of a tenant the scope may act on. */
  async upload(
    scope: Scope,
    tenant: string,
    name: string,
    manifest: Record<string, unknown>,
    wasm: Buffer,
  ): Promise<ReloadOutcome> {
    if (!OperatorService.sees(scope, tenant))
      return { ok: false, code: 'not_found', message: `no plugin ${tenant}/${name}` };
    return this.#host.upload(tenant, name, manifest, wasm);
  }

  /** Pause (with a note), resume, trigger or delete a schedule the scope may act on. */
  async act(
    scope: Scope,
    key: string,
    action: OperatorAction,
    note: string | null,
  ): Promise<ActionOutcome> {
    if (!OperatorService.sees(scope, tenantOfKey(key)))
      return { ok: false, code: 'not_found', message: `schedule '${key}' does not exist` };
    const r = await this.#host.command(key, action, note);
    return r.ok
      ? { ok: true, via: r.via, value: r.value ?? null }
      : { ok: false, code: r.code ?? 'failed', message: r.message };
  }
}
