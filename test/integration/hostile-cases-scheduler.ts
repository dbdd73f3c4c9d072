/**
 * Hostile-corpus cases for the scheduler's records (issue 9 items 9, 10, 11): a guest that
 * declares jitter longer than its interval, one that deletes and re-creates its own schedule
 * during its run (its cursor must not land in the new schedule), and pauses or deletes of
 * schedules whose ticks wait for the tenant's slot or are buffered.
 */
import assert from 'node:assert/strict';
import type { HostileCase, HostileContext } from './hostile-case.ts';
import { unaccounted } from './tick-accounting.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function schedule(ctx: HostileContext, localId: string) {
  const s = ctx.host.store.getSchedule(`${ctx.pluginId}/${localId}`);
  assert.ok(s, `schedule ${localId}`);
  return s;
}

/** Waits (real clock) until `pred` holds, or fails after `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A run that holds the tenant's only slot (spins until its deadline), and a second schedule. */
const SLOT_HOG = [
  { id: 'hog', every: '1h', payload: { spin: true } },
  { id: 'victim', every: '1h' },
];

async function pauseOrDeleteWhileWaiting(ctx: HostileContext, action: 'pause' | 'delete') {
  const { host, pluginId } = ctx;
  assert.deepEqual(host.operate(`${pluginId}/hog`, 'trigger'), { ok: true, trigger: 'started' });
  assert.deepEqual(host.operate(`${pluginId}/victim`, 'trigger'), {
    ok: true,
    trigger: 'started',
  });
  const [waiting] = ctx.runs('victim');
  assert.equal(waiting?.status, 'waiting', 'the second tick waits for the slot, with a record');
  assert.ok(host.operate(`${pluginId}/victim`, action).ok);
  await until(() => ctx.runs('hog')[0]?.status !== 'running', 10_000, 'the hog to time out');
  await sleep(200);
  const victim = ctx.runs('victim');
  assert.deepEqual(
    victim.map((r) => [r.status, r.reason]),
    [['cancelled', action === 'pause' ? 'paused' : 'deleted']],
    'the waiting tick never started',
  );
}

export const CASES: readonly HostileCase[] = [
  {
    name: 'jitter-longer-than-interval',
    item: '10',
    guest: { proxy: [{ id: 'j', every: '1s', jitter: '3s' }] },
    expect: { custom: true },
    check: async (ctx) => {
      await sleep(4500);
      const s = schedule(ctx, 'j');
      const runs = ctx.runs('j');
      const missing = unaccounted(s, runs, [[s.anchorAt, Date.now()]]);
      assert.deepEqual(missing, [], 'no tick swallowed by jitter');
      assert.ok(runs.length >= 1);
      for (const r of runs) assert.ok(r.startedAt >= r.scheduledAt, 'jitter only delays');
    },
  },
  {
    name: 'recreate-own-schedule-during-run',
    item: '11',
    guest: {
      proxy: [
        {
          id: 'self',
          every: '1h',
          payload: {
            calls: [
              { fn: 'schedule_delete', args: { id: 'self' } },
              { fn: 'schedule_create', args: { id: 'self', every: '1h' } },
            ],
            setCursor: 'old-incarnation',
          },
        },
      ],
    },
    expect: { trigger: 'self', status: 'succeeded' },
    check: (ctx) => {
      const s = schedule(ctx, 'self');
      assert.equal(s.state, 'active');
      assert.equal(s.generation, 2, 'a new incarnation');
      assert.equal(s.cursor, null, "the old run's cursor did not land in the new schedule");
    },
  },
  {
    name: 'pause-while-waiting-for-slot',
    item: '9,11',
    guest: { proxy: SLOT_HOG },
    limits: { timeoutMs: 1000 },
    quotas: { maxRunsInFlight: 1 },
    expect: { custom: true },
    check: (ctx) => pauseOrDeleteWhileWaiting(ctx, 'pause'),
  },
  {
    name: 'delete-while-waiting-for-slot',
    item: '9,11',
    guest: { proxy: SLOT_HOG },
    limits: { timeoutMs: 1000 },
    quotas: { maxRunsInFlight: 1 },
    expect: { custom: true },
    check: (ctx) => pauseOrDeleteWhileWaiting(ctx, 'delete'),
  },
  {
    name: 'pause-with-buffered-tick',
    item: '11',
    guest: { proxy: [{ id: 'buf', every: '1s', overlap: 'buffer-one', payload: { spin: true } }] },
    // Each run spins until its deadline (fuel outlasts it), so the tick after it is buffered.
    limits: { timeoutMs: 2500, fuel: { run: 10_000_000_000 } },
    expect: { custom: true },
    check: async (ctx) => {
      const key = `${ctx.pluginId}/buf`;
      await until(() => schedule(ctx, 'buf').bufferedAt !== null, 8_000, 'a buffered tick');
      const bufferedAt = schedule(ctx, 'buf').bufferedAt;
      assert.ok(ctx.host.operate(key, 'pause').ok);
      assert.equal(schedule(ctx, 'buf').bufferedAt, null, 'buffered_at is not left stale');
      const cancelled = ctx.runs('buf').find((r) => r.status === 'cancelled');
      assert.equal(cancelled?.scheduledAt, bufferedAt);
      assert.equal(cancelled?.reason, 'paused');
      await until(() => !ctx.runs('buf').some((r) => r.status === 'running'), 8_000, 'the run');
      assert.ok(
        ctx
          .runs('buf')
          .every((r) => r.startedAt < (cancelled?.finishedAt ?? 0) || r.status === 'cancelled'),
        'no run started after the pause',
      );
    },
  },
];
