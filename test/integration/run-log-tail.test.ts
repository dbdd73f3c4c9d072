/**
 * A run's record keeps the guest's last log lines (`RunRecord.logTail`): written with the
 * outcome through the pool's result ring, whatever the outcome, and read back from the store.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOG_TAIL_LINES } from '../../src/sandbox/in-thread-sandbox.ts';
import { GUEST, ManualClock, T0, makeConfig, startHost, tempDir, triggerRun } from './helpers.ts';

test('a run keeps its guest’s last log lines (a flood ended out of fuel keeps the last ten delivered); a run that logs nothing keeps none', async (t) => {
  const dir = tempDir(t);
  const config = makeConfig(dir, [
    {
      id: 't',
      quotas: { maxFuelPerCall: 3_000_000, maxLogLines: 25 },
      plugins: [
        { name: 'flood', wasm: GUEST.wat('kernel-abuse'), config: { mode: 'L' } },
        { name: 'quiet', wasm: GUEST.wat('kernel-abuse'), config: { mode: '-' } },
      ],
    },
  ]);
  const h = await startHost(config, new ManualClock(T0));
  t.after(() => h.stop());
  assert.deepEqual(h.failed, []);

  const flood = (await triggerRun(h.host, 't/flood/k')).run;
  assert.equal(flood.status, 'out_of_fuel');
  const lines = (flood.logTail ?? '').split('\n');
  assert.equal(lines.length, LOG_TAIL_LINES);
  for (const l of lines) assert.equal(l, 'info: flood');

  const quiet = (await triggerRun(h.host, 't/quiet/k')).run;
  assert.equal(quiet.status, 'succeeded');
  assert.equal(quiet.logTail, null);

  // What the store holds (what the API and the CLI read).
  await h.host.store.committed();
  assert.equal(h.host.store.getRun(flood.id)?.logTail, flood.logTail);
});
