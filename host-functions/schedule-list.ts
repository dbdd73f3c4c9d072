import { scheduleId } from './schemas.ts';
import { defineHostFunction, FUEL_PER_SCHEDULE_SCANNED } from './types.ts';

/**
 * Lists the caller's schedules in id order, a page at a time: at most `limit` schedules and at
 * most `MAX_LIST_PAGE_BYTES` of them (`next` continues). Priced per schedule read, on top of
 * the answer's bytes.
 */
export const scheduleList = defineHostFunction<{ limit?: number; after?: string }>({
  name: 'schedule_list',
  phases: ['discovery', 'run'],
  fuelCost: 50_000,
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { limit: { type: 'integer', minimum: 1, maximum: 500 }, after: scheduleId },
  },
  // Each schedule of the page, and the one read ahead to know whether a next page exists.
  workFuel: (_req, result) =>
    'ok' in result
      ? FUEL_PER_SCHEDULE_SCANNED * (1 + (result.ok as { schedules: unknown[] }).schedules.length)
      : 0,
  handle: (services, caller, req) =>
    services.schedules.list(caller, req.limit ?? 100, req.after ?? null),
});
