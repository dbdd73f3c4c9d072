/**
 * Golden fuel: exact fuel for every control construct, under both placements (metered
 * blocks and the per-instruction reference) and both block regimes (with and without
 * exception handlers in the module).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EXCEPTION_CASES, GOLDEN_CASES, goldenWat } from '../fuel/golden-module.ts';
import { fuelOf, wat } from '../fuel/harness.ts';
import type { Imports } from '../fuel/harness.ts';

const imports: Imports = {
  env: {
    host: () => 42,
    throws: () => {
      throw new Error('from the host');
    },
  },
};

for (const withExceptions of [false, true]) {
  describe(`golden fuel (${withExceptions ? 'module with exception handlers' : 'module without exception handlers'})`, () => {
    const bytes = wat(goldenWat(withExceptions));
    const cases = withExceptions ? [...GOLDEN_CASES, ...EXCEPTION_CASES] : GOLDEN_CASES;
    for (const c of cases) {
      test(`${c.name}(${c.args.join(', ')}) uses exactly ${c.fuel}`, () => {
        assert.equal(fuelOf(bytes, c.name, c.args, imports), BigInt(c.fuel));
      });
    }
  });
}
