/**
 * The last rewrite of a guest binary (after fuel instrumentation and the return-code wrappers):
 * it takes every piece of guest code that would run while Extism creates the plugin out of
 * Extism's hands, so the host runs it itself once the instance is bound (memory, fuel meter,
 * WASI), under the discovery budget, and can classify how it ended.
 *
 * - The WASI import module `wasi_snapshot_preview1` becomes `hourglass:wasi`: Extism rc13
 *   refuses a module importing `wasi_snapshot_preview1` unless `useWasi` (Node's WASI, whose
 *   `poll_oneoff` sleeps in native code) is on; under another name the imports are plain host
 *   functions, supplied by src/sandbox/kernel/wasi.ts.
 * - The exports `_initialize` and `_start` become `__hg_initialize` and `__hg_start`: Extism
 *   calls them by name inside `createPlugin`, before the host can see the instance (a WASI
 *   call there would have no memory to work on) and with no way to tell out of fuel apart.
 * - The start section is removed and its function exported as `__hg_start_section`, for the
 *   same reason: `WebAssembly.instantiate` runs it before anything can be bound.
 *
 * Only the import, export and start sections change; everything else is copied byte for byte
 * and no index moves. Fuel is unaffected: the instrumenter already treated the start function
 * and both exports as entries (they read the fuel global).
 */
import { ByteReader } from '../../wasm/byte-reader.ts';
import { ByteWriter, concatBytes, u32Bytes } from '../../wasm/byte-writer.ts';
import { readImports, readTypes, SectionId, splitSections } from '../../wasm/sections.ts';

export const WASI_MODULE = 'wasi_snapshot_preview1';
export const HOURGLASS_WASI = 'hourglass:wasi';
/** Guest init entry points, in the order the host runs them (see `initEntries`). */
export const START_SECTION_EXPORT = '__hg_start_section';
export const INITIALIZE_EXPORT = '__hg_initialize';
export const START_EXPORT = '__hg_start';

const RENAMED_EXPORTS: Readonly<Record<string, string>> = {
  _initialize: INITIALIZE_EXPORT,
  _start: START_EXPORT,
};

/** A WASI function import with its signature (`i`/`I`/`f`/`F` per value, e.g. `iIi:i`). */
export interface WasiImport {
  readonly name: string;
  readonly signature: string;
}

export interface EntryRewrite {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly wasiImports: readonly WasiImport[];
}

const VALTYPE_LETTER: Readonly<Record<number, string>> = {
  0x7f: 'i',
  0x7e: 'I',
  0x7d: 'f',
  0x7c: 'F',
  0x7b: 'v',
  0x70: 'r',
  0x6f: 'x',
};

function letters(types: readonly number[]): string {
  return types.map((t) => VALTYPE_LETTER[t] ?? '?').join('');
}

function name(w: ByteWriter, s: string): void {
  const b = new TextEncoder().encode(s);
  w.u32(b.length).copy(b);
}

function skipLimits(r: ByteReader): void {
  const flags = r.byte();
  r.u32();
  if (flags & 1) r.u32();
}

/** The import section with the WASI module renamed; descriptors copied as they are. */
function rewriteImports(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const r = new ByteReader(bytes, start, end);
  const n = r.u32();
  const w = new ByteWriter(end - start + 16);
  w.u32(n);
  for (let i = 0; i < n; i++) {
    const module = r.name();
    const field = r.name();
    const descStart = r.pos;
    const kind = r.byte();
    if (kind === 0) r.u32();
    else if (kind === 1) {
      r.byte();
      skipLimits(r);
    } else if (kind === 2) skipLimits(r);
    else if (kind === 3) r.skip(2);
    else if (kind === 4) {
      r.byte();
      r.u32();
    } else r.fail(`import kind ${kind}`);
    name(w, module === WASI_MODULE ? HOURGLASS_WASI : module);
    name(w, field);
    w.copy(bytes, descStart, r.pos);
  }
  return w.bytes();
}

/** The export section with init entries renamed and the start function appended. */
function rewriteExports(
  bytes: Uint8Array,
  range: { start: number; end: number } | null,
  startFunc: number | null,
): Uint8Array {
  const w = new ByteWriter((range ? range.end - range.start : 0) + 32);
  const entries: { name: string; kind: number; index: number }[] = [];
  if (range) {
    const r = new ByteReader(bytes, range.start, range.end);
    const n = r.u32();
    for (let i = 0; i < n; i++) entries.push({ name: r.name(), kind: r.byte(), index: r.u32() });
  }
  w.u32(entries.length + (startFunc === null ? 0 : 1));
  for (const e of entries) {
    const renamed = e.kind === 0 ? RENAMED_EXPORTS[e.name] : undefined;
    name(w, renamed ?? e.name);
    w.byte(e.kind).u32(e.index);
  }
  if (startFunc !== null) {
    name(w, START_SECTION_EXPORT);
    w.byte(0).u32(startFunc);
  }
  return w.bytes();
}

/**
 * Rewrites `bytes` (a valid module, already instrumented) as described above; returns the new
 * bytes and the WASI functions it imports.
 */
export function rewriteEntries(bytes: Uint8Array): EntryRewrite {
  const sections = splitSections(bytes);
  const find = (id: number) => sections.find((s) => s.id === id);
  const typeSec = find(SectionId.type);
  const importSec = find(SectionId.import);
  const exportSec = find(SectionId.export);
  const startSec = find(SectionId.start);
  const types = typeSec ? readTypes(bytes, typeSec) : [];
  const wasiImports: WasiImport[] = [];
  for (const imp of importSec ? readImports(bytes, importSec) : []) {
    if (imp.module !== WASI_MODULE || imp.kind !== 0) continue;
    const t = types[imp.typeIndex];
    const signature = t ? `${letters(t.paramTypes)}:${letters(t.results)}` : '?';
    wasiImports.push({ name: imp.name, signature });
  }
  const startFunc = startSec
    ? new ByteReader(bytes, startSec.payloadStart, startSec.end).u32()
    : null;

  const chunks: Uint8Array[] = [bytes.subarray(0, 8)];
  const emit = (id: number, payload: Uint8Array) =>
    chunks.push(Uint8Array.of(id), u32Bytes(payload.length), payload);
  let exportsWritten = false;
  for (const s of sections) {
    // A module without an export section but with a start function gets one, in order
    // (the export section comes right before start, element, code...).
    if (!exportsWritten && !exportSec && startFunc !== null && s.id === SectionId.start) {
      emit(SectionId.export, rewriteExports(bytes, null, startFunc));
      exportsWritten = true;
    }
    if (s.id === SectionId.import) {
      emit(s.id, rewriteImports(bytes, s.payloadStart, s.end));
    } else if (s.id === SectionId.export) {
      emit(s.id, rewriteExports(bytes, { start: s.payloadStart, end: s.end }, startFunc));
      exportsWritten = true;
    } else if (s.id !== SectionId.start) {
      chunks.push(bytes.subarray(s.start, s.end));
    }
  }
  return { bytes: concatBytes(chunks), wasiImports };
}
