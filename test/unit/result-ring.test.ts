import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallOutcome } from '../../src/sandbox/types.ts';
import {
  MAX_ENTRY_BYTES,
  newRing,
  RING_BYTES,
  RingCorruptError,
  ringAppend,
  ringDrain,
  ringNotify,
  ringPending,
  ringRelease,
  ringWait,
  type RingLog,
} from '../../src/sandbox/pool/result-ring.ts';

function drain(ring: SharedArrayBuffer) {
  const got: [number, CallOutcome][] = [];
  const logs: RingLog[] = [];
  ringDrain(ring, { outcome: (id, o) => got.push([id, o]), log: (l) => logs.push(l) });
  return { got, logs };
}

const ok = (output: Uint8Array | null, fuelUsed: number | null = 42): CallOutcome => ({
  ok: true,
  output,
  durationMs: 1.5,
  fuelUsed,
});

test('result ring: outcomes and log lines round-trip in order, then the ring is empty', () => {
  const ring = newRing();
  assert.equal(ringPending(ring), false);
  const bytes = new Uint8Array([1, 2, 3, 250, 0]);
  const failure: CallOutcome = {
    ok: false,
    status: 'trapped',
    reason: 'trap',
    message: 'unreachable — ü \ud800',
    durationMs: 3,
    fuelUsed: null,
  };
  const line: RingLog = { pluginId: 'a/b', level: 'info', message: 'hello "there"' };
  assert.ok(ringAppend(ring, 7, ok(bytes)));
  assert.ok(ringAppend(ring, -1, null, line));
  assert.ok(ringAppend(ring, 8, ok(null, null)));
  assert.ok(ringAppend(ring, 9, failure));
  assert.ok(ringAppend(ring, 10, { ...ok(null), durationMs: NaN })); // not a plain success: JSON
  assert.equal(ringPending(ring), true);
  const { got, logs } = drain(ring);
  assert.deepEqual(
    got.map(([id]) => id),
    [7, 8, 9, 10],
  );
  assert.deepEqual(got[0]?.[1], ok(bytes));
  assert.deepEqual(got[1]?.[1], ok(null, null));
  assert.deepEqual(got[2]?.[1], failure);
  assert.deepEqual(logs, [line]);
  assert.equal(ringPending(ring), false);
  assert.deepEqual(drain(ring).got, []);
});

test('result ring: outputs are copied out of the ring (an empty one shares one empty array)', () => {
  const ring = newRing();
  assert.ok(ringAppend(ring, 1, ok(new Uint8Array(0))));
  assert.ok(ringAppend(ring, 2, ok(new Uint8Array(0))));
  assert.ok(ringAppend(ring, 3, ok(new Uint8Array([9, 8, 7]))));
  const { got } = drain(ring);
  const [a, b, c] = got.map(([, o]) => (o.ok ? o.output : undefined));
  assert.ok(a instanceof Uint8Array && a.length === 0);
  assert.equal(a, b);
  assert.ok(c instanceof Uint8Array);
  assert.deepEqual([...c], [9, 8, 7]);
  // Not a view of the ring: the worker writing over the released bytes leaves it as it was.
  assert.equal(c.buffer instanceof SharedArrayBuffer, false);
  new Uint8Array(ring).fill(0xee, ring.byteLength - RING_BYTES);
  assert.deepEqual([...c], [9, 8, 7]);
});

test('result ring: an entry too large, or one that finds the ring full, is refused and leaves it intact', () => {
  const ring = newRing();
  assert.ok(ringAppend(ring, 1, ok(null)));
  assert.equal(ringAppend(ring, 2, ok(new Uint8Array(MAX_ENTRY_BYTES))), false);
  const chunk = new Uint8Array(MAX_ENTRY_BYTES - 64);
  let n = 0;
  while (ringAppend(ring, 100 + n, ok(chunk))) n++;
  assert.ok(n >= 2 && n < RING_BYTES / chunk.length);
  const { got } = drain(ring);
  assert.deepEqual(
    got.map(([id]) => id),
    [1, ...Array.from({ length: n }, (_, i) => 100 + i)],
  );
  // Drained: there is room again.
  assert.ok(ringAppend(ring, 3, ok(chunk)));
});

