/** Request fragments shared by several host functions. */
import { SCHEDULE_ID_PATTERN } from '../src/schedule/declaration.ts';

export const scheduleId = { type: 'string', pattern: SCHEDULE_ID_PATTERN } as const;

export const idRequest = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: scheduleId },
} as const;
