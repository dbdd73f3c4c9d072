/**
 * The versioned cost table: how much fuel each operator, each page of `memory.grow`, each
 * 64 bytes of bulk memory work, each 8 table elements and each host-function call costs.
 *
 * Version `hg-costs/1` starts from wasmtime's default: 1 per operator, 0 for `nop drop block
 * loop end else unreachable return`. Hourglass adds: the legacy exception-handling markers
 * (`try catch catch_all delegate`) cost 0 like `block`/`end`; `memory.grow` costs 1024 per
 * page requested (a page is 1024 × 64 bytes); `memory.copy/fill/init` cost 1 per 64 bytes
 * (rounded up); `table.copy/fill/init/grow` cost 1024 per 8 elements (`hg-costs/2`; it was
 * 1 in `hg-costs/1`, which let a 1M-element grow take 700 ms for 125k fuel), and a direct call to an imported host function costs 10 on top of the `call` itself (1000
 * for Extism's `alloc`, 100 for its `free`). Hourglass's own host functions add their static
 * cost and one unit per byte moved on the host side (host-functions/).
 *
 * Changing any default is a new version: the version is part of the instrumentation cache key
 * and of every recorded fuel figure's meaning.
 */
import { createHash } from 'node:crypto';
import { ATOMIC_IMM, Imm, MISC_IMM, SIMD_IMM, SINGLE_IMM } from '../wasm/opcodes.ts';
import { FuelError } from './errors.ts';

export interface CostTable {
  /** Identifies the table; part of the cache key. */
  readonly version: string;
  /** Cost of an operator not listed in `opcodes`. @defaultValue 1 */
  readonly defaultCost: number;
  /**
   * Per-operator overrides, keyed by mnemonic (see `OPCODE_NAMES`) or by encoding:
   * `"0x6a"` for a single-byte opcode, `"0xfc:10"` / `"0xfd:0x0c"` for prefixed ones.
   */
  readonly opcodes: Readonly<Record<string, number>>;
  /** Per page (64 KiB) requested by `memory.grow`, charged even if the grow fails. */
  readonly memoryGrowPerPage: number;
  /** Per 64 bytes (rounded up) of `memory.copy`, `memory.fill`, `memory.init`. */
  readonly bulkMemoryPer64Bytes: number;
  /** Per 8 elements (rounded up) of `table.copy`, `table.fill`, `table.init`, `table.grow`. */
  readonly tablePer8Elements: number;
  /** Static cost of a direct call to an imported function, on top of `call`. */
  readonly hostCallDefault: number;
  /** Per-import static costs: `{ "extism:host/env": { "output_set": 20 } }`. */
  readonly hostCalls: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export const DEFAULT_COST_TABLE: CostTable = Object.freeze({
  version: 'hg-costs/2',
  defaultCost: 1,
  opcodes: Object.freeze({
    nop: 0,
    drop: 0,
    block: 0,
    loop: 0,
    end: 0,
    else: 0,
    unreachable: 0,
    return: 0,
    try: 0,
    catch: 0,
    catch_all: 0,
    delegate: 0,
  }),
  memoryGrowPerPage: 1024,
  bulkMemoryPer64Bytes: 1,
  // Table elements are ~40-150 ns each to grow, fill or copy on Node 20 (V8 writes a dispatch
  // entry per funcref), ~500× a plain operator: 1024 per 8 keeps fuel near wall time.
  tablePer8Elements: 1024,
  hostCallDefault: 10,
  // Extism's kernel runs in JS: `alloc` takes ~3 µs (measured: an alloc loop ran 1.5 M calls
  // in 5 s), so it is priced near the ~1000 operators a guest runs in that time. The byte and
  // word accessors are cheap enough for the default.
  hostCalls: Object.freeze({
    'extism:host/env': Object.freeze({ alloc: 1000, free: 100 }),
  }),
});

/** Mnemonics accepted as keys (control, calls and the operand-sized operators). */
export const OPCODE_NAMES: Readonly<Record<string, number>> = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  try: 0x06,
  catch: 0x07,
  throw: 0x08,
  rethrow: 0x09,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  return_call: 0x12,
  return_call_indirect: 0x13,
  delegate: 0x18,
  catch_all: 0x19,
  drop: 0x1a,
  select: 0x1b,
  'local.get': 0x20,
  'local.set': 0x21,
  'local.tee': 0x22,
  'global.get': 0x23,
  'global.set': 0x24,
  'memory.size': 0x3f,
  'memory.grow': 0x40,
  'memory.init': 0xfc0008,
  'data.drop': 0xfc0009,
  'memory.copy': 0xfc000a,
  'memory.fill': 0xfc000b,
  'table.init': 0xfc000c,
  'elem.drop': 0xfc000d,
  'table.copy': 0xfc000e,
  'table.grow': 0xfc000f,
  'table.size': 0xfc0010,
  'table.fill': 0xfc0011,
};

/** Markers that are never "executed" on their own; their cost must be 0. */
const ZERO_ONLY = [0x05, 0x07, 0x0b, 0x18, 0x19];

