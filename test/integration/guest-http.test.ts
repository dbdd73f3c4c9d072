/**
 * Outbound HTTP for guests (src/sandbox/http/) end to end: a real host, the real worker pool,
 * a `.wat` guest that makes the requests its config names (guest-examples/wat/http-probe.wat),
 * and a loopback server this test starts. Allowlists, special addresses (SSRF), redirects,
 * timeouts, size caps, the request cap and fuel, and the run records that say what happened.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parseHostConfig } from '../../src/config/host-config.ts';
import { systemClock, type Clock } from '../../src/clock.ts';
import type { HostEventMap } from '../../src/host/events.ts';
import type { Host } from '../../src/host/host.ts';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import type { HostCallAnswer, Sandbox } from '../../src/sandbox/types.ts';
import type { RunRecord } from '../../src/store/types.ts';
import { startFeedServer, type FeedServer } from '../support/feed-server.ts';
import { GUEST, ManualClock, T0, decls, startHost, tempDir } from './helpers.ts';

/**
 * The loopback server (test/support/feed-server.ts) with `/hello` answering the JSON string
 * `"hello GET"` with `x-probe` and `content-type` headers.
 */
async function loopback(): Promise<FeedServer & { readonly paths: () => string[] }> {
  const feeds = await startFeedServer();
  feeds.respond('/hello', {
    body: '"hello GET"',
    headers: { 'x-probe': 'yes', 'content-type': 'application/json' },
  });
  return Object.assign(feeds, { paths: () => feeds.requests.map((r) => r.path) });
}

interface Probe {
  /** Plugin name (one manifest each). */
  readonly name: string;
  readonly req: Record<string, unknown>;
  readonly mode?: string;
  readonly body?: string;
  readonly http?: Record<string, unknown>;
  readonly limits?: Record<string, unknown>;
}

/** A tenant's `http` section and its probes. */
interface ProbeTenant {
  readonly id: string;
  readonly http: Record<string, unknown>;
  readonly quotas?: Record<string, unknown>;
  readonly probes: readonly Probe[];
  readonly extra?: readonly Record<string, unknown>[];
}

async function probeHost(
  t: { after(fn: () => void | Promise<void>): void },
  tenants: readonly ProbeTenant[],
  clock: Clock = new ManualClock(T0),
): Promise<Host> {
  const dir = tempDir(t);
  const raw = {
    store: { path: join(dir, 'hg.db') },
    sandbox: { mode: 'pool', workers: 2 },
    tenants: tenants.map((tn) => ({
      id: tn.id,
      http: tn.http,
      ...(tn.quotas ? { quotas: tn.quotas } : {}),
      plugins: [
        ...tn.probes.map((p) => {
          const file = join(dir, `${tn.id}-${p.name}.json`);
          writeFileSync(
            file,
            JSON.stringify({
              name: p.name,
              version: '1.0.0',
              wasm: GUEST.wat('http-probe'),
              capabilities: ['http'],
              http: p.http ?? { allowedHosts: ['http://*:*'], methods: ['GET', 'POST'] },
              limits: { timeoutMs: 10_000, ...p.limits },
            }),
          );
          return {
            manifest: file,
            config: {
              req: JSON.stringify(p.req),
              ...(p.mode ? { mode: p.mode } : {}),
              ...(p.body !== undefined ? { body: p.body } : {}),
            },
          };
        }),
        ...(tn.extra ?? []),
      ],
    })),
  };
  const config = parseHostConfig(raw, join(dir, 'config.json'), dir);
  const started = await startHost(config, clock);
  t.after(() => started.stop());
  assert.deepEqual(started.failed, []);
  return started.host;
}

async function run(host: Host, key: string): Promise<RunRecord> {
  const r = host.operate(key, 'trigger');
  assert.ok(r.ok, `trigger ${key}: ${r.ok ? '' : r.message}`);
  await host.scheduler.settle();
  const rec = host.store.listRuns({ scheduleKey: key, limit: 1 })[0];
  assert.ok(rec, `no run for ${key}`);
  return rec;
}

