import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from '../../src/sandbox/types.ts';
import {
  GUEST,
  T0,
  ManualClock,
  advance,
  crash,
  decls,
  makeConfig,
  proxyConfig,
  runsOf,
  STORES,
  startHost,
  storeDir,
  turns,
} from './helpers.ts';

/**
 * The real in-thread sandbox, with `run` calls held at a gate until the test opens it: a
 * stand-in for a slow guest that keeps virtual time deterministic. It also measures how many
 * runs of each schedule were ever inside the guest at once.
 */
class GatedSandbox implements Sandbox {
  readonly inner: InThreadSandbox;
  #open = false;
  #waiters: (() => void)[] = [];
  readonly active = new Map<string, number>();
  maxConcurrent = 0;

  constructor(hostCall: HostCallHandler) {
    this.inner = new InThreadSandbox({ hostCall });
  }
  load(spec: GuestSpec): Promise<GuestInfo> {
    return this.inner.load(spec);
  }
  async call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    if (req.fn !== 'run') return this.inner.call(pluginId, req);
    const key = req.caller.scheduleKey ?? '';
    const n = (this.active.get(key) ?? 0) + 1;
    this.active.set(key, n);
    this.maxConcurrent = Math.max(this.maxConcurrent, n);
    try {
      if (!this.#open) await new Promise<void>((resolve) => this.#waiters.push(resolve));
      return await this.inner.call(pluginId, req);
    } finally {
      this.active.set(key, (this.active.get(key) ?? 1) - 1);
    }
  }
  get waiting(): number {
    return this.#waiters.length;
  }
  /** Lets the held calls (and all later ones) through. */
  open(): void {
    this.#open = true;
    for (const w of this.#waiters.splice(0)) w();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  unload(pluginId: string): Promise<void> {
    return this.inner.unload(pluginId);
  }
}

async function tick(host: Host, clock: ManualClock, ms: number): Promise<void> {
  clock.advance(ms);
  await turns(host);
}

for (const store of STORES)
  describe(store, () => {
    test('overlap: a tick that finds its run in flight is skipped and recorded (skip) or buffered once (buffer-one)', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      let gated: GatedSandbox | undefined;
      const config = proxyConfig(
        dir,
        { id: 'skip', every: '10s' },
        { id: 'buf', every: '10s', overlap: 'buffer-one' },
      );
      const { host, stop } = await startHost(config, clock, {
        sandbox: (hc) => (gated = new GatedSandbox(hc)),
      });
      const g = gated as GatedSandbox;
      try {
        // First tick starts both runs and holds them; three more ticks arrive while they are in flight.
        for (let i = 0; i < 4; i++) await tick(host, clock, 10_000);
        assert.equal(g.waiting, 2);
        const skip = runsOf(host, 't/p/skip');
        assert.deepEqual(
          skip.map((r) => r.status),
          ['running', 'skipped_overlap', 'skipped_overlap', 'skipped_overlap'],
        );
        assert.deepEqual(
          skip.slice(1).map((r) => r.scheduledAt),
          [T0 + 20_000, T0 + 30_000, T0 + 40_000],
        );
        const buf = runsOf(host, 't/p/buf');
        // One tick is buffered; the two after it are skipped.
        assert.deepEqual(
          buf.map((r) => r.status),
          ['running', 'skipped_overlap', 'skipped_overlap'],
        );
        assert.equal(host.store.getSchedule('t/p/buf')?.bufferedAt, T0 + 20_000);
        g.open();
        await host.scheduler.settle();
        const after = runsOf(host, 't/p/buf');
        assert.deepEqual(
          after.map((r) => [r.trigger, r.status]),
          [
            ['schedule', 'succeeded'],
            ['schedule', 'skipped_overlap'],
            ['schedule', 'skipped_overlap'],
            ['buffered', 'succeeded'],
          ],
        );
        assert.equal(after[3]?.scheduledAt, T0 + 20_000);
        assert.equal(host.store.getSchedule('t/p/buf')?.bufferedAt, null);
        // A manual trigger while a run is in flight is refused the same way.
        assert.equal(g.maxConcurrent, 1, 'never two runs of one schedule at once');
      } finally {
        g.open();
        await stop();
      }
    });

    test('a manual trigger during a run is skipped; at most one run per schedule even under a burst', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      let gated: GatedSandbox | undefined;
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: { schedules: decls({ id: 's', every: '1h' }) },
            },
          ],
        },
      ]);
      const { host, stop } = await startHost(config, clock, {
        sandbox: (hc) => (gated = new GatedSandbox(hc)),
      });
      const g = gated as GatedSandbox;
      try {
        const results = Array.from({ length: 20 }, () => host.operate('t/p/s', 'trigger'));
        assert.deepEqual(results[0], { ok: true, trigger: 'started' });
        assert.ok(results.slice(1).every((r) => r.ok && 'trigger' in r && r.trigger === 'skipped'));
        g.open();
        await host.scheduler.settle();
        const runs = runsOf(host, 't/p/s');
        assert.equal(runs.filter((r) => r.status === 'succeeded').length, 1);
        assert.equal(runs.filter((r) => r.status === 'skipped_overlap').length, 19);
        assert.equal(g.maxConcurrent, 1);
      } finally {
        g.open();
        await stop();
      }
    });

    test('a tenant’s runs in flight are capped; due runs wait their turn and none is lost', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      let gated: GatedSandbox | undefined;
      const ids = Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, every: '1m' }));
      const config = makeConfig(dir, [
        {
          id: 't',
          quotas: { maxRunsInFlight: 2 },
          plugins: [{ name: 'p', wasm: GUEST.proxy, config: { schedules: decls(...ids) } }],
        },
      ]);
      const { host, stop } = await startHost(config, clock, {
        sandbox: (hc) => (gated = new GatedSandbox(hc)),
      });
      const g = gated as GatedSandbox;
      try {
        await tick(host, clock, 60_000);
        assert.equal(g.waiting, 2, 'only two runs inside the sandbox');
        assert.equal(host.store.listRuns({ status: 'running' }).length, 2);
        g.open();
        await host.scheduler.settle();
        assert.equal(host.store.listRuns({ status: 'succeeded' }).length, 6);
      } finally {
        g.open();
        await stop();
      }
    });

    test('restart: an in-flight run is marked abandoned; missed ticks follow the misfire policy', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(T0);
      let gated: GatedSandbox | undefined;
      const config = proxyConfig(
        dir,
        { id: 'skipper', every: '1m' },
        { id: 'catcher', every: '1m', misfire: 'run-once' },
      );
      const a = await startHost(config, clock, { sandbox: (hc) => (gated = new GatedSandbox(hc)) });
      await tick(a.host, clock, 60_000);
      assert.equal((gated as GatedSandbox).waiting, 2);
      // The host dies here: no stop(), no cleanup; the store is simply closed (as by a crash).
      await crash(a);

      clock.advance(10 * 60_000 + 30_000); // 10.5 minutes of downtime
      const b = await startHost(config, clock);
      try {
        for (const id of ['skipper', 'catcher']) {
          const first = runsOf(b.host, `t/p/${id}`)[0];
          assert.equal(first?.status, 'abandoned');
          assert.equal(first?.scheduledAt, T0 + 60_000);
          // Recorded on the host's clock, when the next host took over.
          assert.ok(first?.finishedAt, 'finished');
          assert.ok(first.finishedAt >= T0 + 60_000 && first.finishedAt <= clock.now());
        }
        await b.host.scheduler.settle();
        const skipper = runsOf(b.host, 't/p/skipper');
        assert.deepEqual(
          skipper.map((r) => r.status),
          ['abandoned', 'skipped_misfire'],
        );
        assert.equal(skipper[1]?.scheduledAt, T0 + 120_000);
        const catcher = runsOf(b.host, 't/p/catcher');
        assert.deepEqual(
          catcher.map((r) => [r.trigger, r.status]),
          [
            ['schedule', 'abandoned'],
            ['catch_up', 'succeeded'],
          ],
        );
        assert.equal(JSON.parse(catcher[1]?.result ?? '{}').catchUp, true);
        // Both continue on their grid from now on, without replaying the backlog.
        const now = clock.now();
        const next = b.host.store.getSchedule('t/p/skipper')?.nextAt ?? 0;
        assert.ok(next > now && next <= now + 60_000);
        await advance(b.host, clock, 60_000, 10_000);
        assert.equal(runsOf(b.host, 't/p/skipper').at(-1)?.status, 'succeeded');
      } finally {
        await b.stop();
      }
    });
  });
