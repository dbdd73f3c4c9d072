/**
 * A model-based test of the scheduler (issue 9 items 9-11, 14): seeded random sequences of clock
 * advances, operator actions (pause, resume, delete, trigger), guest actions during a run
 * (create, delete and re-create its own schedules, pause, resume), long runs (held at a gate
 * and released in random order), graceful restarts, crashes and reloads, against a small
 * reference model of which schedules exist, in which incarnation, and when each was active.
 *
 * Checked after every step:
 * - paused and deleted schedules never fire: every run that reaches the guest (but manual
 *   triggers) is for a tick inside an active span of its schedule's current incarnation;
 * - at most one run per schedule at a time, and no tick started twice;
 * - no tick lost without a record (test/integration/tick-accounting.ts: every nominal tick of
 *   every active span has a record, is buffered, or is still pending);
 * - cursors belong to the schedule that ran: every stored cursor was written by a run of the
 *   schedule's current incarnation (each run returns `{"run": <its id>}` as cursor);
 * - no run is left `running` but those really in flight; reloads finish once the plugin's own
 *   runs are released, even with other plugins' runs held.
 *
 * Real SQLite, the real in-thread Extism sandbox and the proxy guest, on a ManualClock; and the
 * same on a one-host PostgreSQL cluster (`openHost`; a restart stops the host and opens a new
 * one on the database, a crash releases the dead host's leases: helpers.ts `crash`).
 * Steps: HG_MODEL_STEPS (default 2400, split over HG_MODEL_SEEDS seeds, default 6);
 * HG_MODEL_SEED runs one given seed. On PostgreSQL: HG_MODEL_STEPS_PG (default 1200) over the
 * first HG_MODEL_SEEDS_PG seeds (default 4).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { HostConfig } from '../../src/config/host-config.ts';
import type { Host } from '../../src/host/host.ts';
import type { CallerContext } from '../../src/sandbox/types.ts';
import { nextFireAfter } from '../../src/schedule/spec.ts';
import { importRows } from '../../src/store/postgres/mirror.ts';
import { PG_TYPES } from '../../src/store/postgres/pg-store.ts';
import { SCHEDULES } from '../../src/store/postgres/tables.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { ScheduleRecord } from '../../src/store/types.ts';
import { GatedSandbox, quiesce } from './gated-sandbox.ts';
import {
  GUEST,
  T0,
  ManualClock,
  STORES,
  crash,
  decls,
  makeConfig,
  startHost,
  storeDir,
  type StartedHost,
} from './helpers.ts';

const STEPS = {
  sqlite: Number(process.env.HG_MODEL_STEPS ?? 2400),
  postgres: Number(process.env.HG_MODEL_STEPS_PG ?? 1200),
};
const seeds = (n: number) =>
  process.env.HG_MODEL_SEED
    ? [Number(process.env.HG_MODEL_SEED)]
    : Array.from({ length: n }, (_, i) => 1000 + i);
const SEEDS = {
  sqlite: seeds(Number(process.env.HG_MODEL_SEEDS ?? 6)),
  postgres: seeds(Number(process.env.HG_MODEL_SEEDS_PG ?? 4)),
};

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runtime schedules the guest of plugin t/a creates, deletes and re-creates. */
const RUNTIME: Record<string, Record<string, unknown>> = {
  r1: { id: 'r1', every: '1m' },
  r2: { id: 'r2', every: '3m', overlap: 'buffer-one', jitter: '4m' },
};

