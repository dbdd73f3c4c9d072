/**
 * The checks of a cluster test's record, read from PostgreSQL once every host has stopped
 * (cluster-chaos.test.ts, cluster-outage.test.ts): no tick ran twice; no two runs of one schedule
 * overlap; no run left `running`; no row accepted under an epoch whose ownership had ended
 * (`hg_lease_history`); every nominal tick up to `end` - 1 s accounted for by a record
 * (tick-accounting.ts); each schedule's cursor (`{"n"}`, the proxy guest's `countCursor`) equals
 * its number of succeeded runs. Asserts; returns the runs and the refused (fenced) writes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { sharedSpec } from '../../src/schedule/spec.ts';
import type { RunRecord, ScheduleRecord } from '../../src/store/types.ts';
import { GUEST } from './helpers.ts';
import { unaccounted } from './tick-accounting.ts';

type Row = Record<string, number | string | null>;

export async function checkRecord(
  sql: pg.Client,
  end: number,
  expectedSchedules: number,
): Promise<{ runs: Row[]; refused: { batches: number; rows: number } }> {
  const ran = `status NOT IN ('skipped_overlap', 'skipped_misfire', 'cancelled', 'waiting')`;
  const twice = await sql.query(
    `SELECT schedule_key, scheduled_at, count(*) AS n FROM runs WHERE ${ran}
     GROUP BY 1, 2 HAVING count(*) > 1`,
  );
  assert.deepEqual(twice.rows, [], 'ticks that ran twice');

  const runs = (
    await sql.query<Record<string, number | string | null>>(
      'SELECT * FROM runs ORDER BY schedule_key, started_at, id',
    )
  ).rows;
  const overlaps: string[] = [];
  const byKey = new Map<string, typeof runs>();
  for (const r of runs) {
    const k = r.schedule_key as string;
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  for (const [k, list] of byKey) {
    const real = list.filter(
      (r) =>
        !['skipped_overlap', 'skipped_misfire', 'cancelled', 'waiting'].includes(
          r.status as string,
        ),
    );
    for (let i = 1; i < real.length; i++) {
      const a = real[i - 1] as Record<string, number | string | null>;
      const b = real[i] as Record<string, number | string | null>;
      if (a.finished_at === null || (a.finished_at as number) > (b.started_at as number))
        overlaps.push(
          `${k}: run ${a.id} (${a.started_at}-${a.finished_at}) and ${b.id} (${b.started_at})`,
        );
    }
  }
  assert.deepEqual(overlaps, [], 'overlapping runs of one schedule');
  assert.equal(runs.filter((r) => r.status === 'running').length, 0, 'runs left running');

  // No row written under an epoch after that epoch's ownership ended.
  const stale = await sql.query(
    `SELECT r.id, r.tenant, r.epoch, r.status, r.started_at, r.finished_at, h.claimed_at
     FROM runs r JOIN hg_lease_history h ON h.tenant = r.tenant AND h.epoch = r.epoch + 1
     WHERE GREATEST(r.started_at, COALESCE(r.finished_at, 0)) > extract(epoch FROM h.claimed_at) * 1000`,
  );
  assert.deepEqual(stale.rows, [], 'rows accepted under an epoch that had ended');
  const refused = await sql.query<{ batches: number; rows: number }>(
    'SELECT count(*)::int AS batches, COALESCE(sum(rows), 0)::int AS rows FROM hg_fence_rejections',
  );

  // Every nominal tick between the first host's start and the end is accounted for.
  const schedules = (
    await sql.query<Record<string, number | string | null>>('SELECT * FROM schedules')
  ).rows;
  assert.equal(schedules.length, expectedSchedules);
  const missing: string[] = [];
  const cursorOff: string[] = [];
  for (const row of schedules) {
    const s = {
      key: row.key,
      spec: sharedSpec(row.spec as string),
      anchorAt: row.anchor_at,
      nextAt: row.next_at,
      state: row.state,
      bufferedAt: row.buffered_at,
    } as unknown as ScheduleRecord;
    const list = (byKey.get(row.key as string) ?? []).map(
      (r) => ({ scheduledAt: r.scheduled_at, coversUntil: r.covers_until }) as unknown as RunRecord,
    );
    const gaps = unaccounted(s, list, [[row.created_at as number, end - 1_000]]);
    if (gaps.length > 0)
      missing.push(`${row.key as string}: ${gaps.length} tick(s), first ${gaps[0]}`);
    const n = row.cursor ? ((JSON.parse(row.cursor as string) as { n?: number }).n ?? 0) : 0;
    const succeeded = (byKey.get(row.key as string) ?? []).filter(
      (r) => r.status === 'succeeded',
    ).length;
    if (n !== succeeded)
      cursorOff.push(`${row.key as string}: cursor ${n}, succeeded runs ${succeeded}`);
  }
  assert.deepEqual(missing, [], 'ticks with no record');
  assert.deepEqual(cursorOff, [], 'cursors that do not count the succeeded runs');

  return {
    runs,
    refused: refused.rows[0] ?? { batches: 0, rows: 0 },
  };
}

/** Writes the proxy guest's manifest (no capabilities) in `dir`; returns its path. */
export function proxyManifest(dir: string): string {
  const manifest = join(dir, 'proxy.json');
  writeFileSync(
    manifest,
    JSON.stringify({ name: 'proxy', version: '1.0.0', wasm: GUEST.proxy, capabilities: [] }),
  );
  return manifest;
}
