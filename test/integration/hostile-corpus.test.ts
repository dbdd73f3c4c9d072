/**
 * The hostile corpus runner (issue 9, "Must show" 1 and 2). Every `hostile-cases-*.ts` beside
 * this file is discovered (readdirSync + dynamic import, so each area adds its file without
 * editing the runner) and every case runs as its own subtest, in its own host with its own
 * store (`hostile-host.ts`), through the real worker pool on the real clock, beside a
 * well-behaved tenant whose schedule fires every second. After each case:
 *
 * - the expected typed outcome (`expect`, then the case's own `check`);
 * - host RSS, once the case is over, within `RSS_BOUND_MB` of the base, and its peak (sampled
 *   every 50 ms during the case) within `RSS_PEAK_BOUND_MB` of it. The base is the larger of
 *   the RSS of a warm-up host with the good tenant only (idle, measured once at the start) and
 *   the process's RSS just before the case's host starts: so the bounds are what one hostile
 *   guest may add to a running host. (A process that has run many hosts keeps a larger V8 heap
 *   and code space, ~3 MB per host here, which the OS does not get back; the per-case base keeps
 *   that drift out of each case's bound, and the diagnostic line shows it.)
 * - the process's OS threads (/proc/self/task) back to "before the host + its pool" within
 *   `THREAD_SETTLE_MS` (a worker replaced after a deadline needs a moment to exit), and after
 *   `stop()` back to "before the host". What a pool costs is measured on the warm-up host, not
 *   assumed: `POOL_SIZE` workers + 2 spares showed as 8 threads on Node 20 (a bare
 *   `worker_threads` Worker is one), beside Node's own ~12 (main, V8 platform, libuv);
 * - `host.stop()` returns within the shutdown grace + 1 s, and the store, reopened, has no run
 *   left `running`;
 * - the good tenant: every tick of its schedule has a record (consecutive ticks 1 s apart, the
 *   last one no more than 1.25 s old), every run started within 250 ms of its scheduled time,
 *   none failed, none unfinished 5 s after its time (a run slower than 1 s, whose next tick is
 *   then `skipped_overlap`, is reported as a diagnostic: see `checkGoodTenant`). The case lasts
 *   until the good tenant has had at least two finished ticks.
 *
 * A failing case reports its file, name, item, and expected vs got, and the next case runs.
 * `HG_CORPUS=<substring>[,<substring>]` runs only the cases whose name or file contains one;
 * `HG_CORPUS_STRICT=1` also fails a case on a good run slower than 1 s.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { HostileCase } from './hostile-case.ts';
import {
  buildCaseHost,
  GOOD_KEY,
  rssSampler,
  SHUTDOWN_GRACE_MS,
  sleep,
  threadCount,
  type CaseHost,
} from './hostile-host.ts';

const MB = 1024 * 1024;
const RSS_BOUND_MB = 256;
const RSS_PEAK_BOUND_MB = 1024;
const LATE_MS = 250;
const MIN_TICKS = 2;
/** A good run still unfinished this long after its time fails the case. */
const GOOD_RUN_BOUND_MS = 5_000;
const START_TIMEOUT_MS = 60_000;
const THREAD_SETTLE_MS = 5_000;
const STOP_BOUND_MS = SHUTDOWN_GRACE_MS + 1_000;

const here = dirname(fileURLToPath(import.meta.url));

interface Loaded {
  readonly file: string;
  readonly cases: readonly HostileCase[];
  readonly error?: unknown;
}

async function discover(): Promise<Loaded[]> {
  const files = readdirSync(here)
    .filter((f) => /^hostile-cases-[\w-]+\.ts$/.test(f))
    .sort();
  const out: Loaded[] = [];
  for (const file of files) {
    try {
      const mod = (await import(pathToFileURL(join(here, file)).href)) as { CASES?: unknown };
      if (!Array.isArray(mod.CASES)) throw new Error(`${file} does not export CASES (an array)`);
      out.push({ file, cases: mod.CASES as HostileCase[] });
    } catch (error) {
      out.push({ file, cases: [], error });
    }
  }
  return out;
}

