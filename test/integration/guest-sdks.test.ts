/**
 * The guest SDK examples (AssemblyScript, Rust, Go) through the real host: discovery, fired
 * runs, runtime schedule creation, cursors, pause/delete of their own schedules, a foreign
 * id answering not_found, and config values reaching each language (`config_get`: the
 * pollers' `feed_url` / `feed_format`, the webhooks' `webhook_url`), and issue 14's schedule
 * fields (retry, priority, DST policy, job, breaker, the breaker's count) through each SDK's
 * typed declaration and view. The guests are built by `npm run build:guests`; a language whose
 * toolchain was missing makes its tests FAIL with the build script's message, never skip.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import type { Host } from '../../src/host/host.ts';
import {
  GUEST,
  T0,
  ManualClock,
  advance,
  makeConfig,
  runsOf,
  startHost,
  tempDir,
  triggerRun,
} from './helpers.ts';

const LANGUAGES = ['assemblyscript', 'rust', 'go'] as const;
type Language = (typeof LANGUAGES)[number];

/** The manifest of an example, after checking that the build script produced its wasm. */
function example(lang: Language, name: string): { manifest: string; plugin: string } {
  const dir = resolve(PROJECT_ROOT, 'guest-examples', lang);
  const marker = resolve(dir, 'build', 'TOOLCHAIN-MISSING.txt');
  if (existsSync(marker)) {
    assert.fail(
      `the ${lang} examples were not built because a toolchain is missing:\n  ${readFileSync(marker, 'utf8').trim()}`,
    );
  }
  const wasm = resolve(dir, name, 'build', `${name}.wasm`);
  if (!existsSync(wasm)) {
    assert.fail(`${wasm} is missing: run \`npm run build:guests\` (npm test runs it first)`);
  }
  const manifest = resolve(dir, name, 'hourglass.json');
  const plugin = (JSON.parse(readFileSync(manifest, 'utf8')) as { name: string }).name;
  return { manifest, plugin };
}

interface HostAnswer {
  ok?: { id?: string; state?: string; origin?: string; deleted?: boolean };
  error?: { code: string; message: string };
}

/**
 * A user's request: a one-off schedule whose payload is `{"action": …}`, run once; returns the
 * run's result.
 */
async function actionResult(
  host: Host,
  pluginId: string,
  payload: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const caller = { pluginId, tenant: 'acme', phase: 'run' as const };
  const id = `action-${Math.random().toString(36).slice(2, 8)}`;
  const created = host.schedules.create(caller, { id, every: '1h', payload });
  assert.ok('ok' in created, JSON.stringify(created));
  const { run } = await triggerRun(host, `${pluginId}/${id}`);
  assert.equal(run.status, 'succeeded', run.error ?? '');
  host.schedules.deleteKey(`${pluginId}/${id}`);
  return JSON.parse(run.result ?? '{}') as Record<string, unknown>;
}

/** A user's request whose result is the host function's answer the guest relayed. */
async function userAction(
  host: Host,
  pluginId: string,
  payload: Record<string, unknown>,
): Promise<HostAnswer> {
  return (await actionResult(host, pluginId, payload)).response as HostAnswer;
}

