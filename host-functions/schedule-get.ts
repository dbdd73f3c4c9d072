import { idRequest } from './schemas.ts';
import { defineHostFunction } from './types.ts';

/** Reads one of the caller's schedules. */
export const scheduleGet = defineHostFunction<{ id: string }>({
  name: 'schedule_get',
  phases: ['discovery', 'run'],
  fuelCost: 10_000,
  schema: idRequest,
  handle: (services, caller, req) => services.schedules.get(caller, req.id),
});
