/**
 * Section payloads the instrumenter rewrites besides code: types, memories, globals and
 * exports. Each appends to the original vector (copying its entries byte for byte), so no
 * existing index moves.
 */
import { ByteReader } from '../wasm/byte-reader.ts';
import { ByteWriter, u32Bytes } from '../wasm/byte-writer.ts';
import type { MemoryLimits, Section } from '../wasm/sections.ts';
import { FuelError } from './errors.ts';

export function encodeSection(id: number, payload: Uint8Array): Uint8Array[] {
  return [Uint8Array.of(id), u32Bytes(payload.length), payload];
}

/** A vector section with `extra` entries appended after the original ones. */
function appendToVector(
  bytes: Uint8Array,
  sec: Section | undefined,
  extraCount: number,
  writeExtra: (w: ByteWriter) => void,
): Uint8Array {
  const w = new ByteWriter(sec ? sec.end - sec.payloadStart + 64 : 64);
  if (sec) {
    const r = new ByteReader(bytes, sec.payloadStart, sec.end);
    const n = r.u32();
    w.u32(n + extraCount).copy(bytes, r.pos, sec.end);
  } else {
    w.u32(extraCount);
  }
  writeExtra(w);
  return w.bytes();
}

/** Function types `params -> results` appended to the type section. */
export function appendTypes(
  bytes: Uint8Array,
  sec: Section | undefined,
  types: readonly { readonly params: readonly number[]; readonly results: readonly number[] }[],
): Uint8Array {
  return appendToVector(bytes, sec, types.length, (w) => {
    for (const t of types) {
      w.byte(0x60).u32(t.params.length).raw(t.params).u32(t.results.length).raw(t.results);
    }
  });
}

/** A function section: one type index per defined function. */
export function writeFunctionSection(typeIndices: Uint32Array): Uint8Array {
  const w = new ByteWriter(8 + typeIndices.length * 3);
  w.u32(typeIndices.length);
  for (const t of typeIndices) w.u32(t);
  return w.bytes();
}

/**
 * The three instrumentation globals: fuel (mut i64, = initialFuel), exhausted flag (mut i32),
 * call depth (mut i32).
 */
export function appendGlobals(
  bytes: Uint8Array,
  sec: Section | undefined,
  initialFuel: bigint,
): Uint8Array {
  return appendToVector(bytes, sec, 3, (w) => {
    w.byte(0x7e).byte(0x01).byte(0x42).s64(initialFuel).byte(0x0b);
    w.byte(0x7f).byte(0x01).byte(0x41).s32(0).byte(0x0b);
    w.byte(0x7f).byte(0x01).byte(0x41).s32(0).byte(0x0b);
  });
}

export function appendExports(
  bytes: Uint8Array,
  sec: Section | undefined,
  globals: readonly (readonly [string, number])[],
): Uint8Array {
  const enc = new TextEncoder();
  return appendToVector(bytes, sec, globals.length, (w) => {
    for (const [name, index] of globals) {
      const b = enc.encode(name);
      w.u32(b.length).copy(b).byte(0x03).u32(index);
    }
  });
}

/**
 * The memory section with every maximum clamped to `capPages` (added if absent). A memory
 * whose initial size is already above the cap is refused.
 */
export function rewriteMemories(memories: readonly MemoryLimits[], capPages: number): Uint8Array {
  const w = new ByteWriter(16 + memories.length * 12);
  w.u32(memories.length);
  for (const m of memories) {
    if (m.min > capPages) {
      throw new FuelError(
        'HG_WASM_MEMORY_LIMIT',
        `the module's initial memory (${m.min} pages) exceeds the cap of ${capPages} pages`,
      );
    }
    const max = m.max === undefined ? capPages : Math.min(m.max, capPages);
    w.byte(m.flags | 1)
      .u32(m.min)
      .u32(max);
  }
  return w.bytes();
}

/**
 * The table section with the plugin's element allowance `cap` shared by every table: the
 * tables' initial sizes must fit in it together (else the module is refused), and the slack
 * (cap − Σ initial) goes to the tables in index order, so each table's maximum becomes
 * min(declared, initial + what is left of the slack) and all of them together never exceed
 * `cap` elements: `table.grow` past it returns -1 at once, whatever the number of tables.
 * Entries are `reftype limits` (funcref or externref, 32-bit limits); anything else (typed
 * references, table initializers, table64) is refused as unsupported.
 */
export function rewriteTables(bytes: Uint8Array, sec: Section, cap: number): Uint8Array {
  const r = new ByteReader(bytes, sec.payloadStart, sec.end);
  const n = r.u32();
  const tables: { ref: number; min: number; max: number | undefined }[] = [];
  for (let i = 0; i < n; i++) {
    const ref = r.byte();
    if (ref !== 0x70 && ref !== 0x6f) {
      throw new FuelError(
        'HG_WASM_UNSUPPORTED',
        `table ${i}: element type 0x${ref.toString(16)} (typed references or a table initializer)`,
      );
    }
    const flags = r.byte();
    if (flags > 1) {
      throw new FuelError(
        'HG_WASM_UNSUPPORTED',
        `table ${i}: limits flags 0x${flags.toString(16)}`,
      );
    }
    const min = r.u32();
    tables.push({ ref, min, max: flags & 1 ? r.u32() : undefined });
  }
  const initial = tables.reduce((sum, t) => sum + t.min, 0);
  if (initial > cap) {
    throw new FuelError(
      'HG_WASM_TABLE_LIMIT',
      `the module's tables start with ${initial} elements in all, over the cap of ${cap}`,
    );
  }
  let slack = cap - initial;
  const w = new ByteWriter(8 + n * 12);
  w.u32(n);
  for (const t of tables) {
    const max = Math.min(t.max ?? Infinity, t.min + slack);
    slack -= max - t.min;
    w.byte(t.ref).byte(0x01).u32(t.min).u32(max);
  }
  return w.bytes();
}
