/**
 * Several hosts on one PostgreSQL store (docs/cluster.md): the only module that knows other
 * hosts exist.
 *
 * The unit of ownership is the tenant: its plugins, schedules, quotas and runs-in-flight cap all
 * live on one host at a time, so every per-tenant rule holds exactly as on one host. Every
 * `tickMs` a host beats in `hg_hosts`, renews its tenant leases (one statement; a tenant missing
 * from the answer was taken over and is dropped at once), and balances: it takes free or expired
 * tenants while it holds fewer than its share (⌈tenants / live hosts⌉), and gives tenants up
 * (gracefully: its runs finish and are written first) while it holds more than its share and
 * another host holds fewer.
 *
 * Self-fencing. A host that has not renewed for `leaseTtlMs − fenceMarginMs` (measured on its
 * own monotonic clock from when it sent its last successful renewal, which is before the
 * database computed the expiry) drops every tenant before any other host can take one: a host
 * that stalls (GC, SIGSTOP) or loses the database stops firing, and on waking writes nothing
 * (its flushes are refused by epoch, and it re-claims only through the database).
 *
 * Commands. Operator commands are rows in `operator_commands`; whoever queues one sends
 * `NOTIFY hg_commands`, and the owner, which LISTENs, applies it at once (and polls every tick
 * in case a notification was lost with a connection).
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { errorMessage } from '../errors.ts';
import type { Host } from '../host/host.ts';
import { guardPool, PG_TYPES, type PgStore } from '../store/postgres/pg-store.ts';
import { COMMANDS_CHANNEL } from '../store/postgres/pg-reads.ts';
import { replicaOwner, replicaShard } from '../host/replica.ts';
import type { ScheduleRecord } from '../store/types.ts';
import { TenantLeases, type Claimed } from './tenant-leases.ts';

export interface ClusterOptions {
  /** A dead host's tenants are taken over this long after its last renewal. @defaultValue 10000 */
  readonly leaseTtlMs?: number;
  /** How often leases are renewed and the balance checked. @defaultValue min(1000, ttl / 5) */
  readonly tickMs?: number;
  /** Self-fence this long before the lease could expire. @defaultValue max(ttl / 5, 2 × tick) */
  readonly fenceMarginMs?: number;
  /** Reported problems (the database unreachable, a tenant that failed to load). */
  readonly onError?: (message: string, cause: unknown) => void;
}

export interface ClusterEvents {
  /** This host took `tenant` (from `from`, a takeover, or free). */
  onAdopted?(e: { tenant: string; epoch: number; from: string | null; abandoned: number }): void;
  /** This host gave `tenant` up (`lost`: it was taken over or the host fenced itself). */
  onDropped?(e: { tenant: string; lost: boolean }): void;
}

export class Cluster {
  readonly #host: Host;
  readonly #store: PgStore;
  readonly #tenants: readonly string[];
  readonly #ttl: number;
  readonly #tick: number;
  readonly #margin: number;
  readonly #leases: TenantLeases;
  /** A pool of its own: renewals never wait behind the store's flushes. */
  readonly #pool: pg.Pool;
  readonly #onError: (message: string, cause: unknown) => void;
  readonly events: ClusterEvents;
  readonly #startedAt = Date.now();
  /** Tenants being adopted or dropped (no second change until it is done). */
  readonly #busy = new Set<string>();
  /**
   * The leases this host holds: epoch, and when (performance.now()) the last claim or renewal
   * that succeeded was sent: the lease expires no sooner than `ttl` after that.
   */
  readonly #held = new Map<string, { epoch: number; sentAt: number }>();
  #timer: NodeJS.Timeout | null = null;
  #fenceTimer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  /** Adoptions and hand-overs run one after another, beside the rounds. */
  #adopting: Promise<void> = Promise.resolve();
  #listener: pg.Client | null = null;
  #stopped = false;