/** `HG_CORPUS_STRICT=1`: a good run slower than 1 s fails the case too. */
const STRICT = process.env.HG_CORPUS_STRICT === '1';
const wanted = (process.env.HG_CORPUS ?? '').split(',').filter(Boolean);
const selected = (file: string, c: HostileCase) =>
  wanted.length === 0 || wanted.some((w) => c.name.includes(w) || file.includes(w));

/** Polls until `ok()` or `ms` have passed; returns the last value of `read()`. */
async function settleOn<T>(read: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
  const until = Date.now() + ms;
  let v = read();
  while (!ok(v) && Date.now() < until) {
    await sleep(50);
    v = read();
  }
  return v;
}

/** Races `p` against `ms`; resolves 'timeout' if it is slower. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const fmt = (x: number) => `${Math.round(x / MB)} MB`;

/**
 * The good tenant's ticks: each recorded and started on time (the issue's 250 ms), none failed,
 * none held longer than `GOOD_RUN_BOUND_MS`. Returns notes for what is only reported: a run that
 * took over 1 s (so its next tick was `skipped_overlap`). On a loaded machine a worker (niced
 * to 10) can take that long to run a noop, so that alone does not fail a case.
 */
function checkGoodTenant(ch: CaseHost): string[] {
  const ticks = ch.host.store
    .listRuns({ scheduleKey: GOOD_KEY, limit: 10_000 })
    .reverse()
    .filter((r) => r.trigger === 'schedule');
  const now = Date.now();
  const finished = ticks.filter((r) => r.status !== 'running');
  assert.ok(
    finished.length >= MIN_TICKS,
    `the good tenant ran ${finished.length} ticks (fewer than ${MIN_TICKS})`,
  );
  const problems: string[] = [];
  const notes: string[] = [];
  for (const [i, r] of ticks.entries()) {
    const at = new Date(r.scheduledAt).toISOString();
    const late = r.startedAt - r.scheduledAt;
    if (late >= LATE_MS) problems.push(`tick ${at} started ${late} ms late`);
    if (r.status === 'skipped_overlap') notes.push(`tick ${at} skipped_overlap (${r.reason})`);
    else if (r.status !== 'running' && r.status !== 'succeeded')
      problems.push(`tick ${at} ended ${r.status} (${r.reason}): ${r.error}`);
    const took = (r.finishedAt ?? now) - r.scheduledAt;
    if (r.status !== 'skipped_overlap' && took >= GOOD_RUN_BOUND_MS)
      problems.push(
        `tick ${at} ${r.finishedAt === null ? 'still running' : 'finished'} ${took} ms after its time`,
      );
    else if (r.finishedAt !== null && took >= 1_000)
      notes.push(`tick ${at} finished ${took} ms after its time`);
    const prev = ticks[i - 1];
    if (prev && r.scheduledAt - prev.scheduledAt !== 1_000)
      problems.push(
        `no record for the tick(s) between ${new Date(prev.scheduledAt).toISOString()} and ${at}`,
      );
  }
  const last = ticks.at(-1);
  if (last && now - last.scheduledAt > 1_000 + LATE_MS)
    problems.push(
      `last tick ${new Date(last.scheduledAt).toISOString()} is ${now - last.scheduledAt} ms old`,
    );
  if (problems.length > 0) throw new Error(`the good tenant was disturbed: ${problems.join('; ')}`);
  return notes;
}

async function expectOutcome(c: HostileCase, ch: CaseHost): Promise<void> {
  const e = c.expect;
  if ('loadFails' in e) {
    assert.equal(
      ch.failed.get(ch.pluginId) ?? '(loaded)',
      e.loadFails,
      `expected load failure ${e.loadFails}`,
    );
  } else if ('trigger' in e) {
    assert.equal(ch.failed.get(ch.pluginId), undefined, 'the plugin failed to load');
    const times = e.times ?? 1;
    for (let i = 1; i <= times; i++) {
      const r = await ch.ctx.trigger(e.trigger);
      const got = `${r.status}${r.reason ? ` (${r.reason})` : ''}`;
      const want = `${e.status}${e.reason ? ` (${e.reason})` : ''}`;
      assert.ok(
        r.status === e.status && (e.reason === undefined || r.reason === e.reason),
        `run ${i}/${times} of '${e.trigger}': expected ${want}, got ${got}${r.error ? `: ${r.error}` : ''}`,
      );
    }
  }
  await c.check?.(ch.ctx);
}

