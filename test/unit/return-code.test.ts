/** Unit tests for src/sandbox/return-code.ts: the `() -> i32` export rewrite. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import wabtInit from 'wabt';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { RC_GLOBAL, wrapReturnCodes } from '../../src/sandbox/return-code.ts';

const wabt = await wabtInit();
const GUEST_EXPORTS = ['schedules', 'run', 'cleanup'];

function wat(text: string, features: Record<string, boolean> = {}): Uint8Array<ArrayBuffer> {
  const m = wabt.parseWat('x.wat', text, features);
  try {
    const { buffer } = m.toBinary({ write_debug_names: true });
    return new Uint8Array(buffer);
  } finally {
    m.destroy();
  }
}

type Exports = Record<string, unknown>;

/** Rewrites, validates, instantiates; returns the exports and the wrapped names. */
function rewriteAndInstantiate(
  bytes: Uint8Array<ArrayBuffer>,
  imports: WebAssembly.Imports = {},
  names: readonly string[] = GUEST_EXPORTS,
): { exports: Exports; wrapped: readonly string[]; module: WebAssembly.Module } {
  assert.ok(WebAssembly.validate(bytes), 'input module is valid');
  const out = wrapReturnCodes(bytes, names);
  assert.ok(WebAssembly.validate(out.bytes), 'rewritten module is valid');
  const module = new WebAssembly.Module(out.bytes);
  const instance = new WebAssembly.Instance(module, imports);
  return { exports: instance.exports as Exports, wrapped: out.wrapped, module };
}

function fn(exports: Exports, name: string): (...args: number[]) => number {
  const f = exports[name];
  assert.equal(typeof f, 'function', `export ${name} is a function`);
  return f as (...args: number[]) => number;
}

function rc(exports: Exports): number {
  const g = exports[RC_GLOBAL];
  assert.ok(g instanceof WebAssembly.Global, `${RC_GLOBAL} is an exported global`);
  return g.value as number;
}

