/**
 * The outcome journal: a worker's record, in shared memory, of the calls of its current batch
 * that have finished but whose outcomes have not been posted yet.
 *
 * A worker runs a batch of calls and posts their outcomes together. If it is terminated (a
 * deadline) or dies mid-batch, outcomes it had not posted would be lost with it; the pool reads
 * them from here once the worker has exited (outcomes it did post are delivered before `exit`),
 * or while the worker is stuck in a long call. The worker appends each outcome before starting
 * the next call and clears the journal when it posts; an entry becomes visible only once
 * complete (the used length is stored last), so a worker killed mid-write leaves no torn entry.
 *
 * Layout: int32 [0] bytes used after the header; entries from byte 8, each 4-byte aligned:
 * int32 callId, int32 JSON length, int32 output length (-1: null), the outcome as UTF-8 JSON
 * (without `output`), then the output bytes.
 */
import type { CallOutcome } from '../types.ts';

const HEADER = 8;
const ENTRY_HEADER = 12;
/** Journal size: a batch whose outcomes do not fit is posted early instead. */
export const JOURNAL_BYTES = 1024 * 1024;

export function newJournal(): SharedArrayBuffer {
  return new SharedArrayBuffer(JOURNAL_BYTES);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const align4 = (n: number): number => (n + 3) & ~3;

interface Views {
  readonly words: Int32Array;
  readonly view: DataView;
  readonly bytes: Uint8Array;
}

/** Views over each journal, made once (the worker appends on every call). */
const views = new WeakMap<SharedArrayBuffer, Views>();

function viewsOf(journal: SharedArrayBuffer): Views {
  let v = views.get(journal);
  if (!v) {
    v = {
      words: new Int32Array(journal, 0, 2),
      view: new DataView(journal),
      bytes: new Uint8Array(journal),
    };
    views.set(journal, v);
  }
  return v;
}

/** An outcome without its output bytes, as JSON text (journaled, and posted in batches). */
export function outcomeMeta(o: CallOutcome): string {
  // The common case by hand (a template is cheaper than an object and a stringify per call).
  if (o.ok && Number.isFinite(o.durationMs) && (o.fuelUsed === null || Number.isFinite(o.fuelUsed)))
    return `{"ok":true,"durationMs":${o.durationMs},"fuelUsed":${o.fuelUsed}}`;
  return JSON.stringify(
    o.ok
      ? { ok: true, durationMs: o.durationMs, fuelUsed: o.fuelUsed }
      : {
          ok: false,
          status: o.status,
          reason: o.reason,
          message: o.message,
          durationMs: o.durationMs,
          fuelUsed: o.fuelUsed,
        },
  );
}

/** The outcome `outcomeMeta` described (freshly parsed: it is completed in place). */
export function outcomeFrom(meta: CallOutcome, output: Uint8Array | null): CallOutcome {
  if (meta.ok) (meta as { output: Uint8Array | null }).output = output;
  return meta;
}

/**
 * Worker side: appends one outcome (`meta` from `outcomeMeta`); false if it does not fit (post,
 * clear, and retry).
 */
export function journalAppend(
  journal: SharedArrayBuffer,
  callId: number,
  meta: string,
  output: Uint8Array | null,
): boolean {
  const { words, view, bytes } = viewsOf(journal);
  const used = Atomics.load(words, 0);
  const outLen = output ? output.length : -1;
  const start = HEADER + used;
  const jsonAt = start + ENTRY_HEADER;
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  if (jsonAt + meta.length * 3 + Math.max(outLen, 0) + 8 > journal.byteLength) return false;
  const { written } = encoder.encodeInto(meta, bytes.subarray(jsonAt));
  view.setInt32(start, callId, true);
  view.setInt32(start + 4, written, true);
  view.setInt32(start + 8, outLen, true);
  const outAt = align4(jsonAt + written);
  if (output) bytes.set(output, outAt);
  Atomics.store(words, 0, outAt + align4(Math.max(outLen, 0)) - HEADER);
  return true;
}

/** Worker side: forgets every entry (their outcomes were posted). */
export function journalClear(journal: SharedArrayBuffer): void {
  Atomics.store(viewsOf(journal).words, 0, 0);
}

/** Pool side: the outcomes journaled (after the worker exited, or while it runs a long call). */
export function journalRead(journal: SharedArrayBuffer): Map<number, CallOutcome> {
  const out = new Map<number, CallOutcome>();
  const { words, view } = viewsOf(journal);
  const used = Atomics.load(words, 0);
  let at = HEADER;
  while (at + ENTRY_HEADER <= HEADER + used) {
    const callId = view.getInt32(at, true);
    const jsonLen = view.getInt32(at + 4, true);
    const outLen = view.getInt32(at + 8, true);
    const jsonAt = at + ENTRY_HEADER;
    const outAt = align4(jsonAt + jsonLen);
    const meta = JSON.parse(
      decoder.decode(new Uint8Array(journal, jsonAt, jsonLen).slice()),
    ) as CallOutcome;
    const output = outLen < 0 ? null : new Uint8Array(journal, outAt, outLen).slice();
    out.set(callId, outcomeFrom(meta, output));
    at = outAt + align4(Math.max(outLen, 0));
  }
  return out;
}
