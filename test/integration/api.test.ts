/**
 * The HTTP API over real HTTP (a loopback port), beside a real host running the proxy guest for
 * two tenants, on SQLite and on PostgreSQL: every route, and the scoping matrix (operator,
 * tenant A, tenant B, no token, a bad token) with the answer each gets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunRecord, ScheduleRecord } from '../../src/store/types.ts';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { CAPABILITIES } from '../../src/capabilities.ts';
import { runCheck } from '../../src/check/check.ts';
import { withUploads } from '../../src/operator/uploads.ts';
import { loadManifest } from '../../src/plugin/manifest.ts';
import type { CallRequest, GuestSpec } from '../../src/sandbox/types.ts';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { serve, TOKENS, written } from './api-harness.ts';
import { GatedSandbox } from './gated-sandbox.ts';
import { GUEST, STORES, T0, advance, storedCopy, turns } from './helpers.ts';

/** Lets the event loop run until `cond` holds (a lost promise fails the test's own timeout). */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((resolve) => setTimeout(resolve, 5));
}

type Page<T> = { items: T[]; next: string | null };
const errCode = (body: unknown) => (body as { error: { code: string } }).error.code;

for (const kind of STORES) {
  describe(`HTTP API on ${kind}`, () => {
    test('health, readiness and the OpenAPI document answer without a token', async (t) => {
      const s = await serve(t, kind);
      assert.deepEqual(await s.call('none', '/healthz'), { status: 200, body: { ok: true } });
      assert.deepEqual(await s.call('none', '/readyz'), {
        status: 200,
        body: { ready: true, reason: null },
      });
      const doc = (await s.call('none', '/openapi.json')).body as {
        openapi: string;
        paths: Record<string, Record<string, unknown>>;
      };
      assert.match(doc.openapi, /^3\./);
      for (const path of [
        '/v1/tenants',
        '/v1/plugins',
        '/v1/plugins/{tenant}/{name}',
        '/v1/schedules',
        '/v1/schedules/{tenant}/{plugin}/{id}',
        '/v1/schedules/{tenant}/{plugin}/{id}/pause',
        '/v1/runs',
        '/v1/runs/{id}',
        '/v1/jobs',
      ])
        assert.ok(doc.paths[path], `${path} in the OpenAPI document`);
      // The document's query schema is the one the server validates with.
      const params = (doc.paths['/v1/runs']?.get as { parameters: { name: string }[] }).parameters;
      assert.deepEqual(params.map((p) => p.name).sort(), [
        'cursor',
        'limit',
        'plugin',
        'schedule',
        'since',
        'status',
        'tenant',
        'until',
      ]);
      await s.opened.stop(0);
      const r = await s.call('none', '/readyz');
      assert.equal(r.status, 503);
      assert.deepEqual(r.body, { ready: false, reason: 'stopping' });
    });

    test('the scoping matrix: operator, tenant A, tenant B, no token, a bad token', async (t) => {
      const s = await serve(t, kind);
      // Runs of both tenants, so there is something to hide.
      for (const key of ['a/p/s1', 'b/p/s1', 'b/p/s2']) {
        const r = await s.call('ops', `/v1/schedules/${key}/trigger`, { method: 'POST' });
        assert.deepEqual(r, { status: 200, body: { ok: true, via: 'host', value: 'started' } });
      }
      await s.opened.host.scheduler.settle();
      await written(s);

      for (const who of ['none', 'bad'] as const)
        for (const path of ['/v1/tenants', '/v1/runs', '/v1/runs/1', '/v1/schedules']) {
          const r = await s.call(who, path);
          assert.equal(r.status, 401, `${who} ${path}`);
          assert.equal(errCode(r.body), 'HG_API_UNAUTHORIZED');
        }

      const ids = async (who: 'ops' | 'a' | 'b', path: string) => {
        const r = await s.call(who, path);
        assert.equal(r.status, 200, `${who} ${path}: ${JSON.stringify(r.body)}`);
        const body = r.body as Page<{ key?: string; id?: unknown }> | { id: string }[];
        const items = Array.isArray(body) ? body : body.items;
        return items.map((x) => String('key' in x && x.key ? x.key : x.id)).sort();
      };
      assert.deepEqual(await ids('ops', '/v1/tenants'), ['a', 'b']);
      assert.deepEqual(await ids('a', '/v1/tenants'), ['a']);
      assert.deepEqual(await ids('b', '/v1/tenants'), ['b']);
      assert.deepEqual(await ids('ops', '/v1/plugins'), ['a/p', 'b/p']);
      assert.deepEqual(await ids('a', '/v1/plugins'), ['a/p']);
      assert.deepEqual(await ids('a', '/v1/plugins?tenant=b'), []);
      assert.deepEqual(await ids('ops', '/v1/schedules'), ['a/p/s1', 'a/p/s2', 'b/p/s1', 'b/p/s2']);
      assert.deepEqual(await ids('a', '/v1/schedules'), ['a/p/s1', 'a/p/s2']);
      // Filters naming the other tenant find nothing (they do not widen the scope).
      assert.deepEqual(await ids('a', '/v1/schedules?tenant=b'), []);
      assert.deepEqual(await ids('a', '/v1/schedules?plugin=b/p'), []);

      const runs = async (who: 'ops' | 'a' | 'b', query = '') =>
        ((await s.call(who, `/v1/runs${query}`)).body as Page<RunRecord>).items;
      const all = await runs('ops');
      assert.deepEqual(all.map((r) => r.scheduleKey).sort(), ['a/p/s1', 'b/p/s1', 'b/p/s2']);
      assert.deepEqual(
        (await runs('a')).map((r) => r.scheduleKey),
        ['a/p/s1'],
      );
      assert.deepEqual(await runs('a', '?tenant=b'), []);
      assert.deepEqual(await runs('a', '?schedule=b/p/s1'), []);
      assert.deepEqual(await runs('a', '?plugin=b/p'), []);
      assert.deepEqual(
        (await runs('b', '?status=failed')).map((r) => r.scheduleKey),
        ['b/p/s2'],
      );

      // One record by id or key: another tenant's answers as a record that does not exist.
      const runOfB = all.find((r) => r.scheduleKey === 'b/p/s2');
      assert.ok(runOfB);
      for (const [who, status] of [
        ['ops', 200],
        ['b', 200],
        ['a', 404],
      ] as const) {
        const r = await s.call(who, `/v1/runs/${runOfB.id}`);
        assert.equal(r.status, status, `${who} reads b's run`);
        if (status === 404) {
          assert.equal(errCode(r.body), 'HG_API_NOT_FOUND');
          const missing = await s.call(who, '/v1/runs/999999');
          assert.equal(missing.status, 404);
          assert.equal(errCode(missing.body), 'HG_API_NOT_FOUND');
        } else {
          const run = r.body as RunRecord;
          assert.equal(run.status, 'failed');
          assert.equal(run.error, 'no luck');
          assert.ok(run.fuelUsed && run.fuelUsed > 0, 'fuel used');
        }
      }
      assert.equal((await s.call('a', '/v1/runs/999999')).status, 404);
      assert.equal((await s.call('a', '/v1/schedules/b/p/s1')).status, 404);
      assert.equal((await s.call('a', '/v1/plugins/b/p')).status, 404);
      assert.equal((await s.call('b', '/v1/schedules/b/p/s1')).status, 200);
      const plugin = (await s.call('b', '/v1/plugins/b/p')).body as {
        status: string;
        capabilities: string[];
        limits: { fuel: { run: number } } | null;
      };
      assert.equal(plugin.status, 'loaded');
      // Granted: what its manifest asks (all) among what tenant b grants (all but schedule_delete).
      assert.deepEqual(
        [...plugin.capabilities].sort(),
        CAPABILITIES.filter((c) => c !== 'schedule_delete').sort(),
      );
      assert.ok(plugin.limits && plugin.limits.fuel.run > 0);
      assert.deepEqual(
        ((await s.call('a', '/v1/jobs')).body as { name: string }[]).map((j) => j.name),
        ['a-job'],
      );
      assert.deepEqual((await s.call('a', '/v1/jobs?plugin=b/p')).body, []);
      assert.deepEqual(
        ((await s.call('ops', '/v1/jobs')).body as { name: string }[]).map((j) => j.name).sort(),
        ['a-job', 'b-job'],
      );

      // Actions on another tenant's schedule are refused and change nothing.
      for (const [method, suffix] of [
        ['POST', '/pause'],
        ['POST', '/resume'],
        ['POST', '/trigger'],
        ['POST', '/backfill'],
        ['DELETE', ''],
      ] as const) {
        const r = await s.call('a', `/v1/schedules/b/p/s1${suffix}`, {
          method,
          ...(suffix === '/backfill' ? { body: { ticks: [T0] } } : {}),
        });
        assert.equal(r.status, 404, `a ${method} b/p/s1${suffix}`);
      }
      await s.opened.host.scheduler.settle();
      await written(s);
      assert.equal((await runs('ops', '?schedule=b/p/s1')).length, 1, 'no run triggered by a');
      const b1 = (await s.call('ops', '/v1/schedules/b/p/s1')).body as ScheduleRecord;
      assert.equal(b1.state, 'active');

      // Metrics: the operator's (they name every tenant), in the Prometheus text format.
      assert.equal((await s.call('a', '/metrics')).status, 403);
      assert.equal((await s.call('none', '/metrics')).status, 401);
      const scrape = await s.call('ops', '/metrics');
      assert.equal(scrape.status, 200);
      assert.match(
        String(scrape.body),
        /^hourglass_runs_finished_total\{[^}]*status="failed"[^}]*\} 1$/m,
        'the failed run of b/p/s2',
      );

      // Every request was logged with who made it.
      const logged = s.log().filter((l) => l.msg === 'api request');
      assert.ok(logged.some((l) => l.who === 'team-a' && l.tenant === 'a' && l.status === 404));
      assert.ok(logged.some((l) => l.who === null && l.status === 401));
      assert.ok(logged.some((l) => l.who === 'ops' && l.status === 200));
    });

    test('pause with a note, resume, trigger and delete, reflected in the store', async (t) => {
      const s = await serve(t, kind);
      const pause = await s.call('a', '/v1/schedules/a/p/s1/pause', {
        method: 'POST',
        body: { note: 'maintenance <b>window</b>' },
      });
      assert.deepEqual(pause, { status: 200, body: { ok: true, via: 'host', value: 'paused' } });
      await written(s);
      const stored = await storedCopy(s.config);
      try {
        const rec = stored.getSchedule('a/p/s1');
        assert.equal(rec?.state, 'paused');
        assert.equal(rec?.pauseNote, 'maintenance <b>window</b>');
      } finally {
        stored.close();
      }
      const read = (await s.call('a', '/v1/schedules/a/p/s1')).body as ScheduleRecord;
      assert.equal(read.pauseNote, 'maintenance <b>window</b>');
      assert.deepEqual(
        ((await s.call('a', '/v1/schedules?state=paused')).body as Page<ScheduleRecord>).items.map(
          (x) => x.key,
        ),
        ['a/p/s1'],
      );
      assert.deepEqual(
        (await s.call('a', '/v1/schedules/a/p/s1/resume', { method: 'POST' })).body,
        { ok: true, via: 'host', value: 'active' },
      );
      assert.deepEqual((await s.call('a', '/v1/schedules/a/p/s1', { method: 'DELETE' })).body, {
        ok: true,
        via: 'host',
        value: 'deleted',
      });
      const gone = await s.call('a', '/v1/schedules/a/p/s1/resume', { method: 'POST' });
      assert.equal(gone.status, 404);
      assert.equal(errCode(gone.body), 'HG_API_NOT_FOUND');
      // Deleted, still readable by key (history), and no longer listed by default.
      assert.equal(
        ((await s.call('a', '/v1/schedules/a/p/s1')).body as ScheduleRecord).state,
        'deleted',
      );
      assert.deepEqual(
        ((await s.call('a', '/v1/schedules')).body as Page<ScheduleRecord>).items.map((x) => x.key),
        ['a/p/s2'],
      );
    });

    test('trigger with its own payload: that run only; a payload over the quota is refused', async (t) => {
      const s = await serve(t, kind);
      const trigger = (body?: unknown) =>
        s.call('a', '/v1/schedules/a/p/s1/trigger', {
          method: 'POST',
          ...(body === undefined ? {} : { body }),
        });
      // The proxy guest fails with the message its payload names.
      assert.equal((await trigger({ payload: { fail: 'as asked' } })).status, 200);
      await s.opened.host.scheduler.settle();
      assert.equal((await trigger()).status, 200);
      await s.opened.host.scheduler.settle();
      await written(s);
      const runs = ((await s.call('a', '/v1/runs?schedule=a/p/s1')).body as Page<RunRecord>).items;
      assert.deepEqual(
        runs.map((r) => [r.trigger, r.status, r.error]),
        [
          ['manual', 'succeeded', null],
          ['manual', 'failed', 'as asked'],
        ],
      );
      const big = await trigger({ payload: 'x'.repeat(70_000) });
      assert.equal(big.status, 400);
      assert.match(JSON.stringify(big.body), /the tenant allows 65536/);
      assert.equal((await trigger({ note: 'a trigger takes no note' })).status, 400);
    });

    test('backfill: past ticks queued on the host (tenant scope), wrong ticks and bodies refused, cancel', async (t) => {
      const s = await serve(t, kind, {}, [{ id: 'c', cron: '0 * * * *' }]);
      const HOUR = 3_600_000;
      const backfill = (who: 'a' | 'b', body: unknown, key = 'a/p/c') =>
        s.call(who, `/v1/schedules/${key}/backfill`, { method: 'POST', body });
      assert.deepEqual(await backfill('a', { ticks: [T0 - 2 * HOUR, T0 - HOUR] }), {
        status: 200,
        body: { ok: true, via: 'host', value: 'queued 2 ticks' },
      });
      assert.equal((await backfill('b', { ticks: [T0 - HOUR] })).status, 404);
      const wrong = await backfill('a', { ticks: [T0 - 7 * 60_000] });
      assert.equal(wrong.status, 400);
      assert.match(JSON.stringify(wrong.body), /is not a tick of the schedule/);
      const again = await backfill('a', { ticks: [T0 - 3 * HOUR] });
      assert.equal(again.status, 400);
      assert.match(JSON.stringify(again.body), /has a backfill going \(2 ticks left\)/);
      for (const body of [
        {},
        { ticks: [] },
        { ticks: [-1] },
        { cancel: false },
        { ticks: [1], x: 1 },
      ])
        assert.equal((await backfill('a', body)).status, 400, JSON.stringify(body));
      assert.deepEqual((await backfill('a', { cancel: true })).body, {
        ok: true,
        via: 'host',
        value: 'cancelled 2 ticks',
      });
      await written(s);
      const runs = ((await s.call('a', '/v1/runs?schedule=a/p/c')).body as Page<RunRecord>).items;
      assert.deepEqual(runs.map((r) => [r.trigger, r.status, r.scheduledAt]).sort(), [
        ['backfill', 'cancelled', T0 - 2 * HOUR],
        ['backfill', 'cancelled', T0 - HOUR],
      ]);
    });

    test('runs page newest first with a cursor, filtered by time', async (t) => {
      const s = await serve(t, kind);
      for (let i = 0; i < 5; i++) {
        assert.equal(
          (await s.call('ops', '/v1/schedules/a/p/s1/trigger', { method: 'POST' })).status,
          200,
        );
        await s.opened.host.scheduler.settle();
      }
      await written(s);
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `?schedule=a/p/s1&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const page = (await s.call('a', `/v1/runs${q}`)).body as Page<RunRecord>;
        assert.ok(page.items.length <= 2);
        seen.push(...page.items.map((r) => r.id));
        cursor = page.next;
      } while (cursor);
      assert.equal(seen.length, 5);
      assert.deepEqual(
        [...seen].sort((x, y) => y - x),
        seen,
        'newest first',
      );
      assert.equal(new Set(seen).size, 5);
      // The manual clock stands still: every run started at T0.
      const at = (q: string) =>
        s.call('a', `/v1/runs?schedule=a/p/s1&${q}`).then((r) => (r.body as Page<RunRecord>).items);
      assert.equal((await at(`since=${T0}`)).length, 5);
      assert.equal((await at(`since=${T0 + 1}`)).length, 0);
      assert.equal((await at(`until=${T0}`)).length, 0);
      assert.equal((await at(`until=${T0 + 1}`)).length, 5);
    });

    test('reload with a run in flight: the old version finishes it, the next tick runs the new one; a bad version is refused and the old one serves on', async (t) => {
      // Which loaded version (sandbox id: `a/p`, then `a/p#2`) each run went to.
      const ranOn: { key: string; sandboxId: string }[] = [];
      const loads: string[] = [];
      let gate: GatedSandbox | undefined;
      const s = await serve(t, kind, {}, undefined, {
        sandbox: (hostCall) => {
          gate = new (class extends GatedSandbox {
            override load(spec: GuestSpec) {
              loads.push(spec.pluginId);
              return super.load(spec);
            }
            override call(sandboxId: string, req: CallRequest) {
              if (req.fn === 'run') ranOn.push({ key: req.caller.scheduleKey ?? '', sandboxId });
              return super.call(sandboxId, req);
            }
          })(hostCall);
          return gate;
        },
      });
      assert.ok(gate);
      const g = gate;
      assert.equal(
        (await s.call('a', '/v1/schedules/a/p/s1/trigger', { method: 'POST' })).status,
        200,
      );
      await waitFor(() => g.held.length === 1);
      const manifest = join(s.dir, 'a-p.json');
      const v1 = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, unknown>;
      writeFileSync(manifest, JSON.stringify({ ...v1, version: '2.0.0' }));
      let reloaded: { status: number; body: unknown } | undefined;
      const reload = s
        .call('a', '/v1/plugins/a/p/reload', { method: 'POST' })
        .then((r) => (reloaded = r));
      // The new version is loaded and checked, then waits for the run in flight.
      await waitFor(() => loads.includes('a/p#2'));
      await turns(s.opened.host, 5);
      assert.equal(reloaded, undefined, 'the reload waits for the run in flight');
      g.open();
      await reload;
      assert.deepEqual(reloaded, { status: 200, body: { ok: true, version: '2.0.0' } });
      await s.opened.host.scheduler.settle();
      await advance(s.opened.host, s.clock, 3_600_000, 600_000);
      await written(s);
      assert.deepEqual(
        ranOn.filter((r) => r.key === 'a/p/s1'),
        [
          { key: 'a/p/s1', sandboxId: 'a/p' },
          { key: 'a/p/s1', sandboxId: 'a/p#2' },
        ],
      );
      // Each run records the version that ran it.
      const sha = createHash('sha256').update(readFileSync(GUEST.proxy)).digest('hex');
      const runs = (
        (await s.call('a', '/v1/runs?schedule=a/p/s1')).body as Page<RunRecord>
      ).items.map((r) => [r.trigger, r.status, r.pluginVersion, r.wasmSha256]);
      assert.deepEqual(runs, [
        ['schedule', 'succeeded', '2.0.0', sha],
        ['manual', 'succeeded', '1.0.0', sha],
      ]);
      const plugin = (await s.call('a', '/v1/plugins/a/p')).body as { version: string };
      assert.equal(plugin.version, '2.0.0');

      // A version whose module does not load: refused with the loader's reason, the old serves.
      writeFileSync(
        manifest,
        JSON.stringify({ ...v1, version: '3.0.0', wasm: GUEST.wat('check-unknown-import') }),
      );
      const bad = await s.call('a', '/v1/plugins/a/p/reload', { method: 'POST' });
      assert.equal(bad.status, 422);
      assert.equal(errCode(bad.body), 'HG_API_RELOAD_FAILED');
      assert.match(JSON.stringify(bad.body), /HG_PLUGIN_LOAD/);
      const after = (await s.call('a', '/v1/plugins/a/p')).body as {
        version: string;
        status: string;
        error: string;
      };
      assert.equal(after.version, '2.0.0');
      assert.equal(after.status, 'loaded');
      assert.match(after.error, /^reload failed: /);
      assert.equal(
        (await s.call('a', '/v1/schedules/a/p/s1/trigger', { method: 'POST' })).status,
        200,
      );
      await s.opened.host.scheduler.settle();
      assert.equal(ranOn.at(-1)?.sandboxId, 'a/p#2', 'the old version still serves');
      // Another tenant's plugin: as if it did not exist.
      assert.equal((await s.call('b', '/v1/plugins/a/p/reload', { method: 'POST' })).status, 404);
    });

    test("upload: a new version is checked, loaded and kept across restarts; a bad module is refused with `hourglass check`'s reasons", async (t) => {
      const s = await serve(t, kind);
      const upload = (who: 'a' | 'b' | 'ops', plugin: string, manifest: object, wasm: string) =>
        s.call(who, `/v1/plugins/${plugin}`, {
          method: 'PUT',
          body: { manifest, wasm: readFileSync(wasm).toString('base64') },
        });
      const v2 = { name: 'p', version: '2.0.0', capabilities: [...CAPABILITIES] };
      if (kind === 'postgres') {
        const r = await upload('a', 'a/p', v2, GUEST.proxy);
        assert.equal(r.status, 409, 'a cluster has no shared plugin files yet');
        assert.match(JSON.stringify(r.body), /PostgreSQL cluster/);
        return;
      }
      assert.deepEqual(await upload('a', 'a/p', v2, GUEST.proxy), {
        status: 200,
        body: { ok: true, version: '2.0.0' },
      });
      const p = (await s.call('a', '/v1/plugins/a/p')).body as { version: string; status: string };
      assert.deepEqual([p.version, p.status], ['2.0.0', 'loaded']);
      assert.equal(
        (await s.call('a', '/v1/schedules/a/p/s1/trigger', { method: 'POST' })).status,
        200,
      );
      await s.opened.host.scheduler.settle();
      await written(s);
      assert.equal(
        ((await s.call('a', '/v1/runs?schedule=a/p/s1')).body as Page<RunRecord>).items[0]?.status,
        'succeeded',
      );

      // A module `hourglass check` refuses: the same reasons, and version 2 serves on.
      const badWasm = GUEST.wat('check-unknown-import');
      const bad = await upload('a', 'a/p', { ...v2, version: '3.0.0' }, badWasm);
      assert.equal(bad.status, 422);
      assert.equal(errCode(bad.body), 'HG_API_UPLOAD_REFUSED');
      const dir = join(s.dir, 'check');
      mkdirSync(dir);
      writeFileSync(join(dir, 'm.json'), JSON.stringify({ ...v2, wasm: badWasm }));
      const checked = JSON.parse(
        (await runCheck({ wasm: badWasm, manifest: join(dir, 'm.json'), json: true })).text,
      ) as { verdict: string; problems: { severity: string; message: string }[] };
      assert.equal(checked.verdict, 'refused');
      const reasons = checked.problems.filter((x) => x.severity === 'error');
      assert.ok(reasons.length > 0);
      const said = (bad.body as { error: { message: string } }).error.message;
      for (const reason of reasons)
        assert.ok(said.includes(reason.message), `${said} / ${reason.message}`);
      assert.equal(
        ((await s.call('a', '/v1/plugins/a/p')).body as { version: string }).version,
        '2.0.0',
      );

      // Beyond the tenant: limits over its caps, a renamed plugin, another tenant's, an unknown one.
      const over = await upload('a', 'a/p', { ...v2, limits: { memoryPages: 5000 } }, GUEST.proxy);
      assert.equal(over.status, 422);
      assert.match(JSON.stringify(over.body), /memoryPages 5000 > 1024/);
      const renamed = await upload('a', 'a/p', { ...v2, name: 'q' }, GUEST.proxy);
      assert.equal(renamed.status, 422);
      const ungranted = await upload('b', 'b/p', v2, GUEST.proxy);
      assert.equal(ungranted.status, 422);
      assert.match(
        JSON.stringify(ungranted.body),
        /schedule_delete, which tenant 'b' does not grant/,
      );
      assert.equal((await upload('a', 'b/p', v2, GUEST.proxy)).status, 404);
      assert.equal((await upload('ops', 'a/zzz', { ...v2, name: 'zzz' }, GUEST.proxy)).status, 404);
      assert.equal(
        ((await s.call('b', '/v1/plugins/b/p')).body as { version: string }).version,
        '1.0.0',
      );

      // A restart loads the uploaded version.
      await s.opened.stop(0);
      const entry = withUploads(s.config).tenants.find((x) => x.id === 'a')?.plugins[0];
      assert.ok(entry);
      assert.equal(loadManifest(entry.manifest).version, '2.0.0');
      assert.equal(
        withUploads(s.config).tenants[1]?.plugins[0]?.manifest,
        s.config.tenants[1]?.plugins[0]?.manifest,
      );
    });

    test('TLS: with a certificate and key the API speaks HTTPS', async (t) => {
      const tls = join(PROJECT_ROOT, 'test', 'fixtures', 'tls');
      const s = await serve(t, kind, {
        tls: { cert: join(tls, 'cert.pem'), key: join(tls, 'key.pem') },
      });
      assert.match(s.api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsGet(
          `${s.api.url}/v1/whoami`,
          {
            ca: readFileSync(join(tls, 'cert.pem')),
            headers: { authorization: `Bearer ${TOKENS.a}` },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(text));
          },
        );
        req.on('error', reject);
      });
      assert.deepEqual(JSON.parse(body), { name: 'team-a', scope: 'tenant', tenant: 'a' });
    });

    test('bad requests get 400 with a stable code; oversized bodies 413', async (t) => {
      const s = await serve(t, kind, { bodyLimitBytes: 4096 });
      for (const path of [
        '/v1/runs?limit=0',
        '/v1/runs?limit=5000',
        '/v1/runs?status=exploded',
        '/v1/runs?cursor=abc',
        '/v1/runs?tenat=a',
        '/v1/runs/abc',
        '/v1/schedules/A!/p/s1',
      ]) {
        const r = await s.call('ops', path);
        assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
        assert.equal(errCode(r.body), 'HG_API_BAD_REQUEST');
      }
      const extra = await s.call('ops', '/v1/schedules/a/p/s1/pause', {
        method: 'POST',
        body: { note: 'x', evil: true },
      });
      assert.equal(extra.status, 400);
      const big = await s.call('ops', '/v1/schedules/a/p/s1/pause', {
        method: 'POST',
        body: { note: 'x'.repeat(8192) },
      });
      assert.equal(big.status, 413);
      assert.equal((await s.call('ops', '/v1/nothing')).status, 404);
      // Nothing was paused by the refused requests (read once the host's writes are durable:
      // the API reads the store, which on PostgreSQL the host flushes asynchronously).
      await written(s);
      assert.equal(
        ((await s.call('ops', '/v1/schedules/a/p/s1')).body as ScheduleRecord).state,
        'active',
      );
    });

    test('each token has its own rate limit', async (t) => {
      const s = await serve(t, kind, { rateLimitPerMinute: 3 });
      for (let i = 0; i < 3; i++) assert.equal((await s.call('a', '/v1/tenants')).status, 200);
      const limited = await s.call('a', '/v1/tenants');
      assert.equal(limited.status, 429);
      assert.equal(errCode(limited.body), 'HG_API_RATE_LIMITED');
      assert.equal((await s.call('b', '/v1/tenants')).status, 200, 'b has its own budget');
      // Requests without a valid token share their address's budget.
      for (let i = 0; i < 3; i++) await s.call('bad', '/v1/tenants');
      assert.equal((await s.call('none', '/v1/tenants')).status, 429);
    });
  });
}
