/**
 * The DST policy end to end (issue 14): a real host with a real store (SQLite and PostgreSQL)
 * and the real compiled proxy guest declaring cron schedules with each `dst` value, driven by
 * the fake clock across real 2026 transitions in Europe/Berlin, America/New_York and
 * Australia/Lord_Howe (30-minute shift). Each window restarts the host before its transition,
 * so the fires after it come from the policy as stored (the spec's JSON round trip). Also:
 * one-shots declared after their time follow the misfire policy, recorded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { defaultDst } from '../../src/schedule/spec.ts';
import {
  ManualClock,
  advance,
  decls,
  GUEST,
  makeConfig,
  proxyConfig,
  runsOf,
  STORES,
  startHost,
  storeDir,
} from './helpers.ts';

const ms = (iso: string): number => Date.parse(iso);
const HOUR = 3_600_000;

interface Window {
  readonly zone: string;
  readonly name: string;
  readonly cron: string;
  readonly from: string;
  readonly hours: number;
  /** Expected fires (UTC) per declaration: `dst` field value → instants. */
  readonly expect: Record<string, string[]>;
}

const WINDOWS: Window[] = [
  {
    zone: 'Europe/Berlin',
    name: 'spring forward 29 Mar (02:00 CET -> 03:00 CEST)',
    cron: '30 2 * * *',
    from: '2026-03-28T23:00:00Z',
    hours: 5,
    expect: { skip: [], 'run-once': ['01:00'] },
  },
  {
    zone: 'Europe/Berlin',
    name: 'fall back 25 Oct (03:00 CEST -> 02:00 CET)',
    cron: '30 2 * * *',
    from: '2026-10-24T23:00:00Z',
    hours: 5,
    expect: { once: ['00:30'], twice: ['00:30', '01:30'] },
  },
  {
    zone: 'America/New_York',
    name: 'spring forward 8 Mar (02:00 EST -> 03:00 EDT)',
    cron: '30 1,2 * * *',
    from: '2026-03-08T05:00:00Z',
    hours: 5,
    expect: { skip: ['06:30'], 'run-once': ['06:30', '07:00'] },
  },
  {
    zone: 'America/New_York',
    name: 'fall back 1 Nov (02:00 EDT -> 01:00 EST)',
    cron: '30 1,2 * * *',
    from: '2026-11-01T04:00:00Z',
    hours: 5,
    expect: { once: ['05:30', '07:30'], twice: ['05:30', '06:30', '07:30'] },
  },
  {
    zone: 'Australia/Lord_Howe',
    name: 'spring forward 4 Oct (02:00 -> 02:30)',
    cron: '15,45 1,2 * * *',
    from: '2026-10-03T13:00:00Z',
    hours: 4,
    expect: {
      skip: ['14:45', '15:15', '15:45'],
      'run-once': ['14:45', '15:15', '15:30', '15:45'],
    },
  },
  {
    zone: 'Australia/Lord_Howe',
    name: 'fall back 5 Apr (02:00 -> 01:30)',
    cron: '15,45 1,2 * * *',
    from: '2026-04-04T13:00:00Z',
    hours: 4,
    expect: {
      once: ['14:15', '14:45', '15:45', '16:15'],
      twice: ['14:15', '14:45', '15:15', '15:45', '16:15'],
    },
  },
];

/** The dst object a declaration names for one policy value. */
const dstOf = (value: string): Record<string, string> =>
  value === 'skip' || value === 'run-once' ? { skipped: value } : { repeated: value };

