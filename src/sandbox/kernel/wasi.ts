/**
 * Hourglass's own WASI preview 1 for metered guests (docs/sandbox-kernel.md#wasi), in place of
 * Node's: nothing here can block a thread, read the host's clock or entropy, or touch a file.
 *
 * - **Time is virtual.** The monotonic clock counts nanoseconds of *fuel*: it advances by the
 *   fuel the instance has used (1 ns per unit), plus 1 ns per clock read, plus every virtual
 *   sleep, and never goes back over the instance's life. The wall clock is the call's
 *   scheduled time (`CallerContext.scheduledAt`; the Unix epoch outside runs) plus the
 *   monotonic time elapsed since the call began. Same input, same fuel, same readings.
 * - **Sleeps return at once.** `poll_oneoff` advances virtual time to the earliest clock
 *   deadline and reports it, billed per subscription; fd subscriptions are ready at once.
 * - **Randomness is a seeded stream** (AES-128-CTR keyed by the plugin id): two fresh instances
 *   read the same bytes, so Go's map seeds and GC pacing, and hence its fuel, repeat exactly.
 *   It is NOT cryptographic randomness for the guest (documented).
 * - **stdout/stderr are log lines** (info/warn), split at newlines or 4 KiB, at most
 *   `MAX_WASI_OUTPUT_BYTES_PER_CALL` kept per guest call (the rest counted and reported);
 *   `fd_write` still reports every byte written, so guests do not retry.
 * - **No files, environment or arguments**: no preopens (`fd_prestat_get` answers EBADF),
 *   fd ops on anything but 0-2 EBADF, path and socket ops ENOTCAPABLE, every other function
 *   ENOSYS. `proc_exit` ends the call (see `WasiKernel.exitCode`).
 * - **Priced before the work**: each call costs `WASI_CALL_FUEL` plus one unit per byte it
 *   moves (two per random byte; a sleep `WASI_POLL_FUEL` more), charged before it touches
 *   memory. When the fuel does not cover it the function
 *   returns without working, and the guest traps out of fuel at the check that follows every
 *   host call. Counts (iovecs, subscriptions) are capped; random bytes are made in 64 KiB
 *   chunks, so host memory stays bounded whatever the guest asks.
 */
import { createCipheriv, createHash, type Cipher } from 'node:crypto';
import type { FuelMeter } from '../../fuel/meter.ts';
import type { WasiImport } from './entry-rewrite.ts';
import { Errno } from './wasi-abi.ts';

/** Fuel every WASI call costs on the host side (about a microsecond of host work). */
export const WASI_CALL_FUEL = 1_000;
/**
 * Extra fuel per `poll_oneoff` call (a sleep), and per subscription (plus its 80 bytes moved):
 * a sleep loop measured ~5-10 µs of host time per call on a loaded 2-core machine.
 */
export const WASI_POLL_FUEL = 10_000;
export const WASI_SUBSCRIPTION_FUEL = 1_000;
/** Fuel per random byte (AES-CTR and the copy into guest memory: ~1-2 ns per byte). */
export const WASI_RANDOM_BYTE_FUEL = 2;
/** stdout + stderr bytes kept per guest call; the rest are dropped and counted. */
export const MAX_WASI_OUTPUT_BYTES_PER_CALL = 65_536;
/** A log line is cut at this many bytes when no newline comes first. */
export const MAX_WASI_LINE_BYTES = 4_096;
/**
 * stdout + stderr lines kept per guest call (init included); the rest are dropped. Half the
 * sandbox's per-call log-line cap, so Extism's own log lines and the drop report still fit.
 */
export const MAX_WASI_LINES_PER_CALL = 500;
export const MAX_IOVECS = 1_024;
export const MAX_SUBSCRIPTIONS = 1_024;

/** What the kernel needs from the sandbox, for the instance it serves. */
export interface WasiHost {
  /** The instance's memory (null before it is bound or if the module exports none). */
  memory(): WebAssembly.Memory | null;
  /** The instance's fuel meter (null before it is bound: then every call is refused). */
  meter(): FuelMeter | null;
  log(level: 'info' | 'warn', message: string): void;
}

