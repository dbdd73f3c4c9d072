/**
 * Instruction encodings: for every opcode Node 20 can run (MVP, sign extension, saturating
 * truncation, bulk memory and table ops, reference types, multi-value block types, SIMD and
 * relaxed SIMD, threads, tail calls, legacy exception handling), the shape of its immediates,
 * so that a body can be walked instruction by instruction without understanding most of them.
 *
 * Opcodes from proposals Node 20 does not run (typed function references, GC, exnref's
 * `try_table` / `throw_ref`, memory64) are marked unsupported rather than guessed at.
 */

/** Immediate shapes. */
export const Imm = {
  none: 0,
  blockType: 1,
  u32: 2,
  u32x2: 3,
  brTable: 4,
  memarg: 5,
  memargLane: 6,
  i32: 7,
  i64: 8,
  f32: 9,
  f64: 10,
  bytes16: 11,
  lane: 12,
  selectT: 13,
  heapType: 14,
  zeroByte: 15,
  /** Known but not supported by the instrumenter (proposals Node 20 does not run). */
  unsupported: 254,
  /** Not an instruction. */
  invalid: 255,
} as const;

export const PREFIX_GC = 0xfb;
export const PREFIX_MISC = 0xfc;
export const PREFIX_SIMD = 0xfd;
export const PREFIX_ATOMIC = 0xfe;

/** Control-flow and call opcodes the instrumenter gives semantics to. */
export const Op = {
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
  throwRef: 0x0a,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  return: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  returnCall: 0x12,
  returnCallIndirect: 0x13,
  delegate: 0x18,
  catchAll: 0x19,
  drop: 0x1a,
  tryTable: 0x1f,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  globalGet: 0x23,
  globalSet: 0x24,
  memoryGrow: 0x40,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32GeU: 0x4f,
  i64LtS: 0x53,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64Mul: 0x7e,
  i64ShrU: 0x88,
  i64ExtendI32U: 0xad,
} as const;

/** 0xFC sub-opcodes whose cost depends on an operand. */
export const MiscOp = {
  memoryInit: 8,
  memoryCopy: 10,
  memoryFill: 11,
  tableInit: 12,
  tableCopy: 14,
  tableGrow: 15,
  tableFill: 17,
} as const;

function table(size: number, fill: number): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

function setRange(t: Uint8Array, from: number, to: number, v: number): void {
  for (let i = from; i <= to; i++) t[i] = v;
}

/** Single-byte opcodes (and the prefixes, marked `none`: the walker dispatches on them). */
export const SINGLE_IMM: Uint8Array = (() => {
  const t = table(256, Imm.invalid);
  t[0x00] = Imm.none;
  t[0x01] = Imm.none;
  setRange(t, 0x02, 0x04, Imm.blockType);
  t[0x05] = Imm.none;
  t[0x06] = Imm.blockType;
  t[0x07] = Imm.u32;
  t[0x08] = Imm.u32;
  t[0x09] = Imm.u32;
  t[0x0a] = Imm.unsupported; // throw_ref (exnref)
  t[0x0b] = Imm.none;
  t[0x0c] = Imm.u32;
  t[0x0d] = Imm.u32;
  t[0x0e] = Imm.brTable;
  t[0x0f] = Imm.none;
  t[0x10] = Imm.u32;
  t[0x11] = Imm.u32x2;
  t[0x12] = Imm.u32;
  t[0x13] = Imm.u32x2;
  t[0x14] = Imm.unsupported; // call_ref (typed function references)
  t[0x15] = Imm.unsupported; // return_call_ref
  t[0x18] = Imm.u32;
  t[0x19] = Imm.none;
  t[0x1a] = Imm.none;
  t[0x1b] = Imm.none;
  t[0x1c] = Imm.selectT;
  t[0x1f] = Imm.unsupported; // try_table (exnref)
  setRange(t, 0x20, 0x26, Imm.u32);
  setRange(t, 0x28, 0x3e, Imm.memarg);
  t[0x3f] = Imm.u32;
  t[0x40] = Imm.u32;
  t[0x41] = Imm.i32;
  t[0x42] = Imm.i64;
  t[0x43] = Imm.f32;
  t[0x44] = Imm.f64;
  setRange(t, 0x45, 0xc4, Imm.none);
  t[0xd0] = Imm.heapType;
  t[0xd1] = Imm.none;
  t[0xd2] = Imm.u32;
  setRange(t, 0xd3, 0xd6, Imm.unsupported); // ref.eq, ref.as_non_null, br_on_null, br_on_non_null
  t[PREFIX_GC] = Imm.unsupported;
  t[PREFIX_MISC] = Imm.none;
  t[PREFIX_SIMD] = Imm.none;
  t[PREFIX_ATOMIC] = Imm.none;
  return t;
})();

/** 0xFC: saturating truncation (0-7), bulk memory and table operations (8-17). */
export const MISC_IMM: Uint8Array = (() => {
  const t = table(18, Imm.invalid);
  setRange(t, 0, 7, Imm.none);
  t[8] = Imm.u32x2; // memory.init data, mem
  t[9] = Imm.u32; // data.drop
  t[10] = Imm.u32x2; // memory.copy mem, mem
  t[11] = Imm.u32; // memory.fill mem
  t[12] = Imm.u32x2; // table.init elem, table
  t[13] = Imm.u32; // elem.drop
  t[14] = Imm.u32x2; // table.copy
  t[15] = Imm.u32; // table.grow
  t[16] = Imm.u32; // table.size
  t[17] = Imm.u32; // table.fill
  return t;
})();

/** 0xFD: SIMD (0x00-0xFF) and relaxed SIMD (0x100-0x113). */
export const SIMD_IMM: Uint8Array = (() => {
  const t = table(0x114, Imm.invalid);
  setRange(t, 0x00, 0x0b, Imm.memarg);
  t[0x0c] = Imm.bytes16; // v128.const
  t[0x0d] = Imm.bytes16; // i8x16.shuffle
  setRange(t, 0x0e, 0x14, Imm.none);
  setRange(t, 0x15, 0x22, Imm.lane);
  setRange(t, 0x23, 0x53, Imm.none);
  setRange(t, 0x54, 0x5b, Imm.memargLane);
  t[0x5c] = Imm.memarg;
  t[0x5d] = Imm.memarg;
  setRange(t, 0x5e, 0xff, Imm.none);
  for (const gap of [
    0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2,
    0xd3, 0xd4, 0xe2, 0xee,
  ]) {
    t[gap] = Imm.invalid;
  }
  setRange(t, 0x100, 0x113, Imm.none);
  return t;
})();

/** 0xFE: threads (atomics). */
export const ATOMIC_IMM: Uint8Array = (() => {
  const t = table(0x4f, Imm.invalid);
  setRange(t, 0x00, 0x02, Imm.memarg); // notify, wait32, wait64
  t[0x03] = Imm.zeroByte; // atomic.fence
  setRange(t, 0x10, 0x4e, Imm.memarg);
  return t;
})();

/** 0xFE sub-opcodes that block the thread (`memory.atomic.wait32/64`). */
export const ATOMIC_WAIT_OPS: ReadonlySet<number> = new Set([0x01, 0x02]);
