/**
 * Messages between the pool (main thread) and its workers, and the shared-memory channel that
 * lets a guest's synchronous host-function call wait for the main thread's answer.
 *
 * Calls travel in batches (one message for many calls); see worker-pool-sandbox.ts. Outcomes and
 * guest log lines come back through the worker's result ring (result-ring.ts), not as messages,
 * except what the ring refuses (`results`, `log`).
 *
 * Host calls: the worker bumps a sequence number, posts `hostcall`, and blocks in `Atomics.wait`
 * (bounded). The main thread answers from its event loop by writing the response bytes, the
 * length and the sequence number into the worker's `SharedArrayBuffer` and notifying. A late
 * answer to a call that already timed out carries an old sequence number and is ignored.
 */
import type { GuestInfo, CallRequest, CallerContext, HostCallAnswer } from '../types.ts';
import { asHostCallAnswer } from '../types.ts';
import type { PreparedGuest } from '../guest-module.ts';
import type { GuestLogEntry, PreparedSpec } from '../in-thread-sandbox.ts';
import type { VarsSnapshot } from '../plugin-vars.ts';

/** One call of a batch. */
export interface BatchCall {
  readonly callId: number;
  /** This worker's sequence number of the call (see `CTL_CLAIM`). */
  readonly seq: number;
  readonly pluginId: string;
  readonly req: CallRequest;
  /** May run long: the worker wakes the pool for the outcomes it published before starting it. */
  readonly slow?: true;
  /** The plugin's variables, when the worker's copy is stale (pool/vars-sync.ts). */
  readonly vars?: VarsSnapshot;
}

export type ToWorker =
  /**
   * Validate, instrument and compile `wasm` (prepareGuest), then instantiate it (its start
   * function runs): a plugin's load, off the main thread. The worker publishes `callId` as its
   * running call meanwhile, so the pool's watchdog holds it to the load deadline. Answered by
   * `prepared`.
   */
  | { type: 'prepare'; callId: number; spec: PreparedSpec; wasm: Uint8Array<ArrayBuffer> }
  /** Instantiate a guest prepared elsewhere (before a batch that calls it). */
  | { type: 'load'; spec: PreparedSpec; prepared: PreparedGuest }
  /**
   * Calls to run in order (`BatchCall[]` encoded by request-codec.ts, transferred); their
   * outcomes come back in order, through the result ring.
   */
  | { type: 'batch'; calls: ArrayBuffer }
  | { type: 'unload'; pluginId: string };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loaded'; pluginId: string; info?: GuestInfo; error?: string; code?: string }
  /** The answer to `prepare`: the compiled module (posted between threads) and its facts. */
  | {
      type: 'prepared';
      callId: number;
      prepared?: PreparedGuest;
      info?: GuestInfo;
      error?: { code: string; message: string };
    }
  /**
   * Outcomes the result ring refused (too large, or the ring was full): `callIds[i]` ended with
   * the outcome whose `outcomeMeta` is item `i` of the JSON array `metas`, and output `outputs[i]`.
   */
  | { type: 'results'; callIds: number[]; metas: string; outputs: (Uint8Array | null)[] }
  | { type: 'hostcall'; seq: number; caller: CallerContext; fn: string; request: string }
  /** A guest log line (or HTTP request record) the result ring refused. */
  | ({ type: 'log' } & GuestLogEntry);

/**
 * Control words: [0] state (0 waiting, 1 answered), [1] response length, [2] sequence,
 * [3] the call the worker is running now (0: none); float64 slot [2] (bytes 16–23): when that
 * call started (ms since the epoch). The pool's watchdog reads the last two without a message.
 */
export const CTL_WORDS = 8;
export const CTL_RUNNING = 3;
/**
 * Word [6]: the sequence number of the next call to start. Calls posted to a worker are numbered
 * in order across its batches (a batch may be posted while the previous one runs). The worker
 * claims call `s` with compareExchange(s → s + 1) before starting it; the pool takes back the
 * calls not yet started by exchanging it for `CLAIM_STOLEN` (the old value tells where they
 * begin), and before posting more sets it to the next sequence number it posts: calls it took
 * back can then never be claimed, even from batch messages the worker has not read yet.
 */
export const CTL_CLAIM = 6;
export const CLAIM_STOLEN = -1;
export const CTL_STARTED_F64 = 2;
export const CTL_BYTES = 32;
/** Largest host-function response that fits the channel (with its head, see `answerHostCall`). */
export const CHANNEL_CAPACITY = 4 * 1024 * 1024;

