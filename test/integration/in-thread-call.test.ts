/**
 * InThreadSandbox's call path: calls to one instance run one at a time and in order, whether
 * they finish at once (`callNow` without a promise) or not; a call made while another runs (here
 * from inside a host function, re-entrantly) waits and then runs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import type { CallOutcome, CallRequest, CallerContext } from '../../src/sandbox/types.ts';
import { GUEST } from './helpers.ts';

const caller: CallerContext = { pluginId: 't/f', tenant: 't', phase: 'run' };
const req: CallRequest = { fn: 'run', input: '{}', caller };

test('a call made from inside a host function waits for the running call, then runs', async () => {
  const answer = '{"error":{"code":"not_found","message":"no"}}';
  const nested: { call?: Promise<CallOutcome> } = {};
  let hostCalls = 0;
  const sandbox: InThreadSandbox = new InThreadSandbox({
    hostCall: () => {
      hostCalls++;
      nested.call ??= sandbox.call('t/f', req);
      return { answer, fuel: 0, denied: null };
    },
  });
  try {
    await sandbox.load({
      pluginId: 't/f',
      tenant: 't',
      wasm: new Uint8Array(readFileSync(GUEST.wat('forged-id'))),
      config: {},
      limits: DEFAULT_LIMITS,
    });
    const first = sandbox.callNow('t/f', req);
    assert.ok(!(first instanceof Promise), 'a call that returns finishes without a promise');
    assert.equal(first.ok, true);
    assert.equal(hostCalls, 1, 'the nested call waited for the first one');
    assert.ok(nested.call);
    const second = await nested.call;
    assert.equal(second.ok, true);
    assert.equal(hostCalls, 2);
    // Many at once: all settle, in order, each with the outcome of its own call.
    const all = await Promise.all(Array.from({ length: 20 }, () => sandbox.call('t/f', req)));
    assert.ok(all.every((o) => o.ok));
    assert.equal(hostCalls, 22);
  } finally {
    await sandbox.close();
  }
});

test('an unknown plugin is refused: callNow throws, call rejects (HG_HOST_STATE)', async () => {
  const sandbox = new InThreadSandbox({ hostCall: () => '{"ok":null}' });
  assert.throws(() => sandbox.callNow('nope', req), { code: 'HG_HOST_STATE' });
  await assert.rejects(sandbox.call('nope', req), { code: 'HG_HOST_STATE' });
});
