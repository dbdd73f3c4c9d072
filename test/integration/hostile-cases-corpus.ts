/**
 * The corpus as it stood before issue 9 (item `corpus`), one case per behaviour, with the exact
 * outcomes the old all-in-one test asserted: the proxy guest's hostile declarations, the
 * hand-written `.wat` guests, and the guests that must fail to load.
 *
 * Each triggered case runs twice (as the old test fired two rounds) and checks the fuel on every
 * record: a run that ends `out_of_fuel` or `timed_out` used exactly its budget, any other used
 * some. Guest-visible host-call errors are read from the proxy's / wat guest's result JSON.
 */
import assert from 'node:assert/strict';
import { CAPABILITIES } from '../../src/capabilities.ts';
import type { HostileCase, HostileContext } from './hostile-case.ts';

/**
 * The old test's limits: CPU-bound wat guests end on fuel long before their 5 s deadline; the
 * AssemblyScript proxy parses its declarations and payloads (up to ~350 KB) in discovery and
 * run, hence its larger budgets.
 */
const WAT_LIMITS = {
  timeoutMs: 5_000,
  memoryPages: 32,
  fuel: { run: 20_000_000, cleanup: 5_000_000 },
};
const PROXY_LIMITS = {
  timeoutMs: 5_000,
  memoryPages: 64,
  fuel: { discovery: 500_000_000, run: 200_000_000, cleanup: 5_000_000 },
};
const PROXY_RUN_FUEL = PROXY_LIMITS.fuel.run;
const WAT_RUN_FUEL = WAT_LIMITS.fuel.run;

/** `over` on `base`, `fuel` merged per phase. */
function limits(
  base: typeof WAT_LIMITS | typeof PROXY_LIMITS,
  over: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  const fuel = over.fuel as Record<string, number> | undefined;
  return { ...base, ...over, fuel: { ...base.fuel, ...fuel } };
}
/** The tenant default `maxFuelPerCall`, which caps slow-spin's 1e12. */
const TENANT_MAX_FUEL = 1e10;

/** The host functions a run may call (jobs_register is discovery-only). */
const RUN_FUNCTIONS = [
  'schedule_create',
  'schedule_pause',
  'schedule_resume',
  'schedule_get',
  'schedule_list',
];

const call = (fn: string, args: unknown) => ({ fn, args });

interface Responses {
  responses?: { error?: { code: string } }[];
}
const responses = (result: string | null) =>
  ((JSON.parse(result ?? '{}') as Responses).responses ?? []).map((x) => x.error?.code);

/** Fuel on every manual run of `localId`: exact budget when it ran out, some otherwise. */
function fuelCheck(localId: string, budget: number) {
  return (ctx: HostileContext) => {
    for (const r of ctx.runs(localId).filter((x) => x.trigger === 'manual')) {
      const what = `${localId}: ${r.status} ${r.fuelUsed}/${r.fuelBudget}`;
      assert.equal(r.fuelBudget, budget, what);
      if (r.status === 'out_of_fuel' || r.status === 'timed_out')
        assert.equal(r.fuelUsed, r.fuelBudget, what);
      else assert.ok(r.fuelUsed !== null && r.fuelUsed > 0, what);
    }
  };
}

/** The guest-visible host-call error codes of every manual run: all, or only the last. */
function hostErrors(localId: string, codes: readonly string[], lastOnly = false) {
  return (ctx: HostileContext) => {
    for (const r of ctx.runs(localId).filter((x) => x.trigger === 'manual')) {
      const got = responses(r.result);
      if (lastOnly) assert.equal(got.at(-1), codes[0], `${localId}: ${JSON.stringify(got)}`);
      else assert.deepEqual(got, codes, localId);
    }
  };
}

