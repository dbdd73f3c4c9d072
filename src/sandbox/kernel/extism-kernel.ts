/**
 * Hourglass's own implementation of Extism's kernel imports (`extism:host/env`): the block
 * table, input, output, error, config, variables and logging of one plugin instance.
 *
 * Why not the SDK's (2.0.0-rc13; docs/sandbox-kernel.md, "Extism kernel"): its `alloc` creates
 * the block before checking `memory.maxPages` and keeps the refused block at a predictable
 * offset, which `output_set` and `var_set` then accept (a 1 GB output or 512 MB variable for
 * ~2,000 fuel); variables are unbounded and outlive calls; a bogus offset reads as an empty
 * block (`length` is 0), and misuse *throws* JS exceptions a guest can catch with `catch_all`.
 * In foreground mode the functions passed as `functions['extism:host/env']` replace the
 * SDK's, so the instance only ever sees these.
 *
 * Decisions:
 * - Every byte the guest can make the host hold is counted before it is allocated: live blocks
 *   against `blockBytes` (refused `alloc` returns 0 and keeps nothing), variables (key + value
 *   + VAR_OVERHEAD_BYTES each, so the count of keys is bounded too) against `varBytes`, the
 *   output against the call's `maxOutputBytes` (checked at `output_set`; the bytes are copied
 *   out only when the call returns), log lines per call and bytes per line.
 * - Nothing here throws into the guest. Misuse (an offset naming no live block, a range past
 *   its end, a limit crossed) is a *fault*: the kernel reports it through `KernelHooks.fault`,
 *   which drains the call's fuel, so the guest traps at the fuel check that follows every
 *   import call (a trap cannot be caught) and the call ends with the fault's status/reason.
 * - Variables are the plugin's, not the instance's (../plugin-vars.ts): a call reads them from
 *   the `PluginVars` given to `begin`, and its own changes are kept apart (`takeVars`), so the
 *   sandbox commits them only if the call succeeds; nothing of a refused `var_set` is kept.
 *   Outside a call (a module's start function) changes are discarded at the next `begin`.
 * - Addresses keep the SDK's shape (block index << 48 | offset): PDKs do arithmetic within a
 *   block. A freed block's index is reused by a later `alloc` (a guest that frees every host
 *   answer can make any number of host calls; a stale offset can only reach the same guest's
 *   own blocks), and indices are reset at each call like the SDK's; at most
 *   MAX_BLOCKS_PER_CALL blocks are live at once.
 */

import { KERNEL_SIGNATURES, type KernelName } from './import-signatures.ts';
import { VAR_OVERHEAD_BYTES, varSize, type PluginVars, type VarsDelta } from '../plugin-vars.ts';

export { VAR_OVERHEAD_BYTES };

/** How a fault ends the call (a run status and a stable reason; docs/errors.md). */
export interface KernelFault {
  readonly status: 'trapped' | 'failed' | 'memory_limit';
  readonly reason: 'invalid_block' | 'output_too_large' | 'var_limit' | 'block_limit' | 'exception';
  readonly message: string;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface KernelHooks {
  /** Ends the call: records the fault and drains its fuel. */
  fault(f: KernelFault): void;
  /** Charges host-side fuel (bytes copied); false when the fuel does not cover it. */
  charge(n: number): boolean;
  /** Receives a guest log line (already capped and truncated). */
  log(level: LogLevel, message: string): void;
  /**
   * Performs a guest's `http_request` (the request JSON and body as the guest gave them; the
   * answer's body must fit in `room` bytes of Extism memory). Decides everything (grant,
   * allowlists, limits, fuel; sandbox/http/): an answer with status 0 is an error, its `head`
   * the error JSON the guest receives as the body. Absent: every request answers `denied`.
   */
  http?(request: string, body: Uint8Array | null, room: number): HttpAnswer;
}

/** What `http_request` gives back: status, then headers JSON (or error JSON) and body. */
export interface HttpAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: Uint8Array;
}

