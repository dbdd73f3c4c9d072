/** The loader's bounds (src/sandbox/module-bounds.ts): size and nesting, checked before instrumenting. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  checkModuleBounds,
  MAX_MODULE_BYTES,
  MAX_NESTING_DEPTH,
} from '../../src/sandbox/module-bounds.ts';
import { GUEST } from '../integration/helpers.ts';
import { nestedIfsGuest } from '../integration/nested-guest.ts';

test('module bounds: nesting up to the limit passes; one level more is refused, with the function named', () => {
  assert.equal(checkModuleBounds(nestedIfsGuest(MAX_NESTING_DEPTH)), null);
  const issue = checkModuleBounds(nestedIfsGuest(MAX_NESTING_DEPTH + 1));
  assert.equal(issue?.what, 'depth');
  assert.match(
    issue?.message ?? '',
    new RegExp(`function 1 .* nests blocks ${MAX_NESTING_DEPTH + 1} deep`),
  );
});

test('module bounds: a module over the size limit is refused before it is read', () => {
  const issue = checkModuleBounds(new Uint8Array(MAX_MODULE_BYTES + 1));
  assert.equal(issue?.what, 'size');
});

test('module bounds: the example guests pass; unreadable bytes are left to the validator', () => {
  for (const wasm of [GUEST.proxy, GUEST.poller, GUEST.wat('spin'), GUEST.wat('deep-recursion')])
    assert.equal(checkModuleBounds(readFileSync(wasm)), null, wasm);
  assert.equal(checkModuleBounds(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 10, 200])), null);
});
