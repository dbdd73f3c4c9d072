import { SCHEDULE_ID_PATTERN } from '../src/schedule/declaration.ts';
import { retrySchema } from '../src/schedule/retry.ts';
import { defineHostFunction, FUEL_PER_CRON_SEARCH, type JobContract } from './types.ts';

/** Declares a job contract. Discovery only: the contracts of one discovery replace the last. */
export const jobsRegister = defineHostFunction<JobContract>({
  name: 'jobs_register',
  phases: ['discovery'],
  fuelCost: 50_000,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: SCHEDULE_ID_PATTERN },
      displayName: { type: 'string', maxLength: 200 },
      description: { type: 'string', maxLength: 2000 },
      cron: { type: 'string', minLength: 1, maxLength: 200 },
      timezone: { type: 'string', minLength: 1, maxLength: 64 },
      concurrency: { type: 'integer', minimum: 1, maximum: 64 },
      timeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
      input: { type: 'object', maxProperties: 256 },
      retry: retrySchema,
    },
  },
  // A cron is parsed (not searched): priced like one search, which it costs at most.
  workFuel: (req) => (req.cron === undefined ? 0 : FUEL_PER_CRON_SEARCH),
  handle: (services, caller, req) => services.registerJob(caller, req),
});
