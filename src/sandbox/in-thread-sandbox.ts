/**
 * The simplest `Sandbox`: Extism foreground plugins on the calling thread. One instance per
 * guest, created lazily from the module compiled at load, and discarded after any trap (a
 * trapped guest's allocator or shadow stack may be mid-update). Host functions are answered
 * synchronously by the `HostCallHandler`.
 *
 * Every call is metered (docs/fuel.md): the instance's fuel global is set to the phase's
 * budget before the call and read after it, so a guest that never returns ends `out_of_fuel`.
 * Host functions charge their static cost plus one unit per byte moved, plus the fuel the
 * handler reports for its work (`HostCallAnswer.fuel`). A host call refused for `capability`
 * or `phase` (`HostCallAnswer.denied`) ends the call as `host_call_denied`: the guest still
 * receives the error answer, but its fuel is drained, so it traps at the check that follows
 * every host call (a trap, unlike a JS exception, cannot be caught by the guest).
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { performance } from 'node:perf_hooks';
import { CAPABILITIES } from '../capabilities.ts';
import { HourglassError } from '../errors.ts';
import { FuelMeter } from '../fuel/meter.ts';
import { prepareGuest, HOST_NAMESPACE, type PreparedGuest } from './guest-module.ts';
import { HOURGLASS_WASI } from './kernel/entry-rewrite.ts';
import { GuestInitError, runGuestInit } from './kernel/guest-init.ts';
import { WasiKernel } from './kernel/wasi.ts';
import { RC_GLOBAL } from './return-code.ts';
import type {
  CallOutcome,
  CallRequest,
  CallerContext,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from './types.ts';
import { asHostCallAnswer } from './types.ts';

/** Largest host-function request accepted (bytes); larger ones get `too_large`. */
export const MAX_HOST_REQUEST_BYTES = 65_536;
/** Log lines kept per guest call (guest `log_*` and Extism's own); the rest are dropped. */
export const MAX_LOG_LINES_PER_CALL = 1_000;
const GUEST_ERROR_PREFIX = 'Plugin-originated error: ';

interface CallState {
  caller: CallerContext;
  abort: string | null;
  /** Why a host call was refused for capability or phase (ends the call). */
  denied: string | null;
  logLines: number;
}

/** A guest spec without its bytes (the compiled module travels separately). */
export type PreparedSpec = Omit<GuestSpec, 'wasm'>;

interface LoadedGuest {
  readonly spec: PreparedSpec;
  readonly prepared: PreparedGuest;
  plugin: Plugin | null;
  /** The live instance's exported memory (for reading abort messages). */
  memory: WebAssembly.Memory | null;
  /** The live instance's fuel meter. */
  meter: FuelMeter | null;
  /** The live instance's `__hg_rc` global (absent when no export returns i32). */
  rc: WebAssembly.Global | null;
  /** The live instance's WASI (src/sandbox/kernel/wasi.ts; one per instance). */
  wasi: WasiKernel | null;
  /**
   * Calls to one instance are serialized (Extism's call state is per instance): calls made
   * while one runs wait here, and the running call's loop takes them in order.
   */
  readonly waiting: {
    req: CallRequest;
    resolve: (o: CallOutcome) => void;
    reject: (e: unknown) => void;
  }[];
  running: boolean;
  /** Set during a call: the caller and what the guest reported through `env.abort`. */
  state: CallState | null;
}

export interface GuestLogEntry {
  readonly pluginId: string;
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
}

export interface InThreadSandboxOptions {
  readonly hostCall: HostCallHandler;
  /** Receives guest log lines (Extism `log_*`). @defaultValue discard */
  readonly onGuestLog?: (entry: GuestLogEntry) => void;
  /**
   * Static fuel price of each host function (`HOST_CALL_FUEL` from host-functions/registry.ts),
   * charged on top of one unit per byte moved. Passed in as data, so a worker need not load
   * the registry's validators. @defaultValue none: only bytes are charged
   */
  readonly hostCallFuel?: Readonly<Record<string, number>>;
}

