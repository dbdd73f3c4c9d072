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
  /** Parameter value types, each as its encoding. */
  readonly paramTypes: readonly number[];
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
    const paramTypes: number[] = [];
    for (let p = 0; p < np; p++) paramTypes.push(valtype(r));
    const nr = r.u32();
    const results: number[] = [];
    for (let k = 0; k < nr; k++) results.push(valtype(r));
    out.push({ params: np, paramTypes, results });
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

/** Skips a constant expression up to its `end`, adding every `ref.func` index to `refs`. */
function constExpr(r: ByteReader, refs: Set<number>): void {
  for (;;) {
    const op = r.byte();
    switch (op) {
      case 0x0b:
        return;
      case 0x41:
        r.s32();
        break;
      case 0x42:
        r.skipLeb(10);
        break;
      case 0x43:
        r.skip(4);
        break;
      case 0x44:
        r.skip(8);
        break;
      case 0x23:
        r.u32();
        break;
      case 0xd0:
        r.s33();
        break;
      case 0xd2:
        refs.add(r.u32());
        break;
      case 0x6a:
      case 0x6b:
      case 0x6c:
      case 0x7c:
      case 0x7d:
      case 0x7e:
        break;
      case 0xfd:
        if (r.u32() !== 12) r.fail('constant expression opcode 0xfd');
        r.skip(16);
        break;
      default:
        r.fail(`constant expression opcode 0x${op.toString(16)}`);
    }
  }
}

function refType(r: ByteReader): void {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.s33();
}

/**
 * Defined-or-imported functions whose index escapes direct calls: exported, the start
 * function, in any element segment (active, passive or declarative), or named by `ref.func`
 * in a global's initializer. A validated module can only `ref.func` (in code) a function
 * declared in one of these places, so every other function is reached by direct calls only.
 * `includeExports: false` leaves out the exports (escaping by export only is then not escaping).
 */
export function readEscapingFunctions(
  bytes: Uint8Array,
  sections: readonly Section[],
  includeExports = true,
): Set<number> {
  const refs = new Set<number>();
  for (const s of sections) {
    const r = new ByteReader(bytes, s.payloadStart, s.end);
    if (s.id === SectionId.export) {
      if (includeExports)
        for (const e of readExports(bytes, s)) if (e.kind === 0) refs.add(e.index);
    } else if (s.id === SectionId.start) {
      refs.add(r.u32());
    } else if (s.id === SectionId.global) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        refType(r);
        r.byte();
        constExpr(r, refs);
      }
    } else if (s.id === SectionId.element) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const flags = r.u32();
        if (flags > 7) r.fail(`element segment flags ${flags}`);
        if (flags & 2 && !(flags & 1)) r.u32(); // table index
        if (!(flags & 1)) constExpr(r, new Set()); // active: offset
        if (flags & 1 || flags & 2) {
          if (flags & 4) refType(r);
          else r.byte(); // elemkind
        }
        const count = r.u32();
        for (let k = 0; k < count; k++) {
          if (flags & 4) constExpr(r, refs);
          else refs.add(r.u32());
        }
      }
    }
  }
  return refs;
}
