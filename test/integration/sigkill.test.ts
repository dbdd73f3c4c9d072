/**
 * SIGKILL (issue 9 item 9): a child-process host on the real clock is killed at random moments
 * (>= 20 times on SQLite, 10 on PostgreSQL, where each next host first waits for the killed
 * one's tenant lease to expire: `leaseTtlMs` 1 s) while ticks run, wait for the tenant's only slot, are buffered and overlap;
 * then a last host starts and stops gracefully. The store must show: no tick started twice, no
 * run left `running`, no cursor regression (each recorded run saw the cursor the previous
 * recorded run wrote), and every due tick accounted for by a record (tick-accounting.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parseHostConfig, PROJECT_ROOT } from '../../src/config/host-config.ts';
import type { RunRecord } from '../../src/store/types.ts';
import { GUEST, STORES, storeConfigOf, storeDir, storedCopy, type StoreKind } from './helpers.ts';
import { unaccounted } from './tick-accounting.ts';

const KILLS: Record<StoreKind, number> = {
  sqlite: Number(process.env.HG_SIGKILL_KILLS ?? 22),
  postgres: Number(process.env.HG_SIGKILL_KILLS_PG ?? 10),
};
const CHILD = resolve(PROJECT_ROOT, 'test/integration/sigkill-host.ts');
const NOT_STARTED = new Set(['waiting', 'skipped_overlap', 'skipped_misfire', 'cancelled']);

function writeConfig(dir: string): string {
  const manifest = join(dir, 'p.json');
  writeFileSync(
    manifest,
    JSON.stringify({ name: 'p', version: '1.0.0', wasm: GUEST.proxy, capabilities: [] }),
  );
  const schedules = [
    { id: 'a', every: '1s' },
    { id: 'b', every: '1s', misfire: 'run-once' },
    { id: 'c', every: '2s', overlap: 'buffer-one' },
    { id: 'd', every: '1s', jitter: '1500ms' },
  ];
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      store: storeConfigOf(dir),
      sandbox: { mode: 'in-thread' },
      tenants: [
        {
          id: 't',
          quotas: { maxRunsInFlight: 1 },
          plugins: [{ manifest, config: { schedules: JSON.stringify(schedules) } }],
        },
      ],
    }),
  );
  return file;
}

/** Starts the host process; resolves once it printed "ready" (retrying a refused start). */
async function startChild(config: string, stopAfter?: number) {
  for (let attempt = 0; ; attempt++) {
    const args = ['--import', 'tsx', CHILD, config, ...(stopAfter ? [String(stopAfter)] : [])];
    const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const ready = await new Promise<boolean>((res) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && res(true));
      void exited.then(() => res(false));
    });
    if (ready) return { child, exited, stderr: () => stderr };
    // A start refused while the killed host's lease is still fresh: try again shortly.
    assert.ok(attempt < 30, `the host did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

for (const store of STORES)
  describe(store, () => {
    test(`SIGKILL ${KILLS[store]} times: no double run, no run left running, no cursor regression, every tick recorded`, async (t) => {
      // On PostgreSQL, the shortest lease: each next host waits for the killed one's to expire.
      const dir = await storeDir(t, store, { leaseTtlMs: 1000 });
      const config = writeConfig(dir);
      let seed = 42;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < KILLS[store]; i++) {
        const { child, exited } = await startChild(config);
        await new Promise((r) => setTimeout(r, 300 + rand() * 1700));
        child.kill('SIGKILL');
        await exited;
      }
      const last = await startChild(config, 2500);
      assert.equal(await last.exited, 0, last.stderr());
      const end = Date.now();

      const stored = await storedCopy(
        parseHostConfig(JSON.parse(readFileSync(config, 'utf8')), config, dir),
      );
      try {
        const runs = stored.listRuns({ limit: 1_000_000 }).reverse();
        assert.ok(runs.length > KILLS[store], `${runs.length} records`);
        assert.deepEqual(
          runs.filter((r) => r.status === 'running').map((r) => r.id),
          [],
          'no run left running',
        );
        assert.ok(
          runs.some((r) => r.status === 'abandoned'),
          'some runs were killed mid-run',
        );
        for (const s of stored.listSchedules({ pluginId: 't/p' })) {
          const mine = runs.filter((r) => r.scheduleKey === s.key);
          // No tick started twice.
          const started = mine.filter((r) => !NOT_STARTED.has(r.status) && r.trigger !== 'manual');
          const ticks = started.map((r) => r.scheduledAt);
          assert.equal(new Set(ticks).size, ticks.length, `${s.key}: a tick started twice`);
          // No cursor regression: each recorded run saw what the previous recorded run wrote.
          const recorded = mine.filter((r) => r.status === 'succeeded');
          let cursor: number | null = null;
          for (const r of recorded) {
            const seen = (JSON.parse(r.result ?? '{}') as { seenCursor: number | null }).seenCursor;
            assert.equal(
              seen,
              cursor,
              `${s.key}: run ${r.id} saw cursor ${seen}, expected ${cursor}`,
            );
            cursor = (seen ?? 0) + 1;
          }
          assert.equal(
            s.cursor === null ? null : Number(s.cursor),
            cursor,
            `${s.key}: final cursor`,
          );
          // Every due tick has a record (or is the pending next one).
          const missing = unaccounted(s, mine, [[s.anchorAt, end]]);
          assert.deepEqual(
            missing.map((m) => new Date(m).toISOString()),
            [],
            `${s.key}: ticks without a record`,
          );
        }
        const waiting: RunRecord[] = runs.filter((r) => r.status === 'waiting');
        t.diagnostic(
          `${runs.length} records: ${[...new Set(runs.map((r) => r.status))].map((st) => `${st} ${runs.filter((r) => r.status === st).length}`).join(', ')}; ${waiting.length} waiting at the end`,
        );
      } finally {
        stored.close();
      }
    });
  });
