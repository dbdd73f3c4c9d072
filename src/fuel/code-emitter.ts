/**
 * Plans and emits every function body (in code-section order) into the code section's output
 * buffer: the code section's loop of `instrument()`.
 *
 * Types: a carrying function's new type and a multi-result body's wrapper block type are
 * appended to the type section in the order functions first need them (`NewTypes`).
 *
 * A helper thread that planned and emitted the second half of a large module's bodies
 * (opt-in, `parallel`) was removed: it lost on every loaded run and won one quiet run of two
 * (docs/fuel.md, "Instrumentation throughput").
 */
import type { ByteWriter } from '../wasm/byte-writer.ts';
import { WasmDecodeError } from '../wasm/byte-reader.ts';
import type { FuncType } from '../wasm/sections.ts';
import { BodyEmitter } from './body-emitter.ts';
import type { EmitContext } from './body-emitter.ts';
import { FuelError } from './errors.ts';
import { PlacementError, planFunction } from './placement.ts';
import type { ModuleFacts } from './placement.ts';

export interface CodeJob {
  readonly ctx: EmitContext;
  readonly facts: ModuleFacts;
  readonly types: readonly FuncType[];
  /** Type index per defined function. */
  readonly funcTypes: Uint32Array;
}

export interface EmittedBodies {
  readonly blocks: number;
  readonly checkpoints: number;
  readonly wrapped: number;
  /** Bodies (with their size) of the carrying twins of exported functions. */
  readonly twinBodies: Uint8Array[];
  /** Where the last body ends. */
  readonly end: number;
}

export type Restart = 'needs-catching' | 'no-carry' | 'table-mutation';

const I64 = 0x7e;
const I32 = 0x7f;

/**
 * Emits every defined function, whose first size prefix is at `pos`, into `out`;
 * `newFuncTypes` (when some functions carry) receives their function-section entries.
 */
export function emitFunctions(
  src: Uint8Array,
  job: CodeJob,
  pos: number,
  out: ByteWriter,
  alloc: NewTypes,
  newFuncTypes: Uint32Array | null,
): EmittedBodies | Restart {
  const { facts, types, funcTypes } = job;
  const nImports = facts.numFuncImports;
  const carry = facts.carrying;
  const twinOf = facts.twin;
  const emitter = new BodyEmitter(job.ctx);
  const twinBodies: Uint8Array[] = [];
  let blocks = 0;
  let checkpoints = 0;
  let wrapped = 0;
  for (let i = 0; i < funcTypes.length; i++) {
    const size = readU32At(src, pos);
    const start = lebNext;
    const end = start + size;
    const type = types[funcTypes[i] as number];
    if (!type) throw new FuelError('HG_WASM_INVALID', `function ${i} has no type`);
    const twinIdx = twinOf ? (twinOf[nImports + i] as number) : -1;
    const carries = twinIdx >= 0 || (carry !== null && carry[nImports + i] === 1);
    let plan;
    try {
      plan = planFunction(src, start, end, facts, carries ? type.params : -1);
    } catch (err) {
      if (err instanceof PlacementError && err.kind === 'needs-catching') return 'needs-catching';
      if (err instanceof PlacementError && err.kind === 'no-carry') return 'no-carry';
      if (err instanceof PlacementError && err.kind === 'table-mutation') return 'table-mutation';
      throw err;
    }
    if (carries && newFuncTypes) {
      newFuncTypes[twinIdx >= 0 ? twinIdx - nImports : i] = alloc.carry(funcTypes[i] as number);
    }
    let wrapper: readonly number[] | null = null;
    if (plan.needsWrapper) {
      wrapped++;
      if (type.results.length === 0) wrapper = [0x40];
      else if (type.results.length === 1) wrapper = [type.results[0] as number];
      else wrapper = s33(alloc.blockType(type.results));
    }
    blocks += plan.nBlocks;
    const fls = plan.flags;
    for (let b = 0; b < plan.nBlocks; b++) if (((fls[b] as number) & 1) !== 0) checkpoints++;
    const at = out.length;
    emitter.emit(out, src, plan, type.params, wrapper, carries);
    if (twinIdx >= 0) {
      // The body (with its size) goes after the last function; the wrapper stays here.
      twinBodies.push(out.buffer.slice(at, out.length));
      out.length = at;
      emitter.wrapper(out, type.params, twinIdx);
    }
    pos = end;
  }
  return { blocks, checkpoints, wrapped, twinBodies, end: pos };
}

/** The new types of one instrumented module, numbered after the original ones. */
export class NewTypes {
  readonly list: { readonly params: readonly number[]; readonly results: readonly number[] }[] = [];
  private readonly carryOf = new Map<number, number>();
  private readonly blockOf = new Map<string, number>();

  constructor(private readonly types: readonly FuncType[]) {}

  /** Original types that got a carrying form. */
  get carried(): number {
    return this.carryOf.size;
  }

  /** The index of original type `orig`'s carrying form (params + fuel, depth; results + fuel). */
  carry(orig: number): number {
    let idx = this.carryOf.get(orig);
    if (idx === undefined) {
      const type = this.types[orig] as FuncType;
      idx = this.types.length + this.list.length;
      this.list.push({ params: [...type.paramTypes, I64, I32], results: [...type.results, I64] });
      this.carryOf.set(orig, idx);
    }
    return idx;
  }

  /** The index of a type `[] -> results` (the block type of a multi-result body's wrapper). */
  blockType(results: readonly number[]): number {
    const key = results.join(',');
    let idx = this.blockOf.get(key);
    if (idx === undefined) {
      idx = this.types.findIndex((t) => t.params === 0 && t.results.join(',') === key);
      if (idx < 0) {
        idx = this.types.length + this.list.length;
        this.list.push({ params: [], results });
      }
      this.blockOf.set(key, idx);
    }
    return idx;
  }
}

/** The signed LEB128 (s33) of a type index used as a block type. */
function s33(idx: number): number[] {
  const bytes: number[] = [];
  let n = idx;
  for (;;) {
    const b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n === 0 && (b & 0x40) === 0) {
      bytes.push(b);
      return bytes;
    }
    bytes.push(b | 0x80);
  }
}

/** Where the last `readU32At` ended. */
let lebNext = 0;

/** The u32 LEB128 at `at` (checked: sizes come from the section, not a validated body). */
export function readU32At(buf: Uint8Array, at: number): number {
  let result = 0;
  let shift = 0;
  let pos = at;
  for (;;) {
    if (pos >= buf.length) throw new WasmDecodeError('unexpected end', pos);
    const b = buf[pos++] as number;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) {
      lebNext = pos;
      return result;
    }
    shift += 7;
    if (shift > 28) throw new WasmDecodeError('LEB128 too long', at);
  }
}

/** Where the last `readU32At` ended. */
export function readU32Next(): number {
  return lebNext;
}
