/**
 * One schedule row for tests that write the store directly: a declared `every: 1m` schedule,
 * active, created at `at`, with `over` applied last. The key is `tenant/plugin/localId`.
 */
import type { ScheduleRecord } from '../src/store/types.ts';

export function scheduleRow(
  tenant: string,
  plugin: string,
  localId: string,
  at: number,
  over: Partial<ScheduleRecord> = {},
): ScheduleRecord {
  const pluginId = `${tenant}/${plugin}`;
  return {
    key: `${pluginId}/${localId}`,
    pluginId,
    tenant,
    localId,
    origin: 'declared',
    spec: { kind: 'every', every: '1m', everyMs: 60_000 },
    jitter: null,
    jitterMs: 0,
    payload: null,
    overlap: 'skip',
    misfire: 'skip',
    description: null,
    declHash: 'h',
    state: 'active',
    pauseNote: null,
    anchorAt: at,
    nextAt: null,
    cursor: null,
    bufferedAt: null,
    createdAt: at,
    updatedAt: at,
    ...over,
  };
}
