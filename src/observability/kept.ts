/**
 * Counters and histograms whose numbers are kept as plain numbers by their owner and handed to
 * prom-client only at scrape time: `KeptCounter` and `KeptHistogram` are prom-client metrics (a
 * registry registers, scrapes and formats them like any other) whose series are `CounterSeries`
 * and `HistogramSeries` objects that the owner holds and updates with plain arithmetic: a
 * counter's `value += n`; a histogram's `observe(v)` is a bucket-index search, an increment, a
 * sum and a count. No label hashing, validation or map lookup per event (prom-client's labelled
 * `inc` and `observe` cost ~370 and ~460 ns; these a few ns).
 *
 * The scrape is prom-client's own text: `get()` (and the histogram's `getForPromString()`, what
 * `Registry.metrics()` reads) return the values in the shape prom-client's own metrics do, so
 * the registry prints the same lines: the same series, in the order they were first counted
 * (`series()` makes a series when it is first wanted, which is when it is first counted), the
 * same cumulative buckets with their `le` first, the same sums (added in the same order).
 * test/unit/kept-metrics.test.ts checks the text against prom-client's metrics fed alike.
 *
 * A series is made once per label set: `series(labels)` returns the one already made for equal
 * label values, so two callers (e.g. a plugin and its replica, labelled alike) count into one.
 * `reset()` (`Registry.resetMetrics()`) zeroes the series in place: they stay listed, at 0.
 */
import {
  Counter,
  Histogram,
  type Aggregator,
  type CounterConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

type Labels<L extends string> = Readonly<Record<L, string>>;

/** What a metric's `get()` answers besides its values (prom-client's typings leave it out). */
interface Meta {
  readonly name: string;
  readonly help: string;
  readonly aggregator: Aggregator;
}

function metaOf(config: CounterConfiguration<string> | HistogramConfiguration<string>): Meta {
  return { name: config.name, help: config.help, aggregator: config.aggregator ?? 'sum' };
}

/**
 * prom-client's typings for `get()` ask for a `collect` its own metrics never answer, and type
 * a histogram's labels without its `le`: the values are what prom-client's own `get()` gives.
 */
function asGot<T>(got: object): T {
  return got as T;
}

/** One counter series: add to `value`. */
export class CounterSeries<L extends string> {
  value = 0;
  constructor(readonly labels: Labels<L>) {}
}

/** One histogram series: `observe(v)`. */
export class HistogramSeries<L extends string> {
  /** Observations per bucket (not cumulative): `v <= bounds[i]` and above the bound before. */
  readonly buckets: Float64Array;
  /** All observations (those above the last bound are only here: the `+Inf` bucket). */
  count = 0;
  sum = 0;
  readonly #bounds: Float64Array;

  constructor(
    readonly labels: Labels<L>,
    bounds: Float64Array,
  ) {
    this.#bounds = bounds;
    this.buckets = new Float64Array(bounds.length);
  }

  /** Counts `v` (prom-client's rule: the first bucket whose bound is ≥ v). Ignores NaN, ±∞. */
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    const b = this.#bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v <= (b[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    if (lo < b.length) this.buckets[lo]++;
    this.count++;
    this.sum += v;
  }
}

/** Label values as one key (label values never hold a NUL). */
function keyOf(labels: Readonly<Record<string, string>>): string {
  let key = '';
  for (const v of Object.values(labels)) key += `${v}\0`;
  return key;
}

/** A prom-client counter whose series are `CounterSeries` that its owner adds to. */
export class KeptCounter<L extends string> extends Counter<L> {
  readonly #series = new Map<string, CounterSeries<L>>();
  readonly #meta: Meta;

  constructor(config: CounterConfiguration<L>) {
    super(config);
    this.#meta = metaOf(config);
  }

  /** The series of these label values (made, and listed, the first time). */
  series(labels: Labels<L>): CounterSeries<L> {
    const key = keyOf(labels);
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = new CounterSeries(labels)));
    return s;
  }

  override async get(): ReturnType<Counter<L>['get']> {
    return asGot({
      help: this.#meta.help,
      name: this.#meta.name,
      type: 'counter',
      // Fresh objects: a registry with default labels rewrites a value's `labels`.
      values: [...this.#series.values()].map((s) => ({ value: s.value, labels: s.labels })),
      aggregator: this.#meta.aggregator,
    });
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls this before this class's fields exist.
    if (#series in this) for (const s of this.#series.values()) s.value = 0;
  }
}

/** A histogram value as prom-client's `getForPromString()` has it (the registry prints these). */
interface PromStringValue {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly metricName: string;
  readonly exemplar: null | undefined;
}

/** A prom-client histogram whose series are `HistogramSeries` that its owner observes into. */
export class KeptHistogram<L extends string> extends Histogram<L> {
  readonly #series = new Map<string, HistogramSeries<L>>();
  readonly #bounds: Float64Array;
  readonly #upper: readonly number[];
  readonly #meta: Meta;

  constructor(config: HistogramConfiguration<L> & { readonly buckets: readonly number[] }) {
    super(config);
    this.#meta = metaOf(config);
    // prom-client's own bounds (sorted, as it prints them as `le`).
    this.#upper = [...(this as unknown as { upperBounds: readonly number[] }).upperBounds];
    this.#bounds = Float64Array.from(this.#upper);
  }

  /** The series of these label values (made, and listed, the first time). */
  series(labels: Labels<L>): HistogramSeries<L> {
    const key = keyOf(labels);
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = new HistogramSeries(labels, this.#bounds)));
    return s;
  }

  /** What `Registry.metrics()` prints: prom-client's histogram values, from the kept series. */
  async getForPromString(): Promise<
    Meta & { readonly type: 'histogram'; readonly values: PromStringValue[] }
  > {
    const { name } = this.#meta;
    const bucket = `${name}_bucket`;
    const values: PromStringValue[] = [];
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#upper.length; i++) {
        acc += s.buckets[i] as number;
        values.push({
          labels: { le: this.#upper[i] as number },
          sharedLabels: s.labels,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      const shared = { sharedLabels: s.labels, exemplar: undefined };
      values.push(
        { labels: { le: '+Inf' }, value: s.count, metricName: bucket, ...shared, exemplar: null },
        { labels: {}, value: s.sum, metricName: `${name}_sum`, ...shared },
        { labels: {}, value: s.count, metricName: `${name}_count`, ...shared },
      );
    }
    return { ...this.#meta, type: 'histogram', values };
  }

  override async get(): ReturnType<Histogram<L>['get']> {
    const data = await this.getForPromString();
    return asGot({
      ...data,
      // As prom-client's: each value's labels with its series' labels added after `le`.
      values: data.values.map(({ labels, sharedLabels, value, metricName, exemplar }) => ({
        value,
        metricName,
        exemplar,
        labels: { ...labels, ...sharedLabels },
      })),
    });
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls this before this class's fields exist.
    if (#series in this)
      for (const s of this.#series.values()) {
        s.buckets.fill(0);
        s.count = 0;
        s.sum = 0;
      }
  }
}
