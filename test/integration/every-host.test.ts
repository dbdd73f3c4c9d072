/**
 * Job scope: a declaration with `scope: "host"` runs on every host (docs/cluster.md, "Every-host
 * schedules"), at most one run per schedule per host; the default runs once in the cluster.
 * - On one host (SQLite) it fires from its own row, like any schedule.
 * - Everywhere, a run of such a schedule may read schedules but not change them, and a schedule
 *   created at runtime cannot ask for it.
 * - On PostgreSQL with two hosts, each host fires its own copy of each every-host schedule
 *   (its replica shard `<tenant>@<owner>`), the tenant's owner does not fire the declared row,
 *   an operator's pause of the declared row reaches every copy, and when a host leaves, a
 *   survivor closes its shard (copies retired, no run left open).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { CAPABILITIES } from '../../src/capabilities.ts';
import { openHost, type OpenedHost } from '../../src/cluster/open-host.ts';
import { loadHostConfig, type PostgresConfig } from '../../src/config/host-config.ts';
import { openPgOperatorStore } from '../../src/operator/pg-access.ts';
import { PG_TYPES } from '../../src/store/postgres/pg-store.ts';
import { getCommand, queueCommand } from '../../src/store/postgres/pg-reads.ts';
import { freshDatabase, testClient } from '../support/postgres.ts';
import { spawnHost, type Proc } from './cluster-procs.ts';
import {
  decls,
  GUEST,
  makeConfig,
  ManualClock,
  startHost,
  storeDir,
  T0,
  tempDir,
  triggerRun,
} from './helpers.ts';

const call = (fn: string, args: unknown) => ({ fn, args });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (true: done) every 200 ms until `ms` have passed; returns whether it held. */
async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

test('one host: an every-host schedule fires from its row; its runs may read but not change schedules; runtime creates cannot ask for it', async (t) => {
  const dir = await storeDir(t, 'sqlite');
  const config = makeConfig(dir, [
    {
      id: 't',
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: {
            schedules: decls(
              {
                id: 'local',
                every: '1h',
                scope: 'host',
                payload: { calls: [call('schedule_get', { id: 'local' })] },
              },
              {
                id: 'writer',
                every: '1h',
                scope: 'host',
                payload: { calls: [call('schedule_create', { id: 'x', every: '1h' })] },
              },
              {
                id: 'creator',
                every: '1h',
                payload: {
                  calls: [call('schedule_create', { id: 'y', every: '1h', scope: 'host' })],
                },
              },
            ),
          },
        },
      ],
    },
  ]);
  const { host, stop } = await startHost(config, new ManualClock(T0));
  try {
    assert.equal(host.store.getSchedule('t/p/local')?.scope, 'host');
    assert.equal(host.store.getSchedule('t/p/creator')?.scope, 'cluster');
    const local = await triggerRun(host, 't/p/local');
    assert.equal(local.run.status, 'succeeded');
    assert.equal(
      (local.result.responses[0]?.ok as { id: string } | undefined)?.id,
      'local',
      'a read is answered',
    );
    const writer = await triggerRun(host, 't/p/writer');
    assert.equal(writer.run.status, 'host_call_denied');
    assert.match(writer.run.error ?? '', /schedule_create: phase: .*every host \(scope "host"\)/);
    assert.equal(host.store.getSchedule('t/p/x'), undefined, 'nothing was created');
    const creator = await triggerRun(host, 't/p/creator');
    assert.equal(creator.run.status, 'succeeded');
    assert.equal(creator.result.responses[0]?.error?.code, 'invalid_argument');
    assert.match(
      creator.result.responses[0]?.error?.message ?? '',
      /\/scope: "host" is for declared/,
    );
    assert.equal(host.store.getSchedule('t/p/y'), undefined);
  } finally {
    await stop();
  }
});

interface Row {
  [k: string]: unknown;
}