/** The meter operations the functions use. */
interface Metered {
  memory(): WebAssembly.Memory | null;
  /** Charges fuel; false when the fuel does not cover it (skip the work and return). */
  charge(fuel: number): boolean;
  /** Fuel used by the current guest call so far (init counts as a call). */
  fuelUsed(): bigint;
  /** Drains the remaining fuel, so the guest cannot carry on past `proc_exit`. */
  drain(): void;
  log(level: 'info' | 'warn', message: string): void;
}

type WasiFn = (...args: (number | bigint)[]) => number | undefined;
const U64_MAX = (1n << 64n) - 1n;
const RANDOM_CHUNK = 65_536;
const ZEROS = new Uint8Array(RANDOM_CHUNK);
const decoder = new TextDecoder();

export class WasiKernel {
  readonly #host: Metered;
  readonly #random: Cipher;
  /** Monotonic nanoseconds at the start of the current call. */
  #mono = 0n;
  #callStart = 0n;
  #wallBase = 0n;
  #slept = 0n;
  #reads = 0n;
  #pending: [Uint8Array[], Uint8Array[]] = [[], []];
  #pendingBytes = [0, 0];
  #kept = 0;
  #lines = 0;
  #dropped = 0;
  /** Set by `proc_exit`: its code and the fuel the call had used when it exited. */
  exit: { readonly code: number; readonly fuelUsed: bigint } | null = null;

