/**
 * Runs per second through the whole path (scheduler → sandbox → guest → store) for a no-op
 * guest, beside the bare Extism `call()` rate of the same guest, measured in the same process.
 *
 *   npm run bench -- throughput      (or: npx tsx bench/throughput.bench.ts)
 *
 * Tasks (the host ones once per sandbox mode, `in-thread` and `pool`):
 * - `extism call() bare` — the baseline: `plugin.call('run', ctx)` on the noop guest.
 * - `trigger → run recorded` — one operator trigger: at-most-one gate, run row inserted,
 *   context built, guest called through the sandbox, outcome and cursor recorded, awaited.
 * - `tick with 100 due schedules (per run)` — one timer tick firing 100 interval schedules of
 *   the same guest (next time persisted, run rows, guest calls, outcomes), divided by 100.
 */
import createPlugin from '@extism/extism';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Bench } from 'tinybench';
import { ManualClock } from '../src/clock.ts';
import { parseHostConfig, PROJECT_ROOT } from '../src/config/host-config.ts';
import { Host } from '../src/host/host.ts';
import { report, rows } from './common.ts';

const NOOP = resolve(PROJECT_ROOT, 'guest-examples/wat/build/noop.wasm');
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 2000);

const dir = mkdtempSync(join(tmpdir(), 'hourglass-bench-'));
try {
  const ctx = JSON.stringify({
    scheduleId: 'tick',
    runId: '1',
    plugin: 'b/noop',
    scheduledAt: new Date().toISOString(),
    firedAt: new Date().toISOString(),
    attempt: 1,
    catchUp: false,
    trigger: 'schedule',
    payload: null,
    cursor: null,
  });
  const bare = await createPlugin({ wasm: [{ data: readFileSync(NOOP) }] }, { useWasi: false });

  writeFileSync(
    join(dir, 'noop.json'),
    JSON.stringify({ name: 'noop', version: '1', wasm: NOOP, capabilities: [] }),
  );
  const bareBench = new Bench({ time: TIME_MS, warmupTime: 500 });
  bareBench.add('extism call() bare', async () => {
    await bare.call('run', ctx);
  });
  await bareBench.run();
  await bare.close();
  const all = [...rows(bareBench)];
  for (const mode of ['in-thread', 'pool'] as const) all.push(...(await measureHost(mode)));
  report('throughput', all, 'extism call() bare');

  async function measureHost(mode: 'in-thread' | 'pool') {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const config = parseHostConfig(
      {
        store: { path: join(dir, `bench-${mode}.db`) },
        sandbox: { mode },
        tenants: [
          {
            id: 'b',
            quotas: { maxRunsInFlight: 1000, maxSchedules: 10_000 },
            plugins: [{ manifest: 'noop.json' }],
          },
        ],
      },
      'bench',
      dir,
    );
    const host = new Host(config, { clock });
    await host.start();
    // 100 more schedules of the same no-op guest (created as the guest would, paused for now).
    const caller = { pluginId: 'b/noop', tenant: 'b', phase: 'run' as const };
    const many = Array.from({ length: 100 }, (_, i) => `s${i}`);
    for (const id of many) host.schedules.create(caller, { id, every: '1s', paused: true });
    host.operate('b/noop/tick', 'pause');

    const bench = new Bench({ time: TIME_MS, warmupTime: 500 });
    bench.add(`${mode}: trigger → run recorded`, async () => {
      host.operate('b/noop/tick', 'trigger');
      await host.scheduler.settle();
    });
    await bench.run();

    for (const id of many) host.operate(`b/noop/${id}`, 'resume');
    const tickBench = new Bench({ time: TIME_MS, warmupTime: 500 });
    tickBench.add('tick', async () => {
      clock.advance(1000);
      await host.scheduler.settle();
    });
    await tickBench.run();
    const perTick = rows(tickBench)[0];
    if (!perTick) throw new Error('tick bench did not run');
    await host.stop();
    return [
      ...rows(bench),
      {
        name: `${mode}: tick with 100 due schedules (per run)`,
        opsPerSec: perTick.opsPerSec * 100,
        meanUs: perTick.meanUs / 100,
        p99Us: perTick.p99Us / 100,
        samples: perTick.samples,
      },
    ];
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
