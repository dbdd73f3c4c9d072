/**
 * Unit tests for src/sandbox/kernel/entry-rewrite.ts: the WASI import module and the init
 * entries (start section, `_initialize`, `_start`) renamed, everything else untouched.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import wabtInit from 'wabt';
import {
  HOURGLASS_WASI,
  INITIALIZE_EXPORT,
  START_EXPORT,
  START_SECTION_EXPORT,
  rewriteEntries,
} from '../../src/sandbox/kernel/entry-rewrite.ts';
import { checkWasiImports } from '../../src/sandbox/kernel/wasi-abi.ts';

const wabt = await wabtInit();

function wat(text: string): Uint8Array<ArrayBuffer> {
  const m = wabt.parseWat('x.wat', text, {});
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

const names = (m: WebAssembly.Module) => ({
  imports: WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}:${i.kind}`),
  exports: WebAssembly.Module.exports(m).map((e) => `${e.name}:${e.kind}`),
});

test('renames the WASI module, _initialize, _start and exports the start function', () => {
  const { bytes, wasiImports } = rewriteEntries(
    wat(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
      (import "env" "abort" (func (param i32 i32 i32 i32)))
      (import "env" "table" (table 1 funcref))
      (global $g (import "env" "g") i32)
      (memory (export "memory") 1)
      (func $s (export "_start"))
      (func $i (export "_initialize"))
      (func $boot)
      (start $boot)
      (func (export "run") (result i32) (i32.const 7)))`),
  );
  assert.ok(WebAssembly.validate(bytes));
  const m = new WebAssembly.Module(bytes);
  assert.deepEqual(names(m), {
    imports: [
      `${HOURGLASS_WASI}.fd_write:function`,
      `${HOURGLASS_WASI}.clock_time_get:function`,
      'env.abort:function',
      'env.table:table',
      'env.g:global',
    ],
    exports: [
      'memory:memory',
      `${START_EXPORT}:function`,
      `${INITIALIZE_EXPORT}:function`,
      'run:function',
      `${START_SECTION_EXPORT}:function`,
    ],
  });
  assert.deepEqual(wasiImports, [
    { name: 'fd_write', signature: 'iiii:i' },
    { name: 'clock_time_get', signature: 'iIi:i' },
  ]);
  assert.equal(checkWasiImports(wasiImports), null);
});

test('a module without init entries or WASI comes out byte for byte the same', () => {
  const original = wat(`(module (func (export "run") (result i32) (i32.const 0)))`);
  const { bytes, wasiImports } = rewriteEntries(original);
  assert.deepEqual(bytes, original);
  assert.deepEqual(wasiImports, []);
});

test('a start function in a module without exports gets an export section', () => {
  const { bytes } = rewriteEntries(wat(`(module (func $b) (start $b))`));
  assert.deepEqual(names(new WebAssembly.Module(bytes)).exports, [
    `${START_SECTION_EXPORT}:function`,
  ]);
});

test('WASI signatures: known functions must match preview 1, unknown ones return an i32', () => {
  assert.match(
    checkWasiImports([{ name: 'fd_write', signature: 'i:i' }]) ?? '',
    /fd_write with signature \(i:i\); preview 1 has \(iiii:i\)/,
  );
  assert.equal(checkWasiImports([{ name: 'made_up', signature: 'iI:i' }]), null);
  assert.match(checkWasiImports([{ name: 'made_up', signature: 'i:I' }]) ?? '', /one i32/);
  assert.equal(checkWasiImports([{ name: 'proc_exit', signature: 'i:' }]), null);
});
