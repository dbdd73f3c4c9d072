/**
 * How a batch of calls travels to a worker: a compact binary encoding in one `ArrayBuffer`,
 * transferred with the `batch` message (no copy, no structured clone of objects).
 *
 * Why not JSON text: measured on this project's 2-core machine, `JSON.stringify` of a batch cost
 * the main thread ~0.4-0.9 µs per call and `JSON.parse` the worker ~0.6-1.2 µs per call, more
 * than the call itself (~0.5 µs for a no-op guest through `InThreadSandbox.callNow`). Here every
 * field has a fixed place; ASCII strings (the usual ids, phases and JSON payloads) are written
 * a byte a character (short ones in a loop, longer ones by `Buffer.write`) and short ones read
 * back the same way, UTF-8 through TextEncoder/TextDecoder otherwise. The message itself (one
 * per batch) is what orders a batch behind the `load` of the plugins it calls, as before.
 *
 * Layout (little-endian): int32 count, int32 length (the bytes written: the buffer is sized by
 * an upper bound and sent whole, its tail past `length` unused), then per call: int32 callId,
 * int32 seq, int32 flags (bit 0: slow; bit 1: caller.everyHost; bit 2: a snapshot of the
 * plugin's variables follows the strings: float64 version, int32 count, then per variable its
 * key as a string and its value as an int32 length and the bytes), float64 runId, float64
 * scheduledAt (NaN: absent), then the strings pluginId, fn, input, caller.pluginId,
 * caller.tenant, caller.phase, caller.scheduleKey, each as an int32 head (-1: absent; else
 * length × 4 + kind) and its bytes. Kinds: 1 ASCII (a byte a unit), 0 UTF-8, 2 UTF-16 code units
 * (a string that is not well-formed, i.e. has a lone surrogate: UTF-8 would replace it, JSON
 * kept it; this keeps it too). The
 * encoding is written by the pool and read by its own worker; nothing a guest controls is in it
 * except as string content, and a decoder that meets a length past the buffer throws (the worker
 * then fails the batch's calls, see worker-main.ts).
 */
import { Buffer } from 'node:buffer';
import type { CallRequest, CallerContext, GuestExport, Phase } from '../types.ts';
import type { VarsSnapshot } from '../plugin-vars.ts';
import type { BatchCall } from './protocol.ts';

const FIXED = 4 * 3 + 8 * 2;
const STRINGS = 7;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/**
 * Longest string written in a loop (if ASCII). A longer one is measured by `Buffer.byteLength`
 * (its UTF-8 length equals its length only if it is ASCII), then written by `Buffer.write` as
 * latin1 (one copy in C++), or by TextEncoder if it is not ASCII. For a run's input (~210
 * characters): ~95 ns against ~360-590 ns in the loop, where a CPU profile of a burst found
 * ~1.2 µs of the scheduler's thread per run.
 */
const ENCODE_LOOP_MAX = 32;
/** Longest ASCII string read in a loop; longer ones go through TextDecoder. */
const DECODE_LOOP_MAX = 64;

const ASCII = 1;
const UTF8 = 0;
const UTF16 = 2;
const isWellFormed = (s: string): boolean =>
  (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Upper bound of one string's encoded size (head + UTF-8's at most 3 bytes a UTF-16 unit). */
const bound = (s: string | undefined): number => 4 + (s === undefined ? 0 : s.length * 3);