for (const lang of LANGUAGES) {
  test(`${lang} poller: discovery, fired runs, runtime schedule, cursor, pause/delete, foreign id`, async (t) => {
    const { manifest, plugin } = example(lang, 'poller');
    const pluginId = `acme/${plugin}`;
    const dir = tempDir(t);
    const clock = new ManualClock(T0);
    const config = makeConfig(dir, [
      { id: 'acme', plugins: [{ manifest }, { name: 'other', wasm: GUEST.wat('noop') }] },
    ]);
    const { host, loaded, failed } = await startHost(config, clock);
    try {
      assert.deepEqual(failed, []);
      assert.ok(loaded.includes(pluginId), `${pluginId} loaded`);

      // Discovery: the declared cron schedule and the job contract.
      const hk = host.store.getSchedule(`${pluginId}/housekeeping`);
      assert.equal(hk?.origin, 'declared');
      assert.deepEqual(hk?.spec, {
        kind: 'cron',
        cron: '*/10 * * * * *',
        timezone: 'Europe/Berlin',
      });
      const contracts = host.store.listJobContracts(pluginId);
      assert.deepEqual(
        contracts.map((c) => c.name),
        ['poll-feed'],
      );
      assert.equal(JSON.parse(contracts[0]?.contract ?? '{}').timeoutMs, 5000);

      // Fired runs: housekeeping creates poll-feed-1 at runtime; it polls three times, carrying
      // its cursor, then pauses itself.
      await advance(host, clock, 60_000);
      const hkRuns = runsOf(host, `${pluginId}/housekeeping`);
      assert.ok(hkRuns.length >= 5, `${hkRuns.length} housekeeping runs`);
      assert.ok(hkRuns.every((r) => r.status === 'succeeded' && r.trigger === 'schedule'));
      assert.deepEqual(JSON.parse(hkRuns[0]?.result ?? 'null'), { created: true });
      assert.deepEqual(JSON.parse(hkRuns[1]?.result ?? 'null'), { created: false });
      assert.equal(
        host.store.getSchedule(`${pluginId}/housekeeping`)?.cursor,
        `{"ticks":${hkRuns.length}}`,
      );
      const poller = host.store.getSchedule(`${pluginId}/poll-feed-1`);
      assert.equal(poller?.origin, 'runtime');
      assert.equal(poller?.state, 'paused');
      assert.equal(poller?.pauseNote, 'caught up');
      assert.equal(poller?.cursor, '{"seen":3}');
      const polls = runsOf(host, `${pluginId}/poll-feed-1`);
      assert.deepEqual(
        polls.map((r) => [r.status, JSON.parse(r.result ?? 'null')]),
        [1, 2, 3].map((seen) => ['succeeded', { polled: 'https://example.com/feed', seen }]),
      );

      // A user action creates another poller at runtime; it runs with its payload.
      const created = await userAction(host, pluginId, {
        action: 'create',
        schedule: { id: 'poll-feed-user', every: '1m', payload: { feed: 'https://example.org/x' } },
      });
      assert.equal(created.ok?.origin, 'runtime', JSON.stringify(created));
      const userPoll = await triggerRun(host, `${pluginId}/poll-feed-user`);
      assert.deepEqual(userPoll.run.result && JSON.parse(userPoll.run.result), {
        polled: 'https://example.org/x',
        seen: 1,
      });
      // Creating the same id again is a conflict.
      const again = await userAction(host, pluginId, {
        action: 'create',
        schedule: { id: 'poll-feed-user', every: '1m' },
      });
      assert.equal(again.error?.code, 'conflict');

      // Resume: the cursor carries on from 3.
      assert.equal(
        (await userAction(host, pluginId, { action: 'resume', id: 'poll-feed-1' })).ok?.state,
        'active',
      );
      await advance(host, clock, 10_000);
      assert.equal(host.store.getSchedule(`${pluginId}/poll-feed-1`)?.cursor, '{"seen":4}');

      // Pause and delete its own schedules.
      const paused = await userAction(host, pluginId, { action: 'pause', id: 'poll-feed-user' });
      assert.equal(paused.ok?.state, 'paused');
      const deleted = await userAction(host, pluginId, { action: 'delete', id: 'poll-feed-1' });
      assert.deepEqual(deleted.ok, { id: 'poll-feed-1', deleted: true });
      assert.equal(host.store.getSchedule(`${pluginId}/poll-feed-1`)?.state, 'deleted');

      // Another plugin's schedule (acme/other/tick) is invisible: not_found, and untouched.
      for (const action of ['pause', 'delete', 'resume']) {
        const foreign = await userAction(host, pluginId, { action, id: 'tick' });
        assert.equal(foreign.error?.code, 'not_found', `${action}: ${JSON.stringify(foreign)}`);
      }
      assert.equal(host.store.getSchedule('acme/other/tick')?.state, 'active');
    } finally {
      await host.stop();
    }
  });

  test(`${lang} poller: config feed_url switches poll-feed runs to feed polling; a bad feed_format fails before any request`, async (t) => {
    const { manifest, plugin } = example(lang, 'poller');
    const pluginId = `acme/${plugin}`;
    const dir = tempDir(t);
    // Port 9 (discard) is never asked: the format is checked first.
    const config = makeConfig(dir, [
      {
        id: 'acme',
        plugins: [
          { manifest, config: { feed_url: 'http://127.0.0.1:9/feed.json', feed_format: 'xml' } },
        ],
      },
    ]);
    const { host, failed } = await startHost(config, new ManualClock(T0));
    try {
      assert.deepEqual(failed, []);
      const caller = { pluginId, tenant: 'acme', phase: 'run' as const };
      assert.ok('ok' in host.schedules.create(caller, { id: 'poll-feed-cfg', every: '1h' }));
      const { run } = await triggerRun(host, `${pluginId}/poll-feed-cfg`);
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /feed_format: expected "json" or "rss", got "xml"/);
      // Housekeeping does not read the feed settings: it behaves as without them.
      const hk = await triggerRun(host, `${pluginId}/housekeeping`);
      assert.equal(hk.run.status, 'succeeded', hk.run.error ?? '');
      assert.deepEqual(JSON.parse(hk.run.result ?? 'null'), { created: true });
    } finally {
      await host.stop();
    }
  });

  test(`${lang} cron-report: discovery persists cron declarations and the job contract; runs fire on time`, async (t) => {
    const { manifest, plugin } = example(lang, 'cron-report');
    const pluginId = `acme/${plugin}`;
    const dir = tempDir(t);
    const clock = new ManualClock(T0); // Thursday 2026-01-15 10:00Z
    const config = makeConfig(dir, [{ id: 'acme', plugins: [{ manifest }] }]);
    const { host, failed } = await startHost(config, clock);
    try {
      assert.deepEqual(failed, []);
      const report = host.store.getSchedule(`${pluginId}/weekday-report`);
      assert.equal(report?.origin, 'declared');
      assert.deepEqual(report?.spec, {
        kind: 'cron',
        cron: '0 9 * * 1-5',
        timezone: 'Europe/Berlin',
      });
      assert.equal(report?.payload, '{"team":"platform"}');
      assert.equal(report?.misfire, 'run-once');
      assert.equal(report?.nextAt, Date.parse('2026-01-16T08:00:00Z'));
      const cleanup = host.store.getSchedule(`${pluginId}/nightly-cleanup`);
      assert.equal(cleanup?.nextAt, Date.parse('2026-01-16T03:30:00Z'));
      assert.equal(cleanup?.description, 'Prunes old reports.');

      const contracts = host.store.listJobContracts(pluginId);
      assert.equal(contracts.length, 1);
      assert.deepEqual(JSON.parse(contracts[0]?.contract ?? '{}'), {
        name: 'weekday-report',
        displayName: 'Weekday report',
        description: "Summarises yesterday's activity for the team.",
        cron: '0 9 * * 1-5',
        timezone: 'Europe/Berlin',
        timeoutMs: 30000,
        input: { team: 'string' },
      });

      // Until Sunday 10:00Z: Friday's report (none on the weekend) and three nightly cleanups.
      await advance(host, clock, 3 * 86_400_000, 3_600_000);
      const reports = runsOf(host, `${pluginId}/weekday-report`);
      assert.deepEqual(
        reports.map((r) => new Date(r.scheduledAt).toISOString()),
        ['2026-01-16T08:00:00.000Z'],
      );
      assert.deepEqual(JSON.parse(reports[0]?.result ?? 'null'), {
        report: 'daily',
        team: 'platform',
        for: '2026-01-16T08:00:00.000Z',
      });
      const cleanups = runsOf(host, `${pluginId}/nightly-cleanup`);
      assert.equal(cleanups.length, 3);
      assert.ok(cleanups.every((r) => r.status === 'succeeded'));
      assert.equal(host.store.getSchedule(`${pluginId}/nightly-cleanup`)?.cursor, '{"runs":3}');
    } finally {
      await host.stop();
    }
  });
}

