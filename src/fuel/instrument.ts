/**
 * The fuel instrumenter: rewrites a core WebAssembly module so that every guest call runs
 * against a deterministic instruction budget.
 *
 * ## Pipeline (single pass over the sections)
 * 1. Refuse components and anything `WebAssembly.validate` rejects *before* touching the
 *    bytes: an invalid module that writes `global N` would become valid once the fuel global
 *    is appended, and then write it.
 * 2. Split the sections; decode only types, imports, functions, memories, exports, and the
 *    code bodies. Everything else (data, elements, names, custom sections) is copied byte for
 *    byte, and no existing index moves: globals, exports, types and locals are only appended.
 * 3. Plan each body (placement.ts), re-emit it (body-emitter.ts). The output is validated again
 *    only on request (`validateOutput`): compiling it validates it anyway.
 *
 * ## Placement (why it is shaped like this)
 * - Fuel lives in an exported mutable i64 global `__hg_fuel` (remaining, counting down), but
 *   each function caches it in a local: the global is read at entry, after calls and at
 *   exception landings, and written before calls, returns, tail calls and throws.
 * - Functions reached by direct calls only (not exported, not the start function, not in any
 *   element segment or `ref.func` global initializer: a validated module can `ref.func` nothing
 *   else) *carry* fuel instead: their type gains two parameters, fuel (i64) and call depth
 *   (i32), and one last result, the remaining fuel. Internal calls then pass fuel in registers
 *   instead of a store/load pair through the global, which serialises a call tree on
 *   store-to-load forwarding; the depth counter likewise. Carrying is off in modules with
 *   `try` or tail calls. Measured on Node 20 this is the cheapest placement (docs/fuel.md).
 * - A function escaping by export only gets a carrying *twin*: its body moves to an appended
 *   function, direct calls (recursion included) go there, and the exported index keeps a
 *   wrapper with the original type (globals in, call the twin, globals out) for JavaScript.
 *   Table functions get none: measured, the wrapper on every indirect call costs more than
 *   carrying saves (Go and emscripten put most functions in the table).
 * - Each metered block (a maximal all-or-none run) is charged its summed cost at its start:
 *   executed code is always prepaid, and the fuel a completed call uses is exactly the sum of
 *   its executed operators' costs, whatever the block boundaries are. The per-instruction
 *   placement (a test reference) must, and does, agree to the unit.
 * - Checks sit at function entry (a loop-free call tree can still be exponential), at loop
 *   headers (in Go's dispatch loops, dispatch-loops.ts: only at cases a jump to the same or an
 *   earlier case reaches), after calls that may reach the host, and at operand-priced
 *   operators. A check
 *   compares against the block's lookahead W (the most the code can spend before the next
 *   check), not against 0, so fuel never goes negative: no operator runs unpaid, a completed
 *   call never overspends its budget, and the trap point is a pure function of the budget.
 * - A call ends its metered block only if it may not return (unwind-scan.ts: the callee is an
 *   import, a table entry, or may throw or reach `unreachable`, transitively) or the module
 *   can catch exceptions (it contains `try`); otherwise the code after the call is prepaid
 *   with the code before it. So when JavaScript catches an exception that unwound instrumented
 *   frames (emscripten's `invoke_*` glue), the fuel written before the call is still exact.
 *   The callee never returns with negative fuel, so only a reload is needed after the call,
 *   plus a check when the rest of the path (`succ`) costs something or the callee may be the
 *   host, which can charge dynamic costs.
 * - After a call that may reach JavaScript (an import or a table entry), the depth counter is
 *   restored (frames unwound by a caught exception never restored it) and the code traps if
 *   the exhausted flag is set (a fuel or depth trap the glue swallowed stays a trap). A
 *   private table (`ModuleFacts.privateTable`: none imported or exported, no imported
 *   function or global in a segment, no `table.set/grow/fill`) holds only the module's own
 *   functions, so an indirect call through it is treated as guest code, without these.
 * - Out of fuel is a trap (`unreachable`) preceded by `__hg_fuel_exhausted = 1` and a write
 *   back of the counter: a guest can catch a JS exception thrown by the host (Node 20 ships
 *   exception handling) but never a trap, and the flag tells it apart from `unreachable`.
 * - Recursion: functions that call anything count their depth in `__hg_depth` (restored on
 *   every exit, and at exception landings from a local), and trap with the flag set to 2 past
 *   `maxCallDepth`, well below V8's native stack limit, so the limit does not depend on tier.
 *   A carrying function gets its depth as a parameter and passes depth + 1 to carrying
 *   callees; before calling a function that reads the global (indirect, imported, exported),
 *   any function that carries or calls carrying ones sets the global to its depth + 1 first,
 *   so the count, and where the limit trips, is the same as with the global alone.
 */
