/**
 * The three languages' example pollers (guest-examples/{rust,assemblyscript,go}/poller) poll a
 * feed over HTTP through the real worker pool, from a loopback server this test starts (allowed
 * for the test tenant explicitly): each item is reported once, across runs on any worker and
 * across a restart of the host (the ids seen live in the plugin's persistent Extism variables);
 * the official PDKs' HTTP helpers meet the host's policy and its typed errors.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseHostConfig } from '../../src/config/host-config.ts';
import type { Host } from '../../src/host/host.ts';
import type { RunRecord } from '../../src/store/types.ts';
import { startFeedServer, type FeedServer } from '../support/feed-server.ts';
import { ManualClock, T0, startHost, tempDir, type StartedHost } from './helpers.ts';

const LANGUAGES = [
  { lang: 'rust', plugin: 'rust-poller', format: 'json' },
  { lang: 'assemblyscript', plugin: 'poller', format: 'rss' },
  { lang: 'go', plugin: 'go-poller', format: 'json' },
] as const;

const manifest = (lang: string) =>
  fileURLToPath(new URL(`../../guest-examples/${lang}/poller/hourglass.json`, import.meta.url));

interface PollResult {
  readonly new: { id: string; title: string }[];
  readonly seen: number;
}

function configFor(
  dir: string,
  feeds: FeedServer,
  lang: string,
  feedUrl: string,
  hosts?: string[],
) {
  return parseHostConfig(
    {
      store: { path: join(dir, 'hg.db') },
      sandbox: { mode: 'pool', workers: 2 },
      tenants: [
        {
          id: 't',
          http: {
            allowedHosts: hosts ?? [`http://127.0.0.1:${feeds.port}`],
            allowPrivate: ['127.0.0.1/32'],
            limits: { timeoutMs: 1_000 },
          },
          plugins: [{ manifest: manifest(lang), config: { feed_url: feedUrl } }],
        },
      ],
    },
    join(dir, 'config.json'),
    dir,
  );
}

async function trigger(host: Host, key: string): Promise<RunRecord> {
  const r = host.operate(key, 'trigger');
  assert.ok(r.ok, `trigger ${key}: ${r.ok ? '' : r.message}`);
  await host.scheduler.settle();
  const rec = host.store.listRuns({ scheduleKey: key, limit: 1 })[0];
  assert.ok(rec, `no run of ${key}`);
  return rec;
}

/** Starts the host and makes its poller create `poll-feed-1` (its housekeeping does). */
async function started(config: ReturnType<typeof configFor>, plugin: string): Promise<StartedHost> {
  const h = await startHost(config, new ManualClock(T0));
  assert.deepEqual(h.failed, []);
  if (!h.host.store.getSchedule(`t/${plugin}/poll-feed-1`)) {
    const hk = await trigger(h.host, `t/${plugin}/housekeeping`);
    assert.equal(hk.status, 'succeeded', hk.error ?? '');
  }
  return h;
}

async function poll(host: Host, plugin: string): Promise<PollResult> {
  const rec = await trigger(host, `t/${plugin}/poll-feed-1`);
  assert.equal(rec.status, 'succeeded', `${rec.status}: ${rec.error ?? ''}`);
  return JSON.parse(rec.result ?? 'null') as PollResult;
}

const ids = (r: PollResult) => r.new.map((i) => i.id);

