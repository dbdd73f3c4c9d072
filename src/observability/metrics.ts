/**
 * Metrics: a host's events and counts in the Prometheus text format (prom-client), for
 * `/metrics`. `new HostMetrics(host)` listens; `text()` is a scrape; `close()` stops listening.
 *
 * Design decisions.
 * - One source: run, tick, load and host-call metrics come from the host's events
 *   (src/host/events.ts), the same the logs read; nothing on the run path knows about metrics.
 *   Events are guarded: a metric that throws becomes a `host:error`, never a lost run.
 * - Its own `Registry` (or the caller's), never prom-client's global one: two hosts in one
 *   process (tests, a bench) never mix their numbers, and `close()` takes its metrics out of a
 *   registry it was given, so a new `HostMetrics` can take their names.
 * - Cheap per run: the listeners do plain arithmetic, prom-client formats at scrape time. A
 *   finished run is a map lookup by plugin id, an increment of the series of its status and two
 *   histogram observations (a bucket-index search, an increment, a sum and a count); a started
 *   run a lookup by tenant and one observation. The series are `KeptCounter`/`KeptHistogram`
 *   series (./kept.ts) held per plugin (and status), per tenant (and trigger), each made when
 *   first counted; prom-client's registry reads them at scrape time and prints what its own
 *   metrics fed alike would (same names, labels, buckets, HELP/TYPE lines, series order). Its
 *   labelled `inc` and `observe` cost ~370 and ~460 ns (label validation and hashing per call):
 *   4.3 µs a run with them, against ~0.1-0.3 µs now (bench/metrics.bench.ts).
 * - Counts read at scrape time, not kept per event: schedules by state (`Store.
 *   countSchedulesByState`: the kept live counts plus an index count of the rows not active,
 *   ~0.5 ms with 100k schedules, against ~12 ms for a GROUP BY over them), and the pool's queue
 *   depth, busy workers and replacements (`Host.sandboxStats`; the in-thread sandbox has no
 *   pool and reports none: those metrics are then left out).
 * - Store commit latency from the store's commit listener (`Store.setCommitListener`): a flush
 *   until the durable copy answered (writer thread, PostgreSQL), or an inline group `COMMIT`.
 * - Bounded labels: `tenant` (a configured tenant: a replica shard `<tenant>@<host>` counts as
 *   its tenant, so host tokens never become labels) and `plugin` (`<tenant>/<name>`, the name
 *   from the operator's manifest), plus small fixed sets (run status, trigger, schedule state,
 *   host function, answer code, load error code). Never run ids, schedule ids or text a guest
 *   controls: a host call's function name is labelled only if it is a host function (else
 *   `other`), and skipped ticks are counted by status, not by their reason text (which holds
 *   times).
 * - Units: seconds for times (Prometheus' convention), fuel units for fuel. Durations are the
 *   run records' (`finishedAt - startedAt`, the host's clock) so they agree with the store;
 *   fire lateness is the `run:started` event's `firedAt - scheduledAt` (not of backfill runs).
 */
import { Counter, Gauge, Registry, exponentialBuckets } from 'prom-client';
import type { HostEventMap } from '../host/events.ts';
import type { Host } from '../host/host.ts';
import { RunStatuses, type RunStatus, type RunTrigger } from '../store/types.ts';
import { HOST_CALL_FUEL } from '../../host-functions/registry.ts';
import { KeptCounter, KeptHistogram, type CounterSeries, type HistogramSeries } from './kept.ts';

export interface HostMetricsOptions {
  /** Where the metrics go. @defaultValue a registry of its own */
  readonly registry?: Registry;
}

/** Fuel: 1,000 to ~4.2e9 units, ×4 a bucket (a run's default budget is 5e8). */
export const FUEL_BUCKETS = exponentialBuckets(1_000, 4, 12);
/** Run duration: 0.5 ms to ~131 s, ×4 a bucket. */
export const DURATION_BUCKETS = exponentialBuckets(0.0005, 4, 10);
/** Fire lateness: 0.25 ms to ~2 s, ×2 a bucket (the goal is a p99 near 1 ms). */
export const LATENESS_BUCKETS = exponentialBuckets(0.00025, 2, 14);
/** Store commit: 0.1 ms to ~0.8 s, ×2 a bucket. */
export const COMMIT_BUCKETS = exponentialBuckets(0.0001, 2, 14);