/** The probe's output: status and body (JSON; the error when the status is 0). */
function answer(rec: RunRecord): { status: number; body: unknown } {
  assert.equal(rec.status, 'succeeded', `${rec.status}: ${rec.error ?? ''}`);
  const [status, body] = JSON.parse(rec.result ?? '') as [number, unknown];
  return { status, body };
}

function errorOf(rec: RunRecord): { code: string; message: string } {
  const a = answer(rec);
  assert.equal(a.status, 0, `expected an error answer, got ${a.status}: ${JSON.stringify(a.body)}`);
  return (a.body as { error: { code: string; message: string } }).error;
}

const PROXY_MANIFEST = fileURLToPath(
  new URL('../../guest-examples/assemblyscript/proxy/hourglass.json', import.meta.url),
);

describe('guest outbound HTTP through the pool', () => {
  test('allowed requests reach the server (GET, POST with body and headers, response headers); refusals end the call host_call_denied and say why', async (t) => {
    const srv = await loopback();
    t.after(() => srv.close());
    const allowed = {
      allowedHosts: [`http://127.0.0.1:${srv.port}`, `http://localhost:${srv.port}`],
    };
    const host = await probeHost(t, [
      {
        id: 'a',
        http: { ...allowed, allowPrivate: ['127.0.0.1/32'] },
        probes: [
          { name: 'get', req: { url: `${srv.url}/hello` } },
          {
            name: 'post',
            req: { url: `${srv.url}/hook`, method: 'POST', headers: { 'x-token': 'abc' } },
            body: 'payload!',
          },
          { name: 'headers', mode: 'h', req: { url: `${srv.url}/hello` } },
          { name: 'byname', req: { url: `http://localhost:${srv.port}/hello` } },
          { name: 'offlist', req: { url: `http://127.0.0.2:${srv.port}/hello` } },
          { name: 'otherport', req: { url: `http://127.0.0.1:1/hello` } },
          {
            name: 'narrowed',
            req: { url: `${srv.url}/hello` },
            http: { allowedHosts: ['https://example.com'] },
          },
          { name: 'method', req: { url: `${srv.url}/hello`, method: 'DELETE' } },
          {
            name: 'inject',
            req: { url: `${srv.url}/hello`, headers: { 'x-a': 'v\r\nhost: evil' } },
          },
          { name: 'creds', req: { url: `http://user:pw@127.0.0.1:${srv.port}/hello` } },
          { name: 'hostheader', req: { url: `${srv.url}/hello`, headers: { Host: 'evil' } } },
          { name: 'scheme', req: { url: `file:///etc/passwd` } },
        ],
      },
    ]);
    const records: Parameters<typeof logHttp>[0][] = [];
    const logHttp = (e: HostEventMap['guest:http'][0]) => records.push(e);
    host.events.on('guest:http', logHttp);
    const getRun = await run(host, 'a/get/probe');
    assert.deepEqual(answer(getRun), { status: 200, body: 'hello GET' });
    // What the debug log line and the metrics are made of: ids, origin, status, sizes.
    assert.deepEqual(
      records.map((r) => [r.tenant, r.pluginId, r.runId, r.method, r.origin, r.status, r.error]),
      [['a', 'a/get', getRun.id, 'GET', srv.url, 200, null]],
    );
    assert.equal(records[0]?.bytesIn, 11);
    host.events.off('guest:http', logHttp);

    const post = answer(await run(host, 'a/post/probe'));
    assert.deepEqual(post, { status: 200, body: { received: 1 } });
    const hook = srv.hooks[0];
    assert.equal(hook?.body, 'payload!');
    assert.equal(hook.headers['x-token'], 'abc');
    assert.equal(hook.headers['content-length'], '8');

    const headers = answer(await run(host, 'a/headers/probe')).body as Record<string, string>;
    assert.equal(headers['x-probe'], 'yes');
    assert.equal(headers['content-type'], 'application/json');

    // The tenant allows 127.0.0.1: a name that resolves there is allowed too.
    assert.deepEqual(answer(await run(host, 'a/byname/probe')), { status: 200, body: 'hello GET' });

    const refused: [string, RegExp][] = [
      ['offlist', /denied: http:\/\/127\.0\.0\.2:\d+ is not on the tenant's allowlist/],
      ['otherport', /not on the tenant's allowlist/],
      ['narrowed', /not on the plugin's allowlist/],
      ['method', /denied: method DELETE is not allowed/],
      ['scheme', /denied: scheme file: is not allowed/],
    ];
    for (const [name, why] of refused) {
      const rec = await run(host, `a/${name}/probe`);
      assert.equal(rec.status, 'host_call_denied', `${name}: ${rec.status} ${rec.error ?? ''}`);
      assert.match(rec.error ?? '', why, name);
    }
    // Malformed requests are the guest's error to handle, not a policy refusal.
    for (const [name, why] of [
      ['inject', /control characters/],
      ['creds', /credentials in the URL/],
      ['hostheader', /header Host is set by the host/],
    ] as const) {
      const e = errorOf(await run(host, `a/${name}/probe`));
      assert.equal(e.code, 'invalid_request', name);
      assert.match(e.message, why, name);
    }
    // Nothing refused reached the server.
    assert.deepEqual(
      srv.paths().filter((p) => p !== '/hello' && p !== '/hook'),
      [],
    );
    assert.equal(srv.paths().filter((p) => p === '/hello').length, 3);
  });

  test('special addresses: a name resolving to 127.0.0.1, 127.0.0.1 itself and its other spellings are denied without the tenant allowance; a redirect to a denied host is denied', async (t) => {
    const srv = await loopback();
    t.after(() => srv.close());
    const p = srv.port;
    const host = await probeHost(t, [
      {
        id: 'b',
        http: { allowedHosts: ['http://*:*'] }, // any host, but no special address allowed
        probes: [
          { name: 'localhost', req: { url: `http://localhost:${p}/hello` } },
          { name: 'literal', req: { url: `http://127.0.0.1:${p}/hello` } },
          { name: 'hex', req: { url: `http://0x7f.1:${p}/hello` } },
          { name: 'integer', req: { url: `http://2130706433:${p}/hello` } },
          { name: 'mapped', req: { url: `http://[::ffff:127.0.0.1]:${p}/hello` } },
          { name: 'zero', req: { url: `http://0.0.0.0:${p}/hello` } },
          { name: 'metadata', req: { url: 'http://169.254.169.254/latest/meta-data/' } },
        ],
      },
      {
        id: 'c',
        http: { allowedHosts: [`http://127.0.0.1:${p}`], allowPrivate: ['127.0.0.1'] },
        probes: [
          { name: 'redirect', req: { url: `${srv.url}/redirect?to=http://127.0.0.2:${p}/hello` } },
          { name: 'samehost', req: { url: `${srv.url}/redirect?to=/hello` } },
        ],
      },
    ]);
    for (const name of ['localhost', 'literal', 'hex', 'integer', 'mapped', 'zero', 'metadata']) {
      const rec = await run(host, `b/${name}/probe`);
      assert.equal(rec.status, 'host_call_denied', `${name}: ${rec.status} ${rec.error ?? ''}`);
      assert.match(
        rec.error ?? '',
        /special address, not allowed for this tenant/,
        `${name}: ${rec.error ?? ''}`,
      );
    }
    const redirected = await run(host, 'c/redirect/probe');
    assert.equal(redirected.status, 'host_call_denied');
    assert.match(
      redirected.error ?? '',
      /denied: redirect to http:\/\/127\.0\.0\.2:\d+ is not on the tenant's allowlist/,
    );
    assert.deepEqual(answer(await run(host, 'c/samehost/probe')), {
      status: 200,
      body: 'hello GET',
    });
    // Only the allowed hops reached the server: two redirects and one /hello.
    assert.deepEqual(srv.paths(), ['/redirect', '/redirect', '/hello']);
  });

  test('a slow server hits the per-request timeout and an endless body the response cap, as typed errors the guest handles; a request loop is stopped by the request cap, and by fuel', async (t) => {
    const srv = await loopback();
    t.after(() => srv.close());
    const http0 = { allowedHosts: [`http://127.0.0.1:${srv.port}`], allowPrivate: ['127.0.0.1'] };
    const host = await probeHost(t, [
      {
        id: 'a',
        http: http0,
        probes: [
          {
            name: 'slow',
            req: { url: `${srv.url}/slow` },
            http: { allowedHosts: ['http://*:*'], limits: { timeoutMs: 300 } },
          },
          {
            name: 'huge',
            req: { url: `${srv.url}/huge` },
            http: { allowedHosts: ['http://*:*'], limits: { responseBytes: 100_000 } },
          },
          {
            name: 'loop',
            mode: 'l',
            req: { url: `${srv.url}/hello` },
            http: { allowedHosts: ['http://*:*'], limits: { requestsPerCall: 5 } },
          },
          {
            name: 'fuel',
            mode: 'l',
            req: { url: `${srv.url}/hello` },
            http: { allowedHosts: ['http://*:*'], limits: { requestsPerCall: 1000 } },
            limits: { fuel: { run: 1_000_000 } },
          },
        ],
      },
    ]);
    const slow = errorOf(await run(host, 'a/slow/probe'));
    assert.equal(slow.code, 'timeout');
    assert.match(slow.message, /300 ms/);

    const huge = errorOf(await run(host, 'a/huge/probe'));
    assert.equal(huge.code, 'response_too_large');
    assert.match(huge.message, /100000 bytes/);

    const loop = await run(host, 'a/loop/probe');
    assert.equal(loop.status, 'host_call_denied');
    assert.match(loop.error ?? '', /too_many_requests: the call has made its 5 requests/);

    const before = srv.paths().length;
    const fuel = await run(host, 'a/fuel/probe');
    assert.equal(fuel.status, 'out_of_fuel', fuel.error ?? '');
    // 100,000 fuel a request: a budget of 1M pays for fewer than 10.
    const made = srv.paths().length - before;
    assert.ok(made >= 1 && made < 10, `requests made: ${made}`);
  });

  test('a tenant whose runs wait on a slow server holds only its own share of the pool: another tenant’s every-second schedule runs on time meanwhile; workers killed at the deadline leave no net thread behind', async (t) => {
    const srv = await loopback();
    t.after(() => srv.close());
    const threads = () => readdirSync('/proc/self/task').length;
    const host = await probeHost(
      t,
      [
        {
          id: 'a',
          http: { allowedHosts: [`http://127.0.0.1:${srv.port}`], allowPrivate: ['127.0.0.1'] },
          quotas: { maxRunsInFlight: 1 },
          probes: [
            // Three plugins (at most one run per schedule), one run at a time (maxRunsInFlight).
            ...[0, 1, 2].map((i) => ({
              name: `waits-${i}`,
              mode: 'l',
              req: { url: `${srv.url}/slow` },
              http: {
                allowedHosts: ['http://*:*'],
                limits: { timeoutMs: 400, requestsPerCall: 8 },
              },
            })),
            {
              // Loops on a slow server past its call's deadline: the pool terminates its worker.
              name: 'killed',
              mode: 'l',
              req: { url: `${srv.url}/slow` },
              http: { allowedHosts: ['http://*:*'], limits: { requestsPerCall: 10_000 } },
              limits: { timeoutMs: 600, fuel: { run: 1e12 } },
            },
          ],
        },
        {
          id: 'c',
          http: {},
          probes: [],
          extra: [
            {
              manifest: PROXY_MANIFEST,
              config: { schedules: decls({ id: 'tick', every: '1s' }) },
            },
          ],
        },
      ],
      systemClock,
    );
    // Tenant a: three runs of ~3 s of waiting each, one at a time (its maxRunsInFlight).
    const started = Date.now();
    const keys = [0, 1, 2].map((i) => `a/waits-${i}/probe`);
    for (const key of keys) assert.ok(host.operate(key, 'trigger').ok);
    const done = () => keys.flatMap((key) => host.store.listRuns({ scheduleKey: key, limit: 1 }));
    for (;;) {
      await host.store.committed();
      if (done().filter((r) => r.status !== 'running').length === 3) break;
      assert.ok(Date.now() - started < 120_000, 'tenant a’s runs never finished');
      await new Promise((r) => setTimeout(r, 100));
    }
    const waited = done();
    for (const r of waited) {
      assert.equal(r.status, 'host_call_denied', r.error ?? '');
      assert.match(r.error ?? '', /too_many_requests/);
    }
    const from = Math.min(...waited.map((r) => r.startedAt));
    const to = Math.max(...waited.map((r) => r.finishedAt ?? 0));
    assert.ok(to - from >= 6_000, `tenant a waited ${to - from} ms`);
    const ticks = host.store
      .listRuns({ scheduleKey: 'c/proxy/tick', limit: 1000 })
      .filter((r) => r.scheduledAt >= from && r.scheduledAt + 1000 <= to);
    assert.ok(
      ticks.length >= Math.floor((to - from) / 1000) - 2,
      `only ${ticks.length} ticks of c`,
    );
    for (const r of ticks) {
      assert.equal(r.status, 'succeeded');
      // On time: started within a second of its tick even on a loaded machine, never waiting
      // behind tenant a's blocked worker (a wait there would be ≥ 400 ms per request).
      assert.ok(
        r.startedAt - r.scheduledAt < 1_000,
        `tick ${r.scheduledAt} started ${r.startedAt - r.scheduledAt} ms late`,
      );
    }

    // Deadline kills: each takes its worker's net thread with it.
    await run(host, 'a/killed/probe'); // boots a net thread in some worker
    const before = threads();
    for (let i = 0; i < 4; i++) {
      const rec = await run(host, 'a/killed/probe');
      assert.equal(rec.status, 'timed_out', rec.error ?? '');
    }
    await host.scheduler.settle();
    // A killed worker's thread and its net thread exit after the kill returns, while its
    // replacement boots: the count comes down within moments (a leak would keep it up).
    const by = Date.now() + 10_000;
    while (threads() > before + 2 && Date.now() < by) await new Promise((r) => setTimeout(r, 50));
    assert.ok(threads() <= before + 2, `threads: ${before} before four kills, ${threads()} after`);
  });
});

describe('host calls that answer later (the seam outbound HTTP and store-backed handlers use)', () => {
  const wasm = () => new Uint8Array(readFileSync(GUEST.wat('http-probe')));
  const late = (): Promise<HostCallAnswer> =>
    new Promise((r) =>
      setTimeout(() => r({ answer: '{"ok":{"late":true}}', fuel: 7, denied: null }), 50),
    );
  async function callSeam(sandbox: Sandbox): Promise<string> {
    await sandbox.load({
      pluginId: 't/s',
      tenant: 't',
      wasm: wasm(),
      config: { mode: 's', req: '{"id":"x"}' },
      limits: DEFAULT_LIMITS,
    });
    const o = await sandbox.call('t/s', {
      fn: 'run',
      caller: { pluginId: 't/s', tenant: 't', phase: 'run', runId: 1 },
    });
    assert.ok(o.ok, JSON.stringify(o));
    return new TextDecoder().decode(o.output ?? new Uint8Array());
  }

  test('the pool waits for a promise: the guest receives the late answer', async (t) => {
    const pool = new WorkerPoolSandbox({ hostCall: late, size: 1, spareWorkers: 0 });
    t.after(() => pool.close());
    assert.equal(await callSeam(pool), '{"ok":{"late":true}}');
  });

  test('the in-thread sandbox cannot wait: a promise is answered unavailable at once', async (t) => {
    const sandbox = new InThreadSandbox({ hostCall: late });
    t.after(() => sandbox.close());
    const answer = JSON.parse(await callSeam(sandbox)) as { error: { code: string } };
    assert.equal(answer.error.code, 'unavailable');
  });
});
