/**
 * Tenant leases and host membership in PostgreSQL (tables `hg_shards` and `hg_hosts`,
 * src/store/postgres/migrations/0001_init.sql). Every statement is one compare-and-set, and
 * every expiry is computed by the database's clock (`now()`), so hosts never compare clocks.
 *
 * A claim bumps the tenant's epoch (the fencing number every row written for the tenant then
 * carries); it succeeds only when the lease is free, expired, or already this owner's.
 */
import type pg from 'pg';

export interface Claimed {
  readonly tenant: string;
  readonly epoch: number;
  /** The owner it was taken from, if it had not released it (a takeover). */
  readonly from: string | null;
}

export class TenantLeases {
  readonly #pool: pg.Pool;
  readonly owner: string;

  constructor(pool: pg.Pool, owner: string) {
    this.#pool = pool;
    this.owner = owner;
  }

  /** Makes sure every tenant has a lease row (free), so claims are updates. */
  async ensure(tenants: readonly string[]): Promise<void> {
    await this.#pool.query(
      'INSERT INTO hg_shards (tenant) SELECT unnest($1::text[]) ON CONFLICT (tenant) DO NOTHING',
      [tenants],
    );
  }

  /** Registers or renews this host in `hg_hosts`, live for `ttlMs`. */
  async heartbeat(pid: number, hostName: string, startedAt: number, ttlMs: number): Promise<void> {
    await this.#pool.query(
      `INSERT INTO hg_hosts (owner, pid, host_name, started_at, heartbeat_at, expires_at)
       VALUES ($1, $2, $3, $4, now(), now() + $5 * interval '1 millisecond')
       ON CONFLICT (owner) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at`,
      [this.owner, pid, hostName, startedAt, ttlMs],
    );
  }

  /** Hosts whose membership has not expired (this one included once it has beaten). */
  async liveHosts(): Promise<string[]> {
    const r = await this.#pool.query<{ owner: string }>(
      'SELECT owner FROM hg_hosts WHERE expires_at > now() ORDER BY owner',
    );
    return r.rows.map((x) => x.owner);
  }

  /**
   * The leases of `tenants`: who owns each (null: free or expired) and, for an expired one, who
   * let it expire (a host that stopped renewing: dead, stalled or cut off).
   */
  async owners(
    tenants: readonly string[],
  ): Promise<Map<string, { owner: string | null; lapsed: string | null }>> {
    const r = await this.#pool.query<{ tenant: string; owner: string | null; expired: boolean }>(
      `SELECT tenant, owner, (expires_at < now()) AS expired FROM hg_shards WHERE tenant = ANY($1)`,
      [tenants],
    );
    return new Map(
      r.rows.map((x) => [
        x.tenant,
        x.owner !== null && x.expired
          ? { owner: null, lapsed: x.owner }
          : { owner: x.owner, lapsed: null },
      ]),
    );
  }

  /** Takes `tenant` if it is free, expired or already ours; a new epoch either way. */
  async claim(tenant: string, ttlMs: number): Promise<Claimed | null> {
    const r = await this.#pool.query<{ epoch: number; from: string | null }>(
      `WITH prev AS (SELECT owner FROM hg_shards WHERE tenant = $1),
       claimed AS (
         UPDATE hg_shards SET owner = $2, epoch = epoch + 1, claimed_at = clock_timestamp(),
           retired = false, expires_at = now() + $3 * interval '1 millisecond'
         WHERE tenant = $1 AND (owner IS NULL OR owner = $2 OR expires_at < now())
         RETURNING tenant, epoch, claimed_at),
       history AS (
         INSERT INTO hg_lease_history (tenant, epoch, owner, claimed_at)
         SELECT tenant, epoch, $2, claimed_at FROM claimed)
       SELECT epoch, (SELECT owner FROM prev) AS from FROM claimed`,
      [tenant, this.owner, ttlMs],
    );
    const row = r.rows[0];
    return row ? { tenant, epoch: row.epoch, from: row.from } : null;
  }

  /**
   * Renews this owner's leases at the epochs it holds them; returns the tenants renewed (a
   * tenant missing from the answer was taken over: this host no longer owns it).
   */
  async renew(held: ReadonlyMap<string, number>, ttlMs: number): Promise<Set<string>> {
    if (held.size === 0) return new Set();
    const r = await this.#pool.query<{ tenant: string }>(
      `UPDATE hg_shards s SET expires_at = now() + $2 * interval '1 millisecond'
       FROM unnest($3::text[], $4::bigint[]) AS u(tenant, epoch)
       WHERE s.tenant = u.tenant AND s.epoch = u.epoch AND s.owner = $1
       RETURNING s.tenant`,
      [this.owner, ttlMs, [...held.keys()], [...held.values()]],
    );
    return new Set(r.rows.map((x) => x.tenant));
  }

  /** Gives `tenant` up (only at the epoch this owner holds it). */
  async release(tenant: string, epoch: number): Promise<void> {
    await this.#pool.query(
      'UPDATE hg_shards SET owner = NULL, expires_at = NULL WHERE tenant = $1 AND owner = $2 AND epoch = $3',
      [tenant, this.owner, epoch],
    );
  }

  /**
   * Replica shards (`<tenant>@<owner>`, src/host/replica.ts) free or expired and not yet
   * retired, with the host each belongs to: a survivor closes those whose host is gone.
   */
  async orphanReplicas(): Promise<string[]> {
    const r = await this.#pool.query<{ tenant: string }>(
      `SELECT tenant FROM hg_shards
       WHERE strpos(tenant, '@') > 0 AND NOT retired AND (owner IS NULL OR expires_at < now())`,
    );
    return r.rows.map((x) => x.tenant);
  }

  /** Frees a replica shard this owner closed, so it is not collected again. */
  async retire(tenant: string, epoch: number): Promise<void> {
    await this.#pool.query(
      `UPDATE hg_shards SET owner = NULL, expires_at = NULL, retired = true
       WHERE tenant = $1 AND owner = $2 AND epoch = $3`,
      [tenant, this.owner, epoch],
    );
  }

  /** Leaves the cluster (the host row goes; leases are released one by one before). */
  async leave(): Promise<void> {
    await this.#pool.query('DELETE FROM hg_hosts WHERE owner = $1', [this.owner]);
  }
}
