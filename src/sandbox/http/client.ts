/**
 * The guest thread's side of outbound HTTP: one net thread per thread that runs guests (each
 * pool worker, or the main thread in in-thread mode), started at the first request and
 * unref'd (it never keeps a process alive). A request is posted to it and the calling thread
 * blocks in `Atomics.wait` until the answer is in the shared buffer, as a guest's host call
 * waits in the pool. A pool worker terminated at a call's deadline takes its net thread, and
 * the request in flight, with it.
 *
 * The wait is bounded by the request's own timeout plus a margin: a net thread that does not
 * answer by then (it cannot, short of a bug) is replaced and the guest gets `timeout`.
 */
import { Worker } from 'node:worker_threads';
import {
  channelBytes,
  errorHead,
  NET_CTL_WORDS,
  readNetAnswer,
  type NetAnswer,
  type NetRequest,
} from './protocol.ts';

const ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./net-entry.js', import.meta.url)
  : new URL('./net-main.js', import.meta.url);

/** Beyond the request's timeout, how long the guest's thread waits for the net thread. */
const WAIT_MARGIN_MS = 2_000;
/** A net thread started under tsx compiles its modules first: its first answer may be late. */
const BOOT_MARGIN_MS = 30_000;

export class NetClient {
  #worker: Worker | null = null;
  #booted = false;
  #channel: SharedArrayBuffer | null = null;
  #seq = 0;

  /** Performs a request (blocking this thread) and returns its answer. */
  request(req: Omit<NetRequest, 'seq' | 'channel'>): NetAnswer {
    const need = channelBytes(req.policy);
    if (this.#channel === null || this.#channel.byteLength < need)
      this.#channel = new SharedArrayBuffer(need);
    const channel = this.#channel;
    const ctl = new Int32Array(channel, 0, NET_CTL_WORDS);
    const seq = ++this.#seq;
    Atomics.store(ctl, 0, 0);
    const worker = this.#thread();
    const msg: NetRequest = { ...req, seq, channel };
    worker.postMessage(msg);
    const deadline =
      Date.now() + req.timeoutMs + WAIT_MARGIN_MS + (this.#booted ? 0 : BOOT_MARGIN_MS);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(ctl, 0, 0, left) === 'timed-out') {
        this.close(); // a thread that stopped answering is not trusted with the next request
        return {
          status: 0,
          head: errorHead('timeout', `no answer within ${req.timeoutMs} ms`),
          body: new Uint8Array(0),
          requests: 1,
          error: 'timeout',
        };
      }
      if (Atomics.load(ctl, 1) === seq) break;
      Atomics.store(ctl, 0, 0); // an answer to an earlier request: keep waiting for ours
    }
    this.#booted = true;
    return readNetAnswer(channel);
  }

  #thread(): Worker {
    if (this.#worker === null) {
      const w = new Worker(ENTRY, { name: 'hourglass-net' });
      w.unref();
      w.on('error', () => {
        if (this.#worker === w) this.#worker = null;
      });
      w.on('exit', () => {
        if (this.#worker === w) this.#worker = null;
      });
      this.#worker = w;
      this.#booted = false;
    }
    return this.#worker;
  }

  close(): void {
    const w = this.#worker;
    this.#worker = null;
    if (w) void w.terminate();
  }
}

let shared: NetClient | null = null;

/** This thread's net client. */
export function netClient(): NetClient {
  shared ??= new NetClient();
  return shared;
}
