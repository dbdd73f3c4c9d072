/**
 * The loopback test server (test/support/feed-server.ts): its routes answer as documented,
 * requests are recorded, and close() ends even while a slow and an endless answer are open.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { startFeedServer } from '../support/feed-server.ts';

test('feed server: feeds follow the items, hooks and statuses, redirects, records requests', async (t) => {
  const server = await startFeedServer();
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  server.items = [{ id: 'a', title: 'First & <best>' }];
  const first = await fetch(`${server.url}/feed.json`, { headers: { 'x-test': 'yes' } });
  assert.equal(first.status, 200);
  assert.match(first.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(await first.json(), { items: [{ id: 'a', title: 'First & <best>' }] });

  server.addItem({ id: 'b', title: 'Second', link: 'http://example.test/b' });
  const json = (await (await fetch(`${server.url}/feed.json`)).json()) as { items: unknown[] };
  assert.deepEqual(json.items, [
    { id: 'b', title: 'Second', url: 'http://example.test/b' },
    { id: 'a', title: 'First & <best>' },
  ]);
  const rss = await (await fetch(`${server.url}/feed.rss`)).text();
  assert.match(rss, /<rss version="2\.0">/);
  assert.match(rss, /<title>First &amp; &lt;best&gt;<\/title>/);
  assert.match(rss, /<guid isPermaLink="false">b<\/guid>/);
  assert.ok(rss.indexOf('>b</guid>') < rss.indexOf('>a</guid>'), 'newest first');

  const hook = await fetch(`${server.url}/hook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"n":1}',
  });
  assert.equal(hook.status, 200);
  assert.deepEqual(await hook.json(), { received: 1 });
  server.hookStatus = 503;
  assert.equal((await fetch(`${server.url}/hook`, { method: 'POST', body: 'x' })).status, 503);
  assert.deepEqual(
    server.hooks.map((h) => [h.body, h.headers['content-type']]),
    [
      ['{"n":1}', 'application/json'],
      ['x', 'text/plain;charset=UTF-8'],
    ],
  );
  assert.equal((await fetch(`${server.url}/hook`)).status, 405);

  assert.equal((await fetch(`${server.url}/status/418`)).status, 418);
  assert.equal((await fetch(`${server.url}/status/204`)).status, 204);
  assert.equal((await fetch(`${server.url}/nope`)).status, 404);
  const to = `${server.url}/feed.json`;
  const redirect = await fetch(`${server.url}/redirect?to=${encodeURIComponent(to)}`, {
    redirect: 'manual',
  });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), to);

  server.respond('/broken.json', { status: 200, body: '{"items": oops' });
  assert.equal(await (await fetch(`${server.url}/broken.json`)).text(), '{"items": oops');

  const recorded = server.requestsTo('/feed.json');
  assert.equal(recorded.length, 2);
  assert.equal(recorded[0]?.method, 'GET');
  assert.equal(recorded[0]?.headers['x-test'], 'yes');
  assert.equal(server.requestsTo('/redirect')[0]?.query, `to=${encodeURIComponent(to)}`);
});

test('feed server: /slow finishes after slowMs; /huge is bounded by hugeBytes', async (t) => {
  const server = await startFeedServer();
  t.after(() => server.close());
  server.slowMs = 1;
  assert.equal(await (await fetch(`${server.url}/slow`)).text(), 'slow done');
  server.hugeBytes = 200_000;
  const body = await (await fetch(`${server.url}/huge`)).arrayBuffer();
  assert.equal(body.byteLength, 200_000);
});

test('feed server: close() ends open slow and endless answers', async () => {
  const server = await startFeedServer();
  // An endless body, read as it comes, and a slow answer that never finishes.
  const endless = new Promise<{ bytes: number; error: string }>((resolve) => {
    let bytes = 0;
    const req = request(`${server.url}/huge`, (res) => {
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('error', (e) => resolve({ bytes, error: e.message }));
      res.on('close', () => resolve({ bytes, error: 'closed' }));
    });
    req.on('error', (e) => resolve({ bytes, error: e.message }));
    req.end();
  });
  const slow = fetch(`${server.url}/slow`).then((r) => r.text());
  await server.waitFor(
    () => server.requestsTo('/huge').length === 1 && server.requestsTo('/slow').length === 1,
  );
  await server.close();
  await assert.rejects(slow);
  const ended = await endless;
  assert.ok(ended.error.length > 0);
  await server.close(); // idempotent
});