describe('the example pollers fetch a feed over HTTP through the pool', () => {
  for (const { lang, plugin, format } of LANGUAGES) {
    test(`${lang}: each item is reported once, across runs and a restart`, async (t) => {
      const feeds = await startFeedServer();
      t.after(() => feeds.close());
      feeds.items = [
        { id: 'b', title: 'Second' },
        { id: 'a', title: 'First' },
      ];
      const dir = tempDir(t);
      const config = configFor(dir, feeds, lang, `${feeds.url}/feed.${format}`);
      let h = await started(config, plugin);
      try {
        const first = await poll(h.host, plugin);
        assert.deepEqual(ids(first).sort(), ['a', 'b']);
        assert.deepEqual(ids(await poll(h.host, plugin)), [], 'nothing new on the second run');
        feeds.addItem({ id: 'c', title: 'Third' });
        // Several runs: the pool has two workers, and each must see what the others reported.
        assert.deepEqual(ids(await poll(h.host, plugin)), ['c']);
        for (let i = 0; i < 3; i++) assert.deepEqual(ids(await poll(h.host, plugin)), []);
      } finally {
        await h.stop();
      }
      h = await started(config, plugin);
      try {
        const after = await poll(h.host, plugin);
        assert.deepEqual(ids(after), [], 'the restarted host remembers what was reported');
        assert.equal(after.seen, 3);
        feeds.addItem({ id: 'd', title: 'Fourth' });
        assert.deepEqual(ids(await poll(h.host, plugin)), ['d']);
      } finally {
        await h.stop();
      }
      assert.equal(feeds.requestsTo(`/feed.${format}`).length, 8, 'one request a run');
    });
  }

  test('the PDKs meet the policy: a feed off the allowlist is denied (and never requested), a slow feed fails the run with the typed timeout', async (t) => {
    const feeds = await startFeedServer();
    t.after(() => feeds.close());
    const dir = tempDir(t);
    // Allowed: only another port; the feed's port is not on the tenant's list.
    const denied = configFor(dir, feeds, 'go', `${feeds.url}/feed.json`, ['http://127.0.0.1:1']);
    let h = await started(denied, 'go-poller');
    try {
      const rec = await trigger(h.host, 't/go-poller/poll-feed-1');
      assert.equal(rec.status, 'host_call_denied');
      assert.match(rec.error ?? '', /http_request: denied: .* not on the tenant's allowlist/);
    } finally {
      await h.stop();
    }
    assert.equal(feeds.requestsTo('/feed.json').length, 0);

    const dir2 = tempDir(t);
    h = await started(configFor(dir2, feeds, 'rust', `${feeds.url}/slow`), 'rust-poller');
    try {
      const rec = await trigger(h.host, 't/rust-poller/poll-feed-1');
      assert.equal(rec.status, 'failed', rec.error ?? '');
      assert.match(rec.error ?? '', /http: timeout: /);
    } finally {
      await h.stop();
    }
  });

  for (const [lang, plugin] of [
    ['assemblyscript', 'webhook'],
    ['rust', 'rust-webhook'],
  ] as const) {
    test(`${lang} webhook: each run POSTs its report; a non-2xx answer fails the run`, async (t) => {
      const feeds = await startFeedServer();
      t.after(() => feeds.close());
      const dir = tempDir(t);
      const config = parseHostConfig(
        {
          store: { path: join(dir, 'hg.db') },
          tenants: [
            {
              id: 't',
              http: {
                allowedHosts: [`http://127.0.0.1:${feeds.port}`],
                allowPrivate: ['127.0.0.1'],
              },
              plugins: [
                {
                  manifest: fileURLToPath(
                    new URL(`../../guest-examples/${lang}/webhook/hourglass.json`, import.meta.url),
                  ),
                  config: { webhook_url: `${feeds.url}/hook` },
                },
              ],
            },
          ],
        },
        join(dir, 'config.json'),
        dir,
      );
      const h = await startHost(config, new ManualClock(T0));
      t.after(() => h.stop());
      assert.deepEqual(h.failed, []);
      const key = `t/${plugin}/report`;
      const ok = await trigger(h.host, key);
      assert.equal(ok.status, 'succeeded', ok.error ?? '');
      await feeds.waitFor(() => feeds.hooks.length === 1);
      const hook = feeds.hooks[0];
      assert.ok(hook);
      assert.equal(hook.method, 'POST');
      assert.equal(hook.headers['content-type'], 'application/json');
      const report = JSON.parse(hook.body) as Record<string, unknown>;
      assert.equal(report.schedule, 'report');
      assert.equal(String(report.runId), String(ok.id));
      assert.equal(report.trigger, 'manual');

      feeds.hookStatus = 500;
      const failed = await trigger(h.host, key);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /http: status 500/);
    });
  }
});