import { ByteWriter, concatBytes } from '../wasm/byte-writer.ts';
import {
  binaryKind,
  readEscapingFunctions,
  readExports,
  readFunctionTypes,
  readImports,
  readMemories,
  readTypes,
  SECTION_ORDER,
  SectionId,
  splitSections,
  UnsupportedTypeError,
  vectorCount,
} from '../wasm/sections.ts';
import type { FuncType, Section } from '../wasm/sections.ts';
import { WasmDecodeError } from '../wasm/byte-reader.ts';
import { compileCostTable, DEFAULT_COST_TABLE } from './cost-table.ts';
import type { CostTable } from './cost-table.ts';
import { emitFunctions, NewTypes, readU32At, readU32Next } from './code-emitter.ts';
import type { CodeJob, Restart } from './code-emitter.ts';
import { FuelError } from './errors.ts';
import { PlacementError } from './placement.ts';
import { mayUnwind } from './unwind-scan.ts';
import type { ModuleFacts, Placement } from './placement.ts';
import {
  encodeSection,
  rewriteMemories,
  rewriteTables,
  appendGlobals,
  appendExports,
  appendTypes,
  writeFunctionSection,
} from './module-writer.ts';

import {
  DEFAULT_INITIAL_FUEL,
  DEFAULT_MAX_CALL_DEPTH,
  DEPTH_GLOBAL,
  EXHAUSTED_GLOBAL,
  FUEL_GLOBAL,
  RESERVED_PREFIX,
} from './abi.ts';

// The module's names and defaults live in abi.ts (what the host's runtime side loads alone).
export * from './abi.ts';

export interface InstrumentOptions {
  /** @defaultValue DEFAULT_COST_TABLE (`hg-costs/2`) */
  readonly costTable?: CostTable;
  /** Clamp every defined memory's maximum to this many 64 KiB pages. @defaultValue no clamp */
  readonly memoryMaxPages?: number;
  /**
   * Elements all defined tables may hold together: their maxima are clamped to share it
   * (`rewriteTables`), and a module whose tables start larger is refused. @defaultValue no clamp
   */
  readonly tableMaxElements?: number;
  /** Deterministic call-depth limit; 0 disables it. @defaultValue 10000 */
  readonly maxCallDepth?: number;
  /**
   * Initial value of the fuel global: the budget of the start function and of anything the
   * embedder calls before it first sets a budget (Extism calls `_initialize`/`_start` while
   * creating the plugin). @defaultValue 1e9
   */
  readonly initialFuel?: bigint | number;
  /** @defaultValue 'metered-blocks'; 'per-instruction' is a slow reference for tests. */
  readonly placement?: Placement;
  /** Accept `memory.atomic.wait32/64`, which can block the thread. @defaultValue false */
  readonly allowAtomicWait?: boolean;
  /**
   * Validate the output too, failing with `HG_FUEL_INTERNAL` (an instrumenter bug) if it does
   * not. Off by default: compiling the output validates it anyway (a host cannot run an invalid
   * module), and on large modules this second validation cost as much as the rewrite's
   * planning. @defaultValue false
   */
  readonly validateOutput?: boolean;
}

export interface InstrumentStats {
  readonly functions: number;
  readonly meteredBlocks: number;
  readonly checkpoints: number;
  readonly wrappedBodies: number;
  /** The module contains `try`: calls end metered blocks. */
  readonly catching: boolean;
  readonly originalBytes: number;
  readonly instrumentedBytes: number;
  readonly durationMs: number;
}

export interface InstrumentResult {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly stats: InstrumentStats;
}

function fail(
  code: 'HG_WASM_INVALID' | 'HG_WASM_UNSUPPORTED',
  message: string,
  cause?: unknown,
): never {
  throw new FuelError(code, message, { cause });
}

