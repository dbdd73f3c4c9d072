/**
 * Differential spec tests: every module of the WebAssembly spec testsuite that Node 20 can
 * run (converted with Debian wabt's wast2json) gives identical results plain and
 * instrumented; every instrumented module validates; every binary the spec calls invalid or
 * malformed is refused before instrumentation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { byReason, newSpecCounts, runSpecJson } from '../fuel/spec-runner.ts';
import { requireTool } from '../fuel/tools.ts';
import { convertWast } from '../fuel/wast-convert.ts';

const SUITE = fileURLToPath(new URL('../../../shared/wasm-testsuite/', import.meta.url));

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
      `${counts.modules} modules run plain and instrumented; ${byReason(counts.modulesSkipped)} modules Node 20 cannot run; ` +
      `${counts.actions} actions compared; ${byReason(counts.actionsSkipped)} actions skipped; ` +
      `${counts.rejected} invalid/malformed binaries refused, ${counts.mismatches.length} mismatches`,
  );
  assert.deepEqual(counts.mismatches, []);
  assert.ok(counts.modules > 1500, `only ${counts.modules} modules ran`);
  assert.ok(counts.actions > 25000, `only ${counts.actions} actions ran`);
  assert.ok(counts.rejected > 1000, `only ${counts.rejected} invalid binaries checked`);
});
