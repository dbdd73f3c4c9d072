/**
 * Running spec-testsuite actions JS cannot call directly: a function whose parameters or
 * results include `v128` throws a TypeError at the JS boundary (and a NaN argument or result
 * loses its payload there, which some spec tests pin down). For such an action we build a
 * small plain "bridge" module that imports the target function with its exact type and exports
 * a function that calls it with the action's arguments as constants (bit-exact, NaN payloads
 * included) and returns every result through a JS-safe type: each `v128` as four `i32` lanes,
 * `f32`/`f64` reinterpreted as `i32`/`i64` bits. Reference arguments (which have no constant
 * form) are passed through the bridge's own parameters.
 *
 * Results are rendered per value type the way wast2json writes expected values (unsigned
 * decimal bits, v128 lane by lane). A NaN is rendered exactly only where the expected value
 * is an exact bit pattern; otherwise only its class (canonical, arithmetic, other), since the
 * spec leaves NaN payloads nondeterministic and the scalar path compares them as plain `NaN`.
 */
import { ByteReader } from '../../src/wasm/byte-reader.ts';
import { ByteWriter } from '../../src/wasm/byte-writer.ts';
import {
  SectionId,
  readExports,
  readFunctionTypes,
  readImports,
  splitSections,
} from '../../src/wasm/sections.ts';

/** A value as wast2json writes it: unsigned decimal bits, v128 lane by lane. */
export interface WastValue {
  readonly type: string;
  readonly lane_type?: string;
  readonly value?: string | readonly string[];
}

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export const FUNCREF = 0x70;
export const EXTERNREF = 0x6f;
const REF_TYPES: ReadonlySet<number> = new Set([FUNCREF, EXTERNREF]);
const VALTYPES: ReadonlySet<number> = new Set([I32, I64, F32, F64, V128, FUNCREF, EXTERNREF]);

export interface FuncSig {
  readonly params: readonly number[];
  readonly results: readonly number[];
}

export class BridgeError extends Error {}

function readSigs(bytes: Uint8Array, start: number, end: number): FuncSig[] {
  const r = new ByteReader(bytes, start, end);
  const valtype = (): number => {
    const t = r.byte();
    if (!VALTYPES.has(t)) throw new BridgeError(`value type 0x${t.toString(16)}`);
    return t;
  };
  const out: FuncSig[] = [];
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const form = r.byte();
    if (form !== 0x60) throw new BridgeError(`type form 0x${form.toString(16)}`);
    const params = Array.from({ length: r.u32() }, valtype);
    const results = Array.from({ length: r.u32() }, valtype);
    out.push({ params, results });
  }
  return out;
}

/** The exact type of every function a module exports (which may be an imported one). */
export function exportedFunctionTypes(bytes: Uint8Array): Map<string, FuncSig> {
  const sections = splitSections(bytes);
  const find = (id: number) => sections.find((s) => s.id === id);
  const typeSec = find(SectionId.type);
  const types = typeSec ? readSigs(bytes, typeSec.payloadStart, typeSec.end) : [];
  const importSec = find(SectionId.import);
  const funcSec = find(SectionId.function);
  const exportSec = find(SectionId.export);
  const funcTypes = [
    ...(importSec ? readImports(bytes, importSec) : [])
      .filter((imp) => imp.kind === 0)
      .map((imp) => imp.typeIndex),
    ...(funcSec ? readFunctionTypes(bytes, funcSec) : []),
  ];
  const out = new Map<string, FuncSig>();
  for (const e of exportSec ? readExports(bytes, exportSec) : []) {
    if (e.kind !== 0) continue;
    const sig = types[funcTypes[e.index] as number];
    if (!sig) throw new BridgeError(`export ${e.name}: no type for function ${e.index}`);
    out.set(e.name, sig);
  }
  return out;
}

export function needsBridge(sig: FuncSig): boolean {
  return [...sig.params, ...sig.results].includes(V128);
}

/**
 * Whether an argument or expected value is a NaN: JS may quiet a signalling NaN argument and
 * cannot show a NaN result's payload, so such actions also go through a bridge.
 */
export function hasNan(values: readonly WastValue[]): boolean {
  return values.some((v) => {
    if (typeof v.value !== 'string' || (v.type !== 'f32' && v.type !== 'f64')) return false;
    return v.value.startsWith('nan') || isNan(BigInt(v.value), v.type === 'f32' ? 32 : 64);
  });
}

/** What a target result comes back through the bridge as. */
function bridgedResults(t: number): number[] {
  if (t === V128) return [I32, I32, I32, I32];
  if (t === F32) return [I32];
  if (t === F64) return [I64];
  return [t];
}

const LANE_BITS: Record<string, number> = { i8: 8, i16: 16, i32: 32, i64: 64, f32: 32, f64: 64 };

function laneBits(laneType: string | undefined): number {
  const bits = LANE_BITS[laneType ?? ''];
  if (!bits) throw new BridgeError(`v128 lane type ${laneType}`);
  return bits;
}