/** Encodes `calls` (a batch, in order). */
export function encodeBatch(calls: readonly BatchCall[]): ArrayBuffer {
  let size = 8;
  for (const c of calls) {
    const { req } = c;
    const k = req.caller;
    size +=
      FIXED +
      bound(c.pluginId) +
      bound(req.fn) +
      bound(req.input) +
      bound(k.pluginId) +
      bound(k.tenant) +
      bound(k.phase) +
      bound(k.scheduleKey);
    if (c.vars) {
      size += 12;
      for (const [key, v] of c.vars.entries) size += bound(key) + 4 + v.length;
    }
  }
  const buf = new ArrayBuffer(size);
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  let buffer: Buffer | undefined;
  view.setInt32(0, calls.length, true);
  let at = 8;
  const str = (s: string | undefined): void => {
    if (s === undefined) {
      view.setInt32(at, -1, true);
      at += 4;
      return;
    }
    const body = at + 4;
    const n = s.length;
    let ascii: boolean;
    if (n <= ENCODE_LOOP_MAX) {
      ascii = true;
      for (let i = 0; i < n; i++) {
        const ch = s.charCodeAt(i);
        if (ch > 0x7f) {
          ascii = false;
          break;
        }
        bytes[body + i] = ch;
      }
    } else {
      ascii = Buffer.byteLength(s, 'utf8') === n;
      if (ascii) (buffer ??= Buffer.from(buf)).write(s, body, n, 'latin1');
    }
    if (ascii) {
      view.setInt32(at, n * 4 + ASCII, true);
      at = body + n;
    } else if (isWellFormed(s)) {
      const len = encoder.encodeInto(s, bytes.subarray(body, body + n * 3)).written;
      view.setInt32(at, len * 4 + UTF8, true);
      at = body + len;
    } else {
      for (let i = 0; i < n; i++) view.setUint16(body + 2 * i, s.charCodeAt(i), true);
      view.setInt32(at, n * 4 + UTF16, true);
      at = body + 2 * n;
    }
  };
  for (const c of calls) {
    const k = c.req.caller;
    view.setInt32(at, c.callId, true);
    view.setInt32(at + 4, c.seq, true);
    view.setInt32(
      at + 8,
      (c.slow ? 1 : 0) | (k.everyHost === true ? 2 : 0) | (c.vars ? 4 : 0),
      true,
    );
    view.setFloat64(at + 12, k.runId ?? NaN, true);
    view.setFloat64(at + 20, k.scheduledAt ?? NaN, true);
    at += FIXED;
    str(c.pluginId);
    str(c.req.fn);
    str(c.req.input);
    str(k.pluginId);
    str(k.tenant);
    str(k.phase);
    str(k.scheduleKey);
    if (c.vars) {
      view.setFloat64(at, c.vars.version, true);
      view.setInt32(at + 8, c.vars.entries.length, true);
      at += 12;
      for (const [key, v] of c.vars.entries) {
        str(key);
        view.setInt32(at, v.length, true);
        bytes.set(v, at + 4);
        at += 4 + v.length;
      }
    }
  }
  // Sent whole (transferred, not copied) rather than cut to `at` by `slice`: that made a second
  // ArrayBuffer per batch for the scheduler thread's GC to sweep (see result-ring.ts).
  view.setInt32(4, at, true);
  return buf;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class BatchDecodeError extends Error {}

/** `n` UTF-16 code units at `at`, as written (lone surrogates included). */
function utf16(view: DataView, at: number, n: number): string {
  let s = '';
  const chunk: number[] = [];
  for (let i = 0; i < n; i++) {
    chunk.push(view.getUint16(at + 2 * i, true));
    if (chunk.length === 4096 || i === n - 1) {
      s += String.fromCharCode(...chunk);
      chunk.length = 0;
    }
  }
  return s;
}

/** The last short ASCII value of each string field, per thread (see `decodeBatch`). */
const recent: string[] = new Array<string>(STRINGS + 1).fill('');

/** Decodes what `encodeBatch` wrote. Throws `BatchDecodeError` on anything inconsistent. */
export function decodeBatch(buf: ArrayBuffer): BatchCall[] {
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  if (buf.byteLength < 8) throw new BatchDecodeError('batch too short');
  const count = view.getInt32(0, true);
  const end = view.getInt32(4, true);
  if (end < 8 || end > buf.byteLength) throw new BatchDecodeError('truncated batch');
  if (count < 0 || count * (FIXED + 4 * STRINGS) > end) throw new BatchDecodeError('bad count');
  let at = 8;
  const str = (field: number): string | undefined => {
    if (at + 4 > end) throw new BatchDecodeError('truncated batch');
    const head = view.getInt32(at, true);
    at += 4;
    if (head === -1) return undefined;
    const kind = head & 3;
    const len = kind === UTF16 ? (head >> 2) * 2 : head >> 2;
    if (head < 0 || kind === 3 || at + len > end) throw new BatchDecodeError('bad string head');
    const from = at;
    at += len;
    if (kind === UTF16) return utf16(view, from, len >> 1);
    if (kind === UTF8 || len > DECODE_LOOP_MAX) return decoder.decode(bytes.subarray(from, at));
    // Ids, export names and phases repeat from call to call: the field's last value is reused
    // when the bytes are the same (comparing is cheaper than building a string).
    const last = recent[field] as string;
    if (last.length === len) {
      let i = 0;
      while (i < len && last.charCodeAt(i) === bytes[from + i]) i++;
      if (i === len) return last;
    }
    let s = '';
    for (let i = from; i < at; i++) s += String.fromCharCode(bytes[i] as number);
    recent[field] = s;
    return s;
  };
  const out: BatchCall[] = [];
  for (let i = 0; i < count; i++) {
    if (at + FIXED > end) throw new BatchDecodeError('truncated batch');
    const callId = view.getInt32(at, true);
    const seq = view.getInt32(at + 4, true);
    const flags = view.getInt32(at + 8, true);
    const slow = (flags & 1) === 1;
    const runId = view.getFloat64(at + 12, true);
    const scheduledAt = view.getFloat64(at + 20, true);
    at += FIXED;
    const pluginId = str(0);
    const fn = str(1);
    const input = str(2);
    const callerPlugin = str(3);
    const tenant = str(4);
    const phase = str(5);
    const scheduleKey = str(6);
    let vars: VarsSnapshot | undefined;
    if ((flags & 4) === 4) {
      if (at + 12 > end) throw new BatchDecodeError('truncated batch');
      const version = view.getFloat64(at, true);
      const n = view.getInt32(at + 8, true);
      at += 12;
      if (n < 0 || n * 8 > end - at) throw new BatchDecodeError('bad variable count');
      const entries: [string, Uint8Array][] = [];
      for (let j = 0; j < n; j++) {
        const key = str(7);
        if (key === undefined || at + 4 > end) throw new BatchDecodeError('bad variable');
        const len = view.getInt32(at, true);
        at += 4;
        if (len < 0 || at + len > end) throw new BatchDecodeError('bad variable length');
        entries.push([key, bytes.slice(at, at + len)]);
        at += len;
      }
      vars = { version, entries };
    }
    if (
      pluginId === undefined ||
      fn === undefined ||
      callerPlugin === undefined ||
      tenant === undefined ||
      phase === undefined
    )
      throw new BatchDecodeError('a required field is missing');
    const caller: Mutable<CallerContext> = {
      pluginId: callerPlugin,
      tenant,
      phase: phase as Phase,
    };
    if (scheduleKey !== undefined) caller.scheduleKey = scheduleKey;
    if ((flags & 2) === 2) caller.everyHost = true;
    if (!Number.isNaN(runId)) caller.runId = runId;
    if (!Number.isNaN(scheduledAt)) caller.scheduledAt = scheduledAt;
    const req: CallRequest =
      input === undefined
        ? { fn: fn as GuestExport, caller }
        : { fn: fn as GuestExport, input, caller };
    const call: BatchCall = slow
      ? { callId, seq, pluginId, req, slow: true }
      : { callId, seq, pluginId, req };
    out.push(vars === undefined ? call : { ...call, vars });
  }
  return out;
}
