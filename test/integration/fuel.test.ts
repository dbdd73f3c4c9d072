/**
 * Fuel through the host: every run record carries the fuel used and the budget; a run that
 * exhausts its budget is recorded out_of_fuel and the host and other plugins carry on; a
 * discovery out of fuel fails only that plugin's load. In-thread sandbox (the pool runs the
 * same sandbox in its workers; test/integration/hostile-corpus.test.ts covers it there).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHostConfig } from '../../src/config/host-config.ts';
import { GUEST, ManualClock, T0, startHost, triggerRun, tempDir } from './helpers.ts';

test('run records carry fuel; out of fuel is its own outcome and the host carries on', async (t) => {
  const dir = tempDir(t);
  const manifest = (name: string, wasm: string, fuel: Record<string, number>) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ name, version: '1', wasm, limits: { fuel } }));
    return { manifest: file };
  };
  const config = parseHostConfig(
    {
      store: { path: join(dir, 'h.db') },
      sandbox: { mode: 'in-thread' },
      tenants: [
        {
          id: 't',
          plugins: [
            manifest('noop', GUEST.wat('noop'), { run: 1_000 }),
            manifest('spin', GUEST.wat('spin'), { run: 2_000_000 }),
            manifest('starved', GUEST.wat('noop'), { discovery: 5 }),
          ],
        },
      ],
    },
    join(dir, 'config.json'),
    dir,
  );
  const { host, failed } = await startHost(config, new ManualClock(T0));
  try {
    assert.deepEqual(
      failed.map((f) => f.pluginId),
      ['t/starved'],
    );
    assert.match(failed[0]?.message ?? '', /schedules\(\) out_of_fuel/);

    const first = (await triggerRun(host, 't/noop/tick')).run;
    assert.equal(first.status, 'succeeded');
    assert.equal(first.fuelBudget, 1_000);
    assert.ok(first.fuelUsed !== null && first.fuelUsed > 0 && first.fuelUsed < 1_000);

    const spin = (await triggerRun(host, 't/spin/spin')).run;
    assert.equal(spin.status, 'out_of_fuel');
    assert.equal(spin.reason, 'out_of_fuel');
    assert.equal(spin.fuelUsed, 2_000_000);
    assert.equal(spin.fuelBudget, 2_000_000);

    // Same guest, same input shape: the same fuel, exactly; and a new instance after the trap.
    const again = (await triggerRun(host, 't/noop/tick')).run;
    assert.equal(again.status, 'succeeded');
    assert.equal(again.fuelUsed, first.fuelUsed);
    const spinAgain = (await triggerRun(host, 't/spin/spin')).run;
    assert.equal(spinAgain.status, 'out_of_fuel');
  } finally {
    await host.stop();
  }
});