function config(dir: string): HostConfig {
  return makeConfig(dir, [
    {
      id: 't',
      quotas: { maxRunsInFlight: 2 },
      plugins: [
        {
          name: 'a',
          wasm: GUEST.proxy,
          config: {
            schedules: decls(
              { id: 'a1', every: '1m' },
              { id: 'a2', every: '1m', jitter: '90s' },
              { id: 'a3', every: '2m', overlap: 'buffer-one' },
              { id: 'a4', cron: '*/5 * * * *', misfire: 'run-once' },
            ),
          },
        },
        {
          name: 'b',
          wasm: GUEST.proxy,
          config: {
            schedules: decls({ id: 'b1', every: '1m', jitter: '30s', misfire: 'run-once' }),
          },
        },
      ],
    },
    {
      id: 'u',
      quotas: { maxRunsInFlight: 1 },
      plugins: [
        {
          name: 'c',
          wasm: GUEST.proxy,
          config: { schedules: decls({ id: 'c1', every: '2m', overlap: 'buffer-one' }) },
        },
      ],
    },
  ]);
}

interface Span {
  readonly gen: number;
  readonly anchor: number;
  readonly from: number;
  until: number | null;
}

interface KeyModel {
  state: 'active' | 'paused' | 'deleted';
  gen: number;
  spans: Span[];
  /** Ticks enumerated up to here. */
  enumerated: number;
  /** Owed ticks not yet seen accounted for: [tick, incarnation]. */
  open: [number, number][];
  /** Tick times with a record, and spans covered by a record. */
  recorded: Set<number>;
  covers: [number, number][];
  /** Ticks started (non-manual), to find a tick started twice. */
  started: Set<number>;
}

class Model {
  readonly keys = new Map<string, KeyModel>();
  /** The incarnation each run started from. */
  readonly runGen = new Map<number, { key: string; gen: number }>();

  open(key: string, gen: number, anchor: number, now: number): void {
    let k = this.keys.get(key);
    if (!k) {
      k = {
        state: 'active',
        gen,
        spans: [],
        enumerated: now,
        open: [],
        recorded: new Set(),
        covers: [],
        started: new Set(),
      };
      this.keys.set(key, k);
    }
    k.state = 'active';
    k.gen = gen;
    k.spans.push({ gen, anchor, from: now, until: null });
  }

  close(key: string, now: number, state: 'paused' | 'deleted'): void {
    const k = this.keys.get(key);
    if (!k) return;
    const span = k.spans.at(-1);
    if (span && span.until === null) span.until = now;
    k.state = state;
  }
}

interface RunRow {
  id: number;
  schedule_key: string;
  scheduled_at: number;
  covers_until: number | null;
}

class Harness {
  readonly dir: string;
  readonly config: HostConfig;
  readonly rand: () => number;
  readonly model = new Model();
  clock = new ManualClock(T0);
  started!: StartedHost;
  host!: Host;
  /** On PostgreSQL: the connection `check()` reads the database through. */
  pg: pg.Client | null = null;
  /** On PostgreSQL: the schedules of the database's snapshot, read into SQLite (`stored()`). */
  pgCopy: SqliteStore | null = null;
  g!: GatedSandbox;
  reload: { pluginId: string; promise: Promise<unknown>; done: boolean } | null = null;
  lastRunId = 0;
  readonly log: string[] = [];
  readonly violations: string[] = [];

