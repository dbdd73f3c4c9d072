/**
 * The Hourglass side of the end-to-end benchmarks: a whole host (store on disk, the chosen
 * sandbox, the no-op guest) with `count` schedules, all triggered at once through the
 * operator path, timed until every run is recorded. Shared by peer-bullmq and throughput.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Host } from '../src/index.ts';
import { hourglass, ROOT as PROJECT_ROOT } from './built.ts';

// The compiled package (bench/built.ts): pool workers boot compiled, as users run the host.
const { Host: HostClass, parseHostConfig } = hourglass;

export const NOOP_WASM = resolve(PROJECT_ROOT, 'guest-examples/wat/build/noop.wasm');

export interface BurstHost {
  readonly host: Host;
  /** Triggers every schedule once; resolves with the wall time until all runs are recorded. */
  burst(): Promise<{ runs: number; ms: number }>;
  close(): Promise<void>;
}

/** A started host with one tenant (in-flight cap `concurrency`) and `count` schedules due in a day. */
export async function burstHost(opts: {
  count: number;
  concurrency: number;
  mode: 'pool' | 'in-thread';
  workers?: number;
  /**
   * Who writes the store file (`store.writer`). @defaultValue env STORE_WRITER, else "thread"
   */
  writer?: 'thread' | 'inline';
  /** The i-th schedule's declaration. @defaultValue every 24h (fires only when triggered) */
  declaration?: (i: number) => Record<string, unknown>;
}): Promise<BurstHost> {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-burst-'));
  writeFileSync(
    join(dir, 'noop.json'),
    JSON.stringify({ name: 'noop', version: '1', wasm: NOOP_WASM, capabilities: [] }),
  );
  const config = parseHostConfig(
    {
      store: {
        path: join(dir, 'hourglass.db'),
        writer: opts.writer ?? (process.env.STORE_WRITER === 'inline' ? 'inline' : 'thread'),
      },
      sandbox: { mode: opts.mode, ...(opts.workers ? { workers: opts.workers } : {}) },
      tenants: [
        {
          id: 'b',
          quotas: { maxRunsInFlight: opts.concurrency, maxSchedules: opts.count + 10 },
          plugins: [{ manifest: 'noop.json' }],
        },
      ],
    },
    'bench',
    dir,
  );
  const host = new HostClass(config);
  await host.start();
  const caller = { pluginId: 'b/noop', tenant: 'b', phase: 'run' as const };
  const keys: string[] = [];
  host.store.transaction(() => {
    for (let i = 0; i < opts.count; i++) {
      const r = host.schedules.create(
        caller,
        opts.declaration?.(i) ?? { id: `j${i}`, every: '24h' },
      );
      if (!('ok' in r)) throw new Error(`create failed: ${JSON.stringify(r)}`);
      keys.push(`b/noop/${(opts.declaration?.(i)?.id as string | undefined) ?? `j${i}`}`);
    }
  });
  host.operate('b/noop/tick', 'pause');
  return {
    host,
    async burst() {
      let done = 0;
      let resolveAll!: () => void;
      const all = new Promise<void>((r) => (resolveAll = r));
      const onFinished = () => {
        if (++done === keys.length) resolveAll();
      };
      host.events.on('run:finished', onFinished);
      // The pool's workers do not hold the event loop open.
      const keepAlive = setInterval(() => undefined, 1000);
      const t0 = performance.now();
      for (const k of keys) host.operate(k, 'trigger');
      await all;
      // Until the last outcome is durable (a store that writes behind may announce it first).
      await host.store.committed();
      const ms = performance.now() - t0;
      clearInterval(keepAlive);
      host.events.off('run:finished', onFinished);
      await host.scheduler.settle();
      return { runs: keys.length, ms };
    },
    async close() {
      await host.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