test('result ring: entries wrap around the end (padding) for many rounds', () => {
  const ring = newRing();
  const out = new Uint8Array(10_000).fill(7);
  let id = 1;
  for (let round = 0; round < 50; round++) {
    const first = id;
    for (let i = 0; i < 37; i++) assert.ok(ringAppend(ring, id++, ok(out)));
    const { got } = drain(ring);
    assert.deepEqual(
      got.map(([i]) => i),
      Array.from({ length: 37 }, (_, i) => first + i),
    );
    for (const [, o] of got) assert.deepEqual(o, ok(out));
  }
});

test('result ring: an entry not yet published (a worker killed mid-write) is invisible', () => {
  const ring = newRing();
  assert.ok(ringAppend(ring, 1, ok(null)));
  const ctl = new Int32Array(ring, 0, 4);
  const published = Atomics.load(ctl, 0);
  assert.ok(ringAppend(ring, 2, ok(new Uint8Array([1]))));
  Atomics.store(ctl, 0, published); // as if the worker died before storing WRITE
  assert.deepEqual(
    drain(ring).got.map(([id]) => id),
    [1],
  );
});

test('result ring: corrupt framing throws RingCorruptError after what preceded it, reading nothing outside', () => {
  for (const corrupt of [
    (v: DataView, at: number) => v.setInt32(at, 12, true), // size not a multiple of 8
    (v: DataView, at: number) => v.setInt32(at, RING_BYTES * 2, true), // size past what is published
    (v: DataView, at: number) => v.setInt32(at + 12, 1 << 30, true), // output longer than the entry
    (v: DataView, at: number) => v.setInt32(at + 8, -7, true), // meta length
    (v: DataView, at: number) => v.setInt32(at + 4, -5, true), // unknown tag
    (v: DataView, at: number) => v.setUint8(at + 16, 0x5d), // JSON text broken
  ]) {
    const ring = newRing();
    assert.ok(ringAppend(ring, 1, ok(null)));
    const ctl = new Int32Array(ring, 0, 4);
    const at = Atomics.load(ctl, 0);
    assert.ok(
      ringAppend(ring, 2, {
        ok: false,
        status: 'trapped',
        reason: 'trap',
        message: 'x',
        durationMs: 1,
        fuelUsed: null,
      }),
    );
    corrupt(new DataView(ring, 64), at);
    const got: number[] = [];
    assert.throws(
      () => ringDrain(ring, { outcome: (id) => got.push(id), log: () => undefined }),
      RingCorruptError,
    );
    assert.deepEqual(got, [1]);
  }
});

test('result ring: ringWait resolves when the worker notifies, is null while entries wait, and ringRelease ends it', async () => {
  const ring = newRing();
  const wait = ringWait(ring);
  assert.ok(wait);
  assert.ok(ringAppend(ring, 1, ok(null)));
  ringNotify(ring);
  await wait;
  assert.equal(ringWait(ring), null); // an entry waits: read it first
  drain(ring);
  const second = ringWait(ring);
  assert.ok(second);
  ringRelease(ring);
  await second;
});

test("result ring: an outcome with changes to its plugin's variables round-trips them (not on the fast path)", () => {
  const ring = newRing();
  const vars = {
    base: 7,
    changes: [
      ['n', new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0])],
      ['gone', null],
    ] as [string, Uint8Array | null][],
  };
  const outcome: CallOutcome = {
    ok: true,
    output: new Uint8Array([1, 2]),
    durationMs: 1.5,
    fuelUsed: 42,
    vars,
  };
  assert.equal(ringAppend(ring, 5, outcome), true);
  const { got } = drain(ring);
  assert.deepEqual(got, [[5, outcome]]);
});
