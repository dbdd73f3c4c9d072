import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  GUEST,
  T0,
  ManualClock,
  advance,
  decls,
  makeConfig,
  runsOf,
  startHost,
  tempDir,
} from './helpers.ts';

test('guests that trap, fail, return non-zero or garbage leave failed run records; the host keeps firing the others', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const config = makeConfig(dir, [
    {
      id: 'bad',
      quotas: { maxOutputBytes: 1_000 },
      plugins: [
        { name: 'trap', wasm: GUEST.wat('trap'), capabilities: [] },
        { name: 'nonzero', wasm: GUEST.wat('nonzero-return'), capabilities: [] },
        { name: 'errset', wasm: GUEST.wat('error-set'), capabilities: [] },
        {
          name: 'proxy',
          wasm: GUEST.proxy,
          config: {
            schedules: decls(
              { id: 'garbage', every: '1s', payload: { output: 'this is {not json' } },
              { id: 'wrongshape', every: '1s', payload: { output: '{"cursor":1,"extra":true}' } },
              { id: 'huge', every: '1s', payload: { output: 'x'.repeat(5_000) } },
              { id: 'abort', every: '1s', payload: { trap: 'guest gave up' } },
              { id: 'rc', every: '1s', payload: { returnCode: 3 } },
            ),
          },
        },
      ],
    },
    {
      id: 'good',
      plugins: [
        {
          name: 'steady',
          wasm: GUEST.proxy,
          config: { schedules: decls({ id: 'beat', every: '1s' }) },
        },
      ],
    },
  ]);
  const { host } = await startHost(config, clock);
  try {
    await advance(host, clock, 5_000);
    const expect: Record<string, [string, string]> = {
      'bad/trap/boom': ['trapped', 'trap'],
      'bad/nonzero/nz': ['failed', 'nonzero_return'],
      'bad/errset/err': ['failed', 'guest_error'],
      'bad/proxy/garbage': ['failed', 'invalid_output'],
      'bad/proxy/wrongshape': ['failed', 'invalid_output'],
      'bad/proxy/huge': ['failed', 'output_too_large'],
      'bad/proxy/abort': ['trapped', 'abort'],
      'bad/proxy/rc': ['failed', 'nonzero_return'],
    };
    for (const [key, [status, reason]] of Object.entries(expect)) {
      const runs = runsOf(host, key);
      assert.equal(runs.length, 5, `${key} fired every second`);
      for (const r of runs) {
        assert.equal(r.status, status, `${key}: ${r.status} ${r.reason} ${r.error}`);
        assert.equal(r.reason, reason, key);
        assert.ok(r.error && r.error.length > 0, `${key} has a message`);
        assert.ok(r.finishedAt !== null);
      }
    }
    assert.match(runsOf(host, 'bad/errset/err')[0]?.error ?? '', /guest says no/);
    assert.match(runsOf(host, 'bad/proxy/abort')[0]?.error ?? '', /guest gave up/);
    const beats = runsOf(host, 'good/steady/beat');
    assert.equal(beats.length, 5);
    assert.ok(beats.every((r) => r.status === 'succeeded'));
    assert.equal(host.store.listRuns({ status: 'running' }).length, 0);
  } finally {
    await host.stop();
  }
});
