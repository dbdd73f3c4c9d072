/**
 * Extism's convention is that an export returning non-zero has failed, but the JS SDK ignores
 * the i32 an export returns. To enforce the convention without forking the SDK, the loader
 * rewrites the guest binary once: each entry export (`schedules`, `run`, `cleanup`) of type
 * `() -> i32` is re-pointed at a small wrapper function that calls the original and stores its
 * result in an exported mutable global `__hg_rc`, which the sandbox reads after the call.
 *
 * The rewrite only appends (a type, a global, functions, exports), so no existing index
 * shifts and untouched sections are copied byte for byte.
 */

export const RC_GLOBAL = '__hg_rc';
export const RESERVED_EXPORT_PREFIX = '__hg_';

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.buf.length) throw new Error('unexpected end of module');
    return this.buf[this.pos++] as number;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 28 && b > 0x0f) throw new Error('LEB128 too long');
    }
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new Error('unexpected end of module');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  name(): string {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(this.u32()));
  }
}

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** A section as chunks (header, payload): payloads are never spread into argument lists. */
function section(id: number, payload: Uint8Array | number[]): Uint8Array[] {
  return [
    Uint8Array.from([id, ...u32(payload.length)]),
    payload instanceof Uint8Array ? payload : Uint8Array.from(payload),
  ];
}

function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** `vec` for large byte payloads: count, then the bytes as they are. */
function vecBytes(count: number, ...parts: (Uint8Array | number[])[]): Uint8Array {
  return concat([
    Uint8Array.from(u32(count)),
    ...parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))),
  ]);
}

interface Section {
  id: number;
  payload: Uint8Array;
}