/** A cost table turned into lookup arrays for the instrumenter. */
export interface CompiledCosts {
  readonly single: Int32Array;
  readonly misc: Int32Array;
  readonly simd: Int32Array;
  readonly atomic: Int32Array;
  readonly growPerPage: number;
  readonly bulkPer64: number;
  readonly tablePer8: number;
  hostCost(module: string, name: string): number;
  /** sha256 of the table's canonical JSON: part of the cache key. */
  readonly digest: string;
}

function costError(message: string): FuelError {
  return new FuelError('HG_FUEL_COST_TABLE', `cost table: ${message}`);
}

function checkCost(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1_000_000) {
    throw costError(`${where} must be an integer in [0, 1000000]`);
  }
  return v;
}

function parseKey(key: string): number {
  const named = OPCODE_NAMES[key];
  if (named !== undefined) return named;
  const m = /^0x([0-9a-f]{1,2})(?::(0x[0-9a-f]+|[0-9]+))?$/i.exec(key);
  if (!m) throw costError(`unknown opcode key '${key}'`);
  const op = parseInt(m[1] as string, 16);
  if (m[2] === undefined) return op;
  return (op << 16) | Number(m[2]);
}

const compiledCache = new WeakMap<CostTable, CompiledCosts>();

export function compileCostTable(table: CostTable = DEFAULT_COST_TABLE): CompiledCosts {
  const hit = compiledCache.get(table);
  if (hit) return hit;
  if (typeof table.version !== 'string' || table.version.length === 0) {
    throw costError('version must be a non-empty string');
  }
  const d = checkCost('defaultCost', table.defaultCost);
  const single = new Int32Array(256).map((_, i) => (SINGLE_IMM[i] === Imm.invalid ? 0 : d));
  const misc = new Int32Array(MISC_IMM.length).fill(d);
  const simd = new Int32Array(SIMD_IMM.length).fill(d);
  const atomic = new Int32Array(ATOMIC_IMM.length).fill(d);
  for (const [key, value] of Object.entries(table.opcodes ?? {})) {
    const cost = checkCost(`opcodes['${key}']`, value);
    const code = parseKey(key);
    const prefix = code >> 16;
    const sub = code & 0xffff;
    const target =
      prefix === 0
        ? single
        : prefix === 0xfc
          ? misc
          : prefix === 0xfd
            ? simd
            : prefix === 0xfe
              ? atomic
              : null;
    if (target === null || sub >= target.length) throw costError(`unknown opcode key '${key}'`);
    target[sub] = cost;
  }
  for (const op of ZERO_ONLY) {
    if (single[op] !== 0) {
      throw costError(`opcode 0x${op.toString(16)} (a block marker) must cost 0`);
    }
  }
  const hostCalls = new Map<string, number>();
  for (const [mod, names] of Object.entries(table.hostCalls ?? {})) {
    for (const [name, value] of Object.entries(names)) {
      hostCalls.set(`${mod}\u0000${name}`, checkCost(`hostCalls['${mod}']['${name}']`, value));
    }
  }
  const hostDefault = checkCost('hostCallDefault', table.hostCallDefault);
  const compiled: CompiledCosts = {
    single,
    misc,
    simd,
    atomic,
    growPerPage: checkCost('memoryGrowPerPage', table.memoryGrowPerPage),
    bulkPer64: checkCost('bulkMemoryPer64Bytes', table.bulkMemoryPer64Bytes),
    tablePer8: checkCost('tablePer8Elements', table.tablePer8Elements),
    hostCost: (module, name) => hostCalls.get(`${module}\u0000${name}`) ?? hostDefault,
    digest: createHash('sha256').update(canonicalJson(table)).digest('hex'),
  };
  compiledCache.set(table, compiled);
  return compiled;
}

function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}

/**
 * Parses an untrusted cost table (e.g. a `--cost-table` JSON file). Missing fields take the
 * default table's values; unknown fields are refused.
 */
export function parseCostTable(input: unknown): CostTable {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw costError('must be a JSON object');
  }
  const known = new Set(Object.keys(DEFAULT_COST_TABLE));
  for (const k of Object.keys(input)) if (!known.has(k)) throw costError(`unknown field '${k}'`);
  const merged = { ...DEFAULT_COST_TABLE, ...(input as Partial<CostTable>) };
  if (merged.version === DEFAULT_COST_TABLE.version && merged !== DEFAULT_COST_TABLE) {
    if (canonicalJson(merged) !== canonicalJson(DEFAULT_COST_TABLE)) {
      throw costError(
        `a modified table needs its own version (not '${DEFAULT_COST_TABLE.version}')`,
      );
    }
  }
  const isRecord = (x: unknown): x is Record<string, unknown> =>
    x !== null && typeof x === 'object' && !Array.isArray(x);
  if (!isRecord(merged.opcodes)) throw costError('opcodes must be an object');
  if (!isRecord(merged.hostCalls)) throw costError('hostCalls must be an object');
  for (const [m, names] of Object.entries(merged.hostCalls)) {
    if (!isRecord(names)) throw costError(`hostCalls['${m}'] must be an object`);
  }
  const table = Object.freeze(merged);
  compileCostTable(table); // throws on bad values
  return table;
}