/** The 16 bytes (little-endian) of a v128 constant written lane by lane. */
export function v128Bytes(v: WastValue): Uint8Array {
  const bits = laneBits(v.lane_type);
  const lanes = v.value;
  if (!Array.isArray(lanes) || lanes.length * bits !== 128) {
    throw new BridgeError(`v128 value ${JSON.stringify(v)}`);
  }
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  lanes.forEach((lane: string, i: number) => {
    const n = BigInt.asUintN(bits, BigInt(lane));
    if (bits === 8) dv.setUint8(i, Number(n));
    else if (bits === 16) dv.setUint16(i * 2, Number(n), true);
    else if (bits === 32) dv.setUint32(i * 4, Number(n), true);
    else dv.setBigUint64(i * 8, n, true);
  });
  return out;
}

function pushConst(code: ByteWriter, t: number, v: WastValue): void {
  if (v.type === 'v128' && t === V128) {
    code.byte(0xfd).u32(12).copy(v128Bytes(v));
    return;
  }
  const s = v.value;
  if (typeof s !== 'string' || /nan/.test(s)) {
    throw new BridgeError(`argument ${JSON.stringify(v)}`);
  }
  const bits = BigInt(s);
  const le = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, bits), true);
    return out.subarray(0, n);
  };
  if (v.type === 'i32' && t === I32) code.byte(0x41).s32(Number(BigInt.asIntN(32, bits)));
  else if (v.type === 'i64' && t === I64) code.byte(0x42).s64(BigInt.asIntN(64, bits));
  else if (v.type === 'f32' && t === F32) code.byte(0x43).copy(le(8).subarray(0, 4));
  else if (v.type === 'f64' && t === F64) code.byte(0x44).copy(le(8));
  else throw new BridgeError(`argument ${v.type} for parameter type 0x${t.toString(16)}`);
}

function section(out: ByteWriter, id: number, body: ByteWriter): void {
  out.byte(id).u32(body.length).copy(body.bytes());
}

function funcType(w: ByteWriter, params: readonly number[], results: readonly number[]): void {
  w.byte(0x60).u32(params.length).raw(params).u32(results.length).raw(results);
}

export interface Bridge {
  /** The bridge module: imports `t.f` (the target), exports `run`. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Arguments `run` takes from JS: the reference-typed ones, in order. */
  readonly refArgs: readonly WastValue[];
}

/**
 * The bridge for calling a function of type `sig` with `args`: numeric and vector arguments
 * become constants, reference arguments parameters of `run`.
 */
