/**
 * A helper thread for instrumenting large modules: `instrument()` is synchronous, and planning
 * and emitting the function bodies is most of its time, one body independent of the others.
 * So for a code section of at least `PARALLEL_MIN_CODE_BYTES` it posts the second half of the
 * bodies (split by bytes) to one long-lived worker thread, does the first half itself, then
 * blocks in `Atomics.wait` until the helper's answer is on the port (`receiveMessageOnPort`),
 * and appends it. The output bytes are the same as one thread's.
 *
 * Opt-in (`InstrumentOptions.parallel`). With 'auto' the helper is booted by the first call
 * that could use it and used once it is up; until then (and whenever it fails, answers late, or
 * meets a body it cannot number types for) the main thread does the whole module itself. Its
 * thread is `unref`'d, so it never keeps a process alive. The copies cost little (the input to
 * the helper, its half back: ~30 MB of memcpy for binaryen.js), but measured on the shared
 * 2-core machine (load 6-10) the process used ~50 % more CPU time and more wall time than one
 * thread: see docs/fuel.md. It can only pay with a second core that is really free.
 */
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { FuncType } from '../wasm/sections.ts';
import type { EmittedRange, Restart } from './code-emitter.ts';
import type { CompiledCosts } from './cost-table.ts';
import type { ModuleFacts, Placement } from './placement.ts';

/** Code sections smaller than this are done on the calling thread alone. */
export const PARALLEL_MIN_CODE_BYTES = 2_000_000;
/** Longest wait for the helper's answer before the main thread does its half itself. */
const ANSWER_TIMEOUT_MS = 60_000;

export interface HelperJob {
  readonly src: Uint8Array;
  /** Bytes of the range (for the output's first allocation). */
  readonly bytes: number;
  readonly from: number;
  readonly to: number;
  readonly pos: number;
  readonly costs: Omit<CompiledCosts, 'hostCost'>;
  readonly ctx: {
    readonly placement: Placement;
    readonly fuelGlobal: number;
    readonly flagGlobal: number;
    readonly depthGlobal: number;
    readonly maxCallDepth: number;
  };
  readonly facts: Omit<ModuleFacts, 'costs'>;
  readonly types: readonly FuncType[];
  readonly funcTypes: Uint32Array;
}

export type HelperAnswer =
  | ({ readonly kind: 'done'; readonly payload: Uint8Array } & EmittedRange)
  | { readonly kind: 'restart'; readonly restart: Restart }
  | { readonly kind: 'main'; readonly reason: string };

interface Helper {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly sync: Int32Array;
  broken: boolean;
}

let helper: Helper | null = null;

const ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./code-worker-entry.js', import.meta.url)
  : new URL('./code-worker.js', import.meta.url);

function boot(): Helper {
  const { port1, port2 } = new MessageChannel();
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(ENTRY, { workerData: { port: port2, sync }, transferList: [port2] });
  const h: Helper = { worker, port: port1, sync, broken: false };
  const drop = (): void => {
    h.broken = true;
    if (helper === h) helper = null;
  };
  worker.on('error', drop);
  worker.on('exit', drop);
  worker.unref();
  port1.unref();
  return h;
}

/**
 * The helper when it is up (`wait`: give it up to 30 s to boot); null when it is not (booting
 * it for the next call).
 */
export function readyHelper(wait: boolean): Helper | null {
  if (!helper) {
    try {
      helper = boot();
    } catch {
      return null;
    }
  }
  const h = helper;
  if (Atomics.load(h.sync, 1) !== 1 && wait) Atomics.wait(h.sync, 1, 0, 30_000);
  return !h.broken && Atomics.load(h.sync, 1) === 1 ? h : null;
}

/** Posts a job; `collect` then returns the answer (null: none, do the range yourself). */
export function postJob(h: Helper, job: HelperJob): () => HelperAnswer | null {
  const seq = Atomics.load(h.sync, 0);
  h.port.postMessage(job);
  return () => {
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    while (!h.broken && Atomics.load(h.sync, 0) === seq && Date.now() < deadline) {
      Atomics.wait(h.sync, 0, seq, 100);
    }
    const m = receiveMessageOnPort(h.port);
    if (!m) {
      // Late or dead: never use this helper again (a late answer would pair with a later job).
      h.broken = true;
      if (helper === h) helper = null;
      void h.worker.terminate();
      return null;
    }
    return m.message as HelperAnswer;
  };
}