test(
  'two hosts on PostgreSQL: each fires its own copy of an every-host schedule, once per tick; the owner does not fire the declared row; a pause reaches every copy; a host that leaves has its copies closed',
  { timeout: 120_000 },
  async (t) => {
    const db = await freshDatabase(t);
    const dir = tempDir(t);
    const manifest = join(dir, 'proxy.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        name: 'proxy',
        version: '1.0.0',
        wasm: GUEST.proxy,
        capabilities: CAPABILITIES,
      }),
    );
    const schedules = decls(
      { id: 'h', every: '1s', scope: 'host', payload: { countCursor: true } },
      { id: 'c', every: '1s', payload: { countCursor: true } },
      {
        id: 'w',
        every: '1s',
        scope: 'host',
        payload: { calls: [call('schedule_delete', { id: 'c' })] },
      },
    );
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        store: { postgres: { url: db.url, leaseTtlMs: 3_000, poolSize: 3 } },
        sandbox: { workers: 1 },
        shutdownGraceMs: 2_000,
        tenants: ['a', 'b'].map((id) => ({
          id,
          capabilities: CAPABILITIES,
          plugins: [{ manifest, config: { schedules } }],
        })),
      }),
    );
    const hosts: OpenedHost[] = [];
    const stopped = new Set<OpenedHost>();
    t.after(async () => {
      for (const h of hosts) if (!stopped.has(h)) await h.stop(0).catch(() => undefined);
    });
    for (let i = 0; i < 2; i++) {
      const h = await openHost(loadHostConfig(file));
      hosts.push(h);
      await h.start();
    }
    const [one, two] = hosts as [OpenedHost, OpenedHost];
    const owners = hosts.map((h) => h.cluster?.owner as string);
    const sql = await testClient(db.url, t);
    const q = async (text: string, values: unknown[] = []): Promise<Row[]> =>
      (await sql.query<Row>(text, values)).rows;
    const copyKey = (tenant: string, owner: string, id: string) => `${tenant}@${owner}/proxy/${id}`;

    // Every host runs a copy of `h` for both tenants, whichever host owns the tenant.
    const everyCopyRan = await waitFor(async () => {
      const rows = await q(
        `SELECT schedule_key, count(*)::int AS n FROM runs
         WHERE status = 'succeeded' AND local_id = 'h' GROUP BY schedule_key`,
      );
      const n = new Map(rows.map((r) => [r.schedule_key as string, r.n as number]));
      return ['a', 'b'].every((tn) => owners.every((o) => (n.get(copyKey(tn, o, 'h')) ?? 0) >= 3));
    }, 30_000);
    assert.ok(everyCopyRan, 'each host ran its copy of h for each tenant at least 3 times');
    assert.deepEqual(
      (one.cluster?.owned.length ?? 0) + (two.cluster?.owned.length ?? 0),
      2,
      'the two tenants are shared between the hosts',
    );
    assert.deepEqual(one.cluster?.replicas.sort(), [`a@${owners[0]}`, `b@${owners[0]}`].sort());

    // The declared rows: kept by the owner, never fired by it.
    assert.deepEqual(
      await q(`SELECT schedule_key FROM runs WHERE schedule_key IN ('a/proxy/h', 'b/proxy/h')`),
      [],
    );
    // Once per tick per copy, and never two runs of one copy at a time.
    assert.deepEqual(
      await q(
        `SELECT schedule_key, scheduled_at FROM runs WHERE trigger = 'schedule'
         GROUP BY schedule_key, scheduled_at HAVING count(*) > 1`,
      ),
      [],
    );
    assert.deepEqual(
      await q(
        `SELECT x.schedule_key FROM runs x JOIN runs y
           ON x.schedule_key = y.schedule_key AND x.id < y.id
          AND x.started_at < COALESCE(y.finished_at, 9e15) AND y.started_at < COALESCE(x.finished_at, 9e15)
         WHERE x.status NOT LIKE 'skipped%' AND y.status NOT LIKE 'skipped%'
           AND x.status <> 'cancelled' AND y.status <> 'cancelled'`,
      ),
      [],
    );
    // The cluster-scoped schedule still runs once in the cluster (its key, no copies).
    const cRows = await q(`SELECT DISTINCT schedule_key FROM runs WHERE local_id = 'c'`);
    assert.deepEqual(cRows.map((r) => r.schedule_key).sort(), ['a/proxy/c', 'b/proxy/c']);
    // A copy's run may not change schedules: `c` was not deleted.
    const w = await q(
      `SELECT status, error FROM runs WHERE local_id = 'w' AND status <> 'running' LIMIT 1`,
    );
    assert.equal(w[0]?.status, 'host_call_denied', JSON.stringify(w));
    assert.deepEqual(
      (await q(`SELECT state FROM schedules WHERE key = 'a/proxy/c'`)).map((r) => r.state),
      ['active'],
    );
    // The CLI lists the template without a next run of its own, and each copy with one.
    const cli = await openPgOperatorStore(loadHostConfig(file).store.postgres as PostgresConfig);
    const listed = new Map((await cli.listSchedules({})).map((s) => [s.key, s] as const));
    await cli.close();
    assert.equal(listed.get('a/proxy/h')?.scope, 'host');
    assert.equal(listed.get('a/proxy/h')?.nextAt, null);
    assert.notEqual(listed.get(copyKey('a', owners[0] as string, 'h'))?.nextAt ?? null, null);
    assert.notEqual(listed.get('a/proxy/c')?.nextAt ?? null, null);
    // Each copy's cursor counts its own successes.
    const h1 = copyKey('a', owners[1] as string, 'h');
    const [copy] = await q('SELECT cursor FROM schedules WHERE key = $1', [h1]);
    assert.ok(JSON.parse(copy?.cursor as string).n >= 3, JSON.stringify(copy));

    // An operator pauses the declared row: every host's copy pauses.
    const pool = new pg.Pool({ connectionString: db.url, types: PG_TYPES, max: 1 });
    pool.on('error', () => undefined); // the database is dropped after the test
    t.after(() => pool.end());
    await queueCommand(pool, 'a/proxy/h', 'pause', 'maintenance', Date.now());
    const copiesPaused = await waitFor(async () => {
      const rows = await q(`SELECT key, state, pause_note FROM schedules WHERE key = ANY($1)`, [
        owners.map((o) => copyKey('a', o, 'h')),
      ]);
      return rows.length === 2 && rows.every((r) => r.state === 'paused');
    }, 15_000);
    assert.ok(copiesPaused, 'both copies of a/proxy/h are paused');
    const [note] = await q(`SELECT pause_note FROM schedules WHERE key = $1`, [h1]);
    assert.equal(note?.pause_note, 'maintenance');
    // A trigger of the template names what to trigger instead: one host's copy.
    const trig = await queueCommand(pool, 'b/proxy/h', 'trigger', null, Date.now());
    let answer: string | null = null;
    await waitFor(async () => {
      answer = (await getCommand(pool, trig))?.result ?? null;
      return answer !== null;
    }, 15_000);
    assert.match(
      String(answer),
      /runs on every host: trigger one host's copy, 'b@<owner>\/proxy\/h'/,
    );
    // ... and stay paused: no run of a copy starts after the pause reached it.
    const pausedAt = Date.now();
    await sleep(2_500);
    assert.deepEqual(
      await q(
        `SELECT id FROM runs WHERE local_id = 'h' AND tenant LIKE 'a@%' AND started_at > $1`,
        [pausedAt],
      ),
      [],
    );

    // An operator command from either host reaches the owner of the schedule's tenant.
    const oneHas = one.cluster?.owned[0] as string;
    const paused = await two.command(`${oneHas}/proxy/c`, 'pause', 'from two');
    assert.deepEqual(paused, {
      via: 'host',
      ok: true,
      value: 'paused',
      message: `pause ${oneHas}/proxy/c: paused`,
    });
    assert.deepEqual(
      await q('SELECT state, pause_note FROM schedules WHERE key = $1', [`${oneHas}/proxy/c`]),
      [{ state: 'paused', pause_note: 'from two' }],
    );
    const resumed = await one.command(`${oneHas}/proxy/c`, 'resume');
    assert.equal(resumed.ok, true, resumed.message);
    await one.host.store.committed();
    assert.deepEqual(await q('SELECT state FROM schedules WHERE key = $1', [`${oneHas}/proxy/c`]), [
      { state: 'active' },
    ]);

    // Host two leaves: host one closes its replica shards.
    stopped.add(two);
    await two.stop(2_000);
    const closed = await waitFor(async () => {
      const rows = await q(`SELECT retired FROM hg_shards WHERE tenant = ANY($1)`, [
        [`a@${owners[1]}`, `b@${owners[1]}`],
      ]);
      return rows.length === 2 && rows.every((r) => r.retired === true);
    }, 20_000);
    assert.ok(closed, 'the shards of the host that left are retired');
    assert.deepEqual(
      await q(`SELECT key, state FROM schedules WHERE tenant = ANY($1) AND state <> 'retired'`, [
        [`a@${owners[1]}`, `b@${owners[1]}`],
      ]),
      [],
    );
    assert.deepEqual(
      await q(`SELECT id FROM runs WHERE status IN ('running', 'waiting') AND tenant = ANY($1)`, [
        [`a@${owners[1]}`, `b@${owners[1]}`],
      ]),
      [],
    );
    // The survivor keeps running its own copies, and took both tenants.
    const since = Date.now();
    const goesOn = await waitFor(async () => {
      const rows = await q(
        `SELECT count(*)::int AS n FROM runs WHERE schedule_key = $1 AND started_at > $2`,
        [copyKey('b', owners[0] as string, 'h'), since],
      );
      return (rows[0]?.n as number) >= 2;
    }, 15_000);
    assert.ok(goesOn, 'the survivor still runs its copy of b/proxy/h');
    assert.deepEqual(one.cluster?.owned.sort(), ['a', 'b']);
    stopped.add(one);
    await one.stop(2_000);
  },
);

