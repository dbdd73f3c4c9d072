/**
 * Differential spec tests: every module of the WebAssembly spec testsuite that Node 20 can
 * run (converted with Debian wabt's wast2json) gives identical results plain and
 * instrumented (actions with `v128` parameters or results through a bridge module whose plain
 * results must also be the spec's expected values); every instrumented module validates; every
 * binary the spec calls invalid or malformed is refused before instrumentation.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { byReason, newSpecCounts, runSpecJson } from '../fuel/spec-runner.ts';
import { requireTool } from '../fuel/tools.ts';
import { convertWast } from '../fuel/wast-convert.ts';
import {
  BridgeError,
  buildBridge,
  exportedFunctionTypes,
  matchesExpected,
  needsBridge,
  renderExpected,
  renderResults,
} from '../fuel/v128-bridge.ts';
import type { WastValue } from '../fuel/v128-bridge.ts';

const SUITE = fileURLToPath(new URL('../data/wasm-testsuite/', import.meta.url));

test('spec testsuite: plain and instrumented modules agree on every action', (t) => {
  requireTool('wast2json', ['--version'], 'wabt');
  const files = readdirSync(SUITE).filter((f) => f.endsWith('.wast'));
  assert.ok(files.length > 200, `expected the spec testsuite at ${SUITE}`);
  const out = mkdtempSync(join(tmpdir(), 'hg-fuel-spec-'));
  const counts = newSpecCounts();
  let converted = 0;
  let droppedCommands = 0;
  try {
    for (const f of files) {
      const c = convertWast(join(SUITE, f), out);
      droppedCommands += c.dropped;
      if (!c.json) continue;
      converted++;
      runSpecJson(c.json, counts);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  t.diagnostic(
    `${files.length} .wast files, ${converted} converted (${droppedCommands} commands wast2json cannot parse dropped); ` +
      `${counts.modules} modules run plain and instrumented; ${byReason(counts.modulesSkipped)} modules not run; ` +
      `${counts.actions} actions compared (${byReason(counts.bridged)} through a bridge module, ${counts.bridgeErrors.length} bridge results off the spec); ` +
      `${byReason(counts.actionsSkipped)} actions skipped; ` +
      `${counts.rejected} invalid/malformed binaries refused, ${counts.mismatches.length} mismatches`,
  );
  assert.deepEqual(counts.mismatches, []);
  assert.deepEqual(counts.bridgeErrors, []);
  assert.ok(counts.modules > 1500, `only ${counts.modules} modules ran`);
  assert.ok(counts.actions > 50000, `only ${counts.actions} actions ran`);
  const v128 = counts.bridged.get('v128') ?? 0;
  assert.ok(v128 > 20000, `only ${v128} v128 actions ran through a bridge module`);
  assert.ok(counts.rejected > 1000, `only ${counts.rejected} invalid binaries checked`);
});

test('v128 bridge: exact constants, reference arguments, several results, NaN rendering', () => {
  requireTool('wat2wasm', ['--version'], 'wabt');
  const dir = mkdtempSync(join(tmpdir(), 'hg-fuel-bridge-'));
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    const wat = join(dir, 'm.wat');
    writeFileSync(
      wat,
      `(module
        (func (export "mv") (param externref v128 f32 f64 i32)
            (result i32 externref v128 f32 f64 i64)
          local.get 4 local.get 0 local.get 1 local.get 2 local.get 3 i64.const -1)
        (func (export "none") (param v128)))`,
    );
    execFileSync('wat2wasm', [wat, '-o', join(dir, 'm.wasm')]);
    bytes = readFileSync(join(dir, 'm.wasm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const target = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
  const types = exportedFunctionTypes(bytes);
  const sig = types.get('mv');
  assert.ok(sig && needsBridge(sig));
  const lanes = Array.from({ length: 16 }, (_, i) => String(i * 17));
  const args: WastValue[] = [
    { type: 'externref', value: '1' },
    { type: 'v128', lane_type: 'i8', value: lanes },
    { type: 'f32', value: String(0x7fa00001) }, // a signalling NaN, bit-exact
    { type: 'f64', value: String(0x7ffc000000000001n) },
    { type: 'i32', value: '4294967295' },
  ];
  const bridge = buildBridge(sig, args);
  assert.deepEqual(bridge.refArgs, [args[0]]);
  const run = new WebAssembly.Instance(new WebAssembly.Module(bridge.bytes), {
    t: { f: target.mv },
  } as WebAssembly.Imports).exports.run as (ref: unknown) => unknown;
  const ref = { ref: 1 };
  const show = (v: unknown): string => (v === ref ? 'ref' : String(v));
  const expected: WastValue[] = [
    { type: 'i32', value: '4294967295' },
    { type: 'externref', value: '1' },
    { type: 'v128', lane_type: 'i8', value: lanes },
    { type: 'f32', value: String(0x7fa00001) },
    { type: 'f64', value: 'nan:arithmetic' },
    { type: 'i64', value: '18446744073709551615' },
  ];
  const rendered = renderResults(sig, run(ref), expected, show);
  assert.deepEqual(rendered, [
    'i32:4294967295',
    'ref',
    `v128:i8[${lanes.join(' ')}]`,
    `f32:${0x7fa00001}`,
    'f64:nan:arithmetic',
    'i64:18446744073709551615',
  ]);
  const want = renderExpected(sig, expected);
  assert.ok(want && rendered.every((r, i) => matchesExpected(r, want[i] ?? null)));
  // Without expected values: v128 as i32 lanes, a NaN only by its class.
  assert.deepEqual(renderResults(sig, run(ref), undefined, show).slice(2, 4), [
    `v128:i32[${[0x33221100, 0x77665544, 0xbbaa9988, 0xffeeddcc].join(' ')}]`,
    'f32:nan:other',
  ]);
  assert.equal(matchesExpected('f32:nan:canonical', 'f32:nan:arithmetic'), true);
  assert.equal(matchesExpected('f32:nan:other', 'f32:nan:arithmetic'), false);
  assert.equal(matchesExpected('f32:nan:arithmetic', 'f32:nan:canonical'), false);
  // No results: `run` returns nothing.
  const none = types.get('none');
  assert.ok(none);
  const b2 = buildBridge(none, [{ type: 'v128', lane_type: 'i64', value: ['1', '2'] }]);
  const run2 = new WebAssembly.Instance(new WebAssembly.Module(b2.bytes), {
    t: { f: target.none },
  } as WebAssembly.Imports).exports.run as () => unknown;
  assert.deepEqual(renderResults(none, run2(), undefined, show), []);
  assert.throws(() => buildBridge(none, []), BridgeError);
});
