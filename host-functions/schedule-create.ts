import { declarationSchema } from '../src/schedule/declaration.ts';
import { defineHostFunction } from './types.ts';

/** Creates a runtime schedule owned by the calling plugin; it survives restarts and reloads. */
export const scheduleCreate = defineHostFunction<Record<string, unknown>>({
  name: 'schedule_create',
  phases: ['discovery', 'run'],
  fuelCost: 50_000,
  schema: declarationSchema,
  handle: (services, caller, req) => services.schedules.create(caller, req),
});
