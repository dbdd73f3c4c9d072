/**
 * The simplest `Sandbox`: Extism foreground plugins on the calling thread. One instance per
 * guest, created lazily from the module compiled at load, and discarded after any trap (a
 * trapped guest's allocator or shadow stack may be mid-update) and after every discovery call
 * (`schedules()`): a guest's memory grows while it builds its declarations, and a kept
 * instance would hold that high-water mark, its JS objects and its kernel for as long as the
 * plugin is loaded; runs also do not inherit discovery's heap. The first run then instantiates
 * the compiled module afresh (its init included). A dropped instance's memory is counted
 * (`takeReleasedBytes`) for the pool worker's collector. Host functions are answered
 * synchronously by the `HostCallHandler`.
 *
 * Every call is metered (docs/fuel.md): the instance's fuel global is set to the phase's
 * budget before the call and read after it, so a guest that never returns ends `out_of_fuel`.
 * Host functions charge their static cost plus one unit per byte moved, plus the fuel the
 * handler reports for its work (`HostCallAnswer.fuel`). A host call refused for `capability`
 * or `phase` (`HostCallAnswer.denied`) ends the call as `host_call_denied`: the guest still
 * receives the error answer, but its fuel is drained, so it traps at the check that follows
 * every host call (a trap, unlike a JS exception, cannot be caught by the guest).
 *
 * Extism's kernel imports are Hourglass's own (kernel/extism-kernel.ts, one per instance):
 * blocks, output, variables and log lines are capped before anything is allocated, and kernel
 * misuse, limits crossed and `env.abort` end the call the same way (fuel drained, never a JS
 * exception a guest's `catch_all` could swallow), with the status and reason of the fault.
 * Extism variables are the plugin's, not the instance's (plugin-vars.ts): a call reads those its
 * request names (`CallRequest.vars`, else the guest's own set, kept while it is loaded), and
 * its changes are applied to them only if it succeeds (`#commitVars`).
 * WASI imports are Hourglass's own too (kernel/wasi.ts), and the module's init runs here, with
 * memory, meter and WASI bound, under the discovery budget (kernel/guest-init.ts). What a call
 * that did not simply return is reported as is decided in call-failure.ts.
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { performance } from 'node:perf_hooks';
import { HOST_FUNCTIONS } from '../capabilities.ts';
import { HourglassError } from '../errors.ts';
import { FuelMeter } from '../fuel/meter.ts';
import { prepareGuest, EXTISM_KERNEL, HOST_NAMESPACE, type PreparedGuest } from './guest-module.ts';
import { HOURGLASS_WASI } from './kernel/entry-rewrite.ts';
import { ExtismKernel, type LogLevel } from './kernel/extism-kernel.ts';
import { GuestHttp, type HttpRequestRecord } from './http/guest-http.ts';
import { PluginVars, type VarsDelta } from './plugin-vars.ts';
import {
  type CallFault,
  type CallState,
  abortFault,
  classifyFailure,
  endedByHost,
  exitOutcome,
  failure,
} from './call-failure.ts';
import { GuestInitError, runGuestInit } from './kernel/guest-init.ts';
import { WasiKernel } from './kernel/wasi.ts';
import { RC_GLOBAL } from './return-code.ts';
import type { PluginLimits } from '../plugin/manifest.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from './types.ts';
import { asHostCallAnswer } from './types.ts';

/** Guest log lines a call's outcome keeps for its run record (the last ones). */
export const LOG_TAIL_LINES = 10;
/** Characters of each of them. */
export const LOG_TAIL_CHARS = 300;

/** Largest host-function request accepted (bytes); larger ones get `too_large`. */
export const MAX_HOST_REQUEST_BYTES = 65_536;

/** Extism blocks (input, allocations, host answers) a call may hold: the memory cap's bytes. */
export function blockBytesOf(limits: PluginLimits): number {
  return limits.memoryPages * 65_536;
}

/** Ends the current call: the guest traps at the fuel check that follows the import. */
function drain(meter: FuelMeter | null): void {
  const left = meter?.remaining();
  if (meter && left !== undefined && left >= 0n) meter.charge(left + 1n);
}

const utf8 = new TextEncoder();

/**
 * A call's input as bytes. Short ASCII (the usual JSON payload) is copied in a loop: cheaper
 * than `TextEncoder.encode`'s native call for a few dozen bytes. Always a fresh array: the
 * guest may write into its input block.
 */
