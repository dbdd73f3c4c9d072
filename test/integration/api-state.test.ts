/**
 * A plugin's state over the HTTP API (`GET` / `DELETE /v1/plugins/:tenant/:name/state`), with
 * the tenant scope of every other route, on both stores; and the remote CLI's store layer
 * (`--url`) over it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openHttpOperatorStore } from '../../src/operator/http-access.ts';
import { serve, TOKENS } from './api-harness.ts';
import { STORES } from './helpers.ts';

const utf8 = new TextEncoder();
const b64 = (s: string) => Buffer.from(s).toString('base64');
const errCode = (body: unknown) => (body as { error: { code: string } }).error.code;

for (const kind of STORES) {
  describe(`plugin state over the HTTP API on ${kind}`, () => {
    test('GET lists a plugin’s variables, DELETE clears one or all through its host; another tenant’s plugin is not found', async (t) => {
      const s = await serve(t, kind);
      const host = s.opened.host;
      const a = host.pluginVars('a/p');
      assert.ok(a);
      assert.equal(
        a.apply([
          ['n', new Uint8Array([1, 0])],
          ['greeting', utf8.encode('hi')],
        ]),
        true,
      );
      host.pluginVars('b/p')?.apply([['secret', utf8.encode('b only')]]);
      await host.store.committed();
      const got = await s.call('a', '/v1/plugins/a/p/state');
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, {
        plugin: 'a/p',
        bytes: 1 + 2 + 64 + 8 + 2 + 64,
        updatedAt: (got.body as { updatedAt: number }).updatedAt,
        vars: [
          { key: 'greeting', bytes: 2, counts: 74, base64: b64('hi') },
          { key: 'n', bytes: 2, counts: 67, base64: Buffer.from([1, 0]).toString('base64') },
        ],
      });
      assert.equal((await s.call('ops', '/v1/plugins/b/p/state')).status, 200);
      for (const [who, path] of [
        ['b', '/v1/plugins/a/p/state'],
        ['a', '/v1/plugins/b/p/state'],
        ['ops', '/v1/plugins/a/nope/state'],
      ] as const) {
        const r = await s.call(who, path);
        assert.equal(r.status, 404, `${who} ${path}`);
        assert.equal(errCode(r.body), 'HG_API_NOT_FOUND');
      }
      const denied = await s.call('b', '/v1/plugins/a/p/state?key=n', { method: 'DELETE' });
      assert.equal(denied.status, 404);
      assert.equal(a.size, 2);
      const one = await s.call('a', '/v1/plugins/a/p/state?key=n', { method: 'DELETE' });
      assert.deepEqual(
        [one.status, one.body],
        [200, { ok: true, via: 'host', value: 'cleared 1' }],
      );
      assert.equal(a.get('n'), undefined);
      const left = (await s.call('ops', '/v1/plugins/a/p/state')).body as { vars: unknown[] };
      assert.equal(left.vars.length, 1);
      // The remote CLI (`--url`): the same routes.
      const remote = openHttpOperatorStore(s.api.url, TOKENS.ops);
      const rec = await remote.getPluginState('a/p');
      assert.equal(rec?.vars, JSON.stringify([['greeting', b64('hi')]]));
      const all = await remote.applyCommand('a/p', 'clear_state', null);
      assert.deepEqual([all.ok, all.value], [true, 'cleared 1']);
      assert.equal(a.size, 0);
      assert.deepEqual(
        ((await s.call('ops', '/v1/plugins/a/p/state')).body as { vars: unknown[] }).vars,
        [],
      );
      assert.equal(host.pluginVars('b/p')?.size, 1);
    });
  });
}
