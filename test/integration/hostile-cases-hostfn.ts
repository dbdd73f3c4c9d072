/**
 * Hostile-corpus cases for host functions (issue 9 items 5, 12, 13): answers bounded before they
 * are built, host calls priced by their work and held to a share of the main thread, bounded
 * cron validation, representable declarations, listing that survives a bad row, deep JSON.
 */
import assert from 'node:assert/strict';
import type { HostileCase, HostileContext } from './hostile-case.ts';

const call = (fn: string, args: unknown) => ({ fn, args });
const raw = (fn: string, text: string) => ({ fn, raw: text });
const deepText = (n: number) => '['.repeat(n) + ']'.repeat(n);
/** A value nested `n` arrays deep (built without recursion). */
function deepValue(n: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < n; i++) v = [v];
  return v;
}

const RUN_FUNCTIONS = [
  'schedule_create',
  'schedule_pause',
  'schedule_resume',
  'schedule_delete',
  'schedule_get',
  'schedule_list',
];

interface Response {
  readonly ok?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
}

/** The proxy's host-call responses in the latest run of `localId`. */
function responses(ctx: HostileContext, localId: string): Response[] {
  const run = ctx.runs(localId).at(-1);
  assert.ok(run, `${localId} ran`);
  return (JSON.parse(run.result ?? '{}') as { responses?: Response[] }).responses ?? [];
}

const codes = (rs: readonly Response[]) => rs.map((r) => r.error?.code ?? 'ok');