test(
  'a host that dies (SIGKILL) or stalls past its lease (SIGSTOP): a survivor closes its replica shards; the stalled host, awake, writes nothing stale and takes its shard again',
  { timeout: 150_000 },
  async (t) => {
    const TTL = 3_000;
    const db = await freshDatabase(t);
    const dir = tempDir(t);
    const manifest = join(dir, 'proxy.json');
    writeFileSync(
      manifest,
      JSON.stringify({ name: 'proxy', version: '1.0.0', wasm: GUEST.proxy, capabilities: [] }),
    );
    const schedules = decls({
      id: 'h',
      every: '1s',
      scope: 'host',
      payload: { countCursor: true },
    });
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        store: { postgres: { url: db.url, leaseTtlMs: TTL, poolSize: 3 } },
        sandbox: { workers: 1 },
        shutdownGraceMs: 2_000,
        tenants: [{ id: 'a', plugins: [{ manifest, config: { schedules } }] }],
      }),
    );
    const log: string[] = [];
    t.after(() => {
      if (process.exitCode) console.log(log.slice(-100).join('\n'));
    });
    const survivor = await openHost(loadHostConfig(file));
    let survivorStopped = false;
    t.after(() => (survivorStopped ? undefined : survivor.stop(0)));
    await survivor.start();
    const procs: Proc[] = [];
    t.after(() => {
      for (const p of procs) p.child.kill('SIGKILL');
    });
    const sql = await testClient(db.url, t);
    const q = async (text: string, values: unknown[] = []): Promise<Row[]> =>
      (await sql.query<Row>(text, values)).rows;
    const succeededSince = async (shard: string, since: number): Promise<number> =>
      (
        await q(
          `SELECT count(*)::int AS n FROM runs WHERE tenant = $1 AND status = 'succeeded' AND started_at > $2`,
          [shard, since],
        )
      )[0]?.n as number;
    const retired = async (shard: string): Promise<boolean> =>
      (await q('SELECT retired FROM hg_shards WHERE tenant = $1', [shard]))[0]?.retired === true;

    // A host that dies.
    const dead = spawnHost(file, log);
    procs.push(dead);
    await dead.ready;
    const deadShard = `a@${dead.owner as string}`;
    assert.ok(await waitFor(async () => (await succeededSince(deadShard, 0)) >= 2, 30_000));
    dead.child.kill('SIGKILL');
    await dead.exited;
    const killedAt = Date.now();
    assert.ok(await waitFor(() => retired(deadShard), 30_000), 'the dead host’s shard is closed');
    t.diagnostic(
      `dead host's shard closed ${Date.now() - killedAt} ms after the kill (TTL ${TTL})`,
    );
    assert.deepEqual(await q(`SELECT key, state FROM schedules WHERE tenant = $1`, [deadShard]), [
      { key: `${deadShard}/proxy/h`, state: 'retired' },
    ]);

    // A host that stalls past its lease, then wakes.
    const stalled = spawnHost(file, log);
    procs.push(stalled);
    await stalled.ready;
    const stalledShard = `a@${stalled.owner as string}`;
    assert.ok(await waitFor(async () => (await succeededSince(stalledShard, 0)) >= 2, 30_000));
    stalled.child.kill('SIGSTOP');
    assert.ok(
      await waitFor(() => retired(stalledShard), 30_000),
      'the stalled host’s shard is closed by the survivor',
    );
    stalled.child.kill('SIGCONT');
    const woke = Date.now();
    assert.ok(
      await waitFor(async () => (await succeededSince(stalledShard, woke)) >= 2, 30_000),
      'awake, the host takes its shard again and runs its copy',
    );
    assert.equal(await retired(stalledShard), false);
    stalled.child.kill('SIGTERM');
    await stalled.exited;
    survivorStopped = true;
    await survivor.stop(2_000);

    // The record: every copy's ticks once, never two runs of a copy at a time, none left open,
    // no row accepted under an epoch that had ended.
    const ran = `status NOT IN ('skipped_overlap', 'skipped_misfire', 'cancelled', 'waiting')`;
    assert.deepEqual(
      await q(
        `SELECT schedule_key, scheduled_at FROM runs WHERE ${ran} GROUP BY 1, 2 HAVING count(*) > 1`,
      ),
      [],
    );
    assert.deepEqual(
      await q(
        `SELECT x.id, y.id FROM runs x JOIN runs y
           ON x.schedule_key = y.schedule_key AND x.id <> y.id AND x.started_at <= y.started_at
          AND y.started_at < COALESCE(x.finished_at, 9e15)
         WHERE x.${ran} AND y.${ran}`,
      ),
      [],
    );
    assert.deepEqual(await q(`SELECT id FROM runs WHERE status IN ('running', 'waiting')`), []);
    assert.deepEqual(
      await q(
        `SELECT r.id FROM runs r JOIN hg_lease_history h ON h.tenant = r.tenant AND h.epoch = r.epoch + 1
         WHERE GREATEST(r.started_at, COALESCE(r.finished_at, 0)) > extract(epoch FROM h.claimed_at) * 1000`,
      ),
      [],
    );
    // The copies never ran from the declared row.
    assert.deepEqual(await q(`SELECT id FROM runs WHERE tenant = 'a'`), []);
  },
);