function encodeInput(s: string): Uint8Array {
  const n = s.length;
  if (n > 256) return utf8.encode(s);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return utf8.encode(s);
    out[i] = c;
  }
  return out;
}

const SILENT = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

/** A guest spec without its bytes (the compiled module travels separately). */
export type PreparedSpec = Omit<GuestSpec, 'wasm'>;

interface LoadedGuest {
  readonly spec: PreparedSpec;
  readonly prepared: PreparedGuest;
  plugin: Plugin | null;
  /** The live instance's exports (the call path calls them directly). */
  exports: WebAssembly.Exports | null;
  /** The live instance's exported memory (for reading abort messages). */
  memory: WebAssembly.Memory | null;
  /** The live instance's fuel meter. */
  meter: FuelMeter | null;
  /** The live instance's `__hg_rc` global (absent when no export returns i32). */
  rc: WebAssembly.Global | null;
  /** The live instance's Extism kernel (blocks, output, variables). */
  kernel: ExtismKernel | null;
  /** The live instance's WASI (src/sandbox/kernel/wasi.ts; one per instance). */
  wasi: WasiKernel | null;
  /** The live instance's outbound HTTP (src/sandbox/http/guest-http.ts). */
  http: GuestHttp | null;
  /** The running call's last log lines (`CallOutcome.logTail`); null between calls. */
  logTail: string[] | null;
  /** A fault raised while an instance was being created (its start function): load fails. */
  startFault: CallFault | null;
  /** The plugin's variables when a call names none (`CallRequest.vars`); outlive instances. */
  readonly vars: PluginVars;
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
  /** Set during a call: the caller, and what ended the call early. */
  state: CallState | null;
}