/** A proxy case: one declaration `id` (every 1h) with `payload`, triggered twice. */
function proxy(
  name: string,
  payload: Record<string, unknown>,
  status: string,
  extra: Partial<HostileCase> & { reason?: string } = {},
): HostileCase {
  const { reason, ...rest } = extra;
  const check = rest.check;
  return {
    name,
    item: 'corpus',
    guest: { proxy: [{ id: 'p', every: '1h', payload }] },
    ...rest,
    limits: limits(PROXY_LIMITS, rest.limits),
    expect: { trigger: 'p', times: 2, status, ...(reason ? { reason } : {}) },
    check: async (ctx) => {
      fuelCheck('p', PROXY_RUN_FUEL)(ctx);
      await check?.(ctx);
    },
  };
}

/** A wat case: guest `wat` declares schedule `id`; triggered twice. */
function wat(
  name: string,
  id: string,
  status: string,
  extra: Partial<HostileCase> & { reason?: string; budget?: number } = {},
): HostileCase {
  const { reason, budget, ...rest } = extra;
  const check = rest.check;
  return {
    name,
    item: 'corpus',
    guest: { wat: name },
    ...rest,
    limits: limits(WAT_LIMITS, rest.limits),
    expect: { trigger: id, times: 2, status, ...(reason ? { reason } : {}) },
    check: async (ctx) => {
      fuelCheck(id, budget ?? WAT_RUN_FUEL)(ctx);
      await check?.(ctx);
    },
  };
}

const loadFails = (name: string, code: string): HostileCase => ({
  name,
  item: 'corpus',
  guest: { wat: name },
  limits: WAT_LIMITS,
  expect: { loadFails: code },
});

