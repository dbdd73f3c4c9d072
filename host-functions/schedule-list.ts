import { scheduleId } from './schemas.ts';
import { defineHostFunction } from './types.ts';

/** Lists the caller's schedules in id order, a page at a time. */
export const scheduleList = defineHostFunction<{ limit?: number; after?: string }>({
  name: 'schedule_list',
  phases: ['discovery', 'run'],
  fuelCost: 50_000,
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { limit: { type: 'integer', minimum: 1, maximum: 500 }, after: scheduleId },
  },
  handle: (services, caller, req) =>
    services.schedules.list(caller, req.limit ?? 100, req.after ?? null),
});
