import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashToken, newToken } from '../../src/api/auth.ts';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { PluginRecord } from '../../src/store/types.ts';
import { GUEST, decls, logLines, runsLogged, tempDir } from './helpers.ts';
import { scheduleRow } from '../unit/schedule-row.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'hourglass.js');

function cli(args: string[], cwd: string, env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
    timeout: 60_000,
    // The caller's own remote settings never leak into a test.
    env: { ...process.env, HOURGLASS_TOKEN: '', HOURGLASS_URL: '', ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Writes `<dir>/<name>.json`: plugin `name`, version 1, the proxy guest, no capabilities. */
function proxyManifest(dir: string, name: string): void {
  writeFileSync(
    join(dir, `${name}.json`),
    JSON.stringify({ name, version: '1', wasm: GUEST.proxy, capabilities: [] }),
  );
}

/** Starts `hourglass start` and resolves once `ready` holds of its output. */
function startCli(
  args: string[],
  cwd: string,
  ready: (output: string) => boolean,
  timeoutMs = 40_000,
) {
  const child = spawn(process.execPath, [CLI, 'start', ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const seen = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`not ready within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const on = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
  });
  const stopped = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => resolve(code)),
  );
  return { child, seen, stopped, output: () => output };
}

test('`hourglass start` on the embedded default fires the example’s schedule and `hourglass runs` shows it', async (t) => {
  const cwd = tempDir(t);
  const key = 'default/poller/housekeeping';
  const host = startCli([], cwd, (out) => runsLogged(out, key).length > 0);
  try {
    await host.seen;
  } finally {
    host.child.kill('SIGTERM');
  }
  assert.equal(await host.stopped, 0);
  assert.match(host.output(), /hourglass: stopped/);
  const runs = cli(['runs'], cwd);
  assert.equal(runs.code, 0, runs.err);
  assert.match(runs.out, /default\/poller\/housekeeping\s+schedule\s+succeeded/);
  const schedules = cli(['schedules'], cwd);
  assert.match(schedules.out, /default\/poller\/housekeeping\s+declared\s+active/);

  // The logs are JSON lines with a time, a level and the ids of what they are about.
  const lines = logLines(host.output());
  assert.ok(lines.length > 0 && lines.every((l) => typeof l.time === 'string' && l.level));
  const loaded = lines.find((l) => l.msg === 'plugin loaded');
  assert.deepEqual([loaded?.tenant, loaded?.plugin], ['default', 'default/poller']);
  const logged = runsLogged(host.output(), key)[0] as Record<string, unknown>;
  const stored = JSON.parse(cli(['runs', '--json'], cwd).out) as {
    id: number;
    scheduleKey: string;
  }[];
  assert.equal(
    logged.run,
    stored.find((r) => r.scheduleKey === key)?.id,
    'the run id the store has',
  );
  assert.equal(logged.tenant, 'default');
  assert.equal(logged.plugin, 'default/poller');
  assert.equal(typeof logged.fuelUsed, 'number');
  assert.equal(typeof logged.durationMs, 'number');
});

test('operator commands: through a running host, and straight to the store when none runs', async (t) => {
  const dir = tempDir(t);
  proxyManifest(dir, 'p');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      store: { path: 'state/h.db' },
      commandPollMs: 50,
      tenants: [
        {
          id: 't',
          plugins: [
            {
              manifest: 'p.json',
              config: { schedules: decls({ id: 'daily', cron: '0 3 * * *' }) },
            },
          ],
        },
      ],
    }),
  );
  const args = ['--config', join(dir, 'config.json')];
  const host = startCli(args, dir, (out) => /running with 1 plugin/.test(out));
  try {
    await host.seen;
    const trig = cli(['trigger', 't/p/daily', ...args], dir);
    assert.equal(trig.code, 0, trig.err);
    assert.match(trig.out, /trigger t\/p\/daily: started/);
    // A trigger with its own payload, through the host's command queue (the guest fails as told),
    // once the first run is over (a trigger while it runs would be skipped: at most one run).
    const finished = () =>
      (JSON.parse(cli(['runs', '--json', ...args], dir).out) as { status: string }[]).every(
        (r) => r.status !== 'running',
      );
    while (!finished()) await new Promise((resolve) => setTimeout(resolve, 50));
    const own = cli(['trigger', 't/p/daily', '--payload', '{"fail":"told to"}', ...args], dir);
    assert.equal(own.code, 0, own.err);
    const notJson = cli(['trigger', 't/p/daily', '--payload', '{nope', ...args], dir);
    assert.equal(notJson.code, 1);
    assert.match(notJson.err, /invalid: the payload is not JSON/);
    const pause = cli(['pause', 't/p/daily', '--note', 'maintenance', ...args], dir);
    assert.match(pause.out, /pause t\/p\/daily: paused/);
    const missing = cli(['pause', 't/p/nope', ...args], dir);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^hourglass: HG_SCHEDULE_NOT_FOUND: not_found/);
  } finally {
    host.child.kill('SIGINT');
  }
  assert.equal(await host.stopped, 0);
  // No host now: resume is applied to the store directly.
  const resume = cli(['resume', 't/p/daily', ...args], dir);
  assert.equal(resume.code, 0, resume.err);
  assert.match(resume.out, /resume t\/p\/daily: active/);
  const store = new SqliteStore(join(dir, 'state/h.db'), { mustExist: true });
  try {
    const s = store.getSchedule('t/p/daily');
    assert.equal(s?.state, 'active');
    const runs = store.listRuns({ scheduleKey: 't/p/daily' });
    assert.deepEqual(
      runs.map((r) => [r.trigger, r.status, r.error]),
      [
        ['manual', 'failed', 'told to'],
        ['manual', 'succeeded', null],
      ],
    );
  } finally {
    store.close();
  }
});

test('`hourglass backfill` lists the ticks and their cost, asks, queues them on the running host, and they run with trigger backfill', async (t) => {
  const dir = tempDir(t);
  proxyManifest(dir, 'p');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      store: { path: 'h.db' },
      commandPollMs: 50,
      backfill: { intervalMs: 50 },
      tenants: [
        {
          id: 't',
          plugins: [
            { manifest: 'p.json', config: { schedules: decls({ id: 'h', cron: '0 * * * *' }) } },
          ],
        },
      ],
    }),
  );
  const args = ['--config', join(dir, 'config.json')];
  const HOUR = 3_600_000;
  const to = Date.now() - 60_000;
  const from = to - 3 * HOUR;
  const expected: number[] = [];
  for (let h = Math.ceil(from / HOUR) * HOUR; h <= to; h += HOUR) expected.push(h);
  const span = ['--from', new Date(from).toISOString(), '--to', String(to)];
  const runs = () =>
    JSON.parse(cli(['runs', '--json', '--schedule', 't/p/h', ...args], dir).out) as {
      trigger: string;
      status: string;
      scheduledAt: number;
      fuelUsed: number | null;
    }[];
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise((resolve) => setTimeout(resolve, 50));
  };
  const host = startCli(args, dir, (out) => /running with 1 plugin/.test(out));
  try {
    await host.seen;
    const dry = cli(['backfill', 't/p/h', ...span, '--dry-run', ...args], dir);
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, new RegExp(`^backfill t/p/h: ${expected.length} ticks from `));
    for (const h of expected)
      assert.ok(dry.out.includes(new Date(h).toISOString().replace('.000Z', 'Z')), dry.out);
    assert.match(dry.out, /cost: unknown \(the schedule has no finished run yet\)/);

    // One run makes a history: the estimate is its fuel.
    assert.equal(cli(['trigger', 't/p/h', ...args], dir).code, 0);
    await until(() => runs().some((r) => r.status === 'succeeded'));
    const fuel = (runs()[0]?.fuelUsed as number).toLocaleString('en-US');
    const costed = cli(['backfill', 't/p/h', ...span, '--dry-run', ...args], dir);
    assert.ok(
      costed.out.includes(`cost per run (from its last 1 runs): fuel median ${fuel}, p95 ${fuel}`),
      costed.out,
    );

    const no = cli(['backfill', 't/p/h', ...span, ...args], dir, {}, 'n\n');
    assert.equal(no.code, 1);
    assert.match(no.err, /queue these \d ticks\? \[y\/N\]/);
    assert.match(no.err, /backfill not confirmed; nothing was queued/);
    const closed = cli(['backfill', 't/p/h', ...span, ...args], dir);
    assert.equal(closed.code, 1, 'no answer (stdin at its end) is no');
    assert.equal(runs().filter((r) => r.trigger === 'backfill').length, 0);

    const yes = cli(['backfill', 't/p/h', ...span, ...args], dir, {}, 'y\n');
    assert.equal(yes.code, 0, yes.err);
    assert.match(yes.out, new RegExp(`backfill t/p/h: queued ${expected.length} ticks`));
    await until(
      () =>
        runs().filter((r) => r.trigger === 'backfill' && r.status === 'succeeded').length ===
        expected.length,
    );
    assert.deepEqual(
      runs()
        .filter((r) => r.trigger === 'backfill')
        .map((r) => r.scheduledAt)
        .sort(),
      expected,
    );
    const cancel = cli(['backfill', 't/p/h', '--cancel', ...args], dir);
    assert.match(cancel.out, /backfill t\/p\/h: cancelled 0 ticks/);
    const bad = cli(['backfill', 't/p/h', '--from', 'yesterday', '--to', String(to), ...args], dir);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--from must be an ISO 8601 time/);
  } finally {
    host.child.kill('SIGINT');
  }
  assert.equal(await host.stopped, 0);
});

test('CLI errors: one line, non-zero exit; --help everywhere', (t) => {
  const dir = tempDir(t);
  for (const cmd of ['start', 'schedules', 'runs', 'pause', 'resume', 'trigger', 'delete']) {
    const r = cli([cmd, '--help'], dir);
    assert.equal(r.code, 0, cmd);
    assert.match(r.out, /usage: hourglass /);
  }
  const unknown = cli(['frobnicate'], dir);
  assert.equal(unknown.code, 2);
  writeFileSync(
    join(dir, 'bad.json'),
    '{"tenants": [{"id": "t", "quotas": {"maxSchedules": -1}}]}',
  );
  const bad = cli(['start', '--config', join(dir, 'bad.json')], dir);
  assert.equal(bad.code, 1);
  assert.equal(bad.err.trim().split('\n').length, 1);
  assert.match(
    bad.err,
    /HG_CONFIG_INVALID: .*bad\.json: \/tenants\/0\/quotas\/maxSchedules: must be >= 0/,
  );
  const noStore = cli(['runs'], dir);
  assert.equal(noStore.code, 1);
  assert.match(noStore.err, /HG_STORE/);
});

test('`hourglass instrument` writes a metered module; `hourglass fuel` reports fuel and the outcome', (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'spin.metered.wasm');
  const inst = cli(['instrument', GUEST.wat('spin'), '-o', out, '--memory-pages', '4'], dir);
  assert.equal(inst.code, 0, inst.err);
  assert.match(inst.out, /functions, \d+ metered blocks/);
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(out)));
  assert.ok(exports.some((e) => e.name === '__hg_fuel' && e.kind === 'global'));

  const spin = cli(['fuel', GUEST.wat('spin'), '--call', 'run', '--budget', '100000'], dir);
  assert.equal(spin.code, 1);
  assert.match(spin.out, /^outcome: out_of_fuel$/m);
  assert.match(spin.out, /^fuel used: 100000 of 100000/m);

  // Discovery of a real guest completes: fuel used is exact and the same on every call.
  const runs = [1, 2].map(() => cli(['fuel', GUEST.wat('noop'), '--call', 'schedules'], dir));
  for (const r of runs) {
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^outcome: ok$/m);
  }
  const used = (s: string) => /^fuel used: (\d+) of/m.exec(s)?.[1];
  assert.ok(Number(used(runs[0]?.out ?? '')) > 0);
  assert.equal(used(runs[0]?.out ?? ''), used(runs[1]?.out ?? ''));

  const bad = cli(['fuel', GUEST.wat('noop'), '--call', 'run', '--budget', 'lots'], dir);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--budget must be a non-negative integer/);
});

test('CLI on a damaged store: every store error has an HG_ code; an out-of-range time never fails a listing', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'h.db');
  const store = new SqliteStore(file);
  const at = Date.parse('2026-01-15T10:00:00Z');
  for (const [localId, nextAt] of [
    ['ok', at],
    ['far', 8.64e15 + 1], // past Date's range (a guest's "every: 99999999d" once made this)
  ] as const) {
    store.insertSchedule(
      scheduleRow('t', localId, {
        at,
        spec: { kind: 'every', every: '1h', everyMs: 3_600_000 },
        nextAt,
      }),
    );
  }
  store.close();
  const list = cli(['schedules', '--store', file], dir);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /t\/p\/far .*out of range/);
  assert.match(list.out, /t\/p\/ok .*2026-01-15T10:00:00Z/);

  // Damage every page but the header: the file still opens, then reads fail.
  const raw = readFileSync(file);
  writeFileSync(
    file,
    Buffer.concat([raw.subarray(0, 4096), Buffer.alloc(raw.length - 4096, 0xa5)]),
  );
  for (const cmd of ['schedules', 'runs']) {
    const r = cli([cmd, '--store', file], dir);
    assert.equal(r.code, 1, cmd);
    assert.match(r.err, /^hourglass: HG_STORE_CORRUPT: /, cmd);
  }
});

test('`hourglass plugins` lists each plugin with its version, state and load error, the error made inert; `--version` prints the package version', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'h.db');
  const store = new SqliteStore(file);
  const at = Date.parse('2026-01-15T10:00:00Z');
  const plugin = (name: string, fields: Partial<PluginRecord>): PluginRecord => ({
    id: `t/${name}`,
    tenant: 't',
    name,
    version: '1.2.3',
    manifestPath: join(dir, `${name}.json`),
    wasmSha256: 'ab'.repeat(32),
    status: 'loaded',
    error: null,
    updatedAt: at,
    ...fields,
  });
  store.upsertPlugin(plugin('feeds', {}));
  // A load error quotes what the guest declared: an escape sequence and a line break in it.
  store.upsertPlugin(
    plugin('bad', {
      status: 'failed',
      wasmSha256: null,
      error: "HG_DECLARATION: schedule 'x\u001b[2J' invalid\nforged line",
    }),
  );
  store.close();
  const list = cli(['plugins', '--store', file], dir);
  assert.equal(list.code, 0, list.err);
  const lines = list.out.trimEnd().split('\n');
  assert.equal(lines.length, 3, list.out);
  assert.match(lines[0] as string, /^PLUGIN\s+VERSION\s+STATE\s+SINCE\s+MODULE\s+ERROR$/);
  assert.match(lines[1] as string, /^t\/bad\s+1\.2\.3\s+failed\s+2026-01-15T10:00:00Z\s+-\s+/);
  assert.ok(lines[1]?.includes(`'x\\u{1b}[2J' invalid forged line`), lines[1]);
  assert.ok(!list.out.includes('\u001b'), 'an escape sequence reached the terminal');
  assert.match(
    lines[2] as string,
    /^t\/feeds\s+1\.2\.3\s+loaded\s+2026-01-15T10:00:00Z\s+abababababab$/,
  );
  const json = cli(['plugins', '--json', '--store', file], dir);
  assert.deepEqual(
    (JSON.parse(json.out) as PluginRecord[]).map((p) => [p.id, p.status, p.error]),
    [
      ['t/bad', 'failed', "HG_DECLARATION: schedule 'x\u001b[2J' invalid\nforged line"],
      ['t/feeds', 'loaded', null],
    ],
  );

  const version = cli(['--version'], dir);
  assert.equal(version.code, 0);
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(version.out, `hourglass ${pkg.version}\n`);
});

test('`hourglass token` makes a token whose entry lets `hourglass start` serve the API to it', async (t) => {
  const dir = tempDir(t);
  const made = cli(['token', '--name', 'team-t', '--tenant', 't'], dir);
  assert.equal(made.code, 0, made.err);
  const token = /^token: (hg_[A-Za-z0-9_-]{43})$/m.exec(made.out)?.[1];
  const entry = /^config entry \(api.tokens\): (.*)$/m.exec(made.out)?.[1];
  assert.ok(token && entry, made.out);
  assert.ok(!entry.includes(token), 'the config entry holds no token');
  assert.equal(cli(['token'], dir).code, 2, 'a name is required');
  proxyManifest(dir, 'p');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      store: { path: 'h.db' },
      api: { port: 0, tokens: [JSON.parse(entry)] },
      tenants: [
        {
          id: 't',
          plugins: [{ manifest: 'p.json', config: { schedules: decls({ id: 'd', every: '1h' }) } }],
        },
      ],
    }),
  );
  const host = startCli(['--config', join(dir, 'config.json')], dir, (out) =>
    /running with 1 plugin/.test(out),
  );
  try {
    const out = await host.seen;
    const url = logLines(out).find((l) => l.msg?.toString().startsWith('api: listening'))?.url;
    assert.equal(typeof url, 'string', out);
    const get = (path: string, auth?: string) =>
      fetch(`${String(url)}${path}`, auth ? { headers: { authorization: `Bearer ${auth}` } } : {});
    assert.equal((await get('/readyz')).status, 200);
    assert.equal((await get('/v1/schedules')).status, 401);
    const page = (await (await get('/v1/schedules', token)).json()) as { items: { key: string }[] };
    assert.deepEqual(
      page.items.map((s) => s.key),
      ['t/p/d'],
    );
    // The CLI against the remote API (another folder: no local store to fall back on).
    const away = tempDir(t);
    const remote = (args: string[], tok: string | null = token) =>
      cli([...args, '--url', String(url)], away, tok === null ? {} : { HOURGLASS_TOKEN: tok });
    const listed = remote(['schedules', '--json']);
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(
      (JSON.parse(listed.out) as { key: string }[]).map((s) => s.key),
      ['t/p/d'],
    );
    const paused = remote(['pause', 't/p/d', '--note', 'from afar']);
    assert.equal(paused.code, 0, paused.err);
    assert.match(paused.out, /pause t\/p\/d: paused/);
    assert.match(remote(['schedules']).out, /t\/p\/d .*paused.*from afar/);
    const trig = remote(['trigger', 't/p/nope']);
    assert.equal(trig.code, 1);
    assert.match(trig.err, /not_found/);
    assert.equal(remote(['plugins'], null).code, 2, 'no token: a usage error');
    const refused = remote(['runs'], 'hg_wrong');
    assert.equal(refused.code, 1);
    assert.match(refused.err, /HG_API_UNAUTHORIZED/);
  } finally {
    host.child.kill('SIGTERM');
  }
  assert.equal(await host.stopped, 0);
  assert.ok(
    logLines(host.output()).some((l) => l.msg === 'api request' && l.who === 'team-t'),
    'the request was logged with its token name',
  );
});

test('hot reload: SIGHUP and POST /v1/reload read the config again, reload changed plugins, load new ones, unload removed ones, and report the diff', async (t) => {
  const dir = tempDir(t);
  const token = newToken();
  for (const name of ['p', 'q']) proxyManifest(dir, name);
  const write = (plugins: { manifest: string; config: Record<string, string> }[]) =>
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        store: { path: 'h.db' },
        api: { port: 0, tokens: [{ name: 'ops', sha256: hashToken(token) }] },
        tenants: [{ id: 't', plugins }],
      }),
    );
  const p = (...ids: string[]) => ({
    manifest: 'p.json',
    config: { schedules: decls(...ids.map((id) => ({ id, every: '1h' }))) },
  });
  write([p('a', 'b')]);
  const host = startCli(['--config', join(dir, 'config.json')], dir, (out) =>
    /running with 1 plugin/.test(out),
  );
  try {
    const out = await host.seen;
    const url = String(logLines(out).find((l) => l.msg === `api: listening on ${l.url}`)?.url);
    // p's schedules change (b changed, a gone, c new); q is new.
    const pNew = {
      manifest: 'p.json',
      config: { schedules: decls({ id: 'b', every: '2h' }, { id: 'c', every: '1h' }) },
    };
    write([pNew, { manifest: 'q.json', config: { schedules: decls({ id: 'x', every: '1h' }) } }]);
    host.child.kill('SIGHUP');
    const reloaded = () =>
      logLines(host.output()).filter((l) => String(l.msg).startsWith('hourglass: config reloaded'));
    while (reloaded().length === 0) await new Promise((r) => setTimeout(r, 20));
    const line = reloaded()[0] as { why: string; plugins: unknown[]; restartNeeded: unknown[] };
    assert.equal(line.why, 'SIGHUP');
    assert.deepEqual(line.restartNeeded, []);
    assert.deepEqual(line.plugins, [
      {
        pluginId: 't/p',
        action: 'reloaded',
        version: '1',
        reconcile: { created: ['c'], updated: ['b'], retired: ['a'], unchanged: [] },
      },
      {
        pluginId: 't/q',
        action: 'loaded',
        version: '1',
        reconcile: { created: ['x'], updated: [], retired: [], unchanged: [] },
      },
    ]);
    const post = async () => {
      const r = await fetch(`${url}/v1/reload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(r.status, 200);
      return (await r.json()) as { plugins: { pluginId: string; action: string }[] };
    };
    assert.deepEqual(
      (await post()).plugins.map((x) => [x.pluginId, x.action]),
      [
        ['t/p', 'unchanged'],
        ['t/q', 'unchanged'],
      ],
    );
    write([pNew]);
    assert.deepEqual(
      (await post()).plugins.map((x) => [x.pluginId, x.action]),
      [
        ['t/p', 'unchanged'],
        ['t/q', 'unloaded'],
      ],
    );
  } finally {
    host.child.kill('SIGTERM');
  }
  assert.equal(await host.stopped, 0);
  const store = new SqliteStore(join(dir, 'h.db'), { mustExist: true });
  try {
    assert.deepEqual(
      store.listSchedules({ pluginId: 't/p' }).map((s) => [s.localId, s.state]),
      [
        ['b', 'active'],
        ['c', 'active'],
      ],
    );
  } finally {
    store.close();
  }
});

test('a plugin reload after a config reload loads the config values in service (not those at start), also over an earlier upload', async (t) => {
  const dir = tempDir(t);
  const token = newToken();
  proxyManifest(dir, 'p');
  // Plugin p declares the schedules its config value names: which ones are live shows the values.
  const write = (id: string) =>
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        store: { path: 'h.db' },
        api: { port: 0, tokens: [{ name: 'ops', sha256: hashToken(token) }] },
        tenants: [
          {
            id: 't',
            plugins: [{ manifest: 'p.json', config: { schedules: decls({ id, every: '1h' }) } }],
          },
        ],
      }),
    );
  write('a');
  const host = startCli(['--config', join(dir, 'config.json')], dir, (out) =>
    /running with 1 plugin/.test(out),
  );
  try {
    const out = await host.seen;
    const url = String(logLines(out).find((l) => l.msg === `api: listening on ${l.url}`)?.url);
    const call = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, body: (await r.json()) as unknown };
    };
    const live = async () =>
      (
        (await call('GET', '/v1/schedules?plugin=t/p&state=active')).body as {
          items: { localId: string }[];
        }
      ).items.map((s) => s.localId);
    const configReload = async () => {
      const r = await call('POST', '/v1/reload');
      assert.equal(r.status, 200);
      return (r.body as { plugins: { pluginId: string; action: string; version: string }[] })
        .plugins;
    };
    const pluginReload = () => call('POST', '/v1/plugins/t/p/reload');

    write('b');
    assert.deepEqual(
      (await configReload()).map((x) => [x.pluginId, x.action, x.version]),
      [['t/p', 'reloaded', '1']],
    );
    assert.deepEqual(await live(), ['b'], 'a config reload answers once its writes are durable');
    assert.deepEqual(await pluginReload(), { status: 200, body: { ok: true, version: '1' } });
    assert.deepEqual(await live(), ['b'], 'the reload took the config values now in service');

    // An upload keeps the config values then in service; a later config reload's values win.
    const uploaded = await call('PUT', '/v1/plugins/t/p', {
      manifest: { name: 'p', version: '2', capabilities: [] },
      wasm: readFileSync(GUEST.proxy).toString('base64'),
    });
    assert.deepEqual(uploaded, { status: 200, body: { ok: true, version: '2' } });
    assert.deepEqual(await live(), ['b']);
    write('c');
    assert.deepEqual(
      (await configReload()).map((x) => [x.pluginId, x.action, x.version]),
      [['t/p', 'reloaded', '2']],
    );
    assert.deepEqual(await live(), ['c']);
    assert.deepEqual(await pluginReload(), { status: 200, body: { ok: true, version: '2' } });
    assert.deepEqual(await live(), ['c'], 'the config reload superseded the upload’s values');
  } finally {
    host.child.kill('SIGTERM');
  }
  assert.equal(await host.stopped, 0);
});