for (const store of STORES)
  describe(store, () => {
    for (const w of WINDOWS) {
      test(`${w.zone}, ${w.name}: each policy value`, async (t) => {
        const dir = await storeDir(t, store);
        const from = ms(w.from);
        const clock = new ManualClock(from);
        const values = Object.keys(w.expect);
        const config = proxyConfig(
          dir,
          ...values.map((v) => ({ id: v, cron: w.cron, timezone: w.zone, dst: dstOf(v) })),
        );
        // The first host arms the schedules and stops an hour in, before the transition.
        const a = await startHost(config, clock);
        try {
          await advance(a.host, clock, HOUR, 5 * 60_000);
        } finally {
          await a.stop();
        }
        const b = await startHost(config, clock);
        try {
          for (const v of values) {
            // Stored only when it differs from the pattern's default (`defaultDst`).
            const spec = b.host.store.getSchedule(`t/p/${v}`)?.spec;
            const full = { ...defaultDst(w.cron), ...dstOf(v) };
            assert.deepEqual(
              spec?.kind === 'cron' ? spec.dst : 'not cron',
              isDeepStrictEqual(full, defaultDst(w.cron)) ? undefined : full,
            );
          }
          await advance(b.host, clock, (w.hours - 1) * HOUR, 5 * 60_000);
          const day = w.from.slice(0, 10);
          for (const v of values) {
            const runs = runsOf(b.host, `t/p/${v}`);
            assert.deepEqual(
              runs.map((r) => [new Date(r.scheduledAt).toISOString(), r.status, r.trigger]),
              (w.expect[v] as string[]).map((hm) => {
                // Instants on the window's UTC day, or the next one when before its start.
                let t0 = ms(`${day}T${hm}:00.000Z`);
                if (t0 < from) t0 += 24 * HOUR;
                return [new Date(t0).toISOString(), 'succeeded', 'schedule'];
              }),
              `${v}`,
            );
          }
        } finally {
          await b.stop();
        }
      });
    }

    test('schedule_create takes dst too; the view shows the policy in force', async (t) => {
      const dir = await storeDir(t, store);
      const clock = new ManualClock(ms('2026-03-28T23:00:00Z'));
      const call = (fn: string, args: unknown) => ({ fn, args });
      const config = makeConfig(dir, [
        {
          id: 't',
          plugins: [
            {
              name: 'p',
              wasm: GUEST.proxy,
              config: {
                discovery_calls: JSON.stringify([
                  call('schedule_create', {
                    id: 'rt-skip',
                    cron: '30 2 * * *',
                    timezone: 'Europe/Berlin',
                    dst: { skipped: 'skip' },
                  }),
                  call('schedule_create', {
                    id: 'rt-default',
                    cron: '30 2 * * *',
                    timezone: 'Europe/Berlin',
                  }),
                  call('schedule_create', {
                    id: 'rt-bad',
                    cron: '30 2 * * *',
                    timezone: 'Europe/Berlin',
                    dst: { skipped: 'never' },
                  }),
                ]),
                schedules: decls(),
              },
            },
          ],
        },
      ]);
      const { host, stop } = await startHost(config, clock);
      try {
        assert.equal(host.store.getSchedule('t/p/rt-bad'), undefined);
        const views = host.schedules.get(
          { pluginId: 't/p', tenant: 't', phase: 'run' } as never,
          'rt-skip',
        );
        assert.deepEqual('ok' in views ? views.ok.dst : null, {
          skipped: 'skip',
          repeated: 'once',
        });
        await advance(host, clock, 5 * HOUR, 5 * 60_000);
        assert.deepEqual(runsOf(host, 't/p/rt-skip'), []);
        assert.deepEqual(
          runsOf(host, 't/p/rt-default').map((r) => new Date(r.scheduledAt).toISOString()),
          ['2026-03-29T01:00:00.000Z'],
        );
      } finally {
        await stop();
      }
    });

    test('a one-shot declared after its time: recorded by its misfire policy, once', async (t) => {
      const dir = await storeDir(t, store);
      const now = ms('2026-05-01T12:00:00Z');
      const clock = new ManualClock(now);
      const config = proxyConfig(
        dir,
        { id: 'late-skip', at: '2026-05-01T09:00:00Z' },
        { id: 'late-run', at: '2026-05-01T09:00:00Z', misfire: 'run-once' },
        { id: 'soon', at: '2026-05-01T13:00:00Z' },
      );
      const a = await startHost(config, clock);
      try {
        await advance(a.host, clock, 2 * HOUR, 10 * 60_000);
        const skip = runsOf(a.host, 't/p/late-skip');
        assert.deepEqual(
          skip.map((r) => [new Date(r.scheduledAt).toISOString(), r.status]),
          [['2026-05-01T09:00:00.000Z', 'skipped_misfire']],
        );
        assert.match(skip[0]?.reason ?? '', /declared after its time/);
        const run = runsOf(a.host, 't/p/late-run');
        assert.deepEqual(
          run.map((r) => [new Date(r.scheduledAt).toISOString(), r.status, r.trigger]),
          [['2026-05-01T09:00:00.000Z', 'succeeded', 'catch_up']],
        );
        assert.equal(runsOf(a.host, 't/p/soon').length, 1);
        for (const id of ['late-skip', 'late-run', 'soon'])
          assert.equal(a.host.store.getSchedule(`t/p/${id}`)?.state, 'completed');
      } finally {
        await a.stop();
      }
      // A restart (the same declarations discovered again) records nothing more.
      const b = await startHost(config, clock);
      try {
        await advance(b.host, clock, HOUR, 10 * 60_000);
        assert.equal(runsOf(b.host, 't/p/late-skip').length, 1);
        assert.equal(runsOf(b.host, 't/p/late-run').length, 1);
      } finally {
        await b.stop();
      }
    });
  });
