import { idRequest } from './schemas.ts';
import { defineHostFunction } from './types.ts';

/** Resumes one of the caller's paused schedules from the next tick after now. */
export const scheduleResume = defineHostFunction<{ id: string }>({
  name: 'schedule_resume',
  phases: ['run'],
  fuelCost: 20_000,
  schema: idRequest,
  handle: (services, caller, req) => services.schedules.resume(caller, req.id),
});