describe('wrapReturnCodes', () => {
  test('RC_GLOBAL is __hg_rc', () => {
    assert.equal(RC_GLOBAL, '__hg_rc');
  });

  test('minimal module (no global section, only the export’s type): run returning 7 sets __hg_rc to 7', () => {
    const { exports, wrapped, module } = rewriteAndInstantiate(
      wat('(module (func (export "run") (result i32) i32.const 7))'),
    );
    assert.deepEqual(wrapped, ['run']);
    assert.equal(rc(exports), 0, 'starts at 0');
    assert.equal(fn(exports, 'run')(), 7, 'the wrapper still returns the value');
    assert.equal(rc(exports), 7);
    const rcExport = WebAssembly.Module.exports(module).find((e) => e.name === RC_GLOBAL);
    assert.equal(rcExport?.kind, 'global');
  });

  test('run returning 0 sets __hg_rc to 0 (the global is written on every call)', () => {
    const { exports, wrapped } = rewriteAndInstantiate(
      wat(`(module
        (global $ret (mut i32) (i32.const 7))
        (func (export "set") (param i32) (global.set $ret (local.get 0)))
        (func (export "run") (result i32) (global.get $ret)))`),
    );
    assert.deepEqual(wrapped, ['run']);
    const run = fn(exports, 'run');
    assert.equal(run(), 7);
    assert.equal(rc(exports), 7);
    fn(exports, 'set')(0);
    assert.equal(run(), 0);
    assert.equal(rc(exports), 0);
    fn(exports, 'set')(-3);
    run();
    assert.equal(rc(exports), -3);
  });

  test('with function and global imports: the new global comes after imported and defined globals', () => {
    const bytes = wat(`(module
      (import "env" "double" (func $double (param i32) (result i32)))
      (import "env" "base" (global $base i32))
      (import "env" "counter" (global $counter (mut i32)))
      (global $add (mut i32) (i32.const 5))
      (func (export "run") (result i32)
        (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
        (i32.add (call $double (global.get $base)) (global.get $add)))
      (export "add" (global $add)))`);
    const base = new WebAssembly.Global({ value: 'i32', mutable: false }, 3);
    const counter = new WebAssembly.Global({ value: 'i32', mutable: true }, 100);
    const { exports, wrapped, module } = rewriteAndInstantiate(bytes, {
      env: { double: (x: number) => x * 2, base, counter },
    });
    assert.deepEqual(wrapped, ['run']);
    assert.deepEqual(
      WebAssembly.Module.imports(module).map((i) => [i.module, i.name, i.kind]),
      [
        ['env', 'double', 'function'],
        ['env', 'base', 'global'],
        ['env', 'counter', 'global'],
      ],
    );
    assert.equal(fn(exports, 'run')(), 3 * 2 + 5);
    assert.equal(rc(exports), 11);
    // The imported and defined globals are untouched by the wrapper.
    assert.equal(base.value, 3);
    assert.equal(counter.value, 101);
    assert.equal((exports.add as WebAssembly.Global).value, 5);
    assert.notEqual(exports[RC_GLOBAL], exports.add);
  });

  test('an imported function exported directly as run is wrapped (sections created in canonical order)', () => {
    // No function, global or code section in the input; a data section follows the export
    // section, so the new code section must be inserted before it.
    const bytes = wat(`(module
      (import "env" "r" (func $r (result i32)))
      (memory (export "memory") 1)
      (export "run" (func $r))
      (data (i32.const 0) "hi"))`);
    let ret = 42;
    const { exports, wrapped } = rewriteAndInstantiate(bytes, { env: { r: () => ret } });
    assert.deepEqual(wrapped, ['run']);
    assert.equal(fn(exports, 'run')(), 42);
    assert.equal(rc(exports), 42);
    ret = 0;
    fn(exports, 'run')();
    assert.equal(rc(exports), 0);
    const mem = exports.memory as WebAssembly.Memory;
    assert.deepEqual([...new Uint8Array(mem.buffer, 0, 2)], [0x68, 0x69]);
  });

  test('keeps other exports working; wraps schedules, run and cleanup each with its own value', () => {
    const bytes = wat(`(module
      (memory (export "memory") 1)
      (table (export "table") 2 funcref)
      (global $g (export "g") (mut i32) (i32.const 9))
      (func $s (export "schedules") (result i32) i32.const 1)
      (func $r (export "run") (result i32) i32.const 2)
      (func $c (export "cleanup") (result i32) i32.const 3)
      (func (export "other") (result i32) i32.const 99)
      (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
      (func (export "call_indirect0") (result i32) (call_indirect (result i32) (i32.const 0)))
      (elem (i32.const 0) $r $s)
      (data (i32.const 16) "abc"))`);
    const { exports, wrapped } = rewriteAndInstantiate(bytes);
    assert.deepEqual([...wrapped].sort(), ['cleanup', 'run', 'schedules']);
    assert.equal(fn(exports, 'schedules')(), 1);
    assert.equal(rc(exports), 1);
    assert.equal(fn(exports, 'run')(), 2);
    assert.equal(rc(exports), 2);
    assert.equal(fn(exports, 'cleanup')(), 3);
    assert.equal(rc(exports), 3);
    // Not in the list: not wrapped, does not touch the rc.
    assert.equal(fn(exports, 'other')(), 99);
    assert.equal(rc(exports), 3);
    assert.equal(fn(exports, 'add')(2, 40), 42);
    // The table still holds the original functions (indices did not shift).
    assert.equal(fn(exports, 'call_indirect0')(), 2);
    assert.equal(rc(exports), 3);
    assert.ok(exports.memory instanceof WebAssembly.Memory);
    assert.deepEqual(
      [...new Uint8Array((exports.memory as WebAssembly.Memory).buffer, 16, 3)],
      [0x61, 0x62, 0x63],
    );
    assert.ok(exports.table instanceof WebAssembly.Table);
    assert.equal((exports.g as WebAssembly.Global).value, 9);
  });

  test('only the requested names are wrapped', () => {
    const bytes = wat(`(module
      (func (export "schedules") (result i32) i32.const 1)
      (func (export "run") (result i32) i32.const 2))`);
    const { exports, wrapped } = rewriteAndInstantiate(bytes, {}, ['run']);
    assert.deepEqual(wrapped, ['run']);
    fn(exports, 'schedules')();
    assert.equal(rc(exports), 0);
    fn(exports, 'run')();
    assert.equal(rc(exports), 2);
  });

  test('skips exports that are not () -> i32', () => {
    const bytes = wat(`(module
      (global $seen (mut i32) (i32.const 0))
      (func (export "run") (param i32) (result i32) (local.get 0))
      (func (export "cleanup") (global.set $seen (i32.const 1)))
      (func (export "schedules") (result i64) i64.const 5)
      (func (export "seen") (result i32) (global.get $seen)))`);
    const { exports, wrapped } = rewriteAndInstantiate(bytes);
    assert.deepEqual(wrapped, []);
    assert.equal(fn(exports, 'run')(13), 13);
    fn(exports, 'cleanup')();
    assert.equal(fn(exports, 'seen')(), 1);
    assert.equal((exports.schedules as () => bigint)(), 5n);
  });

  test('skips () -> (i32 i32) and () -> f32', () => {
    const bytes = wat(`(module
      (func (export "run") (result i32 i32) i32.const 1 i32.const 2)
      (func (export "cleanup") (result f32) f32.const 1.5))`);
    const { exports, wrapped } = rewriteAndInstantiate(bytes);
    assert.deepEqual(wrapped, []);
    assert.deepEqual((exports.run as () => number[])(), [1, 2]);
    assert.equal(fn(exports, 'cleanup')(), 1.5);
  });

  test('a module that needs a data count section (bulk memory) stays valid', () => {
    const bytes = wat(
      `(module
        (memory 1)
        (data $d "abc")
        (func (export "run") (result i32)
          (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
          (i32.load8_u (i32.const 1))))`,
      { bulk_memory: true },
    );
    const { exports, wrapped } = rewriteAndInstantiate(bytes);
    assert.deepEqual(wrapped, ['run']);
    assert.equal(fn(exports, 'run')(), 0x62);
    assert.equal(rc(exports), 0x62);
  });

  test('a start function and custom sections survive', () => {
    const bytes = wat(`(module
      (global $x (mut i32) (i32.const 0))
      (func $init (global.set $x (i32.const 21)))
      (start $init)
      (func $run (export "run") (result i32) (i32.mul (global.get $x) (i32.const 2))))`);
    const out = wrapReturnCodes(bytes, GUEST_EXPORTS);
    const module = new WebAssembly.Module(out.bytes);
    assert.equal(WebAssembly.Module.customSections(module, 'name').length, 1, 'name section kept');
    const { exports } = rewriteAndInstantiate(bytes);
    assert.equal(fn(exports, 'run')(), 42);
    assert.equal(rc(exports), 42);
  });

  test('does not modify its input', () => {
    const bytes = wat('(module (func (export "run") (result i32) i32.const 7))');
    const copy = Uint8Array.from(bytes);
    wrapReturnCodes(bytes, GUEST_EXPORTS);
    assert.deepEqual(bytes, copy);
  });

  test('throws for a module that already exports __hg_rc', () => {
    const globalExport = wat(
      '(module (global (export "__hg_rc") (mut i32) (i32.const 0)) (func (export "run") (result i32) i32.const 0))',
    );
    assert.throws(() => wrapReturnCodes(globalExport, GUEST_EXPORTS), /__hg_rc/);
  });

  test('rewriting an already rewritten module throws (its __hg_rc export is reserved)', () => {
    const once = wrapReturnCodes(
      wat('(module (func (export "run") (result i32) i32.const 7))'),
      GUEST_EXPORTS,
    );
    assert.throws(() => wrapReturnCodes(once.bytes, GUEST_EXPORTS), Error);
  });

  test('throws on a truncated binary', () => {
    const bytes = wat('(module (func (export "run") (result i32) i32.const 7))');
    assert.throws(() => wrapReturnCodes(bytes.subarray(0, bytes.length - 3), GUEST_EXPORTS), Error);
  });

  test('works on a module with a large (300 KB) data section', () => {
    const bytes = wat(
      `(module (memory 8) (data (i32.const 0) "${'a'.repeat(300_000)}") (func (export "run") (result i32) i32.const 7))`,
    );
    const { exports, wrapped } = rewriteAndInstantiate(bytes);
    assert.deepEqual(wrapped, ['run']);
    fn(exports, 'run')();
    assert.equal(rc(exports), 7);
  });

  const poller = resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/poller/build/poller.wasm');
  test(
    'the compiled poller guest rewrites to a valid module',
    { skip: existsSync(poller) ? false : 'poller.wasm not built' },
    () => {
      const bytes = new Uint8Array(readFileSync(poller));
      const out = wrapReturnCodes(bytes, GUEST_EXPORTS);
      assert.ok(WebAssembly.validate(out.bytes));
      assert.deepEqual([...out.wrapped].sort(), ['run', 'schedules']);
      const module = new WebAssembly.Module(out.bytes);
      assert.deepEqual(
        WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`),
        WebAssembly.Module.imports(new WebAssembly.Module(bytes)).map(
          (i) => `${i.module}.${i.name}`,
        ),
      );
      assert.ok(
        WebAssembly.Module.exports(module).some((e) => e.name === RC_GLOBAL && e.kind === 'global'),
      );
    },
  );
});
