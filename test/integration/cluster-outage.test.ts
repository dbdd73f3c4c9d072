/**
 * A host on PostgreSQL through database outages (docs/cluster.md, "Failure cases"):
 * - a blip: every connection of the database is terminated a few times in a second (a database
 *   restart or a network reset as the host sees it): flushes fail and are retried, firing goes on;
 * - an outage longer than the lease: the database refuses connections for TTL + 1.5 s: the host
 *   stops firing, fences itself (drops its tenants before their leases can expire), and takes
 *   them again once the database is back.
 * Afterwards the record holds every promise (cluster-record.ts) and firing has resumed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { openHost } from '../../src/cluster/open-host.ts';
import { loadHostConfig } from '../../src/config/host-config.ts';
import { freshDatabase, testClient, testPgAdminUrl } from '../support/postgres.ts';
import { checkRecord, proxyManifest } from './cluster-record.ts';
import { tempDir } from './helpers.ts';

const TTL_MS = 3_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test(
  'a host on PostgreSQL rides out a connection blip and a long outage: it fences itself, then takes its tenants again',
  { timeout: 120_000 },
  async (t) => {
    const db = await freshDatabase(t);
    const name = new URL(db.url).pathname.slice(1);
    const dir = tempDir(t);
    const manifest = proxyManifest(dir);
    const schedules = JSON.stringify(
      Array.from({ length: 5 }, (_, i) => ({
        id: `e${i}`,
        every: '1s',
        payload: { countCursor: true },
      })),
    );
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        store: { postgres: { url: db.url, leaseTtlMs: TTL_MS, poolSize: 3 } },
        sandbox: { workers: 1 },
        shutdownGraceMs: 2_000,
        tenants: ['a', 'b'].map((id) => ({ id, plugins: [{ manifest, config: { schedules } }] })),
      }),
    );
    const events: string[] = [];
    const opened = await openHost(loadHostConfig(file), {
      clusterEvents: {
        onAdopted: (e) => events.push(`adopted ${e.tenant}`),
        onDropped: (e) => events.push(`${e.lost ? 'lost' : 'gave up'} ${e.tenant}`),
      },
    });
    opened.host.events.on('store:failed', () => events.push('store failed'));
    opened.host.events.on('store:recovered', () => events.push('store recovered'));
    let stopped = false;
    t.after(() => (stopped ? undefined : opened.stop(0)));
    await opened.start();
    assert.deepEqual(opened.cluster?.owned.sort(), ['a', 'b']);

    const admin = new pg.Client({ connectionString: testPgAdminUrl() });
    await admin.connect();
    t.after(() => admin.end());
    const terminate = () =>
      admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );

    await sleep(3_000);
    // A blip: connections cut five times in a second.
    for (let i = 0; i < 5; i++) {
      await terminate();
      await sleep(200);
    }
    await sleep(3_000);
    // A long outage: no connection for TTL + 1.5 s.
    const outage = Date.now();
    await admin.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
    await terminate();
    await sleep(TTL_MS + 1_500);
    assert.deepEqual(
      opened.cluster?.owned,
      [],
      `fenced itself during the outage: ${events.join(', ')}`,
    );
    await admin.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
    const back = Date.now();
    const deadline = back + 30_000;
    while ((opened.cluster?.owned.length ?? 0) < 2 && Date.now() < deadline) await sleep(200);
    assert.deepEqual(opened.cluster?.owned.sort(), ['a', 'b'], events.join(', '));
    await sleep(4_000);
    stopped = true;
    await opened.stop(2_000);
    const end = Date.now();

    const sql = await testClient(db.url, t);
    const { runs } = await checkRecord(sql, end, 10);
    const after = runs.filter((r) => r.status === 'succeeded' && (r.started_at as number) > back);
    assert.ok(after.length >= 10, `firing resumed after the outage (${after.length} runs)`);
    assert.ok(events.includes('lost a') && events.includes('lost b'), events.join(', '));
    t.diagnostic(`outage at ${outage}, back at ${back}; events: ${events.join(', ')}`);
  },
);

test('a clustered host stopped directly (host.stop(), not through openHost) leaves the cluster and releases its tenants', async (t) => {
  const db = await freshDatabase(t);
  const dir = tempDir(t);
  const manifest = proxyManifest(dir);
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      store: { postgres: { url: db.url, leaseTtlMs: 60_000 } },
      sandbox: { workers: 1 },
      tenants: [{ id: 'a', plugins: [{ manifest }] }],
    }),
  );
  const opened = await openHost(loadHostConfig(file));
  await opened.start();
  assert.deepEqual(opened.cluster?.owned, ['a']);
  await opened.host.stop(0);
  const sql = await testClient(db.url, t);
  const deadline = Date.now() + 20_000;
  let owner: unknown = 'a host';
  while (owner !== null && Date.now() < deadline) {
    await sleep(100);
    owner = (await sql.query("SELECT owner FROM hg_shards WHERE tenant = 'a'")).rows[0]?.owner;
  }
  assert.equal(owner, null, 'the lease is released long before its 60 s TTL');
  assert.deepEqual((await sql.query('SELECT owner FROM hg_hosts')).rows, []);
});