export interface KernelLimits {
  /** Bytes of live Extism blocks (input, allocations, host answers) per call. */
  readonly blockBytes: number;
  /** Bytes of variables per plugin (keys + values + VAR_OVERHEAD_BYTES each). */
  readonly varBytes: number;
  /** Log lines delivered per call; further lines are counted and dropped. */
  readonly logLines: number;
}

/** A log line is cut to this many bytes of UTF-8 (before decoding). */
export const MAX_LOG_LINE_BYTES = 4_096;
/** Keys longer than this name no config value or variable (never decoded). */
export const MAX_KEY_BYTES = 65_536;
/** An `error_set` message is cut to this many bytes. */
export const MAX_ERROR_BYTES = 65_536;
/** Block indices per call (the SDK's own ceiling: index << 48 must stay a positive i64). */
export const MAX_BLOCKS_PER_CALL = 32_767;
/** Every name the SDK's kernel defines: all are replaced, none of the SDK's stays reachable. */
export const KERNEL_FUNCTIONS = Object.keys(KERNEL_SIGNATURES) as readonly KernelName[];

export function isKernelFunction(name: string): name is KernelName {
  return Object.hasOwn(KERNEL_SIGNATURES, name);
}

const SHIFT = 48n;
const MASK = (1n << SHIFT) - 1n;
const utf8 = new TextEncoder();
const text = new TextDecoder();

interface Range {
  readonly block: Uint8Array;
  readonly at: number;
}

// Host functions receive the SDK's CallContext first; the kernel has no use for it.
type KernelFn = (cx: unknown, ...args: never[]) => unknown;

/** What an import returns when it must return without a result: 0 of its declared type. */
function zeroOf(name: KernelName): 0 | 0n | undefined {
  const results = KERNEL_SIGNATURES[name].split(':')[1];
  return results === 'I' ? 0n : results === 'i' ? 0 : undefined;
}

export class ExtismKernel {
  readonly #limits: KernelLimits;
  readonly #hooks: KernelHooks;
  readonly #config: Readonly<Record<string, string>>;
  /** Index 0 is never a block (0 is "no block" in Extism's ABI). */
  #blocks: (Uint8Array | null)[] = [null];
  /** Indices of freed blocks, reused before the table grows. */
  #freed: number[] = [];
  #live = 0;
  #input = 0;
  #maxOutput = 0;
  #output: { block: Uint8Array; at: number; len: number } | null = null;
  #error = 0;
  #logLines = 0;
  /** The last `http_request`'s status and headers JSON (Extism's `http_status_code`/`http_headers`). */
  #httpStatus = 0;
  #httpHeaders: string | null = null;
  /**
   * The DataView of the block a u64 load or store used last: a guest copies its bytes in and
   * out 8 at a time (the AssemblyScript PDK's output of 1,000 declarations is ~6,000 stores),
   * and a view per access was a tenth of a discovering worker's time.
   */
  #viewOf: Uint8Array | null = null;
  #view: DataView | null = null;
  /** The plugin's variables as the call found them (null: none). */
  #base: PluginVars | null = null;
  /** The call's own changes (value null: deleted), made lazily: most calls have none. */
  #delta: Map<string, { readonly value: Uint8Array | null; readonly size: number }> | null = null;
  /** Bytes of the variables as the call sees them (base with its changes). */
  #varBytes = 0;

  constructor(limits: KernelLimits, hooks: KernelHooks, config: Readonly<Record<string, string>>) {
    for (const [name, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || (v as number) < 0)
        throw new RangeError(`kernel limit ${name} must be an integer >= 0 (got ${String(v)})`);
    }
    this.#limits = { ...limits };
    this.#hooks = hooks;
    this.#config = config;
  }

