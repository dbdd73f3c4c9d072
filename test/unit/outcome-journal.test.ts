import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallOutcome } from '../../src/sandbox/types.ts';
import {
  journalAppend,
  journalClear,
  journalRead,
  newJournal,
  outcomeMeta,
  JOURNAL_BYTES,
} from '../../src/sandbox/pool/outcome-journal.ts';

const append = (j: SharedArrayBuffer, id: number, o: CallOutcome) =>
  journalAppend(j, id, outcomeMeta(o), o.ok ? o.output : null);

test('outcome journal: outcomes round-trip (output bytes, null output, failures) and clear empties it', () => {
  const j = newJournal();
  assert.equal(journalRead(j).size, 0);
  const bytes = new Uint8Array([1, 2, 3, 250, 0]);
  assert.ok(append(j, 7, { ok: true, output: bytes, durationMs: 1.5, fuelUsed: 42 }));
  assert.ok(append(j, 8, { ok: true, output: null, durationMs: 0, fuelUsed: null }));
  const failure = {
    ok: false as const,
    status: 'trapped' as const,
    reason: 'trap',
    message: 'unreachable — ü',
    durationMs: 3,
    fuelUsed: null,
  };
  assert.ok(append(j, 9, failure));
  const read = journalRead(j);
  assert.deepEqual([...read.keys()], [7, 8, 9]);
  assert.deepEqual(read.get(7), { ok: true, output: bytes, durationMs: 1.5, fuelUsed: 42 });
  assert.deepEqual(read.get(8), { ok: true, output: null, durationMs: 0, fuelUsed: null });
  assert.deepEqual(read.get(9), failure);
  journalClear(j);
  assert.equal(journalRead(j).size, 0);
});

test('outcome journal: an outcome that does not fit is refused and leaves the journal intact', () => {
  const j = newJournal();
  assert.ok(append(j, 1, { ok: true, output: null, durationMs: 0, fuelUsed: null }));
  const big = new Uint8Array(JOURNAL_BYTES);
  assert.equal(append(j, 2, { ok: true, output: big, durationMs: 0, fuelUsed: null }), false);
  assert.deepEqual([...journalRead(j).keys()], [1]);
});
