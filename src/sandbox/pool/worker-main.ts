/**
 * A sandbox worker: runs Extism plugins (through the in-thread sandbox) on its own thread.
 * Messages are handled strictly in order; a batch's calls run one after another, and each
 * outcome (and each guest log line) goes into the result ring in shared memory as soon as it
 * exists (result-ring.ts): no message, and a terminated worker loses none. What the ring refuses
 * (too large, or the ring is full) is posted as a message instead. Host-function calls block this
 * thread on the shared channel until the main thread answers (or the bounded wait expires with
 * `internal`). A call may carry a snapshot of its plugin's variables (vars-sync.ts): the worker's
 * copy is replaced with it before the call runs; a successful call's changes go back with its
 * outcome (../plugin-vars.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isHourglassError } from '../../errors.ts';
import { prepareGuest } from '../guest-module.ts';
import { InThreadSandbox } from '../in-thread-sandbox.ts';
import type { CallOutcome, CallerContext, HostCallAnswer } from '../types.ts';
import { decodeBatch } from './request-codec.ts';
import { WorkerGc } from './worker-gc.ts';
import { outcomeMeta, ringAppend, ringNotify } from './result-ring.ts';
import {
  type BatchCall,
  CTL_BYTES,
  CTL_CLAIM,
  CTL_RUNNING,
  CTL_STARTED_F64,
  CTL_WORDS,
  type FromWorker,
  readHostAnswer,
  type ToWorker,
  type WorkerInit,
} from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('worker-main must run in a worker thread');
const init = workerData as WorkerInit;
const ctl = new Int32Array(init.channel, 0, CTL_WORDS);
const clock = new Float64Array(init.channel, 0, CTL_BYTES / 8);
let seq = 0;
/** Within a batch, the pool is woken for published outcomes at most this often. */
const WAKE_MS = 2;
/** When the pool was last woken (or the batch began). */
let wokeAt = 0;

function wake(): void {
  ringNotify(init.ring);
  wokeAt = Date.now();
}

function post(msg: FromWorker): void {
  port?.postMessage(msg);
}

function hostCall(caller: CallerContext, fn: string, request: string): HostCallAnswer {
  const mine = ++seq;
  Atomics.store(ctl, 0, 0);
  post({ type: 'hostcall', seq: mine, caller, fn, request });
  const deadline = Date.now() + init.hostCallTimeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || Atomics.wait(ctl, 0, 0, left) === 'timed-out') {
      const answer = JSON.stringify({
        error: {
          code: 'internal',
          message: `the host did not answer ${fn} within ${init.hostCallTimeoutMs} ms`,
        },
      });
      return { answer, fuel: 0, denied: null };
    }
    if (Atomics.load(ctl, 2) === mine) break;
    Atomics.store(ctl, 0, 0); // a late answer to an earlier call: keep waiting for ours
  }
  return readHostAnswer(init.channel);
}

const sandbox = new InThreadSandbox({
  hostCall,
  hostCallFuel: init.hostCallFuel,
  onGuestLog: (e) => {
    if (!ringAppend(init.ring, -1, null, e)) post({ type: 'log', ...e });
    else if (Date.now() - wokeAt >= WAKE_MS) wake();
  },
});

/** A plugin's load: prepare (validate, instrument, compile) and instantiate, under the watchdog. */
async function prepare(msg: Extract<ToWorker, { type: 'prepare' }>): Promise<void> {
  clock[CTL_STARTED_F64] = Date.now();
  Atomics.store(ctl, CTL_RUNNING, msg.callId);
  let answer: FromWorker;
  try {
    const prepared = await prepareGuest(msg.spec.pluginId, msg.wasm, msg.spec.limits);
    const info = await sandbox.loadPrepared(msg.spec, prepared);
    answer = { type: 'prepared', callId: msg.callId, prepared, info };
  } catch (err) {
    const code = isHourglassError(err) ? err.code : 'HG_PLUGIN_LOAD';
    const message = isHourglassError(err)
      ? err.message
      : `plugin ${msg.spec.pluginId}: cannot be loaded: ${(err as Error).message}`;
    answer = { type: 'prepared', callId: msg.callId, error: { code, message } };
  }
  Atomics.store(ctl, CTL_RUNNING, 0);
  post(answer);
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'prepare':
      await prepare(msg);
      return;
    case 'load':
      try {
        const info = await sandbox.loadPrepared(msg.spec, msg.prepared);
        post({ type: 'loaded', pluginId: msg.spec.pluginId, info });
      } catch (err) {
        post({
          type: 'loaded',
          pluginId: msg.spec.pluginId,
          error: (err as Error).message,
          code:
            (err as { code?: unknown }).code === 'HG_PLUGIN_INIT_FUEL'
              ? 'HG_PLUGIN_INIT_FUEL'
              : undefined,
        });
      }
      return;
    case 'batch': {
      let calls: BatchCall[];
      try {
        calls = decodeBatch(msg.calls);
      } catch (err) {
        // A bug in the pool's encoding: crash the worker (the pool accounts for what it held)
        // rather than leave the batch's calls without outcomes.
        queueMicrotask(() => {
          throw err;
        });
        return;
      }
      await runBatch(calls);
      return;
    }
    case 'unload':
      await sandbox.unload(msg.pluginId);
      return;
  }
}

