/**
 * The unwind scan (src/fuel/unwind-scan.ts) decodes prefixed operators (0xFC bulk memory and
 * saturating truncation, 0xFD SIMD) as one operator each: before `hg-fuel/7` it read their
 * sub-opcode as an operator of its own (`memory.fill`'s 0x0B as `end`, its memory index 0x00 as
 * `unreachable`), so any function using one was taken for one that may unwind, and every call
 * to it ended its metered block. The fuel was exact either way; the answer is now precise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readU32At, readU32Next } from '../../src/fuel/code-emitter.ts';
import { mayUnwind } from '../../src/fuel/unwind-scan.ts';
import {
  readFunctionTypes,
  readImports,
  SectionId,
  splitSections,
} from '../../src/wasm/sections.ts';
import { wat } from '../fuel/harness.ts';

function scan(bytes: Uint8Array): number[] {
  const sections = splitSections(bytes);
  const by = (id: number) => sections.find((s) => s.id === id);
  const importSec = by(SectionId.import);
  const nImports = importSec ? readImports(bytes, importSec).filter((i) => i.kind === 0).length : 0;
  const funcSec = by(SectionId.function);
  const codeSec = by(SectionId.code);
  assert.ok(funcSec && codeSec);
  const n = readFunctionTypes(bytes, funcSec).length;
  const bodies = new Int32Array(2 * n);
  readU32At(bytes, codeSec.payloadStart);
  let pos = readU32Next();
  for (let i = 0; i < n; i++) {
    const size = readU32At(bytes, pos);
    bodies[2 * i] = readU32Next();
    bodies[2 * i + 1] = readU32Next() + size;
    pos = readU32Next() + size;
  }
  return [...mayUnwind(bytes, bodies, nImports)].slice(nImports);
}

test('prefixed operators are decoded whole: only what may really unwind does', () => {
  const bytes = wat(`(module
    (import "env" "host" (func $host))
    (memory 1)
    (func $fill (param i32)
      (memory.fill (local.get 0) (i32.const 0) (i32.const 16))
      (memory.copy (i32.const 32) (local.get 0) (i32.const 16))
      (drop (i32.trunc_sat_f64_s (f64.const 1.5))))
    (func $callsFill (call $fill (i32.const 0)))
    (func $fillThenTrap (param i32)
      (memory.fill (local.get 0) (i32.const 0) (i32.const 16))
      (if (local.get 0) (then (unreachable))))
    (func $fillThenHost
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 16))
      (call $host))
    (func $callsTrap (call $fillThenTrap (i32.const 1))))`);
  // $fill and $callsFill always return; the others may unwind (a trap, a host call, a callee).
  assert.deepEqual(scan(bytes), [0, 0, 1, 1, 1]);
});
