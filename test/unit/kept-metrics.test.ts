/**
 * Kept metrics (src/observability/kept.ts): a `KeptCounter` and a `KeptHistogram` fed a
 * sequence print the same scrape, line for line, as prom-client's own `Counter` and `Histogram`
 * fed the same sequence (series in first-counted order, cumulative buckets with `le` first, the
 * sums added in the same order), answer the same `getMetricsAsJSON()`, share one series per
 * label set, and are zeroed by `Registry.resetMetrics()`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry, exponentialBuckets } from 'prom-client';
import { KeptCounter, KeptHistogram } from '../../src/observability/kept.ts';

const BUCKETS = exponentialBuckets(0.0005, 4, 10);

function pair(): {
  kept: Registry;
  stock: Registry;
  keptRuns: KeptCounter<'tenant' | 'status'>;
  stockRuns: Counter<'tenant' | 'status'>;
  keptTimes: KeptHistogram<'tenant'>;
  stockTimes: Histogram<'tenant'>;
  keptCommit: KeptHistogram<never>;
  stockCommit: Histogram;
} {
  const kept = new Registry();
  const stock = new Registry();
  const runs = { name: 'runs_total', help: 'Runs.', labelNames: ['tenant', 'status'] as const };
  const times = { name: 'times', help: 'Times.', labelNames: ['tenant'] as const };
  const commit = { name: 'commit', help: 'Commits.', buckets: [0.001, 0.01, 0.1] };
  return {
    kept,
    stock,
    keptRuns: new KeptCounter({ ...runs, registers: [kept] }),
    stockRuns: new Counter({ ...runs, registers: [stock] }),
    keptTimes: new KeptHistogram({ ...times, buckets: BUCKETS, registers: [kept] }),
    stockTimes: new Histogram({ ...times, buckets: BUCKETS, registers: [stock] }),
    keptCommit: new KeptHistogram({ ...commit, registers: [kept] }),
    stockCommit: new Histogram({ ...commit, registers: [stock] }),
  };
}

test('kept metrics scrape as prom-client metrics fed alike', async () => {
  const p = pair();
  // Before anything is counted: only the unlabelled histogram's series, at 0.
  const commit = p.keptCommit.series({});
  assert.equal(await p.kept.metrics(), await p.stock.metrics());

  const tenants = ['a', 'b', 'c'];
  const statuses = ['ok', 'failed', 'timed_out'];
  for (let i = 0; i < 500; i++) {
    const tenant = tenants[(i * 7) % 3] as string;
    const status = statuses[(i + Math.floor(i / 9)) % 3] as string;
    p.keptRuns.series({ tenant, status }).value++;
    p.stockRuns.inc({ tenant, status });
    // Values on, between, below and above the bounds; NaN is refused by both (left out here).
    const v = i % 50 === 0 ? (BUCKETS[i % BUCKETS.length] as number) : (i * 0.37) % 200;
    if (i % 4 !== 3) {
      p.keptTimes.series({ tenant }).observe(v);
      p.stockTimes.observe({ tenant }, v);
    }
    commit.observe(i * 0.0003);
    p.stockCommit.observe(i * 0.0003);
  }
  p.keptTimes.series({ tenant: 'z' }).observe(0);
  p.stockTimes.observe({ tenant: 'z' }, 0);
  const text = await p.kept.metrics();
  assert.equal(text, await p.stock.metrics());
  assert.match(text, /^times_bucket\{le="0.0005",tenant="a"\} \d+$/m);
  assert.deepEqual(await p.kept.getMetricsAsJSON(), await p.stock.getMetricsAsJSON());
});

test('one series per label set; reset zeroes them', async () => {
  const p = pair();
  const one = p.keptRuns.series({ tenant: 'a', status: 'ok' });
  assert.equal(p.keptRuns.series({ tenant: 'a', status: 'ok' }), one);
  one.value += 2;
  p.keptTimes.series({ tenant: 'a' }).observe(1);
  p.keptTimes.series({ tenant: 'a' }).observe(Number.NaN); // ignored
  assert.match(await p.kept.metrics(), /^runs_total\{tenant="a",status="ok"\} 2$/m);
  assert.match(await p.kept.metrics(), /^times_count\{tenant="a"\} 1$/m);
  p.kept.resetMetrics();
  const text = await p.kept.metrics();
  assert.match(text, /^runs_total\{tenant="a",status="ok"\} 0$/m);
  assert.match(text, /^times_count\{tenant="a"\} 0$/m);
  assert.match(text, /^times_bucket\{le="\+Inf",tenant="a"\} 0$/m);
  one.value++;
  assert.match(await p.kept.metrics(), /^runs_total\{tenant="a",status="ok"\} 1$/m);
});