export const CASES: readonly HostileCase[] = [
  // ---- the AssemblyScript proxy guest, told what to do by its declarations ----
  proxy('proxy-spin', { spin: true }, 'out_of_fuel', { reason: 'out_of_fuel' }),
  proxy('proxy-abort', { trap: 'guest gave up' }, 'trapped', { reason: 'abort' }),
  proxy('proxy-garbage-output', { output: '{"cursor":' }, 'failed', { reason: 'invalid_output' }),
  proxy('proxy-huge-output', { output: 'x'.repeat(3_000) }, 'failed', {
    reason: 'output_too_large',
    quotas: { maxOutputBytes: 2_000 },
  }),
  proxy(
    'proxy-late-register',
    { calls: [call('jobs_register', { name: 'late' })] },
    'host_call_denied',
  ),
  proxy(
    'proxy-over-quota',
    {
      calls: [
        call('schedule_create', { id: 'a', every: '1h' }),
        call('schedule_create', { id: 'b', every: '1h' }),
      ],
    },
    'succeeded',
    {
      // One declared: the first runtime create fits, the second does not.
      quotas: { maxSchedules: 2 },
      check: hostErrors('p', ['quota_exceeded'], true),
    },
  ),
  proxy(
    'proxy-too-often',
    { calls: [call('schedule_create', { id: 'fast', every: '10ms' })] },
    'succeeded',
    { check: hostErrors('p', ['quota_exceeded'], true) },
  ),
  proxy(
    'proxy-huge-request',
    { calls: [{ fn: 'schedule_get', raw: 'x'.repeat(70_000) }] },
    'succeeded',
    { quotas: { maxPayloadBytes: 400_000 }, check: hostErrors('p', ['too_large'], true) },
  ),
  proxy(
    'proxy-malformed-json',
    { calls: RUN_FUNCTIONS.map((fn) => ({ fn, raw: '{"id": "a", "every": [' })) },
    'succeeded',
    {
      check: hostErrors(
        'p',
        RUN_FUNCTIONS.map(() => 'invalid_argument'),
      ),
    },
  ),
  proxy(
    'proxy-enormous-json',
    { calls: RUN_FUNCTIONS.map((fn) => ({ fn, raw: `{"id":"${'a'.repeat(66_000)}"}` })) },
    'succeeded',
    {
      quotas: { maxPayloadBytes: 400_000 },
      check: hostErrors(
        'p',
        RUN_FUNCTIONS.map(() => 'too_large'),
      ),
    },
  ),
  proxy(
    'proxy-not-granted',
    { calls: [call('schedule_delete', { id: 'p' })] },
    'host_call_denied',
    { capabilities: CAPABILITIES.filter((c) => c !== 'schedule_delete') },
  ),
  proxy('proxy-grow-bomb', { growPages: 1_000 }, 'succeeded', {
    // The plugin's memory cap (64 pages) is the module's declared maximum: growing past it fails.
    check: (ctx) => {
      for (const r of ctx.runs('p').filter((x) => x.trigger === 'manual'))
        assert.equal((JSON.parse(r.result ?? '{}') as { grew?: number }).grew, -1);
    },
  }),
  {
    // jobs_register only works in discovery: malformed and enormous requests there get error
    // answers, and the plugin still loads and runs.
    name: 'proxy-discovery-bad-requests',
    item: 'corpus',
    limits: PROXY_LIMITS,
    guest: {
      proxy: [{ id: 'p', every: '1h' }],
      discoveryCalls: [
        { fn: 'jobs_register', raw: '{"name": ' },
        { fn: 'jobs_register', raw: `{"name":"${'n'.repeat(70_000)}"}` },
      ],
    },
    expect: { trigger: 'p', status: 'succeeded' },
  },

  // ---- hand-written wat guests ----
  wat('trap', 'boom', 'trapped', { reason: 'trap' }),
  wat('error-then-trap', 'et', 'trapped', { reason: 'trap' }),
  wat('deep-recursion', 'deep', 'stack_overflow', { reason: 'call_depth' }),
  wat('memory-bomb', 'bomb', 'memory_limit', { reason: 'memory_cap' }),
  wat('exponential-calls', 'tree', 'out_of_fuel'),
  wat('host-flood', 'flood', 'out_of_fuel'),
  wat('spin', 'spin', 'out_of_fuel'),
  wat('grow-loop', 'grow', 'out_of_fuel'),
  wat('copy-loop', 'copy', 'out_of_fuel'),
  // Hourglass's kernel refuses an `alloc` past the allowance at once and keeps nothing (the
  // SDK's took ~300 µs and kept the block), so the loop ends out of fuel (docs/sandbox-kernel.md).
  wat('alloc-bomb', 'alloc', 'out_of_fuel', { reason: 'out_of_fuel', capabilities: [] }),
  {
    // Fuel outlasts the deadline: the worker is stopped and the run recorded timed_out.
    ...wat('spin', 'spin', 'timed_out', {
      reason: 'deadline',
      capabilities: [],
      limits: { timeoutMs: 400, fuel: { run: 1e12 } },
      budget: TENANT_MAX_FUEL,
    }),
    name: 'slow-spin',
  },
  wat('error-set', 'err', 'failed', { reason: 'guest_error' }),
  wat('nonzero-return', 'nz', 'failed', { reason: 'nonzero_return' }),
  wat('bad-args', 'bad', 'succeeded', {
    check: hostErrors('bad', ['invalid_argument'], true),
  }),
  wat('forged-id', 'forger', 'succeeded', { check: hostErrors('forger', ['not_found'], true) }),
  {
    // cleanup() never returns: unloading the plugin must still finish (the deadline ends it).
    name: 'cleanup-loops',
    item: 'corpus',
    limits: WAT_LIMITS,
    guest: { wat: 'cleanup-loops' },
    expect: { custom: true },
    check: async (ctx) => {
      await ctx.host.unloadPlugin(ctx.pluginId);
      assert.equal(ctx.host.store.getPlugin(ctx.pluginId)?.status, 'unloaded');
    },
  },

  // ---- guests that must fail to load (the host runs on) ----
  loadFails('missing-run', 'HG_PLUGIN_LOAD'),
  loadFails('start-trap', 'HG_PLUGIN_LOAD'),
  loadFails('check-unknown-import', 'HG_PLUGIN_LOAD'),
  loadFails('garbage-schedules', 'HG_DISCOVERY_FAILED'),
  loadFails('check-invalid-cron', 'HG_DECLARATION_INVALID'),
];
