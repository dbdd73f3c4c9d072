/**
 * Host functions priced by their work and bounded (issue 9 items 5, 12, 13), through the real
 * host, store, pool and guests: `schedule_list` pages bounded by bytes, fuel for schedules read
 * and cron searches reaching the guest's meter, the per-tenant main-thread share (`busy`),
 * 10,000-deep JSON on every parse path, and listing that survives one bad stored row.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { dispatchHostCall, HOST_CALL_FUEL } from '../../host-functions/registry.ts';
import {
  FUEL_PER_CRON_SEARCH,
  FUEL_PER_SCHEDULE_SCANNED,
  MAX_LIST_PAGE_BYTES,
  type ScheduleView,
} from '../../host-functions/types.ts';
import { isHourglassError } from '../../src/errors.ts';
import { DEFAULT_LIMITS } from '../../src/plugin/manifest.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import { WorkerPoolSandbox } from '../../src/sandbox/pool/worker-pool-sandbox.ts';
import type { CallerContext, HostCallAnswer } from '../../src/sandbox/types.ts';
import {
  GUEST,
  T0,
  ManualClock,
  decls,
  makeConfig,
  startHost,
  tempDir,
  triggerRun,
} from './helpers.ts';

const call = (fn: string, args: unknown) => ({ fn, args });
const raw = (fn: string, text: string) => ({ fn, raw: text });
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const RUN_FUNCTIONS = [
  'schedule_create',
  'schedule_pause',
  'schedule_resume',
  'schedule_delete',
  'schedule_get',
  'schedule_list',
];

test('schedule_list pages are bounded by bytes; following `next` visits every schedule once', async (t) => {
  const dir = tempDir(t);
  const big = (i: number) => ({
    id: `s${String(i).padStart(2, '0')}`,
    every: '1h',
    payload: 'x'.repeat(30_000),
  });
  const config = makeConfig(dir, [
    {
      id: 't',
      quotas: { maxPayloadBytes: 40_000 },
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: {
            schedules: decls(...Array.from({ length: 10 }, (_, i) => big(i)), {
              id: 'lister',
              every: '1h',
              payload: { calls: [call('schedule_list', {})] },
            }),
          },
        },
      ],
    },
  ]);
  const { host } = await startHost(config, new ManualClock(T0));
  try {
    const caller: CallerContext = { pluginId: 't/p', tenant: 't', phase: 'run' };
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const r = host.schedules.list(caller, 500, after);
      assert.ok('ok' in r);
      const page: { schedules: ScheduleView[]; next: string | null } = r.ok;
      pages++;
      assert.ok(page.schedules.length >= 1);
      // A page stops at the byte budget (the first schedule always fits).
      const bytes = Buffer.byteLength(JSON.stringify(page));
      assert.ok(bytes <= MAX_LIST_PAGE_BYTES + 1_024, `page of ${bytes} bytes`);
      seen.push(...page.schedules.map((s) => s.id));
      after = page.next;
    } while (after !== null && pages < 100);
    assert.deepEqual(seen, [...seen].sort());
    assert.deepEqual(seen, [...Array.from({ length: 10 }, (_, i) => big(i).id), 'lister'].sort());
    assert.ok(pages >= 5, `${pages} pages`);
    // `limit` still bounds a page of small schedules.
    const two = host.schedules.list(caller, 2, null);
    assert.ok('ok' in two);
    assert.deepEqual(
      two.ok.schedules.map((s) => s.id),
      ['lister', 's00'].sort().slice(0, 2),
    );

    // The guest sees the same bounded page.
    const { result } = await triggerRun(host, 't/p/lister');
    const page = result.responses[0]?.ok as { schedules: ScheduleView[]; next: string | null };
    assert.ok(page.schedules.length >= 1 && page.schedules.length < 11);
    assert.equal(page.next, page.schedules.at(-1)?.id);
  } finally {
    await host.stop();
  }
});

test('host calls are priced by their work: schedules read, cron searches', async (t) => {
  const dir = tempDir(t);
  const config = makeConfig(dir, [
    {
      id: 't',
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: {
            schedules: decls(...['a', 'b', 'c', 'd'].map((id) => ({ id, every: '1h' }))),
          },
        },
      ],
    },
  ]);
  const { host } = await startHost(config, new ManualClock(T0));
  try {
    const caller: CallerContext = { pluginId: 't/p', tenant: 't', phase: 'run' };
    const list = (limit: number) =>
      dispatchHostCall(host, caller, 'schedule_list', JSON.stringify({ limit }));
    // The page and the one schedule read ahead.
    assert.equal(list(1).fuel, 2 * FUEL_PER_SCHEDULE_SCANNED);
    assert.equal(list(3).fuel, 4 * FUEL_PER_SCHEDULE_SCANNED);
    assert.equal(list(500).fuel, 5 * FUEL_PER_SCHEDULE_SCANNED); // four schedules: no more to read
    const create = (req: unknown) =>
      dispatchHostCall(host, caller, 'schedule_create', JSON.stringify(req));
    const never = create({ id: 'n', cron: '0 0 31 2 *' });
    assert.equal((never.result as { error: { code: string } }).error.code, 'invalid_argument');
    assert.equal(never.fuel, 2 * FUEL_PER_CRON_SEARCH);
    assert.equal(create({ id: 'n', every: '99999999d' }).fuel, 0);
    // Refused before the handler: no work, no work fuel.
    assert.equal(create({ id: 'n', cron: 5 }).fuel, 0);
  } finally {
    await host.stop();
  }
});

test('the work fuel and the denial of an answer reach the guest’s meter exactly (in-thread and through the pool channel)', async () => {
  const wasm = new Uint8Array(readFileSync(GUEST.wat('forged-id')));
  const caller: CallerContext = { pluginId: 't/f', tenant: 't', phase: 'run' };
  const answer = '{"error":{"code":"not_found","message":"no"}}';
  let reply: HostCallAnswer = { answer, fuel: 0, denied: null };
  for (const kind of ['in-thread', 'pool'] as const) {
    const hostCall = () => reply;
    const sandbox =
      kind === 'pool'
        ? new WorkerPoolSandbox({ hostCall, hostCallFuel: HOST_CALL_FUEL, size: 1 })
        : new InThreadSandbox({ hostCall, hostCallFuel: HOST_CALL_FUEL });
    try {
      await sandbox.load({
        pluginId: 't/f',
        tenant: 't',
        wasm,
        config: {},
        limits: DEFAULT_LIMITS,
      });
      const run = () => sandbox.call('t/f', { fn: 'run', input: '{}', caller });
      reply = { answer, fuel: 0, denied: null };
      const base = await run();
      reply = { answer, fuel: 1_234_567, denied: null };
      const priced = await run();
      assert.ok(base.ok && priced.ok, kind);
      assert.equal((priced.fuelUsed ?? 0) - (base.fuelUsed ?? 0), 1_234_567, kind);
      reply = { answer, fuel: 0, denied: 'schedule_pause: capability: not granted' };
      const denied = await run();
      assert.ok(!denied.ok, kind);
      assert.equal(denied.status, 'host_call_denied', kind);
      assert.equal(denied.message, 'schedule_pause: capability: not granted', kind);
    } finally {
      await sandbox.close();
    }
  }
});

test('a tenant past its main-thread share gets `busy`; another tenant is not affected', async (t) => {
  const dir = tempDir(t);
  const gets = Array.from({ length: 400 }, () => call('schedule_list', {}));
  const config = makeConfig(dir, [
    {
      id: 'noisy',
      quotas: { hostCallMsPerSecond: 1 },
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: { schedules: decls({ id: 'storm', every: '1h', payload: { calls: gets } }) },
        },
      ],
    },
    {
      id: 'quiet',
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: {
            schedules: decls({
              id: 'one',
              every: '1h',
              payload: { calls: [call('schedule_list', {})] },
            }),
          },
        },
      ],
    },
  ]);
  const { host } = await startHost(config, new ManualClock(T0));
  try {
    const storm = await triggerRun(host, 'noisy/p/storm');
    assert.equal(storm.run.status, 'succeeded');
    const codes = storm.result.responses.map((r) => r.error?.code ?? 'ok');
    assert.equal(codes[0], 'ok');
    assert.ok(codes.every((c) => c === 'ok' || c === 'busy'));
    // 400 calls cost at least 400 × 0.02 ms of overhead: far past 1 ms per second.
    assert.ok(codes.filter((c) => c === 'busy').length >= 100, codes.join(' '));
    const busy = storm.result.responses.find((r) => r.error?.code === 'busy');
    assert.match(busy?.error?.message ?? '', /share of the host's main thread \(1 ms per second\)/);
    const quiet = await triggerRun(host, 'quiet/p/one');
    assert.ok(quiet.result.responses[0]?.ok, JSON.stringify(quiet.result.responses[0]));
  } finally {
    await host.stop();
  }
});

test('10,000-deep JSON: invalid_argument for every host function, typed failures for discovery and run output', async (t) => {
  const dir = tempDir(t);
  const deepRequests = RUN_FUNCTIONS.map((fn) => raw(fn, `{"id":"a","payload":${deep(10_000)}}`));
  const config = makeConfig(dir, [
    {
      id: 't',
      quotas: { maxPayloadBytes: 200_000 },
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: {
            schedules: decls(
              { id: 'requests', every: '1h', payload: { calls: deepRequests } },
              { id: 'output', every: '1h', payload: { output: `{"result":${deep(10_000)}}` } },
            ),
            discovery_calls: JSON.stringify([
              raw('jobs_register', `{"name":"j","input":${deep(10_000)}}`),
            ]),
          },
        },
        {
          name: 'deep-discovery',
          wasm: GUEST.proxy,
          config: { schedules: `[{"id":"a","every":"1h","payload":${deep(10_000)}}]` },
        },
      ],
    },
  ]);
  const failed: { pluginId: string; code: string; message: string }[] = [];
  const { host, loaded } = await startHost(config, new ManualClock(T0));
  host.events.on('plugin:failed', (e) => failed.push(e));
  try {
    assert.deepEqual(loaded, ['t/p']);
    const rec = host.store.getPlugin('t/deep-discovery');
    assert.equal(rec?.status, 'failed');
    assert.match(rec?.error ?? '', /nested deeper than 64 levels/);
    try {
      await host.loadPlugin('t', config.tenants[0]!.plugins[1]!);
      assert.fail('loading must fail');
    } catch (err) {
      assert.ok(isHourglassError(err) && err.code === 'HG_DISCOVERY_FAILED', String(err));
    }

    const { run, result } = await triggerRun(host, 't/p/requests');
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(
      result.responses.map((r) => r.error?.code),
      RUN_FUNCTIONS.map(() => 'invalid_argument'),
    );
    for (const r of result.responses) assert.match(r.error?.message ?? '', /deeper than 64/);

    const out = (await triggerRun(host, 't/p/output')).run;
    assert.equal(out.status, 'failed');
    assert.equal(out.reason, 'invalid_output');
    assert.match(out.error ?? '', /deeper than 64/);
  } finally {
    await host.stop();
  }
});

test('declarations past representable times are refused; one bad stored row never fails a listing', async (t) => {
  const dir = tempDir(t);
  const far = [
    call('schedule_create', { id: 'f1', every: '99999999d' }),
    call('schedule_create', { id: 'f2', at: '9999-12-31T23:59:59Z' }),
    call('schedule_create', { id: 'f3', every: '1h', jitter: '99999999d' }),
    call('schedule_create', { id: 'f4', cron: '0 0 0 1 1 * 9999' }),
    call('schedule_list', {}),
  ];
  const config = makeConfig(dir, [
    {
      id: 't',
      plugins: [
        {
          name: 'p',
          wasm: GUEST.proxy,
          config: { schedules: decls({ id: 'far', every: '1h', payload: { calls: far } }) },
        },
        {
          name: 'declares-far',
          wasm: GUEST.proxy,
          config: { schedules: decls({ id: 'x', every: '99999999d' }) },
        },
      ],
    },
  ]);
  const { host, loaded } = await startHost(config, new ManualClock(T0));
  try {
    assert.deepEqual(loaded, ['t/p']);
    assert.match(host.store.getPlugin('t/declares-far')?.error ?? '', /\/every .*365d/);
    const { result } = await triggerRun(host, 't/p/far');
    assert.deepEqual(
      result.responses.map((r) => r.error?.code ?? 'ok'),
      ['invalid_argument', 'invalid_argument', 'invalid_argument', 'invalid_argument', 'ok'],
    );

    // A row written before these bounds (or damaged): a time no Date can hold, a payload that
    // is not JSON. The plugin's listing and the operator's `hourglass schedules` still work.
    const good = host.store.getSchedule('t/p/far');
    assert.ok(good);
    host.store.insertSchedule({
      ...good,
      key: 't/p/old',
      localId: 'old',
      spec: { kind: 'every', every: '99999999d', everyMs: 99_999_999 * 86_400_000 },
      nextAt: T0 + 99_999_999 * 86_400_000,
      payload: '{"broken":',
    });
    const caller: CallerContext = { pluginId: 't/p', tenant: 't', phase: 'run' };
    const r = host.schedules.list(caller, 100, null);
    assert.ok('ok' in r);
    const old = r.ok.schedules.find((s) => s.id === 'old');
    assert.equal(old?.nextRunAt, null);
    assert.equal(old?.payload, null);
    assert.ok('ok' in host.schedules.get(caller, 'old'));
  } finally {
    await host.stop();
  }
  const cli = spawnSync(
    process.execPath,
    [join(PROJECT_ROOT, 'bin', 'hourglass.js'), 'schedules', '--store', join(dir, 'hourglass.db')],
    { cwd: dir, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /t\/p\/old .* 86417\d+ ms \(out of range\)/);
  assert.match(cli.stdout, /t\/p\/far /);
});
