import { declarationSchema } from '../src/schedule/declaration.ts';
import { defineHostFunction, FUEL_PER_CRON_SEARCH } from './types.ts';

/** Creates a runtime schedule owned by the calling plugin; it survives restarts and reloads. */
export const scheduleCreate = defineHostFunction<Record<string, unknown>>({
  name: 'schedule_create',
  phases: ['discovery', 'run'],
  fuelCost: 50_000,
  schema: declarationSchema,
  // A cron is searched twice (first fire, gap sample), each search bounded (src/schedule/spec.ts).
  workFuel: (req) => (req.cron === undefined ? 0 : 2 * FUEL_PER_CRON_SEARCH),
  handle: (services, caller, req) => services.schedules.create(caller, req),
});
