/**
 * Splitting a core WebAssembly binary into its sections, and decoding the few sections a
 * rewriter needs to understand (types, imports, functions, memories, globals' count, exports).
 * Everything else stays as byte ranges so it can be copied back untouched.
 */
import { ByteReader } from './byte-reader.ts';

export const SectionId = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  table: 4,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  element: 9,
  code: 10,
  data: 11,
  dataCount: 12,
  tag: 13,
} as const;

/** Order of non-custom sections in a valid module (the tag section sits between memory and global). */
export const SECTION_ORDER: readonly number[] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

export interface Section {
  readonly id: number;
  /** Offset of the section id byte. */
  readonly start: number;
  /** Payload range (after the size). */
  readonly payloadStart: number;
  readonly end: number;
}

export const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d] as const;

/** Header kinds: a core module (version 1), a component (layer 1), or something else. */
export function binaryKind(bytes: Uint8Array): 'module' | 'component' | 'unknown' {
  if (bytes.length < 8) return 'unknown';
  for (let i = 0; i < 4; i++) if (bytes[i] !== WASM_MAGIC[i]) return 'unknown';
  if (bytes[4] === 1 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0) return 'module';
  if (bytes[6] === 1 && bytes[7] === 0) return 'component';
  return 'unknown';
}

export function splitSections(bytes: Uint8Array): Section[] {
  const r = new ByteReader(bytes, 8);
  const out: Section[] = [];
  while (!r.done) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const payloadStart = r.pos;
    r.skip(size);
    out.push({ id, start, payloadStart, end: r.pos });
  }
  return out;
}

export interface FuncType {
  readonly params: number;
  /** Result value types, each as its encoding (a single byte for the types Node 20 runs). */
  readonly results: readonly number[];
}

/** Value types a rewriter can name in a single byte: numeric, vector, funcref, externref. */
export const SIMPLE_VALTYPES: ReadonlySet<number> = new Set([
  0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f,
]);

export class UnsupportedTypeError extends Error {}

function valtype(r: ByteReader): number {
  const t = r.byte();
  if (!SIMPLE_VALTYPES.has(t)) {
    throw new UnsupportedTypeError(
      `value type 0x${t.toString(16)} (typed references, GC or exnref)`,
    );
  }
  return t;
}

export function readTypes(bytes: Uint8Array, s: Section): FuncType[] {
  const r = new ByteReader(bytes, s.payloadStart, s.end);
  const n = r.u32();
  const out: FuncType[] = [];
  for (let i = 0; i < n; i++) {
    const form = r.byte();
    if (form !== 0x60) {
      throw new UnsupportedTypeError(`type form 0x${form.toString(16)} (GC types)`);
    }
    const np = r.u32();
    for (let p = 0; p < np; p++) valtype(r);
    const nr = r.u32();
    const results: number[] = [];
    for (let k = 0; k < nr; k++) results.push(valtype(r));
    out.push({ params: np, results });
  }
  return out;
}

export interface ImportEntry {
  readonly module: string;
  readonly name: string;
  /** 0 func, 1 table, 2 memory, 3 global, 4 tag. */
  readonly kind: number;
  /** For functions: the type index. */
  readonly typeIndex: number;
}

function skipLimits(r: ByteReader): void {
  const flags = r.byte();
  if (flags > 3) throw new UnsupportedTypeError(`limits flags 0x${flags.toString(16)} (memory64)`);
  r.u32();
  if (flags & 1) r.u32();
}

export function readImports(bytes: Uint8Array, s: Section): ImportEntry[] {
  const r = new ByteReader(bytes, s.payloadStart, s.end);
  const n = r.u32();
  const out: ImportEntry[] = [];
  for (let i = 0; i < n; i++) {
    const module = r.name();
    const name = r.name();
    const kind = r.byte();
    let typeIndex = -1;
    if (kind === 0) typeIndex = r.u32();
    else if (kind === 1) {
      valtype(r);
      skipLimits(r);
    } else if (kind === 2) skipLimits(r);
    else if (kind === 3) {
      valtype(r);
      r.byte();
    } else if (kind === 4) {
      r.byte();
      typeIndex = r.u32();
    } else r.fail(`import kind ${kind}`);
    out.push({ module, name, kind, typeIndex });
  }
  return out;
}

/** The function section: a type index per defined function. */
export function readFunctionTypes(bytes: Uint8Array, s: Section): Uint32Array {
  const r = new ByteReader(bytes, s.payloadStart, s.end);
  const n = r.u32();
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.u32();
  return out;
}

/** Number of entries of a vector section (globals, for instance). */
export function vectorCount(bytes: Uint8Array, s: Section): number {
  return new ByteReader(bytes, s.payloadStart, s.end).u32();
}

export interface ExportEntry {
  readonly name: string;
  readonly kind: number;
  readonly index: number;
}

export function readExports(bytes: Uint8Array, s: Section): ExportEntry[] {
  const r = new ByteReader(bytes, s.payloadStart, s.end);
  const n = r.u32();
  const out: ExportEntry[] = [];
  for (let i = 0; i < n; i++) out.push({ name: r.name(), kind: r.byte(), index: r.u32() });
  return out;
}

export interface MemoryLimits {
  readonly flags: number;
  readonly min: number;
  readonly max: number | undefined;
}

export function readMemories(bytes: Uint8Array, s: Section): MemoryLimits[] {
  const r = new ByteReader(bytes, s.payloadStart, s.end);
  const n = r.u32();
  const out: MemoryLimits[] = [];
  for (let i = 0; i < n; i++) {
    const flags = r.byte();
    if (flags > 3)
      throw new UnsupportedTypeError(`memory flags 0x${flags.toString(16)} (memory64)`);
    const min = r.u32();
    const max = flags & 1 ? r.u32() : undefined;
    out.push({ flags, min, max });
  }
  return out;
}
