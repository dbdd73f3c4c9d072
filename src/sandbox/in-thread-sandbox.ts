/**
 * The simplest `Sandbox`: Extism foreground plugins on the calling thread. One instance per
 * guest, created lazily from the module compiled at load, and discarded after any trap (a
 * trapped guest's allocator or shadow stack may be mid-update). Host functions are answered
 * synchronously by the `HostCallHandler`.
 *
 * It cannot interrupt a guest that never returns; that needs a worker (see the pool) or fuel.
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { performance } from 'node:perf_hooks';
import { CAPABILITIES } from '../capabilities.ts';
import { HourglassError } from '../errors.ts';
import { prepareGuest, HOST_NAMESPACE, type PreparedGuest } from './guest-module.ts';
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

/** Largest host-function request accepted (bytes); larger ones get `too_large`. */
export const MAX_HOST_REQUEST_BYTES = 65_536;
const GUEST_ERROR_PREFIX = 'Plugin-originated error: ';

interface CallState {
  caller: CallerContext;
  abort: string | null;
}

/** A guest spec without its bytes (the compiled module travels separately). */
export type PreparedSpec = Omit<GuestSpec, 'wasm'>;

interface LoadedGuest {
  readonly spec: PreparedSpec;
  readonly prepared: PreparedGuest;
  plugin: Plugin | null;
  /** The live instance's exported memory (for reading abort messages). */
  memory: WebAssembly.Memory | null;
  /** Calls to one instance are serialized: Extism's call state is per instance. */
  queue: Promise<unknown>;
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
    return this.loadPrepared(
      spec,
      await prepareGuest(spec.pluginId, spec.wasm, spec.limits.memoryPages),
    );
  }

  /** Loads a guest whose module was already prepared and compiled (e.g. on another thread). */
  async loadPrepared(spec: PreparedSpec, prepared: PreparedGuest): Promise<GuestInfo> {
    const guest: LoadedGuest = {
      spec,
      prepared,
      plugin: null,
      memory: null,
      state: null,
      queue: Promise.resolve(),
    };
    // Instantiate once now so that start-function traps and link errors surface at load.
    try {
      guest.plugin = await this.#instantiate(guest);
    } catch (err) {
      throw new HourglassError(
        'HG_PLUGIN_LOAD',
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
    const memory = (await plugin.getInstance()).exports.memory;
    guest.memory = memory instanceof WebAssembly.Memory ? memory : null;
    return plugin;
  }

  #createPlugin(guest: LoadedGuest): Promise<Plugin> {
    const pluginId = guest.spec.pluginId;
    const userFns: Record<string, (cx: CallContext, offset: bigint) => bigint> = {};
    for (const name of CAPABILITIES) {
      userFns[name] = (cx, offset) => BigInt(cx.store(this.#hostCall(guest, name, cx, offset)));
    }
    const log = (level: GuestLogEntry['level']) => (message: string) =>
      this.#opts.onGuestLog?.({ pluginId, level, message: String(message).slice(0, 4096) });
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
        useWasi: guest.prepared.usesWasi,
        logger: logger as unknown as Console,
        functions: {
          [HOST_NAMESPACE]: userFns,
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
    const text = cx.read(offset)?.text() ?? '';
    return this.#opts.hostCall(caller, fn, text);
  }

  call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    const guest = this.#guests.get(pluginId);
    if (!guest)
      return Promise.reject(
        new HourglassError('HG_HOST_STATE', `plugin ${pluginId} is not loaded`),
      );
    const result = guest.queue.then(() => this.#call(guest, req));
    guest.queue = result.catch(() => undefined);
    return result;
  }

  async #call(guest: LoadedGuest, req: CallRequest): Promise<CallOutcome> {
    const started = performance.now();
    const elapsed = () => performance.now() - started;
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
      fuelUsed: null,
    });
    if (!guest.prepared.exports.includes(req.fn)) {
      return req.fn === 'cleanup'
        ? { ok: true, output: null, durationMs: 0, fuelUsed: null }
        : fail('failed', 'missing_export', `export '${req.fn}' does not exist`);
    }
    let plugin: Plugin;
    try {
      plugin = guest.plugin ??= await this.#instantiate(guest);
    } catch (err) {
      return fail('trapped', 'instantiate', `cannot instantiate: ${(err as Error).message}`);
    }
    guest.state = { caller: req.caller, abort: null };
    try {
      const out = await plugin.call(req.fn, req.input ?? '', req.caller);
      const instance = await plugin.getInstance();
      const rc = (instance.exports[RC_GLOBAL] as WebAssembly.Global | undefined)?.value as
        number | undefined;
      if (rc !== undefined && rc !== 0) {
        return fail('failed', 'nonzero_return', `${req.fn}() returned ${rc}`);
      }
      return {
        ok: true,
        output: out ? new Uint8Array(out.bytes()) : null,
        durationMs: elapsed(),
        fuelUsed: null,
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message.startsWith(GUEST_ERROR_PREFIX)) {
        return fail('failed', 'guest_error', message.slice(GUEST_ERROR_PREFIX.length));
      }
      // Anything else leaves the instance in an unknown state: discard it.
      const pages = guest.memory ? guest.memory.buffer.byteLength / 65_536 : 0;
      guest.plugin = null;
      guest.memory = null;
      await plugin.close().catch(() => undefined);
      if (pages >= guest.spec.limits.memoryPages) {
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