for (const lang of ['assemblyscript', 'rust'] as const) {
  test(`${lang} webhook: discovery declares report; a run without config webhook_url fails and says so`, async (t) => {
    const { plugin } = example(lang, 'webhook');
    const wasm = resolve(PROJECT_ROOT, 'guest-examples', lang, 'webhook', 'build', 'webhook.wasm');
    const dir = tempDir(t);
    // Its own manifest asks for `http`; without webhook_url the guest never makes a request,
    // so no capability is needed here.
    const config = makeConfig(dir, [
      { id: 'acme', plugins: [{ name: plugin, wasm, capabilities: [] }] },
    ]);
    const { host, failed } = await startHost(config, new ManualClock(T0));
    try {
      assert.deepEqual(failed, []);
      const report = host.store.getSchedule(`acme/${plugin}/report`);
      assert.deepEqual(report?.spec, { kind: 'every', every: '1m', everyMs: 60_000 });
      const { run } = await triggerRun(host, `acme/${plugin}/report`);
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /config webhook_url is not set/);
    } finally {
      await host.stop();
    }
  });
}

for (const lang of LANGUAGES) {
  test(`${lang} SDK: retry, priority, dst, job and breaker sent through the typed declaration read back through the typed view`, async (t) => {
    const { manifest, plugin } = example(lang, 'poller');
    const pluginId = `acme/${plugin}`;
    const caller = { pluginId, tenant: 'acme', phase: 'run' as const };
    const dir = tempDir(t);
    const clock = new ManualClock(T0); // Thursday 2026-01-15 10:00Z
    const config = makeConfig(dir, [{ id: 'acme', plugins: [{ manifest }] }]);
    const { host, failed } = await startHost(config, clock);
    try {
      assert.deepEqual(failed, []);
      // Its job contract carries a retry policy (the SDK's contract type).
      const contract = JSON.parse(host.store.listJobContracts(pluginId)[0]?.contract ?? '{}');
      assert.deepEqual([contract.name, contract.retry], ['poll-feed', { maxAttempts: 2 }]);
      // The guest builds the declaration with its SDK's setters (Rust builder, Go struct
      // fields, AssemblyScript `Schedule`), creates it, reads it back with schedule_get, and
      // returns both answers decoded into its SDK's view type and encoded again: a field the
      // SDK dropped or misnamed would come back null or missing.
      const expected = {
        id: 'poll-feed-policies',
        origin: 'runtime',
        cron: '30 2 * * *',
        timezone: 'Europe/Berlin',
        dst: { skipped: 'skip', repeated: 'twice' }, // a fixed time's default is run-once/once
        every: null,
        at: null,
        jitter: null,
        overlap: 'skip',
        misfire: 'skip',
        priority: 8,
        retry: {
          maxAttempts: 4,
          backoff: { baseMs: 500, capMs: 8000 },
          on: ['failed', 'timed_out'],
        },
        job: 'poll-feed',
        breaker: { afterFailures: 3 },
        failStreak: 0,
        state: 'active',
        pauseNote: null,
        nextRunAt: '2026-01-16T01:30:00.000Z',
        payload: null,
        description: null,
      };
      const r = await actionResult(host, pluginId, { action: 'policies', id: expected.id });
      assert.deepEqual(r.created, expected);
      assert.deepEqual(r.got, expected);
      // The host's own view is the same (the SDK's view type lost nothing), and so is the row.
      const own = host.schedules.get(caller, expected.id);
      assert.ok('ok' in own);
      assert.deepEqual(own.ok, expected);
      const row = host.store.getSchedule(`${pluginId}/${expected.id}`);
      assert.deepEqual(row?.spec, {
        kind: 'cron',
        cron: '30 2 * * *',
        timezone: 'Europe/Berlin',
        dst: { skipped: 'skip', repeated: 'twice' },
      });
      assert.deepEqual([row?.priority, row?.job, row?.breakerAfter], [8, 'poll-feed', 3]);
      assert.deepEqual(JSON.parse(row?.retry ?? 'null'), expected.retry);

      // A schedule declared without the new fields (housekeeping): nothing of them was sent
      // (the declaration would be refused otherwise), and the view shows the defaults.
      const hk = (await actionResult(host, pluginId, { action: 'view', id: 'housekeeping' }))
        .view as Record<string, unknown>;
      const hkOwn = host.schedules.get(caller, 'housekeeping');
      assert.ok('ok' in hkOwn);
      assert.deepEqual(hk, hkOwn.ok);
      assert.deepEqual(
        [hk.priority, hk.retry, hk.job, hk.breaker, hk.failStreak, hk.dst],
        [5, null, null, null, 0, { skipped: 'skip', repeated: 'twice' }],
      );

      // The breaker's count, as the guest sees it: two failed ticks of a schedule of its own.
      assert.ok(
        'ok' in
          host.schedules.create(caller, { id: 'boom', every: '1h', payload: { action: 'nope' } }),
      );
      for (let i = 0; i < 2; i++)
        assert.equal((await triggerRun(host, `${pluginId}/boom`)).run.status, 'failed');
      const boom = (await actionResult(host, pluginId, { action: 'view', id: 'boom' }))
        .view as Record<string, unknown>;
      assert.equal(boom.failStreak, 2);
      assert.equal(boom.state, 'active');
    } finally {
      await host.stop();
    }
  });
}