  constructor(seed: string, host: WasiHost) {
    this.#host = {
      memory: () => host.memory(),
      log: (level, message) => host.log(level, message),
      charge: (fuel) => host.meter()?.charge(BigInt(fuel)) ?? false,
      fuelUsed: () => host.meter()?.used() ?? 0n,
      drain: () => {
        const meter = host.meter();
        if (meter && meter.remaining() >= 0n) meter.charge(meter.remaining() + 1n);
      },
    };
    const key = createHash('sha256').update(`hourglass-wasi-random/1\0${seed}`).digest();
    this.#random = createCipheriv('aes-128-ctr', key.subarray(0, 16), Buffer.alloc(16));
  }

  /** Starts a guest call (or the instance's init) whose wall clock starts at `scheduledAtMs`. */
  begin(scheduledAtMs: number | undefined): void {
    this.#callStart = this.#mono;
    this.#wallBase = BigInt(Math.max(0, Math.trunc(scheduledAtMs ?? 0))) * 1_000_000n;
    this.#slept = 0n;
    this.#reads = 0n;
    this.#kept = 0;
    this.#lines = 0;
    this.#dropped = 0;
    this.exit = null;
  }

  /** Ends the call: flushes partial lines and reports dropped output. */
  end(): void {
    this.#mono = this.#monotonic();
    for (const fd of [1, 2] as const) this.#flush(fd);
    if (this.#dropped > 0) {
      this.#host.log(
        'warn',
        `${this.#dropped} bytes of stdout/stderr were dropped (limits: ${MAX_WASI_OUTPUT_BYTES_PER_CALL} bytes and ${MAX_WASI_LINES_PER_CALL} lines per call)`,
      );
    }
  }

  #monotonic(): bigint {
    const used = this.#host.fuelUsed();
    return this.#callStart + (used > 0n ? used : 0n) + this.#slept + this.#reads;
  }

  #now(clock: number): bigint {
    const mono = this.#monotonic();
    const t = clock === 0 ? this.#wallBase + (mono - this.#callStart) : mono;
    return t > U64_MAX ? U64_MAX : t;
  }

  /** A view of `len` bytes of guest memory at `ptr`, or null when out of bounds. */
  #view(ptr: number, len: number): DataView | null {
    const mem = this.#host.memory();
    const at = ptr >>> 0;
    if (!mem || at + len > mem.buffer.byteLength) return null;
    return new DataView(mem.buffer, at, len);
  }

  /** The functions to import under `hourglass:wasi`, one per name the module imports. */
  functions(
    imports: readonly WasiImport[],
  ): Record<string, (cx: unknown, ...args: (number | bigint)[]) => number | undefined> {
    const fns: Record<string, (cx: unknown, ...args: (number | bigint)[]) => number | undefined> =
      {};
    const impl = this.#impl();
    for (const { name } of imports) {
      const f =
        impl[name] ??
        (name.startsWith('path_') || name.startsWith('sock_')
          ? this.#refuse(Errno.NOTCAPABLE)
          : name.startsWith('fd_')
            ? this.#fdStub()
            : this.#refuse(Errno.NOSYS));
      // Extism passes its CallContext first; WASI functions do not use it.
      fns[name] = (_cx: unknown, ...args: (number | bigint)[]) => f(...args);
    }
    return fns;
  }

  #refuse(errno: number): WasiFn {
    return () => (this.#host.charge(WASI_CALL_FUEL) ? errno : Errno.NOSYS);
  }

  /** fd operations without an implementation: stdio cannot do them, other fds do not exist. */
  #fdStub(): WasiFn {
    return (fd) => (this.#host.charge(WASI_CALL_FUEL) && isStdio(fd) ? Errno.NOSYS : Errno.BADF);
  }

  #impl(): Record<string, WasiFn> {
    const host = this.#host;
    const charge = (extra = 0) => host.charge(WASI_CALL_FUEL + extra);
    const zeroPair = (a: number | bigint, b: number | bigint): number => {
      if (!charge(8)) return Errno.NOSYS;
      const va = this.#view(Number(a), 4);
      const vb = this.#view(Number(b), 4);
      if (!va || !vb) return Errno.FAULT;
      va.setUint32(0, 0, true);
      vb.setUint32(0, 0, true);
      return Errno.SUCCESS;
    };
    return {
      args_sizes_get: zeroPair,
      environ_sizes_get: zeroPair,
      args_get: () => (charge() ? Errno.SUCCESS : Errno.NOSYS),
      environ_get: () => (charge() ? Errno.SUCCESS : Errno.NOSYS),
      sched_yield: () => (charge() ? Errno.SUCCESS : Errno.NOSYS),
      clock_res_get: (id, ptr) => {
        if (!charge(8)) return Errno.NOSYS;
        if (Number(id) >>> 0 > 3) return Errno.INVAL;
        const v = this.#view(Number(ptr), 8);
        if (!v) return Errno.FAULT;
        v.setBigUint64(0, 1n, true);
        return Errno.SUCCESS;
      },
      clock_time_get: (id, _precision, ptr) => {
        if (!charge(8)) return Errno.NOSYS;
        const clock = Number(id) >>> 0;
        if (clock > 3) return Errno.INVAL;
        const v = this.#view(Number(ptr), 8);
        if (!v) return Errno.FAULT;
        this.#reads += 1n;
        v.setBigUint64(0, this.#now(clock), true);
        return Errno.SUCCESS;
      },
      random_get: (ptr, len) => {
        const n = Number(len) >>> 0;
        if (!charge(n * WASI_RANDOM_BYTE_FUEL)) return Errno.NOSYS;
        const mem = host.memory();
        const at = Number(ptr) >>> 0;
        if (!mem || at + n > mem.buffer.byteLength) return Errno.FAULT;
        for (let done = 0; done < n; done += RANDOM_CHUNK) {
          const size = Math.min(RANDOM_CHUNK, n - done);
          const bytes = this.#random.update(ZEROS.subarray(0, size));
          new Uint8Array(mem.buffer, at + done, size).set(bytes);
        }
        return Errno.SUCCESS;
      },
      poll_oneoff: (inPtr, outPtr, nsubs, neventsPtr) =>
        this.#poll(inPtr, outPtr, nsubs, neventsPtr),
      fd_write: (fd, iovs, iovsLen, nwrittenPtr) => this.#write(fd, iovs, iovsLen, nwrittenPtr),
      fd_read: (fd, _iovs, _iovsLen, nreadPtr) => {
        if (!charge(4)) return Errno.NOSYS;
        if (Number(fd) !== 0) return Errno.BADF;
        const v = this.#view(Number(nreadPtr), 4);
        if (!v) return Errno.FAULT;
        v.setUint32(0, 0, true); // stdin is empty: end of file
        return Errno.SUCCESS;
      },
      fd_fdstat_get: (fd, ptr) => {
        if (!charge(24)) return Errno.NOSYS;
        if (!isStdio(fd)) return Errno.BADF;
        const v = this.#view(Number(ptr), 24);
        if (!v) return Errno.FAULT;
        for (let i = 0; i < 24; i += 8) v.setBigUint64(i, 0n, true);
        v.setUint8(0, 2); // character device
        v.setBigUint64(8, Number(fd) === 0 ? 1n << 1n : 1n << 6n, true); // fd_read / fd_write
        return Errno.SUCCESS;
      },
      fd_fdstat_set_flags: (fd) => (!charge() ? Errno.NOSYS : isStdio(fd) ? 0 : Errno.BADF),
      fd_close: (fd) => (!charge() ? Errno.NOSYS : isStdio(fd) ? 0 : Errno.BADF),
      fd_seek: (fd) => (!charge() ? Errno.NOSYS : isStdio(fd) ? Errno.SPIPE : Errno.BADF),
      fd_tell: (fd) => (!charge() ? Errno.NOSYS : isStdio(fd) ? Errno.SPIPE : Errno.BADF),
      fd_prestat_get: () => (charge() ? Errno.BADF : Errno.NOSYS),
      fd_prestat_dir_name: () => (charge() ? Errno.BADF : Errno.NOSYS),
      proc_raise: () => (charge() ? Errno.NOSYS : Errno.NOSYS),
      proc_exit: (code) => {
        this.exit = { code: Number(code) >>> 0, fuelUsed: host.fuelUsed() };
        host.drain();
        throw new WebAssembly.RuntimeError(`proc_exit(${Number(code) >>> 0})`);
      },
    };
  }

  #write(
    fd: number | bigint,
    iovs: number | bigint,
    iovsLen: number | bigint,
    nwrittenPtr: number | bigint,
  ): number {
    const n = Number(iovsLen) >>> 0;
    const host = this.#host;
    if (!host.charge(WASI_CALL_FUEL)) return Errno.NOSYS;
    const f = Number(fd);
    if (f !== 1 && f !== 2) return Errno.BADF;
    if (n > MAX_IOVECS) return Errno.INVAL;
    if (!host.charge(n * 8)) return Errno.NOSYS;
    const vec = this.#view(Number(iovs), n * 8);
    const out = this.#view(Number(nwrittenPtr), 4);
    const mem = host.memory();
    if (!vec || !out || !mem) return Errno.FAULT;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const ptr = vec.getUint32(i * 8, true);
      const len = vec.getUint32(i * 8 + 4, true);
      if (ptr + len > mem.buffer.byteLength) return Errno.FAULT;
      total += len;
    }
    if (!host.charge(total)) return Errno.NOSYS;
    for (let i = 0; i < n; i++) {
      const ptr = vec.getUint32(i * 8, true);
      const len = vec.getUint32(i * 8 + 4, true);
      const keep = Math.min(len, MAX_WASI_OUTPUT_BYTES_PER_CALL - this.#kept);
      if (keep > 0) this.#output(f, new Uint8Array(mem.buffer, ptr, keep));
      this.#kept += keep;
      this.#dropped += len - keep;
    }
    out.setUint32(0, Math.min(total, 0xffffffff), true);
    return Errno.SUCCESS;
  }

  /** Appends bytes to fd's pending line, emitting a log line per newline or 4 KiB. */
  #output(fd: 1 | 2, bytes: Uint8Array): void {
    const i = fd - 1;
    let start = 0;
    while (start < bytes.length) {
      const room = MAX_WASI_LINE_BYTES - (this.#pendingBytes[i] as number);
      const nl = bytes.subarray(start, start + room).indexOf(10);
      const end = nl >= 0 ? start + nl : Math.min(bytes.length, start + room);
      (this.#pending[i] as Uint8Array[]).push(bytes.slice(start, end));
      this.#pendingBytes[i] = (this.#pendingBytes[i] as number) + (end - start);
      if (nl >= 0 || this.#pendingBytes[i] === MAX_WASI_LINE_BYTES) this.#flush(fd, true);
      start = nl >= 0 ? end + 1 : end;
    }
  }

  #flush(fd: 1 | 2, force = false): void {
    const i = fd - 1;
    const parts = this.#pending[i] as Uint8Array[];
    if (parts.length === 0 && !force) return;
    const line = new Uint8Array(this.#pendingBytes[i] as number);
    let at = 0;
    for (const p of parts) {
      line.set(p, at);
      at += p.length;
    }
    this.#pending[i] = [];
    this.#pendingBytes[i] = 0;
    if (++this.#lines > MAX_WASI_LINES_PER_CALL) this.#dropped += line.length + 1;
    else this.#host.log(fd === 1 ? 'info' : 'warn', decoder.decode(line));
  }

  #poll(
    inPtr: number | bigint,
    outPtr: number | bigint,
    nsubs: number | bigint,
    neventsPtr: number | bigint,
  ): number {
    const n = Number(nsubs) >>> 0;
    const host = this.#host;
    if (!host.charge(WASI_CALL_FUEL)) return Errno.NOSYS;
    if (n === 0 || n > MAX_SUBSCRIPTIONS) return Errno.INVAL;
    if (!host.charge(WASI_POLL_FUEL + n * (WASI_SUBSCRIPTION_FUEL + 80))) return Errno.NOSYS;
    const subs = this.#view(Number(inPtr), n * 48);
    const events = this.#view(Number(outPtr), n * 32);
    const nevents = this.#view(Number(neventsPtr), 4);
    if (!subs || !events || !nevents) return Errno.FAULT;
    // Decode first (the out array may overlap the in array).
    const clocks: { at: number; wait: bigint }[] = [];
    const ready: { at: number; error: number }[] = [];
    for (let k = 0; k < n; k++) {
      const tag = subs.getUint8(k * 48 + 8);
      if (tag === 0) {
        const id = subs.getUint32(k * 48 + 16, true);
        const timeout = subs.getBigUint64(k * 48 + 24, true);
        const abs = (subs.getUint16(k * 48 + 40, true) & 1) === 1;
        if (id > 3) ready.push({ at: k, error: Errno.INVAL });
        else {
          const wait = abs ? timeout - this.#now(id) : timeout;
          clocks.push({ at: k, wait: wait > 0n ? wait : 0n });
        }
      } else if (tag === 1 || tag === 2) {
        const fd = subs.getUint32(k * 48 + 16, true);
        const ok = tag === 1 ? fd === 0 : fd === 1 || fd === 2;
        ready.push({ at: k, error: ok ? Errno.SUCCESS : Errno.BADF });
      } else ready.push({ at: k, error: Errno.INVAL });
    }
    let wait = 0n;
    if (ready.length === 0) {
      wait = clocks.reduce((m, c) => (c.wait < m ? c.wait : m), U64_MAX);
      this.#slept += wait;
    }
    const fired = [
      ...ready,
      ...clocks.filter((c) => c.wait <= wait).map((c) => ({ ...c, error: 0 })),
    ];
    const userdata = fired.map(
      (e) => [subs.getBigUint64(e.at * 48, true), subs.getUint8(e.at * 48 + 8)] as const,
    );
    fired.forEach((e, j) => {
      const base = j * 32;
      const [data, tag] = userdata[j] as readonly [bigint, number];
      for (let b = 0; b < 32; b += 8) events.setBigUint64(base + b, 0n, true);
      events.setBigUint64(base, data, true);
      events.setUint16(base + 8, e.error, true);
      events.setUint8(base + 10, tag);
      if (tag === 1 && e.error === 0) events.setUint16(base + 24, 1, true); // stdin: hang-up
    });
    nevents.setUint32(0, fired.length, true);
    return Errno.SUCCESS;
  }
}

function isStdio(fd: number | bigint): boolean {
  const f = Number(fd);
  return f === 0 || f === 1 || f === 2;
}
