/**
 * The result ring: how a worker hands outcomes (and guest log lines) to the pool without a
 * message. One `SharedArrayBuffer` per worker, written only by the worker, read only by the main
 * thread: a single-producer single-consumer ring of variable-size entries.
 *
 * Why: a `postMessage` with its structured clone costs ~10-20 µs of the worker's time per message
 * and a task on the main thread; a no-op call costs ~2 µs. Outcomes now stay where the worker
 * wrote them, and the main thread reads them in place (one copy of the output bytes, no clone).
 *
 * - Counters: `WRITE` and `READ` are byte counters that only grow (wrapping int32; the ring's
 *   size is a power of two, so `(write - read) | 0` is the bytes in use and `pos & (size - 1)` the
 *   offset). The worker writes an entry, then publishes it by storing `WRITE` (last, atomically):
 *   a worker killed mid-write (a deadline kill, a crash) leaves no torn entry visible. The main
 *   thread reads what `WRITE` covers and then stores `READ`; the worker never writes over bytes
 *   the main thread has not released, so a reader never sees an entry change under it.
 * - An entry never wraps: when it does not fit before the end, a padding entry fills the rest.
 * - Bounded: an entry larger than `MAX_ENTRY_BYTES`, or one that finds the ring full (the main
 *   thread is behind), is refused (`false`): the worker then posts that outcome as a message, in
 *   order, after everything already in the ring. So outputs of any size still arrive.
 * - Untrusted content: a guest controls only the bytes of its output and the text of messages;
 *   the framing is written by our code. The reader still checks every length against the entry
 *   and the ring before it reads, and throws `RingCorruptError` on anything inconsistent (the
 *   pool then terminates that worker as crashed): it never reads outside an entry, and an
 *   outcome is accepted only for a call the pool posted to that worker (see the pool).
 * - Wake-up: before the main thread waits (`Atomics.waitAsync` on `WAKE`), it raises `WAITING`
 *   and looks at `WRITE` once more; after publishing, the worker bumps `WAKE` and notifies only
 *   if `WAITING` was raised. (Sequentially consistent atomics: one of the two sees the other.)
 *   A wake-up costs both threads a few µs (a task on the main thread, an eventfd write), more
 *   than a no-op call, so the worker wakes the pool at most every ~2 ms within a batch, at its
 *   end, and before a call that may run long (see worker-main.ts); a busy main thread finds
 *   everything published on its next read, woken or not.
 *
 * Entry (8-byte aligned): int32 size, int32 tag (> 0: the outcome of that call id; -1: a log
 * line; 0: padding), int32 meta length (-1: a plain success, float64 duration and float64 fuel
 * follow, NaN for null fuel; else the outcome without `output` (the changes to the plugin's
 * variables included, values in base64), or the log line, as UTF-8 JSON),
 * int32 output length (-1: null), then the meta and the output bytes.
 */
import { Buffer } from 'node:buffer';
import type { GuestLogEntry } from '../in-thread-sandbox.ts';
import type { CallOutcome } from '../types.ts';
import { deltaFromJson, deltaToJson } from '../plugin-vars.ts';

/** Ring size (a power of two). */
export const RING_BYTES = 1 << 20;
/** Largest entry the ring takes; larger outcomes travel as messages. */
export const MAX_ENTRY_BYTES = RING_BYTES >> 2;
const HEAD_BYTES = 64;
const WRITE = 0;
const READ = 1;
const WAKE = 2;
const WAITING = 3;
const ENTRY_HEAD = 16;
const FAST = -1;
const LOG = -1;

export class RingCorruptError extends Error {}

/** A guest log line, as the pool forwards it. */
export type RingLog = GuestLogEntry;

export function newRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEAD_BYTES + RING_BYTES);
}

const encoder = new TextEncoder();
const align8 = (n: number): number => (n + 7) & ~7;

interface Views {
  readonly ctl: Int32Array;
  readonly view: DataView;
  readonly bytes: Uint8Array;
  /** The same bytes, to decode text in place (`bytes.slice` would make an ArrayBuffer each). */
  readonly text: Buffer;
}

/**
 * The output of a call that set none, shared. Each `ArrayBuffer` the scheduler's thread makes
 * (a `slice`) is one more for V8 to sweep after it dies, work that lands in that thread's GC
 * pauses when the 2 cores leave V8's background sweeper no time (`--trace-gc-nvp`:
 * `sweep_array_buffers` up to 7.5 ms at the start of a mark-compact, 2,000 schedules firing 200
 * times a second). A run of a burst made 0.16 of them before this and `request-codec.ts`'s
 * unsliced batch, 0.09 after; a lone fire 2 and 1.
 */