export interface GuestLogEntry {
  readonly pluginId: string;
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  /** The run whose call wrote it (null outside runs: discovery, cleanup, init). */
  readonly runId?: number | null;
  /**
   * Set on the entry of an outbound HTTP request (debug level; not a guest's own line): it
   * travels the guest-log path from pool workers, and the host logs and counts it apart.
   */
  readonly http?: HttpRequestRecord & { readonly runId: number | null };
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
  /** Linear-memory bytes of dropped instances, not yet taken (`takeReleasedBytes`). */
  #released = 0;

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
      exports: null,
      memory: null,
      meter: null,
      rc: null,
      kernel: null,
      wasi: null,
      http: null,
      logTail: null,
      startFault: null,
      vars: new PluginVars(spec.limits.varBytes),
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
    if (old?.plugin) await this.#discard(old, old.plugin);
    this.#guests.set(spec.pluginId, guest);
    return { exports: prepared.exports, imports: prepared.imports, sha256: prepared.sha256 };
  }

  async #instantiate(guest: LoadedGuest): Promise<Plugin> {
    guest.meter = null;
    guest.startFault = null;
    const plugin = await this.#createPlugin(guest);
    const instance = await plugin.getInstance();
    guest.exports = instance.exports;
    const memory = instance.exports.memory;
    guest.memory = memory instanceof WebAssembly.Memory ? memory : null;
    guest.meter = new FuelMeter(instance);
    const rc = instance.exports[RC_GLOBAL];
    guest.rc = rc instanceof WebAssembly.Global ? rc : null;
    // Init (start section, `_initialize` or `_start`) runs only now, with memory, meter and
    // WASI bound, under the discovery budget (src/sandbox/kernel/guest-init.ts). A fault in it
    // (kernel misuse, a caught abort) fails the instantiation with the fault's own message.
    try {
      runGuestInit(instance, guest.meter, guest.wasi, guest.spec.limits.fuel.discovery);
      const startFault = guest.startFault as CallFault | null;
      if (startFault) throw new Error(startFault.message);
    } catch (err) {
      const startFault = guest.startFault as CallFault | null;
      await this.#discard(guest, plugin);
      throw startFault ? new Error(startFault.message, { cause: err }) : err;
    }
    return plugin;
  }

  #createPlugin(guest: LoadedGuest): Promise<Plugin> {
    const pluginId = guest.spec.pluginId;
    const limits = guest.spec.limits;
    const fault = (f: CallFault): void => {
      if (guest.state) guest.state.fault ??= f;
      else guest.startFault ??= f;
      drain(guest.meter);
    };
    // A guest's log line (Extism `log_*`, WASI stdout/stderr): to the host, and into the tail
    // its run record keeps.
    const guestLog = (level: LogLevel, message: string): void => {
      const tail = guest.logTail;
      if (tail) {
        if (tail.length === LOG_TAIL_LINES) tail.shift();
        tail.push(`${level}: ${message.slice(0, LOG_TAIL_CHARS)}`);
      }
      this.#opts.onGuestLog?.({
        pluginId,
        level,
        message,
        runId: guest.state?.caller.runId ?? null,
      });
    };
    const kernel = new ExtismKernel(
      {
        blockBytes: blockBytesOf(limits),
        varBytes: limits.varBytes,
        logLines: limits.logLines,
      },
      {
        fault,
        charge: (n) => guest.meter?.charge(n) ?? true,
        log: guestLog,
        http: (request, body, room) => {
          const http = guest.http;
          if (!http || !guest.state) {
            fault({
              status: 'failed',
              reason: 'exception',
              message: 'http_request is only available during an export call',
            });
            return { status: 0, head: '', body: new Uint8Array(0) };
          }
          return http.request(request, body, room);
        },
      },
      guest.spec.config,
    );
    guest.kernel = kernel;
    guest.http = new GuestHttp(guest.spec.http ?? null, {
      charge: (n) => guest.meter?.charge(n) ?? true,
      deny: (message) => {
        if (guest.state) guest.state.denied ??= message;
        else guest.startFault ??= { status: 'failed', reason: 'exception', message };
        drain(guest.meter);
      },
      record: (r) =>
        this.#opts.onGuestLog?.({
          pluginId,
          level: 'debug',
          message: `http ${r.method} ${r.origin}: ${r.status || r.error}`,
          http: { ...r, runId: guest.state?.caller.runId ?? null },
        }),
    });
    // Hourglass's WASI, one per instance (its clocks and random stream restart with it); it
    // caps its own log lines.
    const wasiImports = guest.prepared.wasiImports;
    const wasi =
      wasiImports.length === 0
        ? null
        : new WasiKernel(pluginId, {
            memory: () => guest.memory,
            meter: () => guest.meter,
            log: guestLog,
          });
    guest.wasi = wasi;
    const userFns: Record<string, (cx: CallContext, offset: bigint) => bigint> = {};
    for (const name of HOST_FUNCTIONS) {
      userFns[name] = (_cx, offset) => this.#hostCall(guest, kernel, name, offset);
    }
    return createPlugin(
      { wasm: [{ module: guest.prepared.module }], config: { ...guest.spec.config } },
      {
        // Never Node's WASI: the guest's WASI imports were renamed to Hourglass's own.
        useWasi: false,
        // Every kernel function is replaced below, so the SDK has nothing of the guest's to log.
        logger: SILENT as unknown as Console,
        functions: {
          [EXTISM_KERNEL]: kernel.imports() as unknown as Record<string, typeof userFns.x>,
          [HOST_NAMESPACE]: userFns,
          ...(wasi ? { [HOURGLASS_WASI]: wasi.functions(wasiImports) } : {}),
          env: {
            // AssemblyScript's abort. Returning (with the fuel drained) instead of throwing: a
            // JS exception could be caught by the guest's `catch_all`; the trap that follows
            // cannot.
            abort: (_cx: CallContext, msg: number, file: number, line: number, col: number) => {
              fault(abortFault(guest.memory, msg, file, line, col));
            },
          },
        },
      },
    );
  }

  /** A host-function import: never throws into the guest (a JS exception can be caught). */
  #hostCall(guest: LoadedGuest, kernel: ExtismKernel, fn: string, offset: bigint): bigint {
    try {
      return kernel.store(this.#answer(guest, kernel, fn, offset));
    } catch (err) {
      if (guest.state) {
        guest.state.fault ??= {
          status: 'trapped',
          reason: 'exception',
          message: `${fn}: the host failed: ${(err as Error).message}`,
        };
      }
      drain(guest.meter);
      return 0n;
    }
  }

  #answer(guest: LoadedGuest, kernel: ExtismKernel, fn: string, offset: bigint): string {
    const caller = guest.state?.caller;
    if (!caller)
      return hostError('phase', 'host functions can only be called during an export call');
    const size = kernel.blockLength(offset);
    if (size === null) {
      return hostError(
        'invalid_argument',
        `request offset 0x${BigInt.asUintN(64, offset).toString(16)} does not name a live Extism block`,
      );
    }
    if (size > MAX_HOST_REQUEST_BYTES) {
      return hostError(
        'too_large',
        `request is ${size} bytes; the limit is ${MAX_HOST_REQUEST_BYTES}`,
      );
    }
    const meter = guest.meter;
    const state = guest.state;
    if (!meter || !state) return hostError('internal', 'no live instance');
    // Static cost plus the bytes moved in; the answer's bytes and the handler's work after it.
    if (!meter.charge(BigInt((this.#opts.hostCallFuel?.[fn] ?? 0) + size))) {
      return hostError('out_of_fuel', `not enough fuel left to call ${fn}`);
    }
    const text = kernel.readText(offset) ?? '';
    const r = asHostCallAnswer(this.#opts.hostCall(caller, fn, text), fn);
    meter.charge(BigInt(r.answer.length) + BigInt(Math.max(0, Math.ceil(r.fuel))));
    if (r.denied !== null) {
      state.denied = r.denied;
      drain(meter);
    }
    return r.answer;
  }

  call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    try {
      const o = this.callNow(pluginId, req);
      return o instanceof Promise ? o : Promise.resolve(o);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `call`, without a promise when the call can finish at once (a live instance, not busy, and
   * the call neither trapped nor exited): the usual case, and the pool worker's per-call path.
   * Throws (`HG_HOST_STATE`) for a plugin that is not loaded.
   */
  callNow(pluginId: string, req: CallRequest): CallOutcome | Promise<CallOutcome> {
    const guest = this.#guests.get(pluginId);
    if (!guest) throw new HourglassError('HG_HOST_STATE', `plugin ${pluginId} is not loaded`);
    if (guest.running) {
      return new Promise((resolve, reject) => guest.waiting.push({ req, resolve, reject }));
    }
    guest.running = true;
    let first: CallOutcome | Promise<CallOutcome>;
    try {
      first = this.#call(guest, req);
    } catch (err) {
      this.#next(guest);
      throw err;
    }
    if (!(first instanceof Promise)) {
      this.#next(guest);
      return first;
    }
    return first.finally(() => this.#next(guest));
  }

  /**
   * A call ended: the calls queued meanwhile (a host function may have made one) run next, in a
   * microtask (after this call's caller has its outcome); the instance stays busy until then,
   * so no later call overtakes them.
   */
  #next(guest: LoadedGuest): void {
    if (guest.waiting.length === 0) guest.running = false;
    else queueMicrotask(() => void this.#drain(guest));
  }

  /** Runs the calls that queued while one ran, in order (Extism's call state is per instance). */
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

  /** One call: synchronous unless the instance must be created first or the call ended badly. */
  #call(guest: LoadedGuest, req: CallRequest): CallOutcome | Promise<CallOutcome> {
    if (!guest.prepared.exports.includes(req.fn)) {
      return req.fn === 'cleanup'
        ? { ok: true, output: null, durationMs: 0, fuelUsed: 0 }
        : failure('failed', 'missing_export', `export '${req.fn}' does not exist`, 0, null);
    }
    const plugin = guest.plugin;
    if (plugin) return this.#invoke(guest, plugin, req, performance.now());
    return this.#instantiateAndInvoke(guest, req);
  }

  async #instantiateAndInvoke(guest: LoadedGuest, req: CallRequest): Promise<CallOutcome> {
    const started = performance.now();
    let plugin: Plugin;
    try {
      plugin = guest.plugin ??= await this.#instantiate(guest);
    } catch (err) {
      const message = `cannot instantiate: ${(err as Error).message}`;
      const ms = performance.now() - started;
      if (err instanceof GuestInitError) return failure(err.status, err.reason, message, ms, null);
      return failure('trapped', 'instantiate', message, ms, null);
    }
    return this.#invoke(guest, plugin, req, started);
  }

  /**
   * Calls the export on the live instance. Directly, not through the SDK's `plugin.call`: every
   * kernel import is Hourglass's own (ExtismKernel), so the SDK's per-call block table, input
   * block and host context are never read; what the SDK would do besides is to look the export
   * up, which this does with the SDK's messages.
   */
  /** `#invokeCall`, with the call's last log lines attached to its outcome. */
  #invoke(
    guest: LoadedGuest,
    plugin: Plugin,
    req: CallRequest,
    started: number,
  ): CallOutcome | Promise<CallOutcome> {
    const tail: string[] = [];
    guest.logTail = tail;
    const withTail = (o: CallOutcome): CallOutcome => {
      if (guest.logTail === tail) guest.logTail = null;
      return tail.length === 0 ? o : { ...o, logTail: tail.join('\n') };
    };
    const o = this.#invokeCall(guest, plugin, req, started);
    return o instanceof Promise ? o.then(withTail) : withTail(o);
  }

  #invokeCall(
    guest: LoadedGuest,
    plugin: Plugin,
    req: CallRequest,
    started: number,
  ): CallOutcome | Promise<CallOutcome> {
    const limits = guest.spec.limits;
    const meter = guest.meter;
    const kernel = guest.kernel;
    const exports = guest.exports;
    if (!meter || !kernel || !exports) {
      const ms = performance.now() - started;
      return failure('trapped', 'instantiate', 'the instance has no fuel meter', ms, null);
    }
    meter.setBudget(limits.fuel[req.caller.phase]);
    const state: CallState = { caller: req.caller, denied: null, fault: null };
    guest.state = state;
    // Only run() output is a run's output (the tenant's maxOutputBytes); schedules() output is
    // bounded by the Extism memory allowance like any block.
    kernel.begin(
      encodeInput(req.input ?? ''),
      req.caller.phase === 'run' ? limits.outputBytes : blockBytesOf(limits),
      req.vars ?? guest.vars,
    );
    const wasi = guest.wasi;
    wasi?.begin(req.caller.scheduledAt);
    guest.http?.begin(Date.now() + limits.timeoutMs);
    let ended: ReturnType<ExtismKernel['end']> | null = null;
    let late = false;
    try {
      const fn = exports[req.fn];
      if (!fn) throw Error(`Plugin error: function "${req.fn}" does not exist`);
      if (typeof fn !== 'function')
        throw Error(`Plugin error: export "${req.fn}" is not a function`);
      (fn as () => unknown)();
      ended = kernel.end();
      const delta = kernel.takeVars();
      if (wasi?.exit || state.denied || state.fault) {
        late = true;
        return this.#ended(guest, plugin, req, started, state, ended, null, wasi, delta);
      }
      const fuelUsed = Number(meter.settle().fuelUsed);
      if (ended.error !== null)
        return failure('failed', 'guest_error', ended.error, performance.now() - started, fuelUsed);
      const rc = guest.rc?.value as number | undefined;
      if (rc !== undefined && rc !== 0) {
        const ms = performance.now() - started;
        return failure('failed', 'nonzero_return', `${req.fn}() returned ${rc}`, ms, fuelUsed);
      }
      const ok: CallOutcome = {
        ok: true,
        output: ended.output,
        durationMs: performance.now() - started,
        fuelUsed,
      };
      return delta === null ? ok : this.#commitVars(guest, req, delta, ok);
    } catch (err) {
      late = true;
      ended ??= kernel.end();
      // A call that threw keeps none of its changes (a proc_exit(0) caught as a throw aside).
      const delta = kernel.takeVars();
      return this.#ended(guest, plugin, req, started, state, ended, { err }, wasi, delta);
    } finally {
      if (!late) {
        this.#finish(guest, req, ended, wasi);
        // Discovery's instance is not kept: runs start from a fresh one (see the head comment).
        if (req.caller.phase === 'discovery') void this.#discard(guest, plugin);
      }
    }
  }

  /**
   * A call that did not simply return: `proc_exit`, a host refusal or kernel fault (the host
   * ended it), or a trap (`thrown`). The instance is discarded; the outcome says why.
   */
  async #ended(
    guest: LoadedGuest,
    plugin: Plugin,
    req: CallRequest,
    started: number,
    state: CallState,
    ended: ReturnType<ExtismKernel['end']>,
    thrown: { err: unknown } | null,
    wasi: WasiKernel | null,
    delta: VarsDelta | null,
  ): Promise<CallOutcome> {
    try {
      const outcome = await this.#classify(guest, plugin, req, started, state, thrown, wasi);
      // Only `proc_exit(0)` ends this way and succeeds: its changes are kept.
      return delta === null ? outcome : this.#commitVars(guest, req, delta, outcome);
    } finally {
      this.#finish(guest, req, ended, wasi);
    }
  }

  async #classify(
    guest: LoadedGuest,
    plugin: Plugin,
    req: CallRequest,
    started: number,
    state: CallState,
    thrown: { err: unknown } | null,
    wasi: WasiKernel | null,
  ): Promise<CallOutcome> {
    const limits = guest.spec.limits;
    const elapsed = () => performance.now() - started;
    // `proc_exit` ends the call however the guest carries on (a trap, or a return if it caught
    // the host's exception): exit 0 succeeds without output, any other code fails. The
    // instance is discarded either way (its runtime has shut down).
    const exit = wasi?.exit;
    if (exit) {
      await this.#discard(guest, plugin);
      return exitOutcome(req.fn, exit, elapsed());
    }
    const err = thrown ? thrown.err : endedByHost();
    const meter = guest.meter as FuelMeter;
    const settled = meter.settle(err);
    // Anything else leaves the instance in an unknown state: discard it.
    const pages = guest.memory ? guest.memory.buffer.byteLength / 65_536 : 0;
    await this.#discard(guest, plugin);
    return classifyFailure({
      fn: req.fn,
      state,
      err,
      meter,
      settled,
      pages,
      memoryPages: limits.memoryPages,
      elapsed,
    });
  }

  /**
   * A call ended with changes to its variables: applied (and reported in the outcome) if it
   * succeeded, dropped if not. Applying checks the plugin's bound again (plugin-vars.ts); when
   * they do not fit, nothing is kept and the call fails `memory_limit` / `var_limit`.
   */
  #commitVars(
    guest: LoadedGuest,
    req: CallRequest,
    delta: VarsDelta,
    outcome: CallOutcome,
  ): CallOutcome {
    if (!outcome.ok) return outcome;
    const vars = req.vars ?? guest.vars;
    if (!vars.apply(delta.changes))
      return failure(
        'memory_limit',
        'var_limit',
        `the call's changes to its variables would take the plugin over its limit of ${vars.limit} bytes`,
        outcome.durationMs,
        outcome.fuelUsed,
      );
    return { ...outcome, vars: delta };
  }

  /** After every call: WASI's call state, the dropped-log-lines notice, no caller. */
  #finish(
    guest: LoadedGuest,
    req: CallRequest,
    ended: ReturnType<ExtismKernel['end']> | null,
    wasi: WasiKernel | null,
  ): void {
    wasi?.end();
    const dropped = ended?.droppedLogLines ?? 0;
    if (dropped > 0) {
      this.#opts.onGuestLog?.({
        pluginId: guest.spec.pluginId,
        level: 'warn',
        runId: req.caller.runId ?? null,
        message: `${dropped} more log lines of this ${req.fn}() call were dropped (limit ${guest.spec.limits.logLines})`,
      });
    }
    guest.state = null;
  }

  async unload(pluginId: string): Promise<void> {
    const guest = this.#guests.get(pluginId);
    this.#guests.delete(pluginId);
    if (guest?.plugin) await this.#discard(guest, guest.plugin);
  }

  /**
   * Drops a guest's instance (after discovery, a trap, an exit, a failed init, an unload): the
   * next call makes a new one. Its linear memory is counted in `releasedBytes` until taken.
   */
  async #discard(guest: LoadedGuest, plugin: Plugin): Promise<void> {
    this.#released += guest.memory?.buffer.byteLength ?? 0;
    guest.plugin = null;
    guest.exports = null;
    guest.memory = null;
    guest.meter = null;
    guest.rc = null;
    guest.kernel = null;
    await plugin.close().catch(() => undefined);
  }

  /** The variables the guest keeps itself (calls that name none: `CallRequest.vars`). */
  varsOf(pluginId: string): PluginVars | undefined {
    return this.#guests.get(pluginId)?.vars;
  }

  /**
   * Bytes of linear memory held by instances dropped since the last call (and resets the
   * count). They are freed only at the thread's next major GC: a pool worker asks for one
   * when enough has piled up (pool/worker-gc.ts).
   */
  takeReleasedBytes(): number {
    const n = this.#released;
    this.#released = 0;
    return n;
  }

  async close(): Promise<void> {
    for (const id of [...this.#guests.keys()]) await this.unload(id);
  }
}