function checkOptions(opts: InstrumentOptions): void {
  const intIn = (v: number | undefined, lo: number, hi: number): boolean =>
    v === undefined || (Number.isInteger(v) && v >= lo && v <= hi);
  if (!intIn(opts.memoryMaxPages, 0, 65536))
    throw new RangeError('memoryMaxPages must be an integer in [0, 65536]');
  if (!intIn(opts.tableMaxElements, 0, 10_000_000))
    throw new RangeError('tableMaxElements must be an integer in [0, 10000000]');
  if (!intIn(opts.maxCallDepth, 0, 1_000_000))
    throw new RangeError('maxCallDepth must be an integer in [0, 1000000]');
  if (opts.initialFuel !== undefined) {
    const f = BigInt(opts.initialFuel);
    if (f < 0n || f > 0x7fffffffffffffffn) throw new RangeError('initialFuel must be in [0, 2^63)');
  }
}

/** Instruments `bytes`; throws `FuelError` on input it refuses. */
export function instrument(bytes: Uint8Array, opts: InstrumentOptions = {}): InstrumentResult {
  const t0 = performance.now();
  checkOptions(opts);
  const kind = binaryKind(bytes);
  if (kind === 'component')
    throw new FuelError('HG_WASM_COMPONENT', 'a component binary; Hourglass runs core modules');
  if (kind !== 'module') fail('HG_WASM_INVALID', 'not a WebAssembly module (bad magic or version)');
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    fail('HG_WASM_INVALID', 'the module does not validate');
  }
  const costs = compileCostTable(opts.costTable ?? DEFAULT_COST_TABLE);
  try {
    return rewrite(bytes, opts, costs, t0);
  } catch (err) {
    if (err instanceof FuelError) throw err;
    if (err instanceof UnsupportedTypeError) fail('HG_WASM_UNSUPPORTED', err.message, err);
    if (err instanceof PlacementError) {
      fail(
        err.kind === 'unsupported' ? 'HG_WASM_UNSUPPORTED' : 'HG_WASM_INVALID',
        err.message,
        err,
      );
    }
    if (err instanceof WasmDecodeError) fail('HG_WASM_INVALID', err.message, err);
    throw err;
  }
}

