import { scheduleId } from './schemas.ts';
import { defineHostFunction } from './types.ts';

/** Pauses one of the caller's schedules, with an optional note shown to operators. */
export const schedulePause = defineHostFunction<{ id: string; note?: string }>({
  name: 'schedule_pause',
  phases: ['run'],
  fuelCost: 20_000,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['id'],
    properties: { id: scheduleId, note: { type: 'string', maxLength: 500 } },
  },
  handle: (services, caller, req) => services.schedules.pause(caller, req.id, req.note ?? null),
});
