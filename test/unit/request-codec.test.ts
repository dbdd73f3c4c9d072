import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchCall } from '../../src/sandbox/pool/protocol.ts';
import {
  BatchDecodeError,
  decodeBatch,
  encodeBatch,
} from '../../src/sandbox/pool/request-codec.ts';

const run = (i: number, over: Partial<BatchCall> = {}): BatchCall => ({
  callId: 1000 + i,
  seq: i,
  pluginId: 't/p',
  req: {
    fn: 'run',
    input: `{"i":${i}}`,
    caller: {
      pluginId: 't/p',
      tenant: 't',
      phase: 'run',
      scheduleKey: `k${i}`,
      runId: 77 + i,
      scheduledAt: 1_764_640_000_000 + i,
    },
  },
  ...over,
});

/** What the JSON encoding it replaces delivered. */
const viaJson = (calls: BatchCall[]): BatchCall[] => JSON.parse(JSON.stringify(calls));

test('a batch round-trips exactly as JSON did: order, slow flags, absent fields', () => {
  const calls: BatchCall[] = [
    run(0),
    run(1, { slow: true }),
    {
      callId: 3,
      seq: 2,
      pluginId: 'a/b',
      req: { fn: 'schedules', caller: { pluginId: 'a/b', tenant: 'a', phase: 'discovery' } },
    },
    {
      callId: 2 ** 31 - 1,
      seq: 2 ** 30,
      pluginId: 'a/b',
      req: { fn: 'cleanup', input: '', caller: { pluginId: 'a/b', tenant: 'a', phase: 'cleanup' } },
    },
  ];
  assert.deepEqual(decodeBatch(encodeBatch(calls)), viaJson(calls));
  assert.deepEqual(decodeBatch(encodeBatch([])), []);
});

test('non-ASCII and long strings survive (UTF-8 paths)', () => {
  const long = 'x'.repeat(300) + 'é';
  const calls = [
    run(0, {
      pluginId: 'tén/πλ',
      req: {
        fn: 'run',
        input: `{"s":"${long}","e":"😀 \\u0000 ünï"}`,
        caller: { pluginId: 'tén/πλ', tenant: 'tén', phase: 'run', scheduleKey: '日本' },
      },
    }),
    run(1, { req: { ...run(1).req, input: 'a'.repeat(5000) } }),
    run(2, { req: { ...run(2).req, input: 'b'.repeat(64) } }),
    run(3, { req: { ...run(3).req, input: 'c'.repeat(65) } }),
    // Either side of the longest string the encoder writes in a loop (longer: Buffer.write).
    run(4, { req: { ...run(4).req, input: 'd'.repeat(32) } }),
    run(5, { req: { ...run(5).req, input: 'e'.repeat(33) } }),
    run(6, { req: { ...run(6).req, input: `${'f'.repeat(40)}ü` } }),
    run(7, { req: { ...run(7).req, input: `ü${'g'.repeat(40)}` } }),
  ];
  assert.deepEqual(decodeBatch(encodeBatch(calls)), viaJson(calls));
});

test('strings that are not well-formed (lone surrogates) arrive as JSON delivered them', () => {
  const lone = 'a\ud800b\udc00' + 'z'.repeat(5000) + '\ud83d';
  const calls = [
    run(0, {
      req: { ...run(0).req, input: lone },
    }),
    run(1, {
      req: { ...run(1).req, caller: { ...run(1).req.caller, scheduleKey: 'k\udfff' } },
    }),
  ];
  const back = decodeBatch(encodeBatch(calls));
  assert.deepEqual(back, viaJson(calls));
  assert.equal(back[0]?.req.input, lone);
});

test('a truncated or inconsistent buffer is refused, never read past its end', () => {
  const buf = encodeBatch([run(0), run(1)]);
  // The buffer is sized by an upper bound: the bytes written are its length field.
  const used = new DataView(buf).getInt32(4, true);
  assert.ok(used > 8 && used <= buf.byteLength);
  for (let cut = 0; cut < used; cut += 7) {
    assert.throws(() => decodeBatch(buf.slice(0, cut)), BatchDecodeError);
  }
  assert.deepEqual(decodeBatch(buf.slice(0, used)), decodeBatch(buf));
  const long = buf.slice(0);
  new DataView(long).setInt32(4, buf.byteLength + 1, true);
  assert.throws(() => decodeBatch(long), BatchDecodeError);
  // A length that cuts the last call short is a truncated batch, whatever follows it.
  const short = buf.slice(0);
  new DataView(short).setInt32(4, used - 1, true);
  assert.throws(() => decodeBatch(short), BatchDecodeError);
  const bad = buf.slice(0);
  new DataView(bad).setInt32(0, 1 << 28, true);
  assert.throws(() => decodeBatch(bad), BatchDecodeError);
  const neg = buf.slice(0);
  // The first string's head (after count, length and the fixed part): a negative length.
  new DataView(neg).setInt32(8 + 28, -6, true);
  assert.throws(() => decodeBatch(neg), BatchDecodeError);
});

test("a call's snapshot of its plugin's variables round-trips (binary values, UTF-8 keys), and calls without one carry nothing", () => {
  const vars = {
    version: 41,
    entries: [
      ['n', new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])],
      ['clé', new Uint8Array([0, 255, 128])],
      ['empty', new Uint8Array(0)],
    ] as [string, Uint8Array][],
  };
  const [a, b, c] = decodeBatch(
    encodeBatch([run(0, { vars }), run(1), run(2, { slow: true, vars })]),
  );
  assert.deepEqual(a?.vars, vars);
  assert.equal(b?.vars, undefined);
  assert.equal('vars' in (b as object), false);
  assert.deepEqual(c?.vars, vars);
  assert.equal(c?.slow, true);
  assert.equal(c?.req.input, '{"i":2}');
});