/** Hands an outcome to the pool: in the ring, or (too large, or the ring is full) posted. */
function deliver(callId: number, outcome: CallOutcome): void {
  if (ringAppend(init.ring, callId, outcome)) return;
  const output = outcome.ok ? outcome.output : null;
  const transfer: ArrayBuffer[] = [];
  if (
    output &&
    output.buffer instanceof ArrayBuffer &&
    output.byteLength === output.buffer.byteLength
  )
    transfer.push(output.buffer);
  const msg: FromWorker = {
    type: 'results',
    callIds: [callId],
    metas: `[${outcomeMeta(outcome)}]`,
    outputs: [output],
  };
  port?.postMessage(msg, transfer);
}

async function runBatch(calls: BatchCall[]): Promise<void> {
  let i = 0;
  wokeAt = Date.now();
  try {
    for (; i < calls.length; i++) {
      const c = calls[i] as BatchCall;
      // Claim the call; if the pool took back the rest of the batch, stop here.
      if (Atomics.compareExchange(ctl, CTL_CLAIM, c.seq, c.seq + 1) !== c.seq) break;
      // Wake the pool halfway (it posts the next batch meanwhile), every WAKE_MS, and before a
      // call that may run long.
      const now = Date.now();
      if (c.slow || i === calls.length >> 1 || now - wokeAt >= WAKE_MS) wake();
      // Tell the pool's watchdog which call runs since when (no message needed).
      clock[CTL_STARTED_F64] = now;
      Atomics.store(ctl, CTL_RUNNING, c.callId);
      // A stale copy of the plugin's variables is replaced first (pool/vars-sync.ts).
      if (c.vars) sandbox.varsOf(c.pluginId)?.replace(c.vars);
      // Without a promise when the call finishes at once (the usual case).
      const ran = sandbox.callNow(c.pluginId, c.req);
      const outcome = ran instanceof Promise ? await ran : ran;
      // In the ring before the call stops being the running one: a worker killed in between
      // leaves either its outcome or a running call (never a call that seems not started).
      deliver(c.callId, outcome);
      Atomics.store(ctl, CTL_RUNNING, 0);
    }
  } catch (err) {
    // A bug here must not wedge the worker: the call that hit it and the rest of the batch end
    // with it (the rest unless the pool took them back).
    Atomics.store(ctl, CTL_RUNNING, 0);
    for (let claimed = true; i < calls.length; i++, claimed = false) {
      const c = calls[i] as BatchCall;
      if (!claimed && Atomics.compareExchange(ctl, CTL_CLAIM, c.seq, c.seq + 1) !== c.seq) break;
      deliver(c.callId, {
        ok: false,
        status: 'worker_crashed',
        reason: 'worker_error',
        message: (err as Error).message,
        durationMs: 0,
        fuelUsed: null,
      });
    }
  }
  wake();
}

let chain: Promise<void> = Promise.resolve();
/** Messages received and not yet handled. */
let queued = 0;
const collector = new WorkerGc();
port.on('message', (msg: ToWorker) => {
  queued++;
  chain = chain
    .then(() => handle(msg))
    .catch(() => undefined) // load and unload report their own errors; batches never throw
    .then(() => collector.released(sandbox.takeReleasedBytes(), --queued === 0));
});
post({ type: 'ready' });
