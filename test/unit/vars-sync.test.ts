/**
 * The pool's bookkeeping of plugin variables (src/sandbox/pool/vars-sync.ts) on its own: when a
 * call carries a snapshot, what a call's reported changes do to the main copy and to what the
 * pool knows of the worker's copy, and the cases that must leave the worker stale.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PluginVars } from '../../src/sandbox/plugin-vars.ts';
import { pendingCall, type PendingCall } from '../../src/sandbox/pool/dispatch.ts';
import {
  applyVars,
  snapshotFor,
  snapshotLost,
  type VarsCopies,
} from '../../src/sandbox/pool/vars-sync.ts';
import type { CallOutcome } from '../../src/sandbox/types.ts';

const bytes = (...b: number[]) => new Uint8Array(b);

function callOf(id: number, vars: PluginVars): PendingCall {
  return pendingCall(
    id,
    't/p',
    't',
    1000,
    { fn: 'run', caller: { pluginId: 't/p', tenant: 't', phase: 'run' }, vars },
    () => undefined,
    undefined,
  );
}

/** A successful outcome reporting `changes` made on a copy at version `base`. */
const ok = (base: number, ...changes: [string, Uint8Array | null][]): CallOutcome => ({
  ok: true,
  output: null,
  durationMs: 1,
  fuelUsed: 1,
  ...(changes.length > 0 ? { vars: { base, changes } } : {}),
});

test('a snapshot goes with the first call to a worker, and again only once the copy is stale', () => {
  const vars = new PluginVars(1000);
  const copies: VarsCopies = new Map();
  const c1 = callOf(1, vars);
  assert.deepEqual(snapshotFor(copies, c1), { version: 0, entries: [] });
  assert.equal(snapshotFor(copies, callOf(2, vars)), undefined);
  // c1 changes "n" on the worker (its copy 0 → 1); the main copy was at 0 too: both at 1.
  assert.equal(applyVars(c1, ok(0, ['n', bytes(1)]), copies).ok, true);
  assert.equal(vars.version, 1);
  assert.equal(snapshotFor(copies, callOf(3, vars)), undefined);
  // Another worker's change: this worker's copy is stale, and gets the current one.
  assert.equal(vars.apply([['m', bytes(2)]]), true);
  const c4 = callOf(4, vars);
  const snap = snapshotFor(copies, c4);
  assert.equal(snap?.version, 2);
  assert.deepEqual(
    snap?.entries.map(([k]) => k),
    ['n', 'm'],
  );
});

test('changes made on a copy that was not current: applied (last writer wins), the worker stays stale', () => {
  const vars = new PluginVars(1000);
  const copies: VarsCopies = new Map();
  const c1 = callOf(1, vars);
  snapshotFor(copies, c1);
  applyVars(c1, ok(0), copies); // the snapshot arrived; no change
  assert.equal(vars.apply([['n', bytes(5)]]), true); // elsewhere: version 1
  const c2 = callOf(2, vars); // posted before anything told this worker
  assert.notEqual(snapshotFor(copies, c2), undefined);
  applyVars(c2, ok(1, ['n', bytes(6)]), copies);
  assert.deepEqual(vars.get('n')?.value, bytes(6));
  assert.equal(snapshotFor(copies, callOf(3, vars)), undefined); // c2 started from 1: current
});

test('outcomes of calls posted before a snapshot do not make the worker look current', () => {
  const vars = new PluginVars(1000);
  const copies: VarsCopies = new Map();
  const early = callOf(1, vars);
  snapshotFor(copies, early);
  applyVars(early, ok(0), copies);
  const before = callOf(2, vars); // posted, no snapshot (current at 0)
  assert.equal(snapshotFor(copies, before), undefined);
  vars.clear(); // nothing to clear: no change
  assert.equal(vars.apply([['x', bytes(1)]]), true); // elsewhere: version 1
  const withSnap = callOf(3, vars);
  assert.equal(snapshotFor(copies, withSnap)?.version, 1);
  // `before` ran on the old copy (0) and changed it; then the worker took the snapshot (1).
  applyVars(before, ok(0, ['y', bytes(2)]), copies);
  assert.equal(vars.version, 2);
  // The worker's copy is the snapshot (without "y"): stale, whatever `before` reported.
  assert.notEqual(snapshotFor(copies, callOf(4, vars)), undefined);
});

test('changes the main copy refuses (over the bound with concurrent changes) fail the call, keep nothing, and leave the worker stale', () => {
  const vars = new PluginVars(2 * (1 + 10 + 64));
  const copies: VarsCopies = new Map();
  const c1 = callOf(1, vars);
  snapshotFor(copies, c1);
  assert.equal(vars.apply([['a', new Uint8Array(10)]]), true); // elsewhere, meanwhile
  assert.equal(vars.apply([['b', new Uint8Array(10)]]), true);
  const o = applyVars(c1, ok(0, ['c', new Uint8Array(10)]), copies);
  assert.deepEqual(o.ok ? null : [o.status, o.reason], ['memory_limit', 'var_limit']);
  assert.equal(vars.get('c'), undefined);
  assert.equal(vars.version, 4); // 2, then a jump of 2
  assert.equal(copies.has('t/p'), false);
});

test('a call taken back with its snapshot, or settled before its outcome, changes nothing', () => {
  const vars = new PluginVars(1000);
  const copies: VarsCopies = new Map();
  const c1 = callOf(1, vars);
  assert.notEqual(snapshotFor(copies, c1), undefined);
  snapshotLost(c1);
  assert.equal(copies.has('t/p'), false);
  const c2 = callOf(2, vars);
  snapshotFor(copies, c2);
  c2.settled = true; // timed out, then its outcome was found journaled
  applyVars(c2, ok(0, ['n', bytes(1)]), copies);
  assert.equal(vars.size, 0);
});
