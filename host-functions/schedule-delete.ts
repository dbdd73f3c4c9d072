import { idRequest } from './schemas.ts';
import { defineHostFunction } from './types.ts';

/** Deletes one of the caller's schedules (its run history is kept). */
export const scheduleDelete = defineHostFunction<{ id: string }>({
  name: 'schedule_delete',
  phases: ['run'],
  fuelCost: 20_000,
  schema: idRequest,
  handle: (services, caller, req) => services.schedules.delete(caller, req.id),
});
