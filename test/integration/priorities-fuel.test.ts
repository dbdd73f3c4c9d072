/**
 * Priorities with aging at a tenant's cap, and fuel windows (docs/schedules.md, "Priorities"
 * and "Fuel windows"): a real host on both stores, the real proxy guest, a fake clock. Runs are
 * held at a gate (gated-sandbox.ts) so the tenant's one slot is taken exactly when the test says.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { QuotaExhausted } from '../../src/scheduler/fuel-windows.ts';
import { GatedSandbox, quiesce } from './gated-sandbox.ts';
import {
  GUEST,
  T0,
  ManualClock,
  advance,
  crash,
  decls,
  makeConfig,
  runsOf,
  STORES,
  startHost,
  storeDir,
  turns,
} from './helpers.ts';

const MIN = 60_000;

for (const store of STORES) {
  describe(`priorities and fuel windows (${store})`, () => {
    test('at the cap, waiting ticks start by priority; aging lets the lowest through a stream of higher ones', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      let gated: GatedSandbox | undefined;
      const config = makeConfig(dir, [
        {
          id: 't',
          quotas: { maxRunsInFlight: 1, priorityAgingMs: MIN },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                schedules: decls(
                  // Takes the slot first, so that the four below all wait.
                  { id: 'block', at: '2026-01-15T10:00:30Z' },
                  { id: 'low', every: '1m', priority: 0 },
                  { id: 'h1', every: '1m', priority: 9 },
                  { id: 'h2', every: '1m', priority: 9 },
                  { id: 'h3', every: '1m', priority: 9 },
                ),
              },
            },
          ],
        },
      ]);
      const started: string[] = [];
      const { host, stop } = await startHost(config, clock, {
        sandbox: (hc) => {
          const g = new GatedSandbox(hc);
          g.onRun = (req) => started.push((req.caller.scheduleKey ?? '').slice('t/p/'.length));
          return (gated = g);
        },
      });
      const g = gated as GatedSandbox;
      try {
        assert.equal(host.store.getSchedule('t/p/low')?.priority, 0);
        assert.equal(host.store.getSchedule('t/p/h1')?.priority, 9);
        // `block` takes the slot at T0+30s; the four others fire at T0+1m and wait.
        clock.advance(MIN / 2);
        await quiesce(g, host.store);
        clock.advance(MIN / 2);
        await turns(host);
        assert.deepEqual(started, ['block']);
        assert.equal(host.store.listRuns({ tenant: 't', status: 'waiting' }).length, 4);
        // Each minute: new ticks of the idle high schedules queue, then the run in the slot ends.
        for (let m = 0; m < 20 && !started.includes('low'); m++) {
          clock.advance(MIN);
          await turns(host);
          g.held[0]?.release();
          await quiesce(g, host.store);
        }
        const lowAt = started.indexOf('low');
        assert.ok(lowAt >= 0, `low never ran: ${started.join(' ')}`);
        // Not first come first served (low's first tick was as old as any): the high ones went
        // first, as long as low had not waited a level per minute up to theirs (about 9 minutes).
        assert.ok(lowAt >= 8, `low ran too early: ${started.join(' ')}`);
        // Without aging it would never run: a high tick was waiting whenever low started.
        const lowRun = runsOf(host, 't/p/low').find((r) => r.status === 'running');
        assert.equal(lowRun?.scheduledAt, T0 + MIN, 'the tick low waited with since T0+1m');
        const waitingHigh = host.store
          .listRuns({ tenant: 't', status: 'waiting' })
          .filter((r) => r.localId !== 'low');
        assert.ok(waitingHigh.length > 0, 'high ticks were waiting when low started');
        assert.ok(waitingHigh.every((r) => r.scheduledAt > T0 + MIN));
      } finally {
        g.open();
        await stop();
      }
    });

    test('waiting ticks taken up after a restart start in priority order', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = makeConfig(dir, [
        {
          id: 't',
          quotas: { maxRunsInFlight: 1 },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                schedules: decls(
                  { id: 'a', every: '1m', priority: 1 },
                  { id: 'b', every: '1m' },
                  { id: 'c', every: '1m', priority: 8 },
                  { id: 'd', every: '1m', priority: 3 },
                ),
              },
            },
          ],
        },
      ]);
      const first = await startHost(config, clock, { sandbox: (hc) => new GatedSandbox(hc) });
      clock.advance(MIN);
      await turns(first.host);
      const waiting = first.host.store.listRuns({ tenant: 't', status: 'waiting' });
      assert.equal(waiting.length, 3);
      await crash(first);

      const started: string[] = [];
      let gated: GatedSandbox | undefined;
      const second = await startHost(config, clock, {
        sandbox: (hc) => {
          const g = new GatedSandbox(hc);
          g.onRun = (req) => started.push((req.caller.scheduleKey ?? '').slice('t/p/'.length));
          return (gated = g);
        },
      });
      const g = gated as GatedSandbox;
      try {
        await quiesce(g, second.host.store);
        for (let i = 0; i < 3; i++) {
          g.held[0]?.release();
          await quiesce(g, second.host.store);
        }
        const prio: Record<string, number> = { a: 1, b: 5, c: 8, d: 3 };
        const expected = waiting
          .map((r) => r.localId)
          .sort((x, y) => (prio[y] ?? 0) - (prio[x] ?? 0));
        assert.deepEqual(started, expected);
      } finally {
        g.open();
        await second.stop();
      }
    });

    test('a fuel window spent: ticks recorded quota_exhausted (guest not called) until the window turns; a restart keeps the count', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      const config = makeConfig(dir, [
        {
          id: 't',
          // One unit of fuel per 10 minutes: the window's first run spends it.
          quotas: { fuelWindow: { fuel: 1, windowMs: 10 * MIN } },
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 's', every: '1m' }) },
            },
          ],
        },
      ]);
      let calls = 0;
      const told: QuotaExhausted[] = [];
      const listen = (h: {
        events: { on(e: 'tenant:quota_exhausted', f: (e: QuotaExhausted) => void): unknown };
      }) => h.events.on('tenant:quota_exhausted', (e) => told.push(e));
      const sandbox = (hc: ConstructorParameters<typeof GatedSandbox>[0]) => {
        const g = new GatedSandbox(hc);
        g.open();
        g.onRun = () => calls++;
        return g;
      };
      const a = await startHost(config, clock, { sandbox }, listen);
      let runs;
      try {
        await advance(a.host, clock, 10 * MIN, MIN); // ticks 10:01 .. 10:10
        runs = runsOf(a.host, 't/p/s');
        assert.deepEqual(
          runs.map((r) => r.status),
          ['succeeded', ...Array<string>(8).fill('quota_exhausted'), 'succeeded'],
        );
        assert.ok((runs[0]?.fuelUsed ?? 0) > 0);
        assert.equal(calls, 2, 'the guest was called for the two runs only');
        const exhausted = runs[1];
        assert.equal(exhausted?.fuelUsed, null);
        assert.match(
          exhausted?.reason ?? '',
          /fuel window is spent .* runs resume at 2026-01-15T10:10:00.000Z/,
        );
        assert.deepEqual(told, [
          {
            tenant: 't',
            fuel: 1,
            used: runs[0]?.fuelUsed,
            windowStart: T0,
            windowEnd: T0 + 10 * MIN,
          },
        ]);
      } finally {
        await a.stop();
      }

      // A restart within the window 10:10-10:20 keeps its count (rebuilt from the store's runs).
      clock.advance(30_000);
      const b = await startHost(config, clock, { sandbox }, listen);
      try {
        await advance(b.host, clock, 9.5 * MIN, MIN); // ticks 10:11 .. 10:20
        runs = runsOf(b.host, 't/p/s').slice(10);
        assert.deepEqual(
          runs.map((r) => r.status),
          [...Array<string>(9).fill('quota_exhausted'), 'succeeded'],
        );
        assert.equal(calls, 3);
        assert.equal(told.length, 2);
        assert.equal(told[1]?.windowStart, T0 + 10 * MIN);
      } finally {
        await b.stop();
      }
    });
  });
}
