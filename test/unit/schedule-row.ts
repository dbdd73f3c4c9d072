/** One `ScheduleRecord` builder for tests that write rows straight into a store. */
import type { ScheduleRecord } from '../../src/store/types.ts';

/** 2026-01-15T10:00:00Z. */
const T0 = Date.parse('2026-01-15T10:00:00Z');

/**
 * A row of plugin `<tenant>/<plugin>` (plugin `p` unless given): an active 1-minute interval
 * created at `at` (T0 unless given), with `fields` overriding any column.
 */
export function scheduleRow(
  tenant: string,
  localId: string,
  fields: Partial<ScheduleRecord> & { readonly plugin?: string; readonly at?: number } = {},
): ScheduleRecord {
  const { plugin = 'p', at = T0, ...rest } = fields;
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
    scope: 'cluster',
    priority: 5,
    declHash: 'h',
    state: 'active',
    pauseNote: null,
    anchorAt: at,
    nextAt: null,
    cursor: null,
    bufferedAt: null,
    createdAt: at,
    updatedAt: at,
    retry: null,
    job: null,
    breakerAfter: null,
    failStreak: 0,
    ...rest,
  };
}
