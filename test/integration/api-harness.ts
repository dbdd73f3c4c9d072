/**
 * A real host (the proxy guest for tenants `a` and `b`, plugin `p` each) with its HTTP API on a
 * loopback port, and tokens for the operator and each tenant: what the API and dashboard tests
 * drive.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { hashToken, newToken } from '../../src/api/auth.ts';
import { serveApi } from '../../src/api/serve.ts';
import type { RunningApi } from '../../src/api/server.ts';
import { openHost, type OpenedHost } from '../../src/cluster/open-host.ts';
import { CAPABILITIES } from '../../src/capabilities.ts';
import type { HostConfig } from '../../src/config/host-config.ts';
import type { HostOptions } from '../../src/host/host.ts';
import { createLogger } from '../../src/observability/log.ts';
import {
  GUEST,
  ManualClock,
  T0,
  decls,
  logLines,
  makeConfig,
  storeDir,
  type StoreKind,
} from './helpers.ts';

export const TOKENS = { ops: newToken(), a: newToken(), b: newToken() };

/** Schedules each tenant's plugin declares (the proxy guest's `schedules`). */
export const DECLARATIONS: readonly Record<string, unknown>[] = [
  { id: 's1', every: '1h', payload: {} },
  { id: 's2', every: '1h', payload: { fail: 'no luck' } },
];

function config(
  dir: string,
  api: Record<string, unknown>,
  declarations: readonly Record<string, unknown>[],
): HostConfig {
  const plugin = (tenant: string) => ({
    name: 'p',
    wasm: GUEST.proxy,
    config: {
      schedules: decls(...declarations),
      discovery_calls: JSON.stringify([
        { fn: 'jobs_register', args: { name: `${tenant}-job`, cron: '0 * * * *' } },
      ]),
    },
  });
  return makeConfig(
    dir,
    [
      { id: 'a', plugins: [plugin('a')] },
      // Tenant b does not grant schedule_delete (uploads asking for it are refused).
      {
        id: 'b',
        capabilities: CAPABILITIES.filter((c) => c !== 'schedule_delete'),
        plugins: [plugin('b')],
      },
    ],
    {
      api: {
        port: 0,
        tokens: [
          { name: 'ops', sha256: hashToken(TOKENS.ops) },
          { name: 'team-a', tenant: 'a', sha256: hashToken(TOKENS.a) },
          { name: 'team-b', tenant: 'b', sha256: hashToken(TOKENS.b) },
        ],
        ...api,
      },
    },
  );
}

export interface Served {
  readonly opened: OpenedHost;
  readonly api: RunningApi;
  readonly config: HostConfig;
  readonly clock: ManualClock;
  /** The folder of the store and the plugins' manifests (`<tenant>-p.json`). */
  readonly dir: string;
  log(): Record<string, unknown>[];
  call(
    who: keyof typeof TOKENS | 'none' | 'bad',
    path: string,
    init?: { method?: string; body?: unknown },
  ): Promise<{ status: number; body: unknown }>;
}

export async function serve(
  t: { after(fn: () => void | Promise<void>): void },
  kind: StoreKind,
  api: Record<string, unknown> = {},
  declarations: readonly Record<string, unknown>[] = DECLARATIONS,
  hostOpts: Pick<HostOptions, 'sandbox'> = {},
): Promise<Served> {
  const dir = await storeDir(t, kind);
  const cfg = config(dir, api, declarations);
  const clock = new ManualClock(T0);
  const opened = await openHost(cfg, { clock, ...hostOpts });
  let out = '';
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => (out += c.toString()));
  const log = createLogger({ destination: sink });
  let started = false;
  const running = await serveApi(opened, cfg, log, { version: 'test', started: () => started });
  assert.ok(running);
  t.after(async () => {
    await opened.stop(0);
    await running.close();
  });
  await opened.start();
  started = true;
  // The API reads the durable store: what the start wrote (declared schedules, plugins) is there
  // before a test's first request (on PostgreSQL the host flushes asynchronously).
  await opened.host.store.committed();
  return {
    opened,
    api: running,
    config: cfg,
    clock,
    dir,
    log: () => logLines(out),
    async call(who, path, init = {}) {
      const headers: Record<string, string> = {};
      if (who === 'bad') headers.authorization = `Bearer ${newToken()}`;
      else if (who !== 'none') headers.authorization = `Bearer ${TOKENS[who]}`;
      if (init.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${running.url}${path}`, {
        method: init.method ?? 'GET',
        headers,
        ...(init.body === undefined
          ? {}
          : { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON (metrics)
      }
      return { status: res.status, body };
    },
  };
}

/** Waits until the host has written everything it recorded (the API reads the durable store). */
export async function written(s: Served): Promise<void> {
  await s.opened.host.store.committed();
}