/** How many cases each issue-9 item has (the issue asks for at least 45 behaviours in all). */
function coverage(all: readonly Loaded[]): string {
  const byItem = new Map<string, number>();
  let total = 0;
  for (const { cases } of all)
    for (const c of cases) {
      total++;
      for (const item of c.item.split(',').map((x) => x.trim()))
        byItem.set(item, (byItem.get(item) ?? 0) + 1);
    }
  const missing = Array.from({ length: 14 }, (_, i) => String(i + 1)).filter((i) => !byItem.has(i));
  const counts = [...byItem].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  return (
    `${total} cases in ${all.length} files; by item: ${counts.map(([i, n]) => `${i}:${n}`).join(' ')}` +
    (missing.length > 0 ? `; issue-9 items without a case: ${missing.join(' ')}` : '')
  );
}

test('hostile corpus', async (t) => {
  const all = await discover();

  // Warm-up: loads every module and lazily created thread once; measures the base RSS and the
  // threads one host (its pool) adds, with the good tenant only.
  const warm = buildCaseHost({
    name: 'warm-up',
    item: '-',
    guest: { wat: 'noop' },
    expect: { custom: true },
  });
  await warm.host.start();
  await sleep(1_500);
  const baseRss = process.memoryUsage.rss();
  const withHost = threadCount();
  await warm.host.stop();
  warm.dispose();
  await sleep(1_000);
  const threadsIdle = threadCount();
  const hostThreads = withHost - threadsIdle;
  t.diagnostic(
    `base RSS ${fmt(baseRss)} (bounds +${RSS_BOUND_MB} MB after, +${RSS_PEAK_BOUND_MB} MB peak); ` +
      `${threadsIdle} threads idle, +${hostThreads} per host`,
  );
  t.diagnostic(coverage(all));
  if (wanted.length === 0) {
    // Issue 9 asks for at least 45 hostile behaviours; the corpus must not silently shrink.
    const total = all.reduce((n, f) => n + f.cases.length, 0);
    assert.ok(total >= 45, `the corpus has ${total} cases; at least 45 are expected`);
  }

  const names = new Map<string, string>();
  for (const { file, cases, error } of all) {
    if (error !== undefined) {
      await t.test(`${file}: cannot load`, () => {
        throw error;
      });
      continue;
    }
    for (const c of cases) {
      if (!selected(file, c)) continue;
      const label = `${file} › ${c.name} [item ${c.item}]`;
      const dup = names.get(c.name);
      names.set(c.name, file);
      await t.test(label, { timeout: 180_000 }, async (t2) => {
        assert.equal(dup, undefined, `${label}: the name is also used in ${dup}`);
        await runCase(t2, c, label, { baseRss, hostThreads });
      });
    }
  }
});