const NO_OUTPUT = new Uint8Array(0);

/** Views over each ring, made once (the worker appends on every call). */
const views = new WeakMap<SharedArrayBuffer, Views>();

function viewsOf(ring: SharedArrayBuffer): Views {
  let v = views.get(ring);
  if (!v) {
    v = {
      ctl: new Int32Array(ring, 0, 4),
      view: new DataView(ring, HEAD_BYTES, RING_BYTES),
      bytes: new Uint8Array(ring, HEAD_BYTES, RING_BYTES),
      text: Buffer.from(ring, HEAD_BYTES, RING_BYTES),
    };
    views.set(ring, v);
  }
  return v;
}

/** An outcome without its output bytes, as JSON text. */
export function outcomeMeta(o: CallOutcome): string {
  return JSON.stringify(
    o.ok
      ? {
          ok: true,
          durationMs: o.durationMs,
          fuelUsed: o.fuelUsed,
          ...(o.vars === undefined ? {} : { vars: deltaToJson(o.vars) }),
          ...(o.logTail === undefined ? {} : { logTail: o.logTail }),
        }
      : {
          ok: false,
          status: o.status,
          reason: o.reason,
          message: o.message,
          durationMs: o.durationMs,
          fuelUsed: o.fuelUsed,
          ...(o.logTail === undefined ? {} : { logTail: o.logTail }),
        },
  );
}

/**
 * Worker side: appends the outcome of call `callId` (or, with `callId` -1 and `log`, a log
 * line). False if it does not fit: post it instead. The main thread sees it at once, but is
 * not woken for it: see `ringNotify`.
 */
export function ringAppend(
  ring: SharedArrayBuffer,
  callId: number,
  outcome: CallOutcome | null,
  log?: RingLog,
): boolean {
  const { ctl, view, bytes } = viewsOf(ring);
  const output = outcome?.ok ? outcome.output : null;
  const fast =
    outcome !== null &&
    outcome.ok &&
    outcome.vars === undefined &&
    outcome.logTail === undefined &&
    Number.isFinite(outcome.durationMs) &&
    (outcome.fuelUsed === null || Number.isFinite(outcome.fuelUsed));
  const meta = fast ? '' : outcome ? outcomeMeta(outcome) : JSON.stringify(log ?? null);
  const outLen = output ? output.length : -1;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: the size bound before encoding.
  const bound = align8(ENTRY_HEAD + (fast ? 16 : meta.length * 3) + Math.max(outLen, 0));
  if (bound > MAX_ENTRY_BYTES) return false;
  let w = Atomics.load(ctl, WRITE);
  const free = RING_BYTES - ((w - Atomics.load(ctl, READ)) | 0);
  let at = w & (RING_BYTES - 1);
  const toEnd = RING_BYTES - at;
  if (bound > toEnd) {
    if (toEnd + bound > free) return false;
    view.setInt32(at, toEnd, true);
    view.setInt32(at + 4, 0, true);
    w = (w + toEnd) | 0;
    at = 0;
  } else if (bound > free) return false;
  let body = at + ENTRY_HEAD;
  if (fast && outcome?.ok) {
    view.setFloat64(body, outcome.durationMs, true);
    view.setFloat64(body + 8, outcome.fuelUsed ?? NaN, true);
    body += 16;
  } else {
    const { written } = encoder.encodeInto(meta, bytes.subarray(body, at + bound));
    view.setInt32(at + 8, written, true);
    body += written;
  }
  if (fast) view.setInt32(at + 8, FAST, true);
  if (output) bytes.set(output, body);
  const size = align8(body + Math.max(outLen, 0) - at);
  view.setInt32(at, size, true);
  view.setInt32(at + 4, callId, true);
  view.setInt32(at + 12, outLen, true);
  Atomics.store(ctl, WRITE, (w + size) | 0);
  return true;
}

/** Worker side: wakes the main thread if it waits (after `ringAppend`s). */
export function ringNotify(ring: SharedArrayBuffer): void {
  const { ctl } = viewsOf(ring);
  if (Atomics.load(ctl, WAITING) === 1) {
    Atomics.store(ctl, WAITING, 0);
    Atomics.add(ctl, WAKE, 1);
    Atomics.notify(ctl, WAKE);
  }
}

/** What a drain delivers, in the order the worker wrote it. */
export interface RingReader {
  outcome(callId: number, outcome: CallOutcome): void;
  log(line: RingLog): void;
}

/**
 * Main thread: delivers every published entry, then releases their bytes to the worker.
 * Throws `RingCorruptError` if the framing is inconsistent (after delivering what preceded it).
 */
