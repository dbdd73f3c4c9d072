import assert from 'node:assert/strict';
import { test } from 'node:test';
import { patchedRecord } from '../../src/store/schedule-record.ts';
import type { ScheduleRecord } from '../../src/store/types.ts';

const base: ScheduleRecord = {
  key: 't/p:a',
  pluginId: 't/p',
  tenant: 't',
  localId: 'a',
  origin: 'declared',
  spec: { kind: 'every', every: '1m', everyMs: 60_000 },
  jitter: null,
  jitterMs: 0,
  payload: '{"x":1}',
  overlap: 'skip',
  misfire: 'run-once',
  description: 'd',
  scope: 'cluster',
  priority: 7,
  declHash: 'h',
  state: 'active',
  pauseNote: null,
  anchorAt: 1,
  nextAt: 60_001,
  cursor: 'c1',
  bufferedAt: 5,
  createdAt: 1,
  updatedAt: 2,
  generation: 3,
  retry: '{"maxAttempts":2}',
  job: 'j',
  breakerAfter: 4,
  failStreak: 1,
};

test('patchedRecord: the patch wins field by field, the rest is the record, nothing else appears', () => {
  const p = patchedRecord(base, { state: 'paused', pauseNote: 'why', nextAt: null, cursor: null });
  assert.deepEqual(p, { ...base, state: 'paused', pauseNote: 'why', nextAt: null, cursor: null });
  assert.notEqual(p, base);
  assert.deepEqual(Object.keys(p), Object.keys(base));
  assert.deepEqual(patchedRecord(base), base);
});

test('patchedRecord: generation can be set, and an explicit undefined clears it', () => {
  const { generation: _, ...fresh } = base;
  assert.equal(patchedRecord(fresh as ScheduleRecord, { generation: 1 }).generation, 1);
  assert.equal(patchedRecord(base, { generation: undefined }).generation, undefined);
  assert.equal(patchedRecord(base, {}).generation, 3);
});
