/**
 * What a plugin can ask for (manifest `capabilities`) and a tenant can grant (config): each
 * Hourglass host function by name, and `http`, outbound HTTP through Extism's own kernel
 * imports (`http_request`; docs/guest-abi.md), which also needs hosts on both allowlists.
 */
export const HOST_FUNCTIONS = [
  'jobs_register',
  'schedule_create',
  'schedule_pause',
  'schedule_resume',
  'schedule_delete',
  'schedule_get',
  'schedule_list',
] as const;

export type HostFunctionName = (typeof HOST_FUNCTIONS)[number];

export const CAPABILITIES = [...HOST_FUNCTIONS, 'http'] as const;

export type Capability = (typeof CAPABILITIES)[number];

export function isCapability(name: string): name is Capability {
  return (CAPABILITIES as readonly string[]).includes(name);
}

/** Whether `name` is one of Hourglass's host functions (imports of `HOST_NAMESPACE`). */
export function isHostFunction(name: string): name is HostFunctionName {
  return (HOST_FUNCTIONS as readonly string[]).includes(name);
}