  constructor(
    host: Host,
    store: PgStore,
    url: string,
    opts: ClusterOptions = {},
    events: ClusterEvents = {},
  ) {
    this.#host = host;
    this.#store = store;
    this.#tenants = host.config.tenants.map((t) => t.id);
    this.#ttl = opts.leaseTtlMs ?? 10_000;
    this.#tick = opts.tickMs ?? Math.min(1_000, Math.floor(this.#ttl / 5));
    this.#margin = opts.fenceMarginMs ?? Math.max(Math.floor(this.#ttl / 5), 2 * this.#tick);
    this.#pool = new pg.Pool({
      connectionString: url,
      max: 2,
      connectionTimeoutMillis: 5_000,
      types: PG_TYPES,
    });
    guardPool(this.#pool);
    this.#leases = new TenantLeases(this.#pool, store.owner);
    this.#onError = opts.onError ?? (() => undefined);
    this.events = events;
    store.setFenceListener((tenant) => void this.#lose(tenant));
  }

  /** Joins: beats, takes this host's share of the tenants, then keeps the balance. */
  async start(): Promise<void> {
    await this.#leases.ensure(this.#tenants);
    await this.#listen();
    await this.#step();
    await this.#adopting;
    this.#timer = setInterval(() => void this.#step(), this.#tick);
    this.#timer.unref();
    this.#fenceTimer = setInterval(() => this.#checkFence(), Math.max(50, this.#tick / 4));
    this.#fenceTimer.unref();
  }

  /** This host's token in `hg_hosts`, `hg_shards` and `hg_lease_history`. */
  get owner(): string {
    return this.#store.owner;
  }

  /** The tenants this host owns now (not its replica shards). */
  get owned(): string[] {
    return [...this.#held.keys()].filter((t) => replicaOwner(t) === null);
  }

  /** This host's replica shards (`<tenant>@<owner>`: its copies of every-host schedules). */
  get replicas(): string[] {
    return [...this.#held.keys()].filter((t) => replicaOwner(t) !== null);
  }

  /** One round: beat, renew, drop what was lost, balance, apply commands. Never throws. */
  #step(): Promise<void> {
    if (this.#ticking || this.#stopped) return this.#ticking ?? Promise.resolve();
    this.#ticking = this.#round()
      .catch((err: unknown) => this.#onError(`cluster: ${errorMessage(err)}`, err))
      .finally(() => (this.#ticking = null));
    return this.#ticking;
  }

  async #round(): Promise<void> {
    // The host was stopped directly (not through `stop()` here): leave the cluster with it, so
    // its tenants are released instead of renewed for a host that no longer serves them.
    if (this.#host.stopping) {
      void this.stop();
      return;
    }
    const sent = performance.now();
    await this.#leases.heartbeat(process.pid, hostname(), this.#startedAt, this.#ttl);
    const held = new Map([...this.#held].map(([t, h]) => [t, h.epoch]));
    const renewed = await this.#leases.renew(held, this.#ttl);
    for (const [t, epoch] of held) {
      const h = this.#held.get(t);
      if (renewed.has(t)) {
        if (h?.epoch === epoch) h.sentAt = sent;
      } else if (h?.epoch === epoch) void this.#lose(t);
    }
    const hosts = await this.#balance();
    await this.#syncReplicas();
    await this.#closeOrphans(hosts);
    await this.#applyCommands();
  }

  /** Takes or gives up tenants; returns the live hosts. */
  async #balance(): Promise<string[]> {
    const owners = await this.#leases.owners(this.#tenants);
    // Live: beating, and not the holder of a lease it let lapse (it stopped renewing).
    const lapsed = new Set([...owners.values()].map((o) => o.lapsed));
    const hosts = (await this.#leases.liveHosts()).filter((h) => !lapsed.has(h));
    const share = Math.ceil(this.#tenants.length / Math.max(1, hosts.length));
    const mine = this.owned.filter((t) => !this.#busy.has(t));
    let count = this.owned.length;
    if (count < share) {
      // Free tenants, starting at a place that differs per host (fewer lost races).
      const free = this.#tenants.filter((t) => (owners.get(t)?.owner ?? null) === null);
      const offset = hash(this.#store.owner) % Math.max(1, free.length);
      const order = [...free.slice(offset), ...free.slice(0, offset)];
      for (const t of order) {
        if (count >= share || this.#stopped) break;
        if (this.#busy.has(t) || this.#held.has(t)) continue;
        const sent = performance.now();
        const claimed = await this.#leases.claim(t, this.#ttl);
        if (!claimed) continue; // another host was faster
        this.#held.set(t, { epoch: claimed.epoch, sentAt: sent });
        count++;
        // Loading a tenant's plugins may take a while: renewals go on meanwhile.
        this.#busy.add(t);
        this.#adopting = this.#adopting.then(() => this.#adopt(claimed));
      }
    } else if (mine.length > share) {
      const counts = new Map<string, number>(hosts.map((h) => [h, 0]));
      for (const o of owners.values())
        if (o.owner !== null && counts.has(o.owner))
          counts.set(o.owner, (counts.get(o.owner) ?? 0) + 1);
      const starved = [...counts.entries()].some(([h, n]) => h !== this.#store.owner && n < share);
      if (starved) {
        const t = mine[mine.length - 1] as string;
        this.#busy.add(t);
        this.#adopting = this.#adopting.then(() => this.#giveUp(t));
      }
    }
    return hosts;
  }

  /**
   * Every-host schedules (src/host/replica.ts): reads the tenants' templates, takes this host's
   * replica shard of each tenant that has some, and brings its copies in line.
   */
  async #syncReplicas(): Promise<void> {
    const templates = await this.#store.hostScopedTemplates(this.#tenants);
    const byTenant = new Map<string, ScheduleRecord[]>();
    for (const t of templates) {
      let list = byTenant.get(t.tenant);
      if (!list) byTenant.set(t.tenant, (list = []));
      list.push(t);
    }
    for (const tenant of this.#tenants) {
      const shard = replicaShard(tenant, this.#store.owner);
      const list = byTenant.get(tenant) ?? [];
      if (this.#busy.has(shard) || this.#stopped) continue;
      if (!this.#held.has(shard)) {
        if (!list.some((t) => t.state !== 'deleted' && t.state !== 'retired')) continue;
        await this.#leases.ensure([shard]);
        const sent = performance.now();
        const claimed = await this.#leases.claim(shard, this.#ttl);
        if (!claimed) continue; // a survivor is closing it after a lapse: next round
        this.#held.set(shard, { epoch: claimed.epoch, sentAt: sent });
        this.#busy.add(shard);
        this.#adopting = this.#adopting.then(() => this.#adopt(claimed, list));
      } else {
        const epoch = this.#held.get(shard)?.epoch;
        this.#busy.add(shard);
        this.#adopting = this.#adopting.then(async () => {
          try {
            if (this.#held.get(shard)?.epoch === epoch && !this.#stopped)
              await this.#host.syncReplica(shard, list);
          } catch (err) {
            this.#onError(`cluster: replica ${shard}: ${errorMessage(err)}`, err);
          } finally {
            this.#busy.delete(shard);
          }
        });
      }
    }
  }

  /**
   * Closes the replica shards of hosts that are gone (a dead host's, or one that left): takes
   * the shard (fencing its host, should it wake), records its open runs `abandoned`, retires
   * its copies, and marks it retired. One at a time, beside adoptions.
   */
  async #closeOrphans(hosts: readonly string[]): Promise<void> {
    const live = new Set(hosts);
    for (const shard of await this.#leases.orphanReplicas()) {
      const owner = replicaOwner(shard);
      if (owner === null || live.has(owner) || this.#busy.has(shard) || this.#stopped) continue;
      const claimed = await this.#leases.claim(shard, this.#ttl);
      if (!claimed) continue;
      this.#busy.add(shard);
      this.#held.set(shard, { epoch: claimed.epoch, sentAt: performance.now() });
      this.#adopting = this.#adopting.then(async () => {
        try {
          await this.#store.adoptTenant(shard, claimed.epoch);
          const now = this.#host.clock.now();
          this.#store.abandonTenantRuns(
            shard,
            now,
            `its host (${owner}) stopped before the run finished`,
          );
          this.#store.retireReplicaCopies(shard, now);
          await this.#store.committed({ tenant: shard });
          await this.#leases.retire(shard, claimed.epoch);
        } catch (err) {
          this.#onError(`cluster: closing replica ${shard}: ${errorMessage(err)}`, err);
        } finally {
          this.#store.dropTenant(shard);
          this.#held.delete(shard);
          this.#busy.delete(shard);
        }
      });
    }
  }

  /**
   * Loads a tenant just claimed (one at a time, in the order claimed); a replica shard gets
   * its copies of `templates`.
   */
  async #adopt(claimed: Claimed, templates?: readonly ScheduleRecord[]): Promise<void> {
    const tenant = claimed.tenant;
    try {
      if (this.#held.get(tenant)?.epoch !== claimed.epoch || this.#stopped) return;
      await this.#store.adoptTenant(tenant, claimed.epoch);
      const abandoned = this.#store.abandonTenantRuns(
        tenant,
        this.#host.clock.now(),
        claimed.from && claimed.from !== this.#store.owner
          ? `its host (${claimed.from}) stopped owning the tenant before the run finished`
          : 'the host stopped before the run finished',
      );
      if (templates) await this.#host.syncReplica(tenant, templates);
      else await this.#host.adoptTenant(tenant);
      if (this.#held.get(tenant)?.epoch !== claimed.epoch) {
        // Lost while loading: undo what the load started.
        await this.#host.dropTenant(tenant, true);
        return;
      }
      this.events.onAdopted?.({
        tenant,
        epoch: claimed.epoch,
        from: claimed.from,
        abandoned: abandoned.length,
      });
    } catch (err) {
      this.#onError(`cluster: taking tenant ${tenant} failed: ${errorMessage(err)}`, err);
      await this.#host.dropTenant(tenant, true).catch(() => undefined);
      this.#store.dropTenant(tenant);
      this.#held.delete(tenant);
      await this.#leases.release(tenant, claimed.epoch).catch(() => undefined);
    } finally {
      this.#busy.delete(tenant);
    }
  }

  /** Gives a tenant up in good order: its runs end and are written, then the lease is freed. */
  async #giveUp(tenant: string): Promise<void> {
    const epoch = this.#held.get(tenant)?.epoch;
    try {
      if (epoch === undefined || this.#stopped) return;
      await this.#host.dropTenant(tenant, false);
      await this.#store.committed({ tenant });
      this.#store.dropTenant(tenant);
      this.#held.delete(tenant);
      await this.#leases.release(tenant, epoch);
      this.events.onDropped?.({ tenant, lost: false });
    } catch (err) {
      this.#onError(`cluster: handing tenant ${tenant} over failed: ${errorMessage(err)}`, err);
    } finally {
      this.#busy.delete(tenant);
    }
  }

  /** The tenant is someone else's now (or may be soon): stop at once, write nothing more. */
  async #lose(tenant: string): Promise<void> {
    if (!this.#held.delete(tenant)) return;
    this.#store.dropTenant(tenant);
    await this.#host
      .dropTenant(tenant, true)
      .catch((err: unknown) =>
        this.#onError(`cluster: dropping tenant ${tenant}: ${errorMessage(err)}`, err),
      );
    this.events.onDropped?.({ tenant, lost: true });
  }

  /** Drops every tenant when the last renewal is so old that the leases may expire soon. */
  #checkFence(): void {
    if (this.#stopped) return;
    const now = performance.now();
    for (const [t, h] of this.#held)
      if (now - h.sentAt >= this.#ttl - this.#margin) void this.#lose(t);
  }

  async #listen(): Promise<void> {
    const c = new pg.Client({ connectionString: this.#pool.options.connectionString });
    c.on('error', () => {
      // The connection dropped: polling (every tick) covers until it is back.
      this.#listener = null;
      if (!this.#stopped)
        setTimeout(() => void this.#listen().catch(() => undefined), this.#tick).unref();
    });
    c.on('notification', () => void this.#applyCommands().catch(() => undefined));
    await c.connect();
    await c.query(`LISTEN ${COMMANDS_CHANNEL}`);
    this.#listener = c;
  }

  async #applyCommands(): Promise<void> {
    if (this.#stopped || this.#store.owned.size === 0) return;
    if ((await this.#store.fetchCommands()) > 0) this.#host.applyOperatorCommands();
  }

  /**
   * Leaves the cluster: the host stops (its runs finish and everything is written), then the
   * leases are released so other hosts take the tenants at once instead of after the TTL.
   */
  async stop(graceMs?: number): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#fenceTimer) clearInterval(this.#fenceTimer);
    await this.#ticking?.catch(() => undefined);
    await this.#adopting;
    const held = new Map([...this.#held].map(([t, h]) => [t, h.epoch]));
    try {
      await this.#host.stop(graceMs);
    } finally {
      for (const [t, epoch] of held) await this.#leases.release(t, epoch).catch(() => undefined);
      await this.#leases.leave().catch(() => undefined);
      await this.#listener?.end().catch(() => undefined);
      await this.#pool.end().catch(() => undefined);
    }
  }
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}
