/**
 * The pool worker's collector (src/sandbox/pool/worker-gc.ts): it obtains V8's `gc` without
 * `--expose-gc` on the command line, leaves no `gc` to contexts made afterwards, and collects
 * once enough dropped bytes piled up while the thread is idle (observed through a WeakRef).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { GC_RELEASED_BYTES, WorkerGc } from '../../src/sandbox/pool/worker-gc.ts';

const nextJob = () => new Promise((r) => setImmediate(r));

test('the collector gets gc; later contexts do not', () => {
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'run without --expose-gc');
  assert.equal(new WorkerGc().available, true);
  assert.equal(runInNewContext('typeof gc'), 'undefined');
});

test('idle with enough released bytes: a major GC runs (a weakly held object is collected)', async () => {
  const collector = new WorkerGc();
  let ref = new WeakRef({ big: new Array(1000).fill(0) });
  await nextJob(); // a WeakRef's target is kept until the job that made it ends
  collector.released(GC_RELEASED_BYTES, false); // busy: waits for idle
  collector.released(0, true); // idle, with the bytes noted before
  assert.equal(ref.deref(), undefined);
  // The count starts again: an object made now survives an idle notice with too few bytes...
  ref = new WeakRef({ big: new Array(1000).fill(0) });
  await nextJob();
  collector.released(GC_RELEASED_BYTES - 1, true);
  // (...unless V8 collected on its own meanwhile; only the positive case is asserted)
  collector.released(1, true);
  assert.equal(ref.deref(), undefined);
});

test('a worker thread gets gc too', async () => {
  const url = new URL('../../src/sandbox/pool/worker-gc.ts', import.meta.url).href;
  // A worker does not inherit tsx from --import: register it first (as pool/worker-entry.js).
  const w = new Worker(
    `import('tsx/esm/api')
  .then(({ register }) => (register(), import(${JSON.stringify(url)})))
  .then(({ WorkerGc }) => require('node:worker_threads').parentPort.postMessage(new WorkerGc().available));`,
    { eval: true },
  );
  const available = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(available, true);
});