async function runCase(
  t: TestContext,
  c: HostileCase,
  label: string,
  base: { baseRss: number; hostThreads: number },
): Promise<void> {
  // Every check runs even when an earlier one failed; the case fails with all of them.
  const problems: string[] = [];
  const step = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const threadsBefore = threadCount();
  const caseBase = Math.max(base.baseRss, process.memoryUsage.rss());
  const ch = buildCaseHost(c);
  const rss = rssSampler();
  let stopped = false;
  // Where the case's time went, and what it measured: one diagnostic line per case.
  const t0 = Date.now();
  const marks: string[] = [];
  const mark = (what: string) => marks.push(`${what} ${Date.now() - t0}`);
  try {
    const started = await within(ch.host.start(), START_TIMEOUT_MS);
    if (started === 'timeout') {
      problems.push(`host.start() did not return within ${START_TIMEOUT_MS} ms`);
      return;
    }
    mark('started');
    await step('good tenant', () => {
      assert.equal(ch.failed.get('good/steady'), undefined, 'it failed to load');
      assert.ok(
        ch.host.plugins.some((p) => p.tenant === 'good'),
        'it is not loaded',
      );
    });
    await step('outcome', () => expectOutcome(c, ch));
    mark('outcome');

    // Let the good tenant show at least MIN_TICKS finished ticks beside the hostile guest.
    await settleOn(
      () =>
        ch.host.store
          .listRuns({ scheduleKey: GOOD_KEY, limit: 100 })
          .filter((r) => r.trigger === 'schedule' && r.status !== 'running').length,
      (n) => n >= MIN_TICKS,
      10_000,
    );
    mark('ticks');
    await step('lateness', () => {
      const notes = checkGoodTenant(ch);
      if (STRICT && notes.length > 0)
        throw new Error(`the good tenant was slowed: ${notes.join('; ')}`);
      for (const note of notes) t.diagnostic(`good tenant: ${note}`);
    });

    const expectThreads = threadsBefore + base.hostThreads;
    const threads = await settleOn(threadCount, (n) => n <= expectThreads, THREAD_SETTLE_MS);
    if (threads > expectThreads)
      problems.push(
        `threads: ${threads} while the host runs, expected ${expectThreads} (${threadsBefore} before it + ${base.hostThreads} for its pool)`,
      );
    const after = process.memoryUsage.rss();
    const peak = rss.stop();
    if (after > caseBase + RSS_BOUND_MB * MB)
      problems.push(
        `RSS: ${fmt(after)} after the case, bound ${fmt(caseBase + RSS_BOUND_MB * MB)} (base ${fmt(caseBase)} + ${RSS_BOUND_MB} MB)`,
      );
    if (peak > caseBase + RSS_PEAK_BOUND_MB * MB)
      problems.push(
        `RSS: peaked at ${fmt(peak)}, bound ${fmt(caseBase + RSS_PEAK_BOUND_MB * MB)} (base + ${RSS_PEAK_BOUND_MB} MB)`,
      );

    mark('threads');
    const stopAt = Date.now();
    const stop = await within(ch.host.stop(), STOP_BOUND_MS + 10_000);
    const took = Date.now() - stopAt;
    mark('stopped');
    stopped = stop !== 'timeout';
    if (took > STOP_BOUND_MS)
      problems.push(
        `stop: host.stop() took ${stop === 'timeout' ? 'more than ' : ''}${took} ms, bound ${STOP_BOUND_MS} ms (grace ${SHUTDOWN_GRACE_MS} ms + 1 s)`,
      );
    if (stopped)
      await step('records', () => {
        // Reopened after stop: every run has an outcome (stop marks unfinished ones abandoned).
        const store = new SqliteStore(ch.config.store.path, { mustExist: true });
        try {
          const left = store.listRuns({ status: 'running', limit: 100 });
          assert.deepEqual(
            left.map((r) => `${r.scheduleKey}@${new Date(r.scheduledAt).toISOString()}`),
            [],
            'runs left running after stop',
          );
        } finally {
          store.close();
        }
      });
    const left = await settleOn(threadCount, (n) => n <= threadsBefore, THREAD_SETTLE_MS);
    if (left > threadsBefore)
      problems.push(`threads: ${left} after host.stop(), ${threadsBefore} before the host`);
    mark('threads-after-stop');
    t.diagnostic(
      `ms: ${marks.join(', ')}; RSS ${fmt(after)} (base ${fmt(caseBase)}, peak ${fmt(peak)}); threads ${threads}; stop ${took} ms`,
    );
  } finally {
    rss.stop();
    if (!stopped)
      await within(
        ch.host.stop().catch(() => undefined),
        STOP_BOUND_MS,
      );
    ch.dispose();
    if (problems.length > 0)
      // eslint-disable-next-line no-unsafe-finally -- the case's verdict, after its cleanup
      throw new assert.AssertionError({ message: `${label}:\n  ${problems.join('\n  ')}` });
  }
}