export const CASES: readonly HostileCase[] = [
  {
    // 500 schedules with 64 KB payloads, then schedule_list {"limit":500} in a loop: each page
    // stops at 64 KiB, so no 32 MB answer is built. The share is lifted (1,000 ms per second)
    // so that only the page bound protects the good tenant here.
    name: 'list-page-bomb',
    item: '5',
    guest: { wat: 'list-bomb' },
    capabilities: ['schedule_create', 'schedule_list'],
    limits: { fuel: { run: 150_000_000 }, timeoutMs: 60_000, memoryPages: 16 },
    quotas: { hostCallMsPerSecond: 1_000, maxSchedules: 600, maxPayloadBytes: 65_536 },
    expect: { trigger: 'bomb', status: 'out_of_fuel', reason: 'out_of_fuel' },
    check: (ctx) => {
      assert.equal(ctx.host.store.countLiveSchedules(ctx.tenant), 501);
      const page = ctx.host.schedules.list(
        { pluginId: ctx.pluginId, tenant: ctx.tenant, phase: 'run' },
        500,
        null,
      );
      assert.ok('ok' in page);
      assert.ok(page.ok.schedules.length <= 2 && page.ok.next !== null);
    },
  },
  {
    // Host calls as fast as a worker can make them: past the tenant's share of the main thread
    // (default 100 ms per second) they are answered `busy` at once; fuel still ends the loop.
    name: 'hostcall-storm',
    item: '5',
    guest: { wat: 'hostcall-storm' },
    capabilities: ['schedule_list'],
    limits: { fuel: { run: 3_000_000_000 }, timeoutMs: 60_000 },
    expect: { trigger: 'storm', status: 'out_of_fuel', reason: 'out_of_fuel' },
  },
  {
    // A cron that never fires, 300 times: each validation is a search bounded to 5 years
    // (~0.1 ms, not croner's 2-20 ms), priced 300,000 fuel, refused `invalid_argument`.
    name: 'never-firing-cron',
    item: '5',
    guest: {
      proxy: [
        {
          id: 'cron',
          every: '1h',
          payload: {
            calls: Array.from({ length: 300 }, (_, i) =>
              call('schedule_create', { id: `c${i}`, cron: '0 0 31 2 *' }),
            ),
          },
        },
      ],
    },
    limits: { fuel: { run: 500_000_000 } },
    expect: { trigger: 'cron', status: 'succeeded' },
    check: (ctx) => {
      const got = codes(responses(ctx, 'cron'));
      assert.equal(got.length, 300);
      assert.equal(got[0], 'invalid_argument');
      assert.ok(
        got.every((c) => c === 'invalid_argument' || c === 'busy'),
        got.join(' '),
      );
      assert.equal(ctx.host.store.countLiveSchedules(ctx.tenant), 1);
    },
  },
  {
    // 10,000-deep JSON in a request to every run-phase host function: `invalid_argument`.
    name: 'deep-json-requests',
    item: '13',
    guest: {
      proxy: [
        {
          id: 'deep',
          every: '1h',
          payload: {
            calls: RUN_FUNCTIONS.map((fn) => raw(fn, `{"id":"a","payload":${deepText(10_000)}}`)),
          },
        },
      ],
      discoveryCalls: [raw('jobs_register', `{"name":"j","input":${deepText(10_000)}}`)],
    },
    quotas: { maxPayloadBytes: 200_000 },
    limits: { fuel: { run: 500_000_000, discovery: 500_000_000 } },
    expect: { trigger: 'deep', status: 'succeeded' },
    check: (ctx) => {
      const rs = responses(ctx, 'deep');
      assert.deepEqual(
        codes(rs),
        RUN_FUNCTIONS.map(() => 'invalid_argument'),
      );
      for (const r of rs) assert.match(r.error?.message ?? '', /deeper than 64 levels/);
    },
  },
  {
    // A run whose output is 10,000 levels deep: a typed failure, not an internal error.
    name: 'deep-json-output',
    item: '13',
    guest: {
      proxy: [{ id: 'out', every: '1h', payload: { output: `{"result":${deepText(10_000)}}` } }],
    },
    quotas: { maxOutputBytes: 100_000 },
    limits: { fuel: { run: 500_000_000 } },
    expect: { trigger: 'out', status: 'failed', reason: 'invalid_output' },
  },
  {
    // schedules() output with a payload 2,000 levels deep: the plugin fails to load, typed.
    name: 'deep-json-discovery',
    item: '13',
    guest: { proxy: [{ id: 'a', every: '1h', payload: deepValue(2_000) }] },
    expect: { loadFails: 'HG_DISCOVERY_FAILED' },
  },
  {
    // A declared interval no date can reach (it made `hourglass schedules` fail for every
    // tenant): refused at discovery.
    name: 'every-99999999d-declared',
    item: '12',
    guest: { proxy: [{ id: 'far', every: '99999999d' }] },
    expect: { loadFails: 'HG_DECLARATION_INVALID' },
  },
  {
    // The same at runtime, and its siblings (`at` in 9999, huge jitter, a cron year 9999):
    // each `invalid_argument`, and the plugin's listing still answers.
    name: 'far-times-runtime',
    item: '12',
    guest: {
      proxy: [
        {
          id: 'far',
          every: '1h',
          payload: {
            calls: [
              call('schedule_create', { id: 'f1', every: '99999999d' }),
              call('schedule_create', { id: 'f2', at: '9999-12-31T23:59:59Z' }),
              call('schedule_create', { id: 'f3', every: '1h', jitter: '99999999d' }),
              call('schedule_create', { id: 'f4', cron: '0 0 0 1 1 * 9999' }),
              call('schedule_list', {}),
            ],
          },
        },
      ],
    },
    limits: { fuel: { run: 500_000_000 } },
    expect: { trigger: 'far', status: 'succeeded' },
    check: (ctx) => {
      assert.deepEqual(codes(responses(ctx, 'far')), [
        'invalid_argument',
        'invalid_argument',
        'invalid_argument',
        'invalid_argument',
        'ok',
      ]);
    },
  },
  {
    // A stored row no Date can hold and whose payload is not JSON (written before the bounds,
    // or damaged): the plugin's schedule_list still answers, with that row's time as null.
    name: 'bad-stored-row-listing',
    item: '12',
    guest: {
      proxy: [{ id: 'lister', every: '1h', payload: { calls: [call('schedule_list', {})] } }],
    },
    limits: { fuel: { run: 500_000_000 } },
    expect: { custom: true },
    check: async (ctx) => {
      const lister = ctx.host.store.getSchedule(`${ctx.pluginId}/lister`);
      assert.ok(lister);
      ctx.host.store.insertSchedule({
        ...lister,
        key: `${ctx.pluginId}/old`,
        localId: 'old',
        spec: { kind: 'every', every: '99999999d', everyMs: 99_999_999 * 86_400_000 },
        nextAt: 99_999_999 * 86_400_000 + lister.createdAt,
        payload: '{"broken":',
      });
      const run = await ctx.trigger('lister');
      assert.equal(run.status, 'succeeded', `${run.status} ${run.reason} ${run.error}`);
      const [r] = responses(ctx, 'lister');
      const views = (r?.ok as { schedules: { id: string; nextRunAt: unknown }[] }).schedules;
      assert.deepEqual(
        views.map((v) => [v.id, v.nextRunAt === null]),
        [
          ['lister', false],
          ['old', true],
        ],
      );
    },
  },
];