export function hostError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export class InThreadSandbox implements Sandbox {
  readonly #guests = new Map<string, LoadedGuest>();
  readonly #opts: InThreadSandboxOptions;

  constructor(opts: InThreadSandboxOptions) {
    this.#opts = opts;
  }

  async load(spec: GuestSpec): Promise<GuestInfo> {
    return this.loadPrepared(spec, await prepareGuest(spec.pluginId, spec.wasm, spec.limits));
  }

  /** Loads a guest whose module was already prepared and compiled (e.g. on another thread). */
  async loadPrepared(spec: PreparedSpec, prepared: PreparedGuest): Promise<GuestInfo> {
    const guest: LoadedGuest = {
      spec,
      prepared,
      plugin: null,
      memory: null,
      meter: null,
      rc: null,
      wasi: null,
      state: null,
      waiting: [],
      running: false,
    };
    // Instantiate once now so that start-function traps and link errors surface at load.
    try {
      guest.plugin = await this.#instantiate(guest);
    } catch (err) {
      throw new HourglassError(
        err instanceof GuestInitError && err.status === 'out_of_fuel'
          ? 'HG_PLUGIN_INIT_FUEL'
          : 'HG_PLUGIN_LOAD',
        `plugin ${spec.pluginId}: cannot be instantiated: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const old = this.#guests.get(spec.pluginId);
    if (old?.plugin) await old.plugin.close();
    this.#guests.set(spec.pluginId, guest);
    return { exports: prepared.exports, imports: prepared.imports, sha256: prepared.sha256 };
  }

  async #instantiate(guest: LoadedGuest): Promise<Plugin> {
    const plugin = await this.#createPlugin(guest);
    const instance = await plugin.getInstance();
    const memory = instance.exports.memory;
    guest.memory = memory instanceof WebAssembly.Memory ? memory : null;
    guest.meter = new FuelMeter(instance);
    const rc = instance.exports[RC_GLOBAL];
    guest.rc = rc instanceof WebAssembly.Global ? rc : null;
    // Init (start section, `_initialize` or `_start`) runs only now, with memory, meter and
    // WASI bound, under the discovery budget (src/sandbox/kernel/guest-init.ts).
    try {
      runGuestInit(instance, guest.meter, guest.wasi, guest.spec.limits.fuel.discovery);
    } catch (err) {
      guest.memory = null;
      guest.meter = null;
      guest.rc = null;
      await plugin.close().catch(() => undefined);
      throw err;
    }
    return plugin;
  }

  #createPlugin(guest: LoadedGuest): Promise<Plugin> {
    const pluginId = guest.spec.pluginId;
    const userFns: Record<string, (cx: CallContext, offset: bigint) => bigint> = {};
    for (const name of CAPABILITIES) {
      userFns[name] = (cx, offset) => BigInt(cx.store(this.#hostCall(guest, name, cx, offset)));
    }
    // Extism logs through this too (e.g. one line per refused `alloc`), so a guest can flood
    // it: each call may log MAX_LOG_LINES_PER_CALL lines; the rest are counted, then reported.
    const log = (level: GuestLogEntry['level']) => (message: string) => {
      const state = guest.state;
      if (state && ++state.logLines > MAX_LOG_LINES_PER_CALL) return;
      this.#opts.onGuestLog?.({ pluginId, level, message: String(message).slice(0, 4096) });
    };
    // Hourglass's WASI, one per instance (its clocks and random stream restart with it).
    const wasiImports = guest.prepared.wasiImports;
    const wasi =
      wasiImports.length === 0
        ? null
        : new WasiKernel(pluginId, {
            memory: () => guest.memory,
            meter: () => guest.meter,
            log: (level, message) => log(level)(message),
          });
    guest.wasi = wasi;
    const logger = {
      trace: log('trace'),
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      log: log('info'),
    };
    return createPlugin(
      {
        wasm: [{ module: guest.prepared.module }],
        config: { ...guest.spec.config },
        memory: { maxPages: guest.spec.limits.memoryPages },
      },
      {
        // Never Node's WASI: the guest's WASI imports were renamed to Hourglass's own.
        useWasi: false,
        logger: logger as unknown as Console,
        functions: {
          [HOST_NAMESPACE]: userFns,
          ...(wasi ? { [HOURGLASS_WASI]: wasi.functions(wasiImports) } : {}),
          env: {
            abort: (_cx: CallContext, msg: number, file: number, line: number, col: number) => {
              const text = `abort: ${readAscString(guest.memory, msg) ?? '?'} at ${readAscString(guest.memory, file) ?? '?'}:${line}:${col}`;
              if (guest.state) guest.state.abort = text;
              throw new WebAssembly.RuntimeError(text);
            },
          },
        },
      },
    );
  }

  #hostCall(guest: LoadedGuest, fn: string, cx: CallContext, offset: bigint): string {
    const caller = guest.state?.caller;
    if (!caller)
      return hostError('phase', 'host functions can only be called during an export call');
    let size: bigint;
    try {
      size = cx.length(offset);
    } catch {
      return hostError('invalid_argument', 'request offset does not name an Extism memory block');
    }
    if (size > BigInt(MAX_HOST_REQUEST_BYTES)) {
      return hostError(
        'too_large',
        `request is ${size} bytes; the limit is ${MAX_HOST_REQUEST_BYTES}`,
      );
    }
    const meter = guest.meter;
    const state = guest.state;
    if (!meter || !state) return hostError('internal', 'no live instance');
    // Static cost plus the bytes moved in; the answer's bytes and the handler's work after it.
    if (!meter.charge(BigInt((this.#opts.hostCallFuel?.[fn] ?? 0) + Number(size)))) {
      return hostError('out_of_fuel', `not enough fuel left to call ${fn}`);
    }
    const text = cx.read(offset)?.text() ?? '';
    const r = asHostCallAnswer(this.#opts.hostCall(caller, fn, text));
    meter.charge(BigInt(r.answer.length) + BigInt(Math.max(0, Math.ceil(r.fuel))));
    if (r.denied !== null) {
      state.denied = r.denied;
      meter.charge(meter.remaining() + 1n);
    }
    return r.answer;
  }

  call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    const guest = this.#guests.get(pluginId);
    if (!guest)
      return Promise.reject(
        new HourglassError('HG_HOST_STATE', `plugin ${pluginId} is not loaded`),
      );
    return new Promise((resolve, reject) => {
      guest.waiting.push({ req, resolve, reject });
      if (!guest.running) void this.#drain(guest);
    });
  }

  async #drain(guest: LoadedGuest): Promise<void> {
    guest.running = true;
    try {
      for (let next = guest.waiting.shift(); next; next = guest.waiting.shift()) {
        try {
          next.resolve(await this.#call(guest, next.req));
        } catch (err) {
          next.reject(err);
        }
      }
    } finally {
      guest.running = false;
    }
  }

  async #call(guest: LoadedGuest, req: CallRequest): Promise<CallOutcome> {
    const limits = guest.spec.limits;
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    let fuelUsed: number | null = null;
    const fail = (
      status: Extract<CallOutcome, { ok: false }>['status'],
      reason: string,
      message: string,
    ): CallOutcome => ({
      ok: false,
      status,
      reason,
      message,
      durationMs: elapsed(),
      fuelUsed,
    });
    if (!guest.prepared.exports.includes(req.fn)) {
      return req.fn === 'cleanup'
        ? { ok: true, output: null, durationMs: 0, fuelUsed: 0 }
        : fail('failed', 'missing_export', `export '${req.fn}' does not exist`);
    }
    let plugin: Plugin;
    try {
      plugin = guest.plugin ??= await this.#instantiate(guest);
    } catch (err) {
      const message = `cannot instantiate: ${(err as Error).message}`;
      if (err instanceof GuestInitError) return fail(err.status, err.reason, message);
      return fail('trapped', 'instantiate', message);
    }
    const meter = guest.meter;
    if (!meter) return fail('trapped', 'instantiate', 'the instance has no fuel meter');
    meter.setBudget(limits.fuel[req.caller.phase]);
    guest.state = { caller: req.caller, abort: null, denied: null, logLines: 0 };
    const wasi = guest.wasi;
    wasi?.begin(req.caller.scheduledAt);
    // `proc_exit` ends the call however the guest carries on (a trap, or a return if it caught
    // the host's exception): exit 0 succeeds without output, any other code fails. The
    // instance is discarded either way (its runtime has shut down).
    const exited = async (): Promise<CallOutcome | null> => {
      const exit = wasi?.exit;
      if (!exit) return null;
      fuelUsed = Number(exit.fuelUsed);
      guest.plugin = null;
      guest.memory = null;
      guest.meter = null;
      guest.rc = null;
      await plugin.close().catch(() => undefined);
      if (exit.code === 0) return { ok: true, output: null, durationMs: elapsed(), fuelUsed };
      return fail('failed', 'proc_exit', `${req.fn}() called proc_exit(${exit.code})`);
    };
    try {
      const out = await plugin.call(req.fn, req.input ?? '', req.caller);
      const exit = await exited();
      if (exit) return exit;
      fuelUsed = Number(meter.settle().fuelUsed);
      const rc = guest.rc?.value as number | undefined;
      if (rc !== undefined && rc !== 0) {
        return fail('failed', 'nonzero_return', `${req.fn}() returned ${rc}`);
      }
      return {
        ok: true,
        output: out ? new Uint8Array(out.bytes()) : null,
        durationMs: elapsed(),
        fuelUsed,
      };
    } catch (err) {
      const exit = await exited();
      if (exit) return exit;
      const message = err instanceof Error ? err.message : String(err);
      if (message.startsWith(GUEST_ERROR_PREFIX)) {
        // The export returned (and wrote its fuel back); Extism threw for its error_set.
        fuelUsed = Number(meter.settle().fuelUsed);
        return fail('failed', 'guest_error', message.slice(GUEST_ERROR_PREFIX.length));
      }
      const settled = meter.settle(err);
      fuelUsed = Number(settled.fuelUsed);
      // Anything else leaves the instance in an unknown state: discard it.
      const pages = guest.memory ? guest.memory.buffer.byteLength / 65_536 : 0;
      guest.plugin = null;
      guest.memory = null;
      guest.meter = null;
      guest.rc = null;
      await plugin.close().catch(() => undefined);
      if (guest.state.denied)
        return fail('host_call_denied', 'host_call_denied', guest.state.denied);
      if (settled.outcome === 'out_of_fuel') {
        return fail(
          'out_of_fuel',
          'out_of_fuel',
          `${req.fn}() used its whole budget of ${meter.currentBudget()} fuel`,
        );
      }
      if (settled.outcome === 'stack_overflow' && meter.depthExceeded()) {
        return fail('stack_overflow', 'call_depth', `${req.fn}() exceeded the call-depth limit`);
      }
      if (pages >= limits.memoryPages) {
        const why = guest.state.abort ?? message;
        return fail(
          'memory_limit',
          'memory_cap',
          `trapped with its memory at the plugin's cap of ${pages} pages: ${why}`,
        );
      }
      if (guest.state.abort) return fail('trapped', 'abort', guest.state.abort);
      if (err instanceof RangeError && /call stack/i.test(message))
        return fail('stack_overflow', 'stack_overflow', message);
      if (err instanceof WebAssembly.RuntimeError) return fail('trapped', 'trap', message);
      return fail('trapped', 'exception', message);
    } finally {
      wasi?.end();
      const dropped = guest.state.logLines - MAX_LOG_LINES_PER_CALL;
      if (dropped > 0) {
        this.#opts.onGuestLog?.({
          pluginId: guest.spec.pluginId,
          level: 'warn',
          message: `${dropped} more log lines of this ${req.fn}() call were dropped (limit ${MAX_LOG_LINES_PER_CALL})`,
        });
      }
      guest.state = null;
    }
  }

  async unload(pluginId: string): Promise<void> {
    const guest = this.#guests.get(pluginId);
    this.#guests.delete(pluginId);
    await guest?.plugin?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const id of [...this.#guests.keys()]) await this.unload(id);
  }
}

/** Reads an AssemblyScript string (UTF-16, byte length at ptr-4) from guest memory, bounded. */
function readAscString(memory: WebAssembly.Memory | null, ptr: number): string | null {
  try {
    if (!memory || ptr < 4) return null;
    const view = new DataView(memory.buffer);
    const len = Math.min(view.getUint32(ptr - 4, true), 2048) >>> 1;
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(view.getUint16(ptr + i * 2, true));
    return s;
  } catch {
    return null;
  }
}
