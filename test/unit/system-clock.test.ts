/**
 * The system clock's timer (src/clock.ts): it wakes a little early and finishes the wait on the
 * event loop, so these check what the scheduler relies on: never before `Date.now()` reaches the
 * due time, never from inside `setTimer`, never after `cancel()` (also in the last stretch),
 * and never keeping the process alive by itself; and that the last stretch does not spin the
 * event loop turn after turn (each turn allocates: docs/design.md, "Scheduler").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { systemClock } from '../../src/clock.ts';

// The clock's timers do not keep the process alive (the host's own handles do): this does, and
// never wakes the event loop itself, so a timer that waited for some other wake-up would hang
// its test until the test's timeout.
const keepAlive = setInterval(() => undefined, 3_600_000);
after(() => clearInterval(keepAlive));

function fired(ms: number): Promise<{ at: number; due: number }> {
  const due = Date.now() + ms;
  return new Promise((resolve) => systemClock.setTimer(() => resolve({ at: Date.now(), due }), ms));
}

test(
  'a timer fires once Date.now() reaches its due time, never before',
  { timeout: 60_000 },
  async () => {
    for (const ms of [0, 1, 2, 3, 5, 17, 40]) {
      const { at, due } = await fired(ms);
      assert.ok(at >= due, `${ms} ms: fired at ${at}, due ${due}`);
    }
    // Many at once, as the scheduler arms them back to back.
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => fired(i % 7)));
    for (const { at, due } of all) assert.ok(at >= due);
  },
);

test(
  'a due or past time fires on a later turn, not inside setTimer',
  { timeout: 60_000 },
  async () => {
    for (const ms of [0, -5]) {
      let calls = 0;
      await new Promise<void>((resolve) => {
        systemClock.setTimer(() => {
          calls++;
          resolve();
        }, ms);
        assert.equal(calls, 0, `${ms} ms: not called synchronously`);
      });
      assert.equal(calls, 1);
    }
  },
);

test(
  'the last stretch busy-waits in slices: it yields to the event loop tens of times, not hundreds',
  { timeout: 60_000 },
  async () => {
    // The clock's yields, counted: a timer of 3 ms has a last stretch of about 1 ms (2 at
    // worst), which it busy-waits in 50 µs slices with a turn of the event loop between them.
    // Yielding alone took a turn every few microseconds, hundreds per timer; a loaded machine
    // only makes fewer slices.
    const real = globalThis.setImmediate;
    let yields = 0;
    globalThis.setImmediate = ((...args: Parameters<typeof setImmediate>) => {
      yields++;
      return real(...args);
    }) as typeof setImmediate;
    try {
      for (let i = 0; i < 20; i++) {
        const { at, due } = await fired(3);
        assert.ok(at >= due);
      }
    } finally {
      globalThis.setImmediate = real;
    }
    assert.ok(yields <= 20 * 60, `${yields} yields for 20 timers`);
  },
);

test('cancel() stops a timer in either stretch of its wait', async () => {
  let calls = 0;
  const far = systemClock.setTimer(() => calls++, 30);
  far.cancel();
  // 1 ms out is within the last stretch from the start (it waits on the event loop, not on a
  // Node timer).
  const near = systemClock.setTimer(() => calls++, 1);
  near.cancel();
  const now = systemClock.setTimer(() => calls++, 0);
  now.cancel();
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(calls, 0);
});

/** Runs `code` (with `systemClock` in scope) in a fresh process; its exit status. */
function child(code: string): { status: number | null; stderr: string } {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', '-e', `import('./src/clock.ts').then(({ systemClock }) => { ${code} })`],
    { encoding: 'utf8', timeout: 30_000 },
  );
}

test('a pending timer does not keep the process alive', () => {
  const r = child('systemClock.setTimer(() => process.exit(3), 60_000);');
  assert.equal(r.status, 0, r.stderr);
});

test('a timer fires on its own: nothing else needs to wake the event loop', () => {
  // The only other handle is an interval of an hour: a timer that waited for another wake-up
  // would hang here until the spawn's timeout kills the process.
  const r = child(`
    setInterval(() => undefined, 3_600_000);
    let n = 0;
    const next = () => (++n === 50 ? process.exit(0) : systemClock.setTimer(next, n % 3));
    next();`);
  assert.equal(r.status, 0, r.stderr);
});
