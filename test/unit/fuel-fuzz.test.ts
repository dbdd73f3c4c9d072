/**
 * Differential fuzzing in CI with a bounded number of random modules (FUEL_FUZZ_COUNT,
 * default 100) from Debian binaryen's `wasm-opt -ttf`: identical traces plain and
 * instrumented, identical fuel between the metered-blocks and per-instruction placements.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateModule, runVariant, WASM_OPT } from '../fuel/fuzz-runner.ts';
import { requireTool } from '../fuel/tools.ts';

const COUNT = Number(process.env.FUEL_FUZZ_COUNT ?? 100);
const FIRST_SEED = Number(process.env.FUEL_FUZZ_SEED ?? 1);

test(`fuzz: ${COUNT} wasm-opt -ttf modules behave identically plain and instrumented`, (t) => {
  requireTool('wasm-opt', ['--version'], 'binaryen', WASM_OPT);
  const dir = mkdtempSync(join(tmpdir(), 'hg-fuel-fuzz-'));
  const failures: string[] = [];
  let calls = 0;
  let fuelCompared = 0;
  let traceEntries = 0;
  try {
    for (let seed = FIRST_SEED; seed < FIRST_SEED + COUNT; seed++) {
      const bytes = generateModule(seed, dir);
      assert.ok(
        WebAssembly.validate(bytes),
        `seed ${seed}: wasm-opt produced a module Node 20 rejects`,
      );
      const plain = runVariant(bytes, null);
      const blocks = runVariant(bytes, 'metered-blocks');
      const perInstr = runVariant(bytes, 'per-instruction');
      calls += plain.trace.filter((l) => / (->|!!) /.test(l)).length;
      traceEntries += plain.trace.length;
      for (const [name, run] of [
        ['metered-blocks', blocks],
        ['per-instruction', perInstr],
      ] as const) {
        const i = run.trace.findIndex((line, k) => line !== plain.trace[k]);
        if (i >= 0 || run.trace.length !== plain.trace.length) {
          failures.push(
            `seed ${seed} (${name}): trace differs at ${i}: plain '${plain.trace[i]}', metered '${run.trace[i]}'`,
          );
        }
      }
      for (const [call, fuel] of blocks.fuel) {
        fuelCompared++;
        if (perInstr.fuel.get(call) !== fuel) {
          failures.push(
            `seed ${seed}: call ${call} used ${fuel} (blocks) vs ${perInstr.fuel.get(call)} (per instruction)`,
          );
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(
    `${COUNT} modules, ${calls} export calls, ${traceEntries} trace entries, ${fuelCompared} fuel figures compared, ${failures.length} failures`,
  );
  assert.deepEqual(failures, []);
  assert.ok(fuelCompared > COUNT, 'too few completed calls to compare fuel');
});