  constructor(dir: string, seed: number) {
    this.dir = dir;
    this.config = config(dir);
    this.rand = prng(seed);
  }

  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.rand() * items.length)];
  }

  async boot(): Promise<void> {
    // The gate's hooks are in place before any run can reach it (runs start while start()
    // still loads other plugins, or on PostgreSQL adopts other tenants).
    const started = await startHost(this.config, this.clock, {
      sandbox: (hc) => {
        this.g = new GatedSandbox(hc);
        this.#arm(this.g);
        return this.g;
      },
    });
    this.started = started;
    this.host = started.host;
    assert.deepEqual(started.failed, []);
  }

  #arm(g: GatedSandbox): void {
    g.rewriteInput = (req) => {
      const ctx = JSON.parse(req.input ?? '{}') as Record<string, unknown>;
      return JSON.stringify({ ...ctx, payload: { setCursor: { run: req.caller.runId } } });
    };
    // A failed assertion inside the sandbox call would become the run's failure: keep it.
    g.onRun = (req) => {
      try {
        this.onRun(g, req);
      } catch (err) {
        this.violations.push(`${(err as Error).message}\n${this.log.slice(-30).join('\n')}`);
      }
    };
  }

  /** A run reaches the guest: its schedule must be active in the model, its tick owed. */
  onRun(g: GatedSandbox, req: { input?: string; caller: CallerContext }): void {
    if (g !== this.g) return;
    const key = req.caller.scheduleKey as string;
    const runId = req.caller.runId as number;
    const ctx = JSON.parse(req.input ?? '{}') as { trigger: string; scheduledAt: string };
    const k = this.model.keys.get(key);
    assert.ok(k, `a run of unknown schedule ${key}`);
    this.model.runGen.set(runId, { key, gen: k.gen });
    if (ctx.trigger === 'manual') return;
    const at = Date.parse(ctx.scheduledAt);
    const now = this.clock.now();
    const inSpan = k.spans.some((s) => s.gen === k.gen && s.from < at && at <= (s.until ?? now));
    assert.ok(
      k.state === 'active' && inSpan,
      `${key} (${k.state}, incarnation ${k.gen}) fired a ${ctx.trigger} tick of ${ctx.scheduledAt} at ${new Date(now).toISOString()}`,
    );
    assert.ok(!k.started.has(at), `${key}: tick ${ctx.scheduledAt} started twice`);
    k.started.add(at);
    for (const [key2, n] of this.g.active) assert.ok(n <= 1, `${key2}: two runs at once`);
  }

  record(key: string, s: ScheduleRecord | undefined): void {
    if (!s) return;
    this.model.open(key, s.generation ?? 1, s.anchorAt, this.clock.now());
  }

  async step(i: number): Promise<void> {
    const r = this.rand();
    const now = this.clock.now();
    const keys = [...this.model.keys.keys()];
    if (r < 0.34) {
      const ms = 1000 + Math.floor(this.rand() * 150_000);
      this.log.push(`${i}: advance ${ms}`);
      this.clock.advance(ms);
    } else if (r < 0.6) {
      const n = 1 + Math.floor(this.rand() * 3);
      for (let j = 0; j < n; j++) {
        const held = this.pick(this.g.held);
        if (held) {
          this.log.push(`${i}: release run ${held.runId} of ${held.scheduleKey}`);
          held.release();
        }
      }
    } else if (r < 0.72) {
      const key = this.pick(keys) as string;
      const action = this.pick([
        'pause',
        'resume',
        'delete',
        'trigger',
        'pause',
        'resume',
      ] as const);
      if (!action) return;
      this.log.push(`${i}: operator ${action} ${key}`);
      const res = this.host.operate(key, action);
      this.apply(key, action, res.ok, now);
    } else if (r < 0.9) {
      await this.guestAction(i, now);
    } else if (r < 0.94 && !this.reload) {
      const pluginId = this.pick(['t/a', 't/b', 'u/c']) as string;
      const [tenant, name] = pluginId.split('/') as [string, string];
      const tc = this.config.tenants.find((x) => x.id === tenant);
      const entry = tc?.plugins.find((p) => p.manifest.includes(`${tenant}-${name}.json`));
      assert.ok(entry);
      this.log.push(`${i}: reload ${pluginId}`);
      const reload: { pluginId: string; promise: Promise<unknown>; done: boolean } = {
        pluginId,
        promise: Promise.resolve(),
        done: false,
      };
      reload.promise = this.host.loadPlugin(tenant, entry).then(() => (reload.done = true));
      this.reload = reload;
    } else if (r < 0.97 && !this.reload) {
      this.log.push(`${i}: restart`);
      await this.started.stop(0);
      this.clock = new ManualClock(now + Math.floor(this.rand() * 5 * 60_000));
      await this.boot();
    } else if (!this.reload) {
      this.log.push(`${i}: crash`);
      await crash(this.started);
      await this.g.inner.close();
      this.clock = new ManualClock(now + Math.floor(this.rand() * 5 * 60_000));
      await this.boot();
    }
    await quiesce(this.g, this.host.store, 4);
    await this.checkReload();
    await this.check();
  }

  apply(key: string, action: string, ok: boolean, now: number): void {
    const k = this.model.keys.get(key);
    if (!ok || !k) return;
    if (action === 'pause' && k.state === 'active') this.model.close(key, now, 'paused');
    if (action === 'delete' && k.state !== 'deleted') this.model.close(key, now, 'deleted');
    if (action === 'resume' && k.state === 'paused') {
      const s = this.host.store.getSchedule(key);
      if (s?.state === 'active') this.model.open(key, k.gen, s.anchorAt, now);
      else k.state = 'paused';
    }
  }

  /** The guest of t/a, during one of its held runs, acts on its runtime schedules. */
  async guestAction(i: number, now: number): Promise<void> {
    const held = this.pick(this.g.held.filter((h) => h.pluginId === 't/a'));
    if (!held) return;
    const caller: CallerContext = {
      pluginId: 't/a',
      tenant: 't',
      phase: 'run',
      scheduleKey: held.scheduleKey,
      runId: held.runId,
    };
    // Prefer the schedule whose run is held: delete and re-create itself.
    const self = held.scheduleKey.split('/')[2] as string;
    const id =
      self in RUNTIME && this.rand() < 0.5 ? self : (this.pick(Object.keys(RUNTIME)) as string);
    const key = `t/a/${id}`;
    const action = this.pick(['recreate', 'create', 'delete', 'pause', 'resume'] as const);
    this.log.push(`${i}: guest of run ${held.runId} ${action} ${id}`);
    const svc = this.host.schedules;
    if (action === 'delete' || action === 'recreate') {
      const res = svc.delete(caller, id);
      this.apply(key, 'delete', 'ok' in res, now);
    }
    if (action === 'create' || action === 'recreate') {
      const res = svc.create(caller, RUNTIME[id]);
      if ('ok' in res) this.record(key, this.host.store.getSchedule(key));
    }
    if (action === 'pause') this.apply(key, 'pause', 'ok' in svc.pause(caller, id, null), now);
    if (action === 'resume') this.apply(key, 'resume', 'ok' in svc.resume(caller, id), now);
  }

  async checkReload(): Promise<void> {
    const reload = this.reload;
    if (!reload) return;
    if (this.g.held.some((h) => h.pluginId === reload.pluginId)) return;
    // Its own runs are released: the reload must finish (other plugins' runs may stay held).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      reload.promise,
      new Promise((resolve) => (timer = setTimeout(resolve, 20_000))),
    ]);
    clearTimeout(timer);
    assert.ok(
      reload.done,
      `reload of ${reload.pluginId} did not finish\n${this.log.slice(-30).join('\n')}`,
    );
    this.reload = null;
    await quiesce(this.g, this.host.store, 4);
  }

  /**
   * What the store holds: rows of runs after `lastRunId`, ids of runs `running`, and the
   * schedules. SQLite: its file, and the host's schedules, read at once. PostgreSQL: the runs and
   * schedules in one snapshot of the database once every write made so far is flushed (the host
   * goes on meanwhile, so its own state may already be ahead); the runs `running` as the host
   * holds them (one whose outcome is not yet flushed is not left running).
   */
  async stored(): Promise<{
    rows: RunRow[];
    running: number[];
    schedule: (key: string) => ScheduleRecord | undefined;
  }> {
    const rowsSql = `SELECT id, schedule_key, scheduled_at, covers_until FROM runs WHERE id > ${this.lastRunId} ORDER BY id`;
    const pgc = this.config.store.postgres;
    if (pgc) {
      await this.host.store.committed();
      if (!this.pg) {
        this.pg = new pg.Client({ connectionString: pgc.url, types: PG_TYPES });
        await this.pg.connect();
      }
      await this.pg.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const rows = (await this.pg.query<RunRow>(rowsSql)).rows;
      const schedules = (await this.pg.query('SELECT * FROM schedules')).rows;
      await this.pg.query('COMMIT');
      const copy = (this.pgCopy ??= new SqliteStore(':memory:'));
      copy.mirrorDatabase.prepare('DELETE FROM schedules').run();
      importRows(copy.mirrorDatabase, SCHEDULES, schedules);
      const running = this.host.store.listRuns({ status: 'running' }).map((r) => r.id);
      return { rows, running, schedule: (key) => copy.getSchedule(key) };
    }
    const db = new Database(this.config.store.path, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare(rowsSql).all() as RunRow[];
      const running = (
        db.prepare("SELECT id FROM runs WHERE status = 'running'").all() as { id: number }[]
      ).map((r) => r.id);
      return { rows, running, schedule: (key) => this.host.store.getSchedule(key) };
    } finally {
      db.close();
    }
  }

  async check(): Promise<void> {
    assert.deepEqual(this.violations, []);
    const now = this.clock.now();
    const { rows, running, schedule } = await this.stored();
    for (const row of rows) {
      const k = this.model.keys.get(row.schedule_key);
      if (!k) continue;
      k.recorded.add(row.scheduled_at);
      if (row.covers_until !== null) k.covers.push([row.scheduled_at, row.covers_until]);
      this.lastRunId = row.id;
    }
    const inFlight = new Set(this.g.held.map((h) => h.runId));
    for (const id of running)
      assert.ok(inFlight.has(id) || this.g.inside > 0, `run ${id} left running`);
    for (const [key, k] of this.model.keys) {
      const s = schedule(key);
      assert.ok(s);
      for (const span of k.spans) {
        const from = Math.max(span.from, k.enumerated);
        const until = Math.min(span.until ?? now, now);
        for (let t = nextFireAfter(s.spec, from, span.anchor); t !== null && t <= until;) {
          k.open.push([t, span.gen]);
          t = nextFireAfter(s.spec, t, span.anchor);
        }
      }
      k.enumerated = now;
      k.open = k.open.filter(([t, gen]) => {
        if (k.recorded.has(t) || k.covers.some(([a, b]) => a <= t && t <= b)) return false;
        if (s.bufferedAt === t) return true;
        const pending = gen === k.gen && s.state === 'active' && s.nextAt !== null && t >= s.nextAt;
        assert.ok(
          pending,
          `${key}: tick ${new Date(t).toISOString()} (incarnation ${gen}) has no record (now ${new Date(now).toISOString()}, next ${s.nextAt && new Date(s.nextAt).toISOString()}, ${s.state})\n${this.log.slice(-30).join('\n')}`,
        );
        return true;
      });
      if (s.cursor !== null) {
        const { run } = JSON.parse(s.cursor) as { run: number };
        const owner = this.model.runGen.get(run);
        assert.ok(
          owner?.key === key && owner.gen === k.gen,
          `${key} (incarnation ${k.gen}) holds the cursor of run ${run} (${JSON.stringify(owner)})`,
        );
      }
    }
  }
}

for (const store of STORES)
  describe(store, () => {
    for (const seed of SEEDS[store]) {
      test(`scheduler model, seed ${seed}`, async (t) => {
        const h = new Harness(await storeDir(t, store), seed);
        await h.boot();
        for (const s of h.host.store.listSchedules({ states: ['active'] })) h.record(s.key, s);
        const steps = Math.max(1, Math.floor(STEPS[store] / SEEDS[store].length));
        try {
          for (let i = 0; i < steps; i++) await h.step(i);
          // The end: release everything; every reload finishes; nothing stays running.
          h.g.open();
          await h.checkReload();
          await h.host.scheduler.settle();
          await quiesce(h.g, h.host.store, 4);
          await h.check();
        } finally {
          h.g.open();
          await h.started.stop();
          h.pgCopy?.close();
          await h.pg?.end();
        }
      });
    }
  });
