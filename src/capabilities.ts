/** Host functions a plugin can ask for (manifest) and a tenant can grant (config). */
export const CAPABILITIES = [
  'jobs_register',
  'schedule_create',
  'schedule_pause',
  'schedule_resume',
  'schedule_delete',
  'schedule_get',
  'schedule_list',
] as const;

export type Capability = (typeof CAPABILITIES)[number];

export function isCapability(name: string): name is Capability {
  return (CAPABILITIES as readonly string[]).includes(name);
}
