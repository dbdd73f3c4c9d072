/**
 * What the instrumenter refuses, with which code, before touching the bytes; and that random
 * byte mutations of a real guest are either refused (the original does not validate) or
 * instrumented into a module that validates — never anything in between.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { GUEST } from '../integration/helpers.ts';
import { FuelError, type FuelErrorCode } from '../../src/fuel/errors.ts';
import { instrument } from '../../src/fuel/instrument.ts';
import { wat } from '../fuel/harness.ts';

function refusedWith(code: FuelErrorCode, bytes: Uint8Array, opts = {}): void {
  assert.throws(
    () => instrument(bytes, opts),
    (err: unknown) => err instanceof FuelError && err.code === code,
  );
}

describe('instrument refuses', () => {
  test('a component binary (HG_WASM_COMPONENT)', () => {
    refusedWith('HG_WASM_COMPONENT', Uint8Array.of(0, 0x61, 0x73, 0x6d, 0x0d, 0, 0x01, 0));
  });

  test('bytes that are not wasm, and a truncated module (HG_WASM_INVALID)', () => {
    refusedWith('HG_WASM_INVALID', new TextEncoder().encode('#!/bin/sh\necho hi\n'));
    const ok = wat('(module (func (export "run") (result i32) i32.const 0))');
    refusedWith('HG_WASM_INVALID', ok.subarray(0, ok.length - 2));
  });

  test('an invalid module that would become valid once instrumented (writes global 0)', () => {
    // (module (func global.get 0 drop)): no globals, so invalid; after instrumentation global 0
    // would be the fuel counter. Hand-assembled, since wat tools refuse to emit it.
    const bytes = Uint8Array.of(
      ...[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
      ...[1, 4, 1, 0x60, 0, 0], // type section: () -> ()
      ...[3, 2, 1, 0], // function section
      ...[10, 7, 1, 5, 0, 0x23, 0, 0x1a, 0x0b], // code: global.get 0; drop; end
    );
    assert.equal(WebAssembly.validate(bytes), false);
    refusedWith('HG_WASM_INVALID', bytes);
  });

  test("an export named with the reserved '__hg_' prefix (HG_WASM_RESERVED_NAME)", () => {
    refusedWith(
      'HG_WASM_RESERVED_NAME',
      wat('(module (global (export "__hg_fuel") (mut i64) (i64.const 0)))'),
    );
  });

  test('memory.atomic.wait, which could block a worker, unless allowed (HG_WASM_UNSUPPORTED)', () => {
    const waiting = wat(`(module (memory 1 1)
      (func (export "w") (result i32) (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))`);
    refusedWith('HG_WASM_UNSUPPORTED', waiting);
    assert.ok(WebAssembly.validate(instrument(waiting, { allowAtomicWait: true }).bytes));
    // validateOutput: the output is validated again inside instrument() (it passes).
    instrument(waiting, { allowAtomicWait: true, validateOutput: true });
  });

  test('initial memory over the cap (HG_WASM_MEMORY_LIMIT)', () => {
    refusedWith('HG_WASM_MEMORY_LIMIT', wat('(module (memory 20))'), { memoryMaxPages: 16 });
  });
});

test('mutated guests: every mutant is refused before rewriting or instrumented into a valid module', () => {
  const original = new Uint8Array(readFileSync(GUEST.wat('host-flood')));
  let seed = 7;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let refused = 0;
  let rewritten = 0;
  for (let i = 0; i < 400; i++) {
    const mutant = Uint8Array.from(original);
    for (let k = 0; k <= rand(3); k++) mutant[8 + rand(mutant.length - 8)] = rand(256);
    const valid = WebAssembly.validate(mutant);
    try {
      const { bytes } = instrument(mutant);
      assert.ok(valid, `mutant ${i} does not validate but was instrumented`);
      assert.ok(WebAssembly.validate(bytes), `mutant ${i}: instrumented output does not validate`);
      rewritten++;
    } catch (err) {
      assert.ok(err instanceof FuelError, `mutant ${i}: ${String(err)}`);
      if (!valid) assert.equal(err.code, 'HG_WASM_INVALID');
      refused++;
    }
  }
  assert.ok(refused > 0 && rewritten > 0, `${refused} refused, ${rewritten} rewritten`);
});