export function ringDrain(ring: SharedArrayBuffer, reader: RingReader): void {
  const { ctl, view, bytes, text } = viewsOf(ring);
  const w = Atomics.load(ctl, WRITE);
  let r = Atomics.load(ctl, READ);
  try {
    while (r !== w) {
      const used = (w - r) | 0;
      const at = r & (RING_BYTES - 1);
      const size = used > 0 && used <= RING_BYTES ? view.getInt32(at, true) : -1;
      if (size < 8 || size % 8 !== 0 || size > used || at + size > RING_BYTES)
        throw new RingCorruptError(`bad entry size ${size} at ${at} (${used} bytes published)`);
      const tag = view.getInt32(at + 4, true);
      if (tag !== 0) readEntry(view, bytes, text, at, size, tag, reader);
      r = (r + size) | 0;
    }
  } finally {
    Atomics.store(ctl, READ, r);
  }
}

function readEntry(
  view: DataView,
  bytes: Uint8Array,
  text: Buffer,
  at: number,
  size: number,
  tag: number,
  reader: RingReader,
): void {
  const metaLen = size >= ENTRY_HEAD ? view.getInt32(at + 8, true) : -2;
  const outLen = size >= ENTRY_HEAD ? view.getInt32(at + 12, true) : -2;
  const metaBytes = metaLen === FAST ? 16 : metaLen;
  if (
    (tag < 0 && tag !== LOG) ||
    metaBytes < 0 ||
    outLen < -1 ||
    (tag === LOG && (metaLen === FAST || outLen !== -1)) ||
    ENTRY_HEAD + metaBytes + Math.max(outLen, 0) > size
  )
    throw new RingCorruptError(`bad entry (tag ${tag}, meta ${metaLen}, output ${outLen})`);
  const body = at + ENTRY_HEAD;
  let parsed: unknown;
  if (metaLen !== FAST) {
    try {
      parsed = JSON.parse(text.toString('utf8', body, body + metaLen));
    } catch (err) {
      throw new RingCorruptError(`bad entry text: ${(err as Error).message}`);
    }
  }
  if (tag === LOG) {
    const line = parsed as RingLog | null;
    if (!line || typeof line.message !== 'string' || typeof line.pluginId !== 'string')
      throw new RingCorruptError('bad log entry');
    reader.log(line);
    return;
  }
  const outAt = body + metaBytes;
  const output = outLen < 0 ? null : outLen === 0 ? NO_OUTPUT : bytes.slice(outAt, outAt + outLen);
  if (metaLen === FAST) {
    const fuel = view.getFloat64(body + 8, true);
    reader.outcome(tag, {
      ok: true,
      output,
      durationMs: view.getFloat64(body, true),
      fuelUsed: Number.isNaN(fuel) ? null : fuel,
    });
    return;
  }
  const o = parsed as CallOutcome | null;
  if (!o || typeof o !== 'object' || typeof o.ok !== 'boolean')
    throw new RingCorruptError('bad outcome entry');
  if (o.ok) {
    (o as { output: Uint8Array | null }).output = output;
    if (o.vars !== undefined) {
      try {
        (o as { vars: unknown }).vars = deltaFromJson(o.vars);
      } catch (err) {
        throw new RingCorruptError(`bad entry: ${(err as Error).message}`);
      }
    }
  }
  reader.outcome(tag, o);
}

/** `Atomics.waitAsync` (in Node since 16; TypeScript declares it from lib es2024). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      a: Int32Array,
      i: number,
      v: number,
    ): { async: false; value: string } | { async: true; value: Promise<string> };
  }
).waitAsync.bind(Atomics);

/**
 * Main thread: waits (without blocking) until the worker publishes an entry; resolves at once
 * if one is there. `ringRelease` wakes a waiter for good (the worker is gone).
 */
export function ringWait(ring: SharedArrayBuffer): Promise<unknown> | null {
  const { ctl } = viewsOf(ring);
  const seq = Atomics.load(ctl, WAKE);
  Atomics.store(ctl, WAITING, 1);
  if (Atomics.load(ctl, WRITE) !== Atomics.load(ctl, READ)) {
    Atomics.store(ctl, WAITING, 0);
    return null;
  }
  const res = waitAsync(ctl, WAKE, seq);
  return res.async ? res.value : null;
}

/** Main thread: ends any `ringWait` on this ring. */
export function ringRelease(ring: SharedArrayBuffer): void {
  const { ctl } = viewsOf(ring);
  Atomics.add(ctl, WAKE, 1);
  Atomics.notify(ctl, WAKE);
}

/** Whether entries wait to be read. */
export function ringPending(ring: SharedArrayBuffer): boolean {
  const { ctl } = viewsOf(ring);
  return Atomics.load(ctl, WRITE) !== Atomics.load(ctl, READ);
}
