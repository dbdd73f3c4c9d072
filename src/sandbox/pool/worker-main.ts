/**
 * A sandbox worker: runs Extism plugins (through the in-thread sandbox) on its own thread.
 * Messages are handled strictly in order. Host-function calls block this thread on the shared
 * channel until the main thread answers (or the bounded wait expires with `internal`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { InThreadSandbox } from '../in-thread-sandbox.ts';
import type { CallerContext } from '../types.ts';
import {
  CTL_BYTES,
  CTL_RUNNING,
  CTL_STARTED_F64,
  CTL_WORDS,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('worker-main must run in a worker thread');
const init = workerData as WorkerInit;
const ctl = new Int32Array(init.channel, 0, CTL_WORDS);
const clock = new Float64Array(init.channel, 0, CTL_BYTES / 8);
const decoder = new TextDecoder();
let seq = 0;

function post(msg: FromWorker): void {
  port?.postMessage(msg);
}

function hostCall(caller: CallerContext, fn: string, request: string): string {
  const mine = ++seq;
  Atomics.store(ctl, 0, 0);
  post({ type: 'hostcall', seq: mine, caller, fn, request });
  const deadline = Date.now() + init.hostCallTimeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || Atomics.wait(ctl, 0, 0, left) === 'timed-out') {
      return JSON.stringify({
        error: {
          code: 'internal',
          message: `the host did not answer ${fn} within ${init.hostCallTimeoutMs} ms`,
        },
      });
    }
    if (Atomics.load(ctl, 2) === mine) break;
    Atomics.store(ctl, 0, 0); // a late answer to an earlier call: keep waiting for ours
  }
  const len = Atomics.load(ctl, 1);
  return decoder.decode(new Uint8Array(init.channel, CTL_BYTES, len).slice());
}

const sandbox = new InThreadSandbox({
  hostCall,
  onGuestLog: (e) => post({ type: 'log', ...e }),
});

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'load':
      try {
        const info = await sandbox.loadPrepared(msg.spec, msg.prepared);
        post({ type: 'loaded', pluginId: msg.spec.pluginId, info });
      } catch (err) {
        post({ type: 'loaded', pluginId: msg.spec.pluginId, error: (err as Error).message });
      }
      return;
    case 'call': {
      // Tell the pool's watchdog which call runs since when (no message needed).
      clock[CTL_STARTED_F64] = Date.now();
      Atomics.store(ctl, CTL_RUNNING, msg.callId);
      const outcome = await sandbox.call(msg.pluginId, msg.req);
      Atomics.store(ctl, CTL_RUNNING, 0);
      post({ type: 'result', callId: msg.callId, outcome });
      return;
    }
    case 'unload':
      await sandbox.unload(msg.pluginId);
      return;
  }
}

let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  chain = chain
    .then(() => handle(msg))
    .catch((err: unknown) => {
      // A bug here must not wedge the worker: report it on the call if there is one.
      if (msg.type === 'call') {
        post({
          type: 'result',
          callId: msg.callId,
          outcome: {
            ok: false,
            status: 'worker_crashed',
            reason: 'worker_error',
            message: (err as Error).message,
            durationMs: 0,
            fuelUsed: null,
          },
        });
      }
    });
});
post({ type: 'ready' });