export interface WorkerInit {
  readonly channel: SharedArrayBuffer;
  /** Outcomes and log lines for the pool (see result-ring.ts). */
  readonly ring: SharedArrayBuffer;
  /** How long a guest's host call waits for the main thread. */
  readonly hostCallTimeoutMs: number;
  /** Niceness the worker gives its own thread at boot (0: unchanged). */
  readonly nice: number;
  /** Static fuel price of each host function (see `InThreadSandboxOptions`). */
  readonly hostCallFuel: Readonly<Record<string, number>>;
}

export function newChannel(): SharedArrayBuffer {
  return new SharedArrayBuffer(CTL_BYTES + CHANNEL_CAPACITY);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A host-call answer in the channel's data area: fuel (float64), the denial's byte length
 * (int32, -1: not denied), the denial, then the answer. Control word [1] holds the total length.
 */
const ANSWER_HEAD_BYTES = 12;

function internalAnswer(err: unknown): HostCallAnswer {
  const message = err instanceof Error ? err.message : String(err);
  return {
    answer: JSON.stringify({ error: { code: 'internal', message } }),
    fuel: 0,
    denied: null,
  };
}

/**
 * Main thread: writes the answer to host call `seq` (what `produce` returns, at once or when its
 * promise settles; if it throws or rejects, an `internal` error answer) and wakes the worker.
 * An answer that comes after the worker stopped waiting carries an old `seq` and is ignored
 * there; one for a worker that is gone lands in a channel nobody reads.
 */
export function answerHostCall(
  channel: SharedArrayBuffer,
  seq: number,
  produce: () => HostCallAnswer | string | Promise<HostCallAnswer>,
): void {
  let response: HostCallAnswer | string | Promise<HostCallAnswer>;
  try {
    response = produce();
  } catch (err) {
    response = internalAnswer(err);
  }
  newest.set(channel, seq);
  if (response instanceof Promise) {
    // Written only if the worker has not asked anything since (it gave up on this call): a late
    // write would overwrite the data area under a newer answer it has not read yet.
    const late = (r: HostCallAnswer) => {
      if (newest.get(channel) === seq) writeAnswer(channel, seq, r);
    };
    response.then(late, (err: unknown) => late(internalAnswer(err)));
    return;
  }
  writeAnswer(channel, seq, asHostCallAnswer(response));
}

/** The newest host call asked on each channel (see `answerHostCall`). */
const newest = new WeakMap<SharedArrayBuffer, number>();

function writeAnswer(channel: SharedArrayBuffer, seq: number, response: HostCallAnswer): void {
  const ctl = new Int32Array(channel, 0, CTL_WORDS);
  const denied = response.denied === null ? null : encoder.encode(response.denied.slice(0, 4096));
  const room = CHANNEL_CAPACITY - ANSWER_HEAD_BYTES - (denied?.length ?? 0);
  let bytes = encoder.encode(response.answer);
  if (bytes.length > room) {
    bytes = encoder.encode(
      JSON.stringify({
        error: {
          code: 'too_large',
          message: `response is ${bytes.length} bytes; the limit is ${room}`,
        },
      }),
    );
  }
  const head = new DataView(channel, CTL_BYTES, ANSWER_HEAD_BYTES);
  head.setFloat64(0, response.fuel, true);
  head.setInt32(8, denied === null ? -1 : denied.length, true);
  let at = CTL_BYTES + ANSWER_HEAD_BYTES;
  if (denied) {
    new Uint8Array(channel, at, denied.length).set(denied);
    at += denied.length;
  }
  new Uint8Array(channel, at, bytes.length).set(bytes);
  Atomics.store(ctl, 1, at - CTL_BYTES + bytes.length);
  Atomics.store(ctl, 2, seq);
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
}

/** Worker: reads the answer the main thread wrote (after `answerHostCall` woke it). */
export function readHostAnswer(channel: SharedArrayBuffer): HostCallAnswer {
  const ctl = new Int32Array(channel, 0, CTL_WORDS);
  const total = Atomics.load(ctl, 1);
  const head = new DataView(channel, CTL_BYTES, ANSWER_HEAD_BYTES);
  const fuel = head.getFloat64(0, true);
  const deniedLen = head.getInt32(8, true);
  let at = CTL_BYTES + ANSWER_HEAD_BYTES;
  let denied: string | null = null;
  if (deniedLen >= 0) {
    denied = decoder.decode(new Uint8Array(channel, at, deniedLen).slice());
    at += deniedLen;
  }
  const answer = decoder.decode(new Uint8Array(channel, at, CTL_BYTES + total - at).slice());
  return { answer, fuel, denied };
}