export function buildBridge(sig: FuncSig, args: readonly WastValue[]): Bridge {
  if (args.length !== sig.params.length) {
    throw new BridgeError(`${args.length} arguments for ${sig.params.length} parameters`);
  }
  const refParams = sig.params.filter((t) => REF_TYPES.has(t));
  const refArgs = args.filter((_, i) => REF_TYPES.has(sig.params[i] as number));
  const outTypes = sig.results.flatMap(bridgedResults);

  const code = new ByteWriter(64);
  let nextRef = 0;
  sig.params.forEach((t, i) => {
    if (REF_TYPES.has(t)) code.byte(0x20).u32(nextRef++);
    else pushConst(code, t, args[i] as WastValue);
  });
  code.byte(0x10).u32(0);
  // Results into locals (the last is on top), then out again, split into JS-safe values.
  const local = (k: number): number => refParams.length + k;
  for (let k = sig.results.length - 1; k >= 0; k--) code.byte(0x21).u32(local(k));
  sig.results.forEach((t, k) => {
    if (t === V128) {
      for (let lane = 0; lane < 4; lane++) {
        code.byte(0x20).u32(local(k)).byte(0xfd).u32(27).byte(lane); // i32x4.extract_lane
      }
      return;
    }
    code.byte(0x20).u32(local(k));
    if (t === F32)
      code.byte(0xbc); // i32.reinterpret_f32
    else if (t === F64) code.byte(0xbd); // i64.reinterpret_f64
  });
  code.byte(0x0b);

  const body = new ByteWriter(code.length + 16);
  body.u32(sig.results.length);
  for (const t of sig.results) body.u32(1).byte(t);
  body.copy(code.bytes());

  const types = new ByteWriter();
  types.u32(2);
  funcType(types, sig.params, sig.results);
  funcType(types, refParams, outTypes);
  const imports = new ByteWriter();
  imports.u32(1).u32(1).raw([0x74]).u32(1).raw([0x66]).byte(0).u32(0); // "t" "f" func type 0
  const funcs = new ByteWriter().u32(1).u32(1);
  const exports = new ByteWriter().u32(1).u32(3).raw([0x72, 0x75, 0x6e]).byte(0).u32(1); // "run"
  const codes = new ByteWriter().u32(1).u32(body.length).copy(body.bytes());

  const out = new ByteWriter(256).raw([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  section(out, SectionId.type, types);
  section(out, SectionId.import, imports);
  section(out, SectionId.function, funcs);
  section(out, SectionId.export, exports);
  section(out, SectionId.code, codes);
  return { bytes: out.bytes().slice(), refArgs };
}

// ---- results ----------------------------------------------------------------------------

function isNan(bits: bigint, width: 32 | 64): boolean {
  const expBits = width === 32 ? 8n : 11n;
  const fracBits = BigInt(width) - 1n - expBits;
  const exp = (bits >> fracBits) & ((1n << expBits) - 1n);
  return exp === (1n << expBits) - 1n && (bits & ((1n << fracBits) - 1n)) !== 0n;
}

/** `nan:canonical`, `nan:arithmetic` or `nan:other` for a NaN of `width` bits. */
function nanClass(bits: bigint, width: 32 | 64): string {
  const fracBits = width === 32 ? 23n : 52n;
  const frac = bits & ((1n << fracBits) - 1n);
  const quiet = 1n << (fracBits - 1n);
  if (frac === quiet) return 'nan:canonical';
  return frac & quiet ? 'nan:arithmetic' : 'nan:other';
}

/** One scalar (or lane) of `bits` bits, rendered against its expected text if any. */
function renderScalar(kind: string, bits: bigint, expected: string | undefined): string {
  if (kind === 'f32' || kind === 'f64') {
    const width = kind === 'f32' ? 32 : 64;
    const exact = expected !== undefined && !expected.startsWith('nan');
    if (!exact && isNan(bits, width)) return nanClass(bits, width);
  }
  return String(bits);
}

/**
 * The rendered results of one bridged call: `raw` is what `run` returned (nothing, a value,
 * or an array for several), `expected` the command's expected values when it has them (for
 * the lane shape of a v128 and which NaNs to compare exactly). Reference results go through
 * `showRef`.
 */
export function renderResults(
  sig: FuncSig,
  raw: unknown,
  expected: readonly WastValue[] | undefined,
  showRef: (v: unknown) => string,
): string[] {
  const n = sig.results.flatMap(bridgedResults).length;
  const flat: unknown[] = n === 0 ? [] : n === 1 ? [raw] : (raw as unknown[]);
  let at = 0;
  return sig.results.map((t, k) => {
    const exp = expected?.[k];
    const expText = typeof exp?.value === 'string' ? exp.value : undefined;
    switch (t) {
      case I32:
        return `i32:${renderScalar('i32', BigInt.asUintN(32, BigInt(flat[at++] as number)), expText)}`;
      case I64:
        return `i64:${renderScalar('i64', BigInt.asUintN(64, flat[at++] as bigint), expText)}`;
      case F32:
        return `f32:${renderScalar('f32', BigInt.asUintN(32, BigInt(flat[at++] as number)), expText)}`;
      case F64:
        return `f64:${renderScalar('f64', BigInt.asUintN(64, flat[at++] as bigint), expText)}`;
      case V128: {
        const bytes = new Uint8Array(16);
        const dv = new DataView(bytes.buffer);
        for (let lane = 0; lane < 4; lane++) dv.setInt32(lane * 4, flat[at++] as number, true);
        const laneType = exp?.lane_type ?? 'i32';
        const bits = laneBits(laneType);
        const lanes: string[] = [];
        for (let i = 0; i < 128 / bits; i++) {
          let v = 0n;
          for (let b = bits / 8 - 1; b >= 0; b--) {
            v = (v << 8n) | BigInt(bytes[(i * bits) / 8 + b] as number);
          }
          const laneExp = Array.isArray(exp?.value) ? (exp.value[i] as string) : undefined;
          lanes.push(renderScalar(laneType, v, laneExp));
        }
        return `v128:${laneType}[${lanes.join(' ')}]`;
      }
      default:
        return showRef(flat[at++]);
    }
  });
}

/** The expected values rendered like `renderResults` (numeric and vector values only). */
export function renderExpected(
  sig: FuncSig,
  expected: readonly WastValue[],
): (string | null)[] | null {
  if (expected.length !== sig.results.length) return null;
  return expected.map((e) => {
    if (e.type === 'v128') {
      if (!Array.isArray(e.value)) return null;
      return `v128:${e.lane_type}[${e.value.join(' ')}]`;
    }
    if (typeof e.value !== 'string' || !['i32', 'i64', 'f32', 'f64'].includes(e.type)) return null;
    return `${e.type}:${e.value}`;
  });
}

/** Whether a rendered result matches a rendered expectation (`nan:arithmetic` admits canonical). */
export function matchesExpected(actual: string, expected: string | null): boolean {
  if (expected === null) return true;
  if (actual === expected) return true;
  const a = actual.split(/[[\] :]/);
  const e = expected.split(/[[\] :]/);
  if (a.length !== e.length) return false;
  return a.every((x, i) => {
    const y = e[i];
    if (x === y) return true;
    return y === 'arithmetic' && x === 'canonical' && e[i - 1] === 'nan';
  });
}