type PluginLabels = { readonly tenant: string; readonly plugin: string };

/** The configured tenant of a shard (`<tenant>@<host>` is a replica of `<tenant>`). */
function tenantLabel(shard: string): string {
  const at = shard.indexOf('@');
  return at < 0 ? shard : shard.slice(0, at);
}

/** A plugin id as a label: a replica's `<tenant>@<host>/<name>` as `<tenant>/<name>`, no `#2`. */
function pluginLabel(pluginId: string): string {
  const id = pluginId.replace(/#\d+$/, '');
  const at = id.indexOf('@');
  const slash = id.indexOf('/');
  return at >= 0 && (slash < 0 || at < slash)
    ? id.slice(0, at) + (slash < 0 ? '' : id.slice(slash))
    : id;
}

/** A run status's index in `RunStatuses`. */
const STATUS_INDEX: Readonly<Record<RunStatus, number>> = Object.fromEntries(
  RunStatuses.map((s, i) => [s, i]),
) as Record<RunStatus, number>;

const TRIGGERS: readonly RunTrigger[] = [
  'schedule',
  'buffered',
  'catch_up',
  'manual',
  'retry',
  'backfill',
];
const TRIGGER_INDEX: Readonly<Record<RunTrigger, number>> = Object.fromEntries(
  TRIGGERS.map((t, i) => [t, i]),
) as Record<RunTrigger, number>;

/** Per plugin id: its labels and its series, each made when first counted. */
interface PluginEntry {
  readonly labels: PluginLabels;
  /** Runs finished, by `STATUS_INDEX`. */
  readonly runs: (CounterSeries<'tenant' | 'plugin' | 'status'> | undefined)[];
  fuel: HistogramSeries<'tenant' | 'plugin'> | undefined;
  duration: HistogramSeries<'tenant' | 'plugin'> | undefined;
}

/** Per tenant shard: fire lateness by `TRIGGER_INDEX`. */
type LatenessEntry = (HistogramSeries<'tenant' | 'trigger'> | undefined)[];

export class HostMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  readonly #host: Host;
  readonly #owned: boolean;
  readonly #names: string[] = [];
  readonly #off: (() => void)[] = [];
  readonly #plugins = new Map<string, PluginEntry>();
  readonly #late = new Map<string, LatenessEntry>();
  /** Host calls: tenant shard → function label → answer code → series. */
  readonly #calls = new Map<
    string,
    Map<string, Map<string, CounterSeries<'tenant' | 'function' | 'code'>>>
  >();
  readonly #hostFns: ReadonlySet<string> = new Set(Object.keys(HOST_CALL_FUEL));
  #closed = false;

  readonly #runs: KeptCounter<'tenant' | 'plugin' | 'status'>;
  readonly #fuel: KeptHistogram<'tenant' | 'plugin'>;
  readonly #duration: KeptHistogram<'tenant' | 'plugin'>;
  readonly #lateness: KeptHistogram<'tenant' | 'trigger'>;
  readonly #skipped: KeptCounter<'tenant' | 'plugin' | 'status'>;
  readonly #retries: KeptCounter<'tenant' | 'plugin'>;
  readonly #trips: KeptCounter<'tenant' | 'plugin'>;
  readonly #hostCalls: KeptCounter<'tenant' | 'function' | 'code'>;
  readonly #httpRequests: KeptCounter<'tenant' | 'outcome'>;
  readonly #httpBytes: KeptCounter<'tenant' | 'direction'>;
  readonly #loads: KeptCounter<'tenant' | 'plugin'>;
  readonly #loadFailures: KeptCounter<'tenant' | 'plugin' | 'code'>;
  readonly #pruned: KeptCounter<'tenant'>;
  readonly #commit: KeptHistogram<never>;

  constructor(host: Host, opts: HostMetricsOptions = {}) {
    this.#host = host;
    this.#owned = opts.registry === undefined;
    this.registry = opts.registry ?? new Registry();
    this.contentType = this.registry.contentType;
    const registers = [this.registry];
    const named = <T extends { name?: string }>(cfg: T & { name: string }): T => {
      this.#names.push(cfg.name);
      return { ...cfg, registers };
    };

    this.#runs = new KeptCounter(
      named({
        name: 'hourglass_runs_finished_total',
        help: 'Runs finished, by outcome (the run record status), tenant and plugin.',
        labelNames: ['tenant', 'plugin', 'status'] as const,
      }),
    );
    this.#fuel = new KeptHistogram(
      named({
        name: 'hourglass_run_fuel_used',
        help: 'Fuel used per finished run (runs that reported it).',
        labelNames: ['tenant', 'plugin'] as const,
        buckets: FUEL_BUCKETS,
      }),
    );
    this.#duration = new KeptHistogram(
      named({
        name: 'hourglass_run_duration_seconds',
        help: 'Run duration, from its start to its outcome (as the run record has them).',
        labelNames: ['tenant', 'plugin'] as const,
        buckets: DURATION_BUCKETS,
      }),
    );
    this.#lateness = new KeptHistogram(
      named({
        name: 'hourglass_fire_lateness_seconds',
        help: 'How late a run started: its start minus the time its tick was scheduled for.',
        labelNames: ['tenant', 'trigger'] as const,
        buckets: LATENESS_BUCKETS,
      }),
    );
    this.#skipped = new KeptCounter(
      named({
        name: 'hourglass_ticks_skipped_total',
        help: 'Ticks not run, by why (skipped_overlap, skipped_misfire, cancelled, quota_exhausted).',
        labelNames: ['tenant', 'plugin', 'status'] as const,
      }),
    );
    this.#retries = new KeptCounter(
      named({
        name: 'hourglass_run_retries_total',
        help: 'Retries scheduled: failed runs whose tick gets another attempt (retry policy).',
        labelNames: ['tenant', 'plugin'] as const,
      }),
    );
    this.#trips = new KeptCounter(
      named({
        name: 'hourglass_schedule_trips_total',
        help: 'Schedules paused by their breaker (failed ticks in a row).',
        labelNames: ['tenant', 'plugin'] as const,
      }),
    );
    this.#httpRequests = new KeptCounter(
      named({
        name: 'hourglass_guest_http_requests_total',
        help: 'Outbound HTTP requests by guests, by outcome (a status class such as 2xx, or the error code: denied, timeout, response_too_large, ...).',
        labelNames: ['tenant', 'outcome'] as const,
      }),
    );
    this.#httpBytes = new KeptCounter(
      named({
        name: 'hourglass_guest_http_bytes_total',
        help: 'Bytes of outbound HTTP bodies by guests, by direction (in: responses, out: requests).',
        labelNames: ['tenant', 'direction'] as const,
      }),
    );
    this.#hostCalls = new KeptCounter(
      named({
        name: 'hourglass_host_calls_total',
        help: 'Host-function calls by guests, by function and answer code (ok or the error code).',
        labelNames: ['tenant', 'function', 'code'] as const,
      }),
    );
    this.#loads = new KeptCounter(
      named({
        name: 'hourglass_plugin_loads_total',
        help: 'Plugin loads (and reloads) that succeeded.',
        labelNames: ['tenant', 'plugin'] as const,
      }),
    );
    this.#pruned = new KeptCounter(
      named({
        name: 'hourglass_runs_pruned_total',
        help: 'Finished runs deleted by run-history retention.',
        labelNames: ['tenant'] as const,
      }),
    );
    this.#loadFailures = new KeptCounter(
      named({
        name: 'hourglass_plugin_load_failures_total',
        help: 'Plugin loads (and reloads) that failed, by error code.',
        labelNames: ['tenant', 'plugin', 'code'] as const,
      }),
    );
    this.#commit = new KeptHistogram(
      named({
        name: 'hourglass_store_commit_seconds',
        help: 'Store commit latency: a flush until the durable copy committed it, or a group COMMIT.',
        buckets: COMMIT_BUCKETS,
      }),
    );

    const store = host.store;
    if (store.countSchedulesByState) {
      const countByState = store.countSchedulesByState.bind(store);
      new Gauge(
        named({
          name: 'hourglass_schedules',
          help: 'Schedules by state and tenant (read from the store at scrape time).',
          labelNames: ['tenant', 'state'] as const,
          collect(this: Gauge<'tenant' | 'state'>) {
            this.reset();
            const sums = new Map<string, { tenant: string; state: string; n: number }>();
            for (const c of countByState()) {
              const tenant = tenantLabel(c.tenant);
              const key = `${tenant}\0${c.state}`;
              const s = sums.get(key);
              if (s) s.n += c.count;
              else sums.set(key, { tenant, state: c.state, n: c.count });
            }
            for (const s of sums.values()) this.set({ tenant: s.tenant, state: s.state }, s.n);
          },
        }),
      );
    }

    if (host.sandboxStats !== null) this.#poolMetrics(named);

    if (store.setCommitListener) {
      const commit = this.#commit.series({});
      store.setCommitListener((seconds) => commit.observe(seconds));
      this.#off.push(() => store.setCommitListener?.(null));
    }

    this.#listen();
  }

  /** Pool gauges and the replacements counter, read from `Host.sandboxStats` at scrape time. */
  #poolMetrics(named: <T extends { name?: string }>(cfg: T & { name: string }) => T): void {
    const host = this.#host;
    const seen = { timed_out: 0, worker_crashed: 0 };
    new Gauge(
      named({
        name: 'hourglass_pool_queue_depth',
        help: 'Guest calls and loads waiting for a sandbox worker.',
        collect(this: Gauge) {
          this.set(host.sandboxStats?.queued ?? 0);
        },
      }),
    );
    new Gauge(
      named({
        name: 'hourglass_pool_workers_busy',
        help: 'Sandbox workers holding at least one call or load.',
        collect(this: Gauge) {
          this.set(host.sandboxStats?.busy ?? 0);
        },
      }),
    );
    new Gauge(
      named({
        name: 'hourglass_pool_workers',
        help: 'Sandbox worker slots (the pool size).',
        collect(this: Gauge) {
          this.set(host.sandboxStats?.workers ?? 0);
        },
      }),
    );
    new Counter(
      named({
        name: 'hourglass_pool_worker_replacements_total',
        help: 'Sandbox workers replaced, by why (timed_out: a call overran its deadline; worker_crashed).',
        labelNames: ['reason'] as const,
        collect(this: Counter<'reason'>) {
          const r = host.sandboxStats?.replaced;
          if (!r) return;
          for (const reason of ['timed_out', 'worker_crashed'] as const) {
            // Counted by the pool; added here by what grew since the last scrape.
            if (r[reason] > seen[reason]) this.inc({ reason }, r[reason] - seen[reason]);
            else if (seen[reason] === 0) this.inc({ reason }, 0);
            seen[reason] = r[reason];
          }
        },
      }),
    );
  }

  #plugin(pluginId: string, tenant: string): PluginEntry {
    let e = this.#plugins.get(pluginId);
    if (!e) {
      e = {
        labels: { tenant: tenantLabel(tenant), plugin: pluginLabel(pluginId) },
        runs: new Array<undefined>(RunStatuses.length).fill(undefined),
        fuel: undefined,
        duration: undefined,
      };
      this.#plugins.set(pluginId, e);
    }
    return e;
  }

  /**
   * The listeners: plain arithmetic on series held per plugin (and status, tenant, trigger),
   * each series made the first time it is counted; prom-client reads them at scrape time.
   */
  #listen(): void {
    const events = this.#host.events;
    const on = <K extends keyof HostEventMap>(k: K, f: (...a: HostEventMap[K]) => void) => {
      events.on(k, f as never);
      this.#off.push(() => events.off(k, f as never));
    };
    on('run:finished', (r) => {
      const e = this.#plugins.get(r.pluginId) ?? this.#plugin(r.pluginId, r.tenant);
      const i = STATUS_INDEX[r.status];
      (e.runs[i] ??= this.#runs.series({ ...e.labels, status: r.status })).value++;
      if (r.fuelUsed !== null) (e.fuel ??= this.#fuel.series(e.labels)).observe(r.fuelUsed);
      if (r.finishedAt !== null)
        (e.duration ??= this.#duration.series(e.labels)).observe(
          Math.max(0, r.finishedAt - r.startedAt) / 1000,
        );
    });
    on('run:started', (run) => {
      // A backfill run starts hours after its (past) tick by design: not lateness.
      if (run.trigger === 'backfill') return;
      const tenant = run.schedule.tenant;
      let late = this.#late.get(tenant);
      if (!late)
        this.#late.set(tenant, (late = new Array<undefined>(TRIGGERS.length).fill(undefined)));
      (late[TRIGGER_INDEX[run.trigger]] ??= this.#lateness.series({
        tenant: tenantLabel(tenant),
        trigger: run.trigger,
      })).observe(Math.max(0, run.firedAt - run.scheduledAt) / 1000);
    });
    on('schedule:skipped', (e) => {
      const p = this.#plugin(e.schedule.pluginId, e.schedule.tenant);
      this.#skipped.series({ ...p.labels, status: e.status }).value++;
    });
    on('run:retrying', (e) => {
      this.#retries.series(this.#plugin(e.schedule.pluginId, e.schedule.tenant).labels).value++;
    });
    on('schedule:tripped', (e) => {
      this.#trips.series(this.#plugin(e.schedule.pluginId, e.schedule.tenant).labels).value++;
    });
    on('guest:http', (r) => {
      const tenant = tenantLabel(r.tenant);
      const outcome = r.status > 0 ? `${Math.floor(r.status / 100)}xx` : (r.error ?? 'failed');
      this.#httpRequests.series({ tenant, outcome }).value++;
      if (r.bytesIn > 0) this.#httpBytes.series({ tenant, direction: 'in' }).value += r.bytesIn;
      if (r.bytesOut > 0) this.#httpBytes.series({ tenant, direction: 'out' }).value += r.bytesOut;
    });
    on('host:call', (c) => {
      const fn = this.#hostFns.has(c.fn) ? c.fn : 'other';
      let byFn = this.#calls.get(c.tenant);
      if (!byFn) this.#calls.set(c.tenant, (byFn = new Map()));
      let byCode = byFn.get(fn);
      if (!byCode) byFn.set(fn, (byCode = new Map()));
      let s = byCode.get(c.code);
      if (!s) {
        s = this.#hostCalls.series({ tenant: tenantLabel(c.tenant), function: fn, code: c.code });
        byCode.set(c.code, s);
      }
      s.value++;
    });
    on('plugin:loaded', (e) => {
      this.#loads.series(this.#plugin(e.pluginId, tenantOfPlugin(e.pluginId)).labels).value++;
    });
    on('runs:pruned', (e) => {
      this.#pruned.series({ tenant: tenantLabel(e.tenant) }).value += e.count;
    });
    on('plugin:failed', (e) => {
      const p = this.#plugin(e.pluginId, tenantOfPlugin(e.pluginId));
      this.#loadFailures.series({ ...p.labels, code: e.code }).value++;
    });
  }

  /** The metrics in the Prometheus text format (`contentType`). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops listening (every listener it added) and takes its metrics out of the registry. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#off) off();
    this.#off.length = 0;
    if (this.#owned) this.registry.clear();
    else for (const name of this.#names) this.registry.removeSingleMetric(name);
  }
}

/** A plugin id's tenant (`<tenant>/<name>`). */
function tenantOfPlugin(pluginId: string): string {
  const slash = pluginId.indexOf('/');
  return slash < 0 ? pluginId : pluginId.slice(0, slash);
}