function rewrite(
  bytes: Uint8Array,
  opts: InstrumentOptions,
  costs: ReturnType<typeof compileCostTable>,
  t0: number,
): InstrumentResult {
  const sections = splitSections(bytes);
  const byId = (id: number): Section | undefined => sections.find((s) => s.id === id);
  const typeSec = byId(SectionId.type);
  const types: FuncType[] = typeSec ? readTypes(bytes, typeSec) : [];
  const importSec = byId(SectionId.import);
  const imports = importSec ? readImports(bytes, importSec) : [];
  const funcSec = byId(SectionId.function);
  const funcTypes = funcSec ? readFunctionTypes(bytes, funcSec) : new Uint32Array(0);
  const exportSec = byId(SectionId.export);
  const exports = exportSec ? readExports(bytes, exportSec) : [];
  for (const e of exports) {
    if (e.name.startsWith(RESERVED_PREFIX)) {
      throw new FuelError(
        'HG_WASM_RESERVED_NAME',
        `export '${e.name}' uses the reserved prefix '${RESERVED_PREFIX}'`,
      );
    }
  }
  const memSec = byId(SectionId.memory);
  const memories = memSec ? readMemories(bytes, memSec) : [];
  if (memories.length + imports.filter((i) => i.kind === 2).length > 1) {
    fail('HG_WASM_UNSUPPORTED', 'more than one memory (multi-memory)');
  }

  const funcImports = imports.filter((i) => i.kind === 0);
  const importCost = Int32Array.from(funcImports, (i) => costs.hostCost(i.module, i.name));
  const globalSec = byId(SectionId.global);
  const numGlobals =
    imports.filter((i) => i.kind === 3).length + (globalSec ? vectorCount(bytes, globalSec) : 0);
  const ctx = {
    placement: opts.placement ?? 'metered-blocks',
    costs,
    fuelGlobal: numGlobals,
    flagGlobal: numGlobals + 1,
    depthGlobal: numGlobals + 2,
    maxCallDepth: opts.maxCallDepth ?? DEFAULT_MAX_CALL_DEPTH,
  } as const;

  // Functions reached by direct calls only carry fuel in a parameter and a result (no global
  // traffic around internal calls); the others keep their type and use the global. A function
  // escaping by export only gets a carrying twin (its body, appended): direct calls go to the
  // twin, and the exported index keeps a wrapper for callers from outside.
  let carry: { carrying: Uint8Array; twin: Int32Array | null; twins: number[] } | null = null;
  let escaping: Set<number> | null = null;
  if (ctx.placement === 'metered-blocks' && funcTypes.length > 0) {
    try {
      escaping = readEscapingFunctions(bytes, sections, false);
    } catch (err) {
      if (!(err instanceof WasmDecodeError)) throw err;
    }
    const esc = escaping;
    if (esc) {
      const nf = funcImports.length + funcTypes.length;
      const exported = new Set<number>();
      for (const e of exports)
        if (e.kind === 0 && e.index >= funcImports.length) exported.add(e.index);
      const twins = [...exported].filter((i) => !esc.has(i)).sort((a, b) => a - b);
      const carrying = new Uint8Array(nf + twins.length);
      let any = twins.length > 0;
      for (let i = funcImports.length; i < nf; i++) {
        if (!esc.has(i) && !exported.has(i)) {
          carrying[i] = 1;
          any = true;
        }
      }
      let twin: Int32Array | null = null;
      if (twins.length > 0) {
        twin = new Int32Array(nf).fill(-1);
        twins.forEach((f, k) => {
          (twin as Int32Array)[f] = nf + k;
          carrying[nf + k] = 1;
        });
      }
      if (any) carry = { carrying, twin, twins };
    }
  }
  // A private table (plan-types.ts, `ModuleFacts.privateTable`): neither imported nor exported,
  // no imported global (a constant expression could read a function from outside through
  // one), and no imported function in an element segment or a global's initializer.
  let privateTable =
    escaping !== null &&
    !imports.some((i) => i.kind === 1 || i.kind === 3) &&
    !exports.some((e) => e.kind === 1);
  if (escaping && privateTable)
    for (const f of escaping) if (f < funcImports.length) privateTable = false;

  const codeSec = byId(SectionId.code);
  // Where each body's size prefix is (sizePos[n] = the section's end), when the section's
  // framing is sound; otherwise emitting reports what is wrong.
  let sizePos: Int32Array | null = null;
  if (codeSec && readU32At(bytes, codeSec.payloadStart) === funcTypes.length) {
    const at = new Int32Array(funcTypes.length + 1);
    let pos = readU32Next();
    for (let i = 0; i < funcTypes.length && pos < codeSec.end; i++) {
      at[i] = pos;
      pos = readU32At(bytes, pos) + readU32Next();
      at[i + 1] = pos;
    }
    if (pos === codeSec.end && (funcTypes.length === 0 || at[funcTypes.length] === pos))
      sizePos = at;
  }
  let unwinds: Uint8Array | null = null;
  let bodies: Int32Array | null = null;
  if (ctx.placement === 'metered-blocks' && sizePos) {
    bodies = new Int32Array(funcTypes.length * 2);
    for (let i = 0; i < funcTypes.length; i++) {
      readU32At(bytes, sizePos[i] as number);
      bodies[2 * i] = readU32Next();
      bodies[2 * i + 1] = sizePos[i + 1] as number;
    }
    unwinds = mayUnwind(bytes, bodies, funcImports.length);
  }
  // Optimistic first: carrying, no `try`, a private table; a body that contradicts one of
  // these asks for a restart without it.
  let code: EmittedCode | null = null;
  let catching = false;
  while (codeSec) {
    const got = emitCode(bytes, codeSec, catching, carry, privateTable);
    if (got === 'table-mutation' && privateTable) privateTable = false;
    else if (got === 'no-carry' && carry) carry = null;
    else if (got === 'needs-catching' && !catching) {
      catching = true;
      carry = null;
    } else if (typeof got === 'string') throw new Error(`unreachable: restart ${got} again`);
    else {
      code = got;
      break;
    }
  }

  function emitCode(
    src: Uint8Array,
    sec: Section,
    catching: boolean,
    carryInfo: { carrying: Uint8Array; twin: Int32Array | null; twins: number[] } | null,
    privateTable: boolean,
  ): EmittedCode | Restart {
    const carry = carryInfo ? carryInfo.carrying : null;
    const twinOf = carryInfo ? carryInfo.twin : null;
    const facts: ModuleFacts = {
      costs,
      placement: ctx.placement,
      catching,
      numFuncImports: funcImports.length,
      importCost,
      allowAtomicWait: opts.allowAtomicWait ?? false,
      carrying: carry,
      twin: twinOf,
      unwinds,
      bodies: unwinds ? bodies : null,
      privateTable,
    };
    const job: CodeJob = { ctx, facts, types, funcTypes };
    const n = funcTypes.length;
    const out = new ByteWriter(Math.ceil((sec.end - sec.payloadStart) * 2.5) + 16);
    const alloc = new NewTypes(types);
    const nTwins = carryInfo ? carryInfo.twins.length : 0;
    const newFuncTypes = carry ? new Uint32Array(n + nTwins) : null;
    newFuncTypes?.set(funcTypes);
    if (readU32At(src, sec.payloadStart) !== n)
      fail('HG_WASM_INVALID', 'function and code section counts differ');
    const first = readU32Next();
    out.u32(n + nTwins);

    const range = emitFunctions(src, job, first, out, alloc, newFuncTypes);
    if (typeof range === 'string') return range;
    if (range.end !== sec.end) fail('HG_WASM_INVALID', 'code section size mismatch');
    for (const body of range.twinBodies) out.copy(body);
    return {
      payload: out.bytes(),
      newTypes: alloc.list,
      newFuncTypes,
      blocks: range.blocks,
      checkpoints: range.checkpoints,
      wrapped: range.wrapped,
      catching,
      carried: carry ? alloc.carried : 0,
    };
  }

  // Assemble: replaced payloads by section id, new sections inserted in order.
  const replaced = new Map<number, Uint8Array>();
  if (code) replaced.set(SectionId.code, code.payload);
  if (code && code.newTypes.length > 0)
    replaced.set(SectionId.type, appendTypes(bytes, typeSec, code.newTypes));
  if (code && code.newFuncTypes)
    replaced.set(SectionId.function, writeFunctionSection(code.newFuncTypes));
  if (opts.memoryMaxPages !== undefined && memSec) {
    replaced.set(SectionId.memory, rewriteMemories(memories, opts.memoryMaxPages));
  }
  const tableSec = byId(SectionId.table);
  if (opts.tableMaxElements !== undefined && tableSec) {
    replaced.set(SectionId.table, rewriteTables(bytes, tableSec, opts.tableMaxElements));
  }
  replaced.set(
    SectionId.global,
    appendGlobals(bytes, globalSec, BigInt(opts.initialFuel ?? DEFAULT_INITIAL_FUEL)),
  );
  replaced.set(
    SectionId.export,
    appendExports(bytes, exportSec, [
      [FUEL_GLOBAL, ctx.fuelGlobal],
      [EXHAUSTED_GLOBAL, ctx.flagGlobal],
      [DEPTH_GLOBAL, ctx.depthGlobal],
    ]),
  );
  const chunks: Uint8Array[] = [bytes.subarray(0, 8)];
  const rank = (id: number): number => SECTION_ORDER.indexOf(id);
  const pendingNew = [...replaced.keys()]
    .filter((id) => !byId(id))
    .sort((a, b) => rank(a) - rank(b));
  for (const s of sections) {
    if (s.id !== SectionId.custom) {
      while (pendingNew.length > 0 && rank(pendingNew[0] as number) < rank(s.id)) {
        const id = pendingNew.shift() as number;
        chunks.push(...encodeSection(id, replaced.get(id) as Uint8Array));
      }
    }
    const payload = replaced.get(s.id);
    if (payload && s.id !== SectionId.custom) chunks.push(...encodeSection(s.id, payload));
    else chunks.push(bytes.subarray(s.start, s.end));
  }
  for (const id of pendingNew) chunks.push(...encodeSection(id, replaced.get(id) as Uint8Array));
  const out = concatBytes(chunks);
  if (opts.validateOutput === true && !WebAssembly.validate(out)) {
    throw new FuelError('HG_FUEL_INTERNAL', 'the instrumented module does not validate');
  }
  return {
    bytes: out,
    stats: {
      functions: funcTypes.length,
      meteredBlocks: code ? code.blocks : 0,
      checkpoints: code ? code.checkpoints : 0,
      wrappedBodies: code ? code.wrapped : 0,
      catching: code ? code.catching : false,
      originalBytes: bytes.length,
      instrumentedBytes: out.length,
      durationMs: performance.now() - t0,
    },
  };
}

interface NewType {
  readonly params: readonly number[];
  readonly results: readonly number[];
}

interface EmittedCode {
  readonly payload: Uint8Array;
  readonly newTypes: readonly NewType[];
  /** The function section's type indices, when some functions carry fuel. */
  readonly newFuncTypes: Uint32Array | null;
  readonly blocks: number;
  readonly checkpoints: number;
  readonly wrapped: number;
  readonly catching: boolean;
  readonly carried: number;
}