  /**
   * Starts a call: clears the blocks, stores the input, sets the call's output cap, and names
   * the plugin's variables it reads (its changes are kept apart: `takeVars`).
   */
  begin(input: Uint8Array, maxOutputBytes: number, vars: PluginVars | null = null): void {
    if (!Number.isSafeInteger(maxOutputBytes) || maxOutputBytes < 0)
      throw new RangeError(`maxOutputBytes must be an integer >= 0 (got ${maxOutputBytes})`);
    this.#blocks = [null];
    this.#viewOf = this.#view = null;
    this.#freed = [];
    this.#live = 0;
    this.#output = null;
    this.#error = 0;
    this.#logLines = 0;
    this.#httpStatus = 0;
    this.#httpHeaders = null;
    this.#maxOutput = maxOutputBytes;
    this.#base = vars;
    this.#delta = null;
    this.#varBytes = vars?.bytes ?? 0;
    this.#blocks.push(input);
    this.#live = input.length;
    this.#input = 1;
  }

  /** Ends a call: its output (copied out of its block) or error text, and log lines dropped. */
  end(): { output: Uint8Array | null; error: string | null; droppedLogLines: number } {
    const out = this.#output;
    const errBlock = this.#error ? this.#blocks[this.#error] : null;
    const result = {
      output: out ? out.block.slice(out.at, out.at + out.len) : null,
      error: errBlock
        ? text.decode(errBlock.subarray(0, Math.min(this.#maxOutput, MAX_ERROR_BYTES)))
        : null,
      droppedLogLines: Math.max(0, this.#logLines - this.#limits.logLines),
    };
    this.#blocks = [null];
    this.#viewOf = this.#view = null;
    this.#freed = [];
    this.#live = 0;
    this.#output = null;
    this.#error = 0;
    return result;
  }

  /** Total bytes of variables the call sees (keys, values and per-variable overhead). */
  varBytes(): number {
    return this.#varBytes;
  }

  /**
   * The changes the call made to its variables (null: none), taken once: the sandbox applies
   * them to the plugin's variables if the call succeeded, and reports them.
   */
  takeVars(): VarsDelta | null {
    const d = this.#delta;
    this.#delta = null;
    if (d === null || d.size === 0) return null;
    const changes: [string, Uint8Array | null][] = [];
    for (const [k, e] of d) changes.push([k, e.value]);
    return { base: this.#base?.version ?? 0, changes };
  }

  /** Length of the block starting exactly at `offset`, or null if none does. */
  blockLength(offset: bigint): number | null {
    return this.#blockAt(offset)?.length ?? null;
  }

  /** Text of the block starting at `offset` (null if none does). */
  readText(offset: bigint): string | null {
    const b = this.#blockAt(offset);
    return b ? text.decode(b) : null;
  }

  /**
   * Stores a host answer in a new block and returns its offset; 0n (after a `block_limit`
   * fault) when it does not fit in what is left of the allowance.
   */
  store(value: string | Uint8Array): bigint {
    const bytes = typeof value === 'string' ? utf8.encode(value) : value;
    const idx = this.#newBlock(bytes.length);
    if (idx === 0) {
      this.#hooks.fault({
        status: 'memory_limit',
        reason: 'block_limit',
        message: `a host answer of ${bytes.length} bytes does not fit in the plugin's Extism memory (${this.#live} of ${this.#limits.blockBytes} bytes in use, ${this.#blocks.length - 1 - this.#freed.length} blocks)`,
      });
      return 0n;
    }
    (this.#blocks[idx] as Uint8Array).set(bytes);
    return BigInt(idx) << SHIFT;
  }

  /**
   * The functions to pass as `functions['extism:host/env']`, each guarded: should anything in
   * it throw (a failed allocation, a bug), the call ends with a fault instead of a JS exception
   * the guest could catch.
   */
  imports(): Record<KernelName, KernelFn> {
    const fns = this.#functions();
    const guarded = {} as Record<KernelName, KernelFn>;
    for (const name of KERNEL_FUNCTIONS) {
      const fn = fns[name] as (cx: unknown, ...args: unknown[]) => unknown;
      const zero = zeroOf(name);
      guarded[name] = (cx: unknown, ...args: unknown[]) => {
        try {
          return fn(cx, ...args);
        } catch (err) {
          this.#hooks.fault({
            status: 'trapped',
            reason: 'exception',
            message: `${name}: the host failed: ${err instanceof Error ? err.message : String(err)}`,
          });
          return zero;
        }
      };
    }
    return guarded;
  }

  #functions(): Record<KernelName, KernelFn> {
    const log = (level: LogLevel) => (_cx: unknown, addr: bigint) => this.#log(level, addr);
    return {
      alloc: (_cx, n: bigint) => BigInt(this.#newBlock(n)) << SHIFT,
      free: (_cx, addr: bigint) => this.#free(addr),
      load_u8: (_cx, addr: bigint) => {
        const r = this.#range(addr, 1, 'load_u8');
        return r ? (r.block[r.at] as number) : 0;
      },
      load_u64: (_cx, addr: bigint) => {
        const r = this.#range(addr, 8, 'load_u64');
        return r ? this.#dataView(r.block).getBigUint64(r.at, true) : 0n;
      },
      store_u8: (_cx, addr: bigint, v: number) => {
        const r = this.#range(addr, 1, 'store_u8');
        if (r) r.block[r.at] = v;
      },
      store_u64: (_cx, addr: bigint, v: bigint) => {
        const r = this.#range(addr, 8, 'store_u64');
        if (r) this.#dataView(r.block).setBigUint64(r.at, BigInt.asUintN(64, v), true);
      },
      input_offset: () => BigInt(this.#input) << SHIFT,
      input_length: () => BigInt(this.#inputBlock().length),
      input_load_u8: (_cx, addr: bigint) => {
        const r = this.#inputRange(addr, 1);
        return r ? (r.block[r.at] as number) : 0;
      },
      input_load_u64: (_cx, addr: bigint) => {
        const r = this.#inputRange(addr, 8);
        return r ? this.#dataView(r.block).getBigUint64(r.at, true) : 0n;
      },
      output_set: (_cx, addr: bigint, len: bigint) => this.#outputSet(addr, len),
      error_set: (_cx, addr: bigint) => {
        if (addr === 0n) {
          this.#error = 0;
          return;
        }
        if (this.#blockAt(addr) === null) {
          this.#invalid('error_set', addr);
          return;
        }
        this.#error = Number(addr >> SHIFT);
      },
      error_get: () => BigInt(this.#error) << SHIFT,
      config_get: (_cx, addr: bigint) => {
        const key = this.#takeKey(addr, 'config_get');
        if (key === null || !Object.hasOwn(this.#config, key)) return 0n;
        return this.#storeCharged(utf8.encode(this.#config[key] as string));
      },
      var_get: (_cx, addr: bigint) => {
        const key = this.#takeKey(addr, 'var_get');
        const value = key === null ? null : this.#varValue(key);
        return value === null ? 0n : this.#storeCharged(value);
      },
      var_set: (_cx, keyAddr: bigint, valueAddr: bigint) => this.#varSet(keyAddr, valueAddr),
      http_request: (_cx, reqAddr: bigint, bodyAddr: bigint) => this.#http(reqAddr, bodyAddr),
      http_status_code: () => this.#httpStatus,
      http_headers: () =>
        this.#httpHeaders === null ? 0n : this.#storeCharged(utf8.encode(this.#httpHeaders)),
      length: (_cx, addr: bigint) => BigInt(this.#blockAt(addr)?.length ?? 0),
      length_unsafe: (_cx, addr: bigint) => BigInt(this.#blockAt(addr)?.length ?? 0),
      log_trace: log('trace'),
      log_debug: log('debug'),
      log_info: log('info'),
      log_warn: log('warn'),
      log_error: log('error'),
      // Every level reaches the host (which caps lines per call).
      get_log_level: () => 0,
    };
  }

  /** A new zeroed block, or 0 if it would pass the allowance or the block ceiling. */
  #newBlock(size: bigint | number): number {
    const n = typeof size === 'bigint' ? size : BigInt(size);
    if (n < 0n || n > BigInt(this.#limits.blockBytes - this.#live)) return 0;
    const reused = this.#freed.pop();
    if (reused === undefined && this.#blocks.length > MAX_BLOCKS_PER_CALL) return 0;
    const idx = reused ?? this.#blocks.length;
    this.#blocks[idx] = new Uint8Array(Number(n));
    this.#live += Number(n);
    return idx;
  }

  #storeCharged(bytes: Uint8Array): bigint {
    if (!this.#hooks.charge(bytes.length)) return 0n;
    return this.store(bytes);
  }

  #free(addr: bigint): void {
    const b = this.#blockAt(addr);
    if (b === null) return; // Extism ignores frees of unknown offsets
    const idx = Number(addr >> SHIFT);
    this.#blocks[idx] = null;
    this.#freed.push(idx);
    this.#live -= b.length;
    if (idx === this.#error) this.#error = 0;
  }

  /** The block starting exactly at `addr`, or null. */
  #blockAt(addr: bigint): Uint8Array | null {
    if (addr <= 0n || (addr & MASK) !== 0n) return null;
    const idx = addr >> SHIFT;
    if (idx >= BigInt(this.#blocks.length)) return null;
    return this.#blocks[Number(idx)] ?? null;
  }

  /**
   * `width` bytes at `addr` inside one live block, or null after an `invalid_block` fault. Two
   * BigInt operations, then numbers: the index (< 2^16) and the offset (< 2^48) are exact.
   */
  #range(addr: bigint, width: number, fn: string): Range | null {
    if (addr > 0n) {
      const block = this.#blocks[Number(addr >> SHIFT)];
      const at = Number(addr & MASK);
      if (block && at + width <= block.length) return { block, at };
    }
    this.#invalid(fn, addr);
    return null;
  }

  #dataView(b: Uint8Array): DataView {
    if (b !== this.#viewOf || this.#view === null) {
      this.#viewOf = b;
      this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return this.#view;
  }

  #inputBlock(): Uint8Array {
    return this.#blocks[this.#input] ?? new Uint8Array(0);
  }

  #inputRange(addr: bigint, width: number): Range | null {
    const block = this.#inputBlock();
    if (addr >= 0n) {
      const at = Number(addr & MASK);
      if (at + width <= block.length) return { block, at };
    }
    this.#invalid(width === 1 ? 'input_load_u8' : 'input_load_u64', addr);
    return null;
  }

  #invalid(fn: string, addr: bigint): void {
    this.#hooks.fault({
      status: 'trapped',
      reason: 'invalid_block',
      message: `${fn}: offset 0x${BigInt.asUintN(64, addr).toString(16)} is not inside a live Extism block`,
    });
  }

  #outputSet(addr: bigint, len: bigint): void {
    if (len > BigInt(this.#maxOutput)) {
      this.#hooks.fault({
        status: 'failed',
        reason: 'output_too_large',
        message: `output_set of ${len} bytes, over the limit of ${this.#maxOutput}`,
      });
      return;
    }
    const n = Number(len);
    const r = n === 0 ? this.#rangeOrStart(addr) : this.#range(addr, n, 'output_set');
    if (r) this.#output = { block: r.block, at: r.at, len: n };
  }

  /** For zero-length ranges: any live block (at its start or inside it). */
  #rangeOrStart(addr: bigint): Range | null {
    const idx = addr >> SHIFT;
    const block = addr > 0n && idx < BigInt(this.#blocks.length) ? this.#blocks[Number(idx)] : null;
    if (!block || (addr & MASK) > BigInt(block.length)) {
      this.#invalid('output_set', addr);
      return null;
    }
    return { block, at: Number(addr & MASK) };
  }

  /** Reads a key block and frees it (as Extism does for config_get and var_get). */
  #takeKey(addr: bigint, fn: string): string | null {
    const b = this.#blockAt(addr);
    if (b === null) {
      this.#invalid(fn, addr);
      return null;
    }
    this.#free(addr);
    return b.length > MAX_KEY_BYTES ? null : text.decode(b);
  }

  #varSet(keyAddr: bigint, valueAddr: bigint): void {
    const keyBlock = this.#blockAt(keyAddr);
    if (keyBlock === null) return this.#invalid('var_set', keyAddr);
    if (keyBlock.length > Math.min(MAX_KEY_BYTES, this.#limits.varBytes)) {
      return this.#hooks.fault({
        status: 'memory_limit',
        reason: 'var_limit',
        message: `var_set with a key of ${keyBlock.length} bytes, over the plugin's limit`,
      });
    }
    if (!this.#hooks.charge(keyBlock.length)) return;
    const key = text.decode(keyBlock);
    const changed = this.#delta?.get(key);
    const oldSize = changed !== undefined ? changed.size : (this.#base?.get(key)?.size ?? 0);
    if (valueAddr === 0n) {
      if (oldSize > 0 || changed !== undefined) {
        (this.#delta ??= new Map()).set(key, { value: null, size: 0 });
        this.#varBytes -= oldSize;
      }
      return;
    }
    const value = this.#blockAt(valueAddr);
    if (value === null) return this.#invalid('var_set', valueAddr);
    // Counted as the plugin's copy counts it (plugin-vars.ts): the key as its decoded text's
    // UTF-8, which differs from the block only for bytes that are not UTF-8.
    const size = varSize(key, value);
    const total = this.#varBytes - oldSize + size;
    if (total > this.#limits.varBytes) {
      this.#hooks.fault({
        status: 'memory_limit',
        reason: 'var_limit',
        message: `var_set '${key.slice(0, 64)}' (${value.length} bytes) would hold ${total} bytes of variables, over the plugin's limit of ${this.#limits.varBytes}`,
      });
      return;
    }
    if (!this.#hooks.charge(value.length)) return;
    (this.#delta ??= new Map()).set(key, { value: value.slice(), size });
    this.#varBytes = total;
  }

  /**
   * `http_request(request, body)`: the answer's body in a new block (0 when empty), its status
   * and headers kept for `http_status_code` / `http_headers`. A failure is status 0 with the
   * error JSON as the body, so every PDK's response reader sees it.
   */
  #http(reqAddr: bigint, bodyAddr: bigint): bigint {
    const req = this.#blockAt(reqAddr);
    if (req === null) {
      this.#invalid('http_request', reqAddr);
      return 0n;
    }
    const body = bodyAddr === 0n ? null : this.#blockAt(bodyAddr);
    if (bodyAddr !== 0n && body === null) {
      this.#invalid('http_request', bodyAddr);
      return 0n;
    }
    this.#httpStatus = 0;
    this.#httpHeaders = null;
    const a = this.#hooks.http?.(
      text.decode(req.subarray(0, MAX_KEY_BYTES)),
      body,
      this.#limits.blockBytes - this.#live,
    ) ?? {
      status: 0,
      head: '{"error":{"code":"denied","message":"outbound HTTP is not available here"}}',
      body: new Uint8Array(0),
    };
    this.#httpStatus = a.status;
    this.#httpHeaders = a.status > 0 ? a.head : null;
    const out = a.status > 0 ? a.body : utf8.encode(a.head);
    return out.length === 0 ? 0n : this.store(out);
  }

  /** A variable's value as the call sees it (its own changes first), or null. */
  #varValue(key: string): Uint8Array | null {
    const changed = this.#delta?.get(key);
    if (changed !== undefined) return changed.value;
    return this.#base?.get(key)?.value ?? null;
  }

  #log(level: LogLevel, addr: bigint): void {
    const b = this.#blockAt(addr);
    if (b === null) return this.#invalid(`log_${level}`, addr);
    const line = ++this.#logLines <= this.#limits.logLines;
    if (line) {
      try {
        this.#hooks.log(level, text.decode(b.subarray(0, MAX_LOG_LINE_BYTES)));
      } catch {
        // A failing log sink is the host's problem, never the guest's.
      }
    }
    this.#free(addr); // Extism frees a logged block
  }
}