/** Canonical section order (tag 13 between memory and global; datacount 12 before code). */
const ORDER = [0, 1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

export interface ReturnCodeRewrite {
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Exports that were wrapped. */
  readonly wrapped: readonly string[];
}

/**
 * Wraps the named `() -> i32` exports. Throws on a malformed binary (callers validate with
 * `WebAssembly.validate` first) and on a module that already exports `__hg_rc`.
 */
export function wrapReturnCodes(wasm: Uint8Array, names: readonly string[]): ReturnCodeRewrite {
  const r = new Reader(wasm);
  const header = r.bytes(8);
  const sections: Section[] = [];
  while (r.pos < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    sections.push({ id, payload: r.bytes(size) });
  }
  const find = (id: number) => sections.find((s) => s.id === id);

  // Types: keep the raw entries, and whether each is `() -> i32`.
  const typeSec = find(1);
  const typeIsRcFn: boolean[] = [];
  let typeEntries: Uint8Array = new Uint8Array(0);
  if (typeSec) {
    const tr = new Reader(typeSec.payload);
    const n = tr.u32();
    const start = tr.pos;
    for (let i = 0; i < n; i++) {
      const form = tr.byte();
      if (form !== 0x60) throw new Error(`unsupported type form 0x${form.toString(16)}`);
      const params = tr.u32();
      for (let p = 0; p < params; p++) skipValType(tr);
      const results = tr.u32();
      const resultTypes: number[] = [];
      for (let p = 0; p < results; p++) resultTypes.push(skipValType(tr));
      typeIsRcFn.push(params === 0 && results === 1 && resultTypes[0] === 0x7f);
    }
    typeEntries = typeSec.payload.subarray(start);
  }

  // Imports: count imported functions and globals, and the types of imported functions.
  const funcTypes: number[] = [];
  let importedGlobals = 0;
  const importSec = find(2);
  if (importSec) {
    const ir = new Reader(importSec.payload);
    const n = ir.u32();
    for (let i = 0; i < n; i++) {
      ir.name();
      ir.name();
      const kind = ir.byte();
      if (kind === 0x00) funcTypes.push(ir.u32());
      else if (kind === 0x01) skipTableType(ir);
      else if (kind === 0x02) skipLimits(ir);
      else if (kind === 0x03) {
        skipValType(ir);
        ir.byte();
        importedGlobals++;
      } else if (kind === 0x04) {
        ir.byte();
        ir.u32();
      } else throw new Error(`unsupported import kind ${kind}`);
    }
  }
  const funcSec = find(3);
  let definedFuncEntries: Uint8Array = new Uint8Array(0);
  let definedFuncs = 0;
  if (funcSec) {
    const fr = new Reader(funcSec.payload);
    definedFuncs = fr.u32();
    const start = fr.pos;
    for (let i = 0; i < definedFuncs; i++) funcTypes.push(fr.u32());
    definedFuncEntries = funcSec.payload.subarray(start);
  }

  const globalSec = find(6);
  let definedGlobals = 0;
  let globalEntries: Uint8Array = new Uint8Array(0);
  if (globalSec) {
    const gr = new Reader(globalSec.payload);
    definedGlobals = gr.u32();
    globalEntries = globalSec.payload.subarray(gr.pos);
  }

  // Exports: find the ones to wrap.
  const exportSec = find(7);
  const exports: { name: string; kind: number; index: number }[] = [];
  if (exportSec) {
    const er = new Reader(exportSec.payload);
    const n = er.u32();
    for (let i = 0; i < n; i++) exports.push({ name: er.name(), kind: er.byte(), index: er.u32() });
  }
  // Other `__hg_` exports are the fuel instrumenter's (it runs first); the guest's own are
  // refused by prepareGuest before either rewrite.
  for (const e of exports) {
    if (e.name === RC_GLOBAL) throw new Error(`export '${e.name}' is reserved`);
  }

  const rcType = typeIsRcFn.length;
  const rcGlobal = importedGlobals + definedGlobals;
  const firstNewFunc = funcTypes.length;
  const wrapped: string[] = [];
  const bodies: number[][] = [];
  for (const e of exports) {
    if (e.kind !== 0x00 || !names.includes(e.name)) continue;
    const t = funcTypes[e.index];
    if (t === undefined || !typeIsRcFn[t]) continue;
    const body = [
      0x00,
      0x10,
      ...u32(e.index),
      0x24,
      ...u32(rcGlobal),
      0x23,
      ...u32(rcGlobal),
      0x0b,
    ];
    bodies.push([...u32(body.length), ...body]);
    e.index = firstNewFunc + wrapped.length;
    wrapped.push(e.name);
  }

  const codeSec = find(10);
  let codeEntries: Uint8Array = new Uint8Array(0);
  let codeCount = 0;
  if (codeSec) {
    const cr = new Reader(codeSec.payload);
    codeCount = cr.u32();
    codeEntries = codeSec.payload.subarray(cr.pos);
  }

  const replaced = new Map<number, Uint8Array>();
  replaced.set(1, vecBytes(typeIsRcFn.length + 1, typeEntries, [0x60, 0x00, 0x01, 0x7f]));
  replaced.set(
    3,
    vecBytes(
      definedFuncs + wrapped.length,
      definedFuncEntries,
      wrapped.map(() => u32(rcType)).flat(),
    ),
  );
  replaced.set(6, vecBytes(definedGlobals + 1, globalEntries, [0x7f, 0x01, 0x41, 0x00, 0x0b]));
  const exportBytes: number[] = [];
  const encoder = new TextEncoder();
  for (const e of [...exports, { name: RC_GLOBAL, kind: 0x03, index: rcGlobal }]) {
    const nameBytes = encoder.encode(e.name);
    exportBytes.push(...u32(nameBytes.length), ...nameBytes, e.kind, ...u32(e.index));
  }
  replaced.set(7, vecBytes(exports.length + 1, exportBytes));
  replaced.set(10, vecBytes(codeCount + bodies.length, codeEntries, bodies.flat()));

  const out: Uint8Array[] = [header];
  const emitted = new Set<number>();
  const emitNew = (id: number) => {
    const p = replaced.get(id);
    if (p) out.push(...section(id, p));
    emitted.add(id);
  };
  let orderPos = 0;
  for (const s of sections) {
    if (s.id !== 0) {
      // Emit sections we create (absent in the original) that come before this one.
      const idx = ORDER.indexOf(s.id);
      for (; orderPos < idx; orderPos++) {
        const id = ORDER[orderPos] as number;
        if (replaced.has(id) && !find(id) && !emitted.has(id)) emitNew(id);
      }
    }
    if (replaced.has(s.id) && !emitted.has(s.id)) emitNew(s.id);
    else out.push(...section(s.id, s.payload));
  }
  for (; orderPos < ORDER.length; orderPos++) {
    const id = ORDER[orderPos] as number;
    if (replaced.has(id) && !emitted.has(id)) emitNew(id);
  }
  return { bytes: concat(out), wrapped };
}

function skipValType(r: Reader): number {
  const t = r.byte();
  // Typed references (function-references proposal) carry a heap type.
  if (t === 0x63 || t === 0x64) r.u32();
  return t;
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.u32();
  if (flags & 0x01) r.u32();
}

function skipTableType(r: Reader): void {
  skipValType(r);
  skipLimits(r);
}
