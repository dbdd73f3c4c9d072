/** Unit tests for src/config/host-config.ts and src/plugin/manifest.ts. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { CAPABILITIES } from '../../src/capabilities.ts';
import {
  DEFAULT_QUOTAS,
  DEFAULT_RETENTION,
  defaultHostConfig,
  loadHostConfig,
  parseHostConfig,
  PROJECT_ROOT,
} from '../../src/config/host-config.ts';
import { ConfigError, HourglassError } from '../../src/errors.ts';
import {
  capLimits,
  DEFAULT_LIMITS,
  loadManifest,
  parseManifest,
} from '../../src/plugin/manifest.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-config-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Asserts `fn` throws a ConfigError with this code, file and field; returns it. */
function expectConfigError(
  fn: () => unknown,
  code: 'HG_CONFIG_INVALID' | 'HG_MANIFEST_INVALID',
  file: string,
  field: string,
): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, 'expected a ConfigError, nothing was thrown');
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  assert.ok(caught instanceof HourglassError);
  assert.equal(caught.code, code);
  assert.equal(caught.file, file);
  assert.equal(caught.field, field);
  assert.ok(caught.message.includes(file), 'message names the file');
  if (field) assert.ok(caught.message.includes(field), 'message names the field');
  return caught;
}

const FILE = '/etc/hourglass/config.json';
const BASE = '/etc/hourglass';

describe('parseHostConfig: defaults', () => {
  test('a minimal config', () => {
    const c = parseHostConfig({ tenants: [] }, FILE, BASE);
    assert.equal(c.source, FILE);
    assert.equal(c.store.path, resolve(BASE, 'data/hourglass.db'));
    assert.equal(c.shutdownGraceMs, 10_000);
    assert.equal(c.commandPollMs, 500);
    assert.deepEqual(c.tenants, []);
  });

  test('tenant defaults: quotas, all capabilities, no plugins', () => {
    const c = parseHostConfig({ tenants: [{ id: 'acme' }] }, FILE, BASE);
    const t = c.tenants[0];
    assert.ok(t);
    assert.equal(t.id, 'acme');
    assert.deepEqual(t.quotas, {
      maxSchedules: 1000,
      minIntervalMs: 1000,
      maxRunsInFlight: 4,
      maxPayloadBytes: 65_536,
      maxOutputBytes: 1_048_576,
      maxFuelPerCall: 10_000_000_000,
      maxMemoryPages: 1024,
      hostCallMsPerSecond: 100,
      maxVarBytes: 1_048_576,
      maxTableElements: 100_000,
      maxLogLines: 1_000,
      priorityAgingMs: 60_000,
      breakerAfterFailures: 0,
    });
    assert.deepEqual(t.quotas, { ...DEFAULT_QUOTAS });
    assert.deepEqual([...t.capabilities], [...CAPABILITIES]);
    assert.deepEqual(t.plugins, []);
  });

  test('partial quotas merge with the defaults', () => {
    const c = parseHostConfig(
      { tenants: [{ id: 'acme', quotas: { maxSchedules: 5, minIntervalMs: 60_000 } }] },
      FILE,
      BASE,
    );
    assert.deepEqual(c.tenants[0]?.quotas, {
      ...DEFAULT_QUOTAS,
      maxSchedules: 5,
      minIntervalMs: 60_000,
    });
    // The shared default is not mutated.
    assert.equal(DEFAULT_QUOTAS.maxSchedules, 1000);
  });

  test('an explicit empty capability list grants nothing', () => {
    const c = parseHostConfig({ tenants: [{ id: 'acme', capabilities: [] }] }, FILE, BASE);
    assert.deepEqual(c.tenants[0]?.capabilities, []);
    const d = parseHostConfig(
      { tenants: [{ id: 'acme', capabilities: ['schedule_get'] }] },
      FILE,
      BASE,
    );
    assert.deepEqual(d.tenants[0]?.capabilities, ['schedule_get']);
  });

  test('explicit top-level values', () => {
    const c = parseHostConfig(
      { $schema: './schema.json', shutdownGraceMs: 0, commandPollMs: 10, tenants: [] },
      FILE,
      BASE,
    );
    assert.equal(c.shutdownGraceMs, 0);
    assert.equal(c.commandPollMs, 10);
  });

  test('store path: relative resolves against the config folder, absolute is kept, :memory: is kept', () => {
    assert.equal(
      parseHostConfig({ store: { path: 'db/x.db' }, tenants: [] }, FILE, BASE).store.path,
      '/etc/hourglass/db/x.db',
    );
    assert.equal(
      parseHostConfig({ store: { path: '../x.db' }, tenants: [] }, FILE, BASE).store.path,
      '/etc/x.db',
    );
    assert.equal(
      parseHostConfig({ store: { path: '/var/lib/hg.db' }, tenants: [] }, FILE, BASE).store.path,
      '/var/lib/hg.db',
    );
    assert.equal(
      parseHostConfig({ store: { path: ':memory:' }, tenants: [] }, FILE, BASE).store.path,
      ':memory:',
    );
    assert.equal(
      parseHostConfig({ store: {}, tenants: [] }, FILE, BASE).store.path,
      '/etc/hourglass/data/hourglass.db',
    );
  });

  test('plugin manifests resolve against the config folder; config defaults to {}', () => {
    const c = parseHostConfig(
      {
        tenants: [
          {
            id: 'acme',
            plugins: [
              { manifest: 'plugins/a/hourglass.json' },
              { manifest: '/opt/b.json', config: { url: 'https://x' } },
            ],
          },
        ],
      },
      FILE,
      BASE,
    );
    const plugins = c.tenants[0]?.plugins ?? [];
    assert.equal(plugins.length, 2);
    assert.equal(plugins[0]?.manifest, '/etc/hourglass/plugins/a/hourglass.json');
    assert.deepEqual(plugins[0]?.config, {});
    assert.equal(plugins[1]?.manifest, '/opt/b.json');
    assert.deepEqual(plugins[1]?.config, { url: 'https://x' });
  });

  test('the result is frozen', () => {
    const c = parseHostConfig(
      { tenants: [{ id: 'acme', plugins: [{ manifest: 'm.json' }] }] },
      FILE,
      BASE,
    );
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.store));
    assert.ok(Object.isFrozen(c.tenants));
    assert.ok(Object.isFrozen(c.tenants[0]));
    assert.ok(Object.isFrozen(c.tenants[0]?.quotas));
    assert.ok(Object.isFrozen(c.tenants[0]?.capabilities));
    assert.ok(Object.isFrozen(c.tenants[0]?.plugins[0]));
  });

  test('does not mutate its input', () => {
    const input = { tenants: [{ id: 'acme', quotas: { maxSchedules: 3 } }] };
    const copy = structuredClone(input);
    parseHostConfig(input, FILE, BASE);
    assert.deepEqual(input, copy);
  });
});

describe('parseHostConfig: retention', () => {
  test('defaults: 30 days, 1,000,000 runs, the newest 10 of each schedule; a round a minute, 500 a step', () => {
    const c = parseHostConfig({ tenants: [{ id: 'a' }] }, FILE, BASE);
    assert.deepEqual(c.tenants[0]?.retention, {
      maxAgeMs: 30 * 86_400_000,
      maxRuns: 1_000_000,
      keepPerSchedule: 10,
    });
    assert.equal(c.tenants[0]?.retention, DEFAULT_RETENTION);
    assert.deepEqual(c.retention, { intervalMs: 60_000, batchRows: 500, maxRowsPerSec: 10_000 });
  });

  test('maxAgeDays in days, null turns a limit off, the rest keeps its default', () => {
    const c = parseHostConfig(
      {
        retention: { intervalMs: 5_000, batchRows: 100, maxRowsPerSec: null },
        tenants: [
          { id: 'a', retention: { maxAgeDays: 7, keepPerSchedule: 0 } },
          { id: 'b', retention: { maxAgeMs: null, maxRuns: null } },
          { id: 'c', retention: { maxAgeMs: 90_000, maxRuns: 50 } },
        ],
      },
      FILE,
      BASE,
    );
    assert.deepEqual(
      c.tenants.map((t) => t.retention),
      [
        { maxAgeMs: 7 * 86_400_000, maxRuns: 1_000_000, keepPerSchedule: 0 },
        { maxAgeMs: null, maxRuns: null, keepPerSchedule: 10 },
        { maxAgeMs: 90_000, maxRuns: 50, keepPerSchedule: 10 },
      ],
    );
    assert.deepEqual(c.retention, { intervalMs: 5_000, batchRows: 100, maxRowsPerSec: null });
  });
});

describe('parseHostConfig: errors', () => {
  const cases: [string, unknown, string][] = [
    [
      'unknown quota property',
      { tenants: [{ id: 'a', quotas: { bogus: 1 } }] },
      '/tenants/0/quotas/bogus',
    ],
    ['unknown top-level property', { tenants: [], bogus: true }, '/bogus'],
    ['unknown tenant property', { tenants: [{ id: 'a', name: 'A' }] }, '/tenants/0/name'],
    ['unknown store property', { store: { file: 'x' }, tenants: [] }, '/store/file'],
    [
      'unknown plugin property',
      { tenants: [{ id: 'a', plugins: [{ manifest: 'm', wasm: 'w' }] }] },
      '/tenants/0/plugins/0/wasm',
    ],
    ['missing tenants', {}, '/tenants'],
    ['tenants not an array', { tenants: {} }, '/tenants'],
    ['missing tenant id', { tenants: [{}] }, '/tenants/0/id'],
    ['bad tenant id', { tenants: [{ id: 'Acme' }] }, '/tenants/0/id'],
    [
      'bad capability name',
      { tenants: [{ id: 'a', capabilities: ['schedule_get', 'launch_missiles'] }] },
      '/tenants/0/capabilities/1',
    ],
    [
      'duplicate capability',
      { tenants: [{ id: 'a', capabilities: ['schedule_get', 'schedule_get'] }] },
      '/tenants/0/capabilities',
    ],
    [
      'quota below minimum',
      { tenants: [{ id: 'a', quotas: { minIntervalMs: 0 } }] },
      '/tenants/0/quotas/minIntervalMs',
    ],
    [
      'quota not an integer',
      { tenants: [{ id: 'a', quotas: { maxRunsInFlight: 1.5 } }] },
      '/tenants/0/quotas/maxRunsInFlight',
    ],
    ['shutdownGraceMs wrong type', { shutdownGraceMs: '10s', tenants: [] }, '/shutdownGraceMs'],
    ['commandPollMs too small', { commandPollMs: 1, tenants: [] }, '/commandPollMs'],
    [
      'missing plugin manifest',
      { tenants: [{ id: 'a', plugins: [{}] }] },
      '/tenants/0/plugins/0/manifest',
    ],
    [
      'non-string plugin config',
      { tenants: [{ id: 'a', plugins: [{ manifest: 'm', config: { n: 1 } }] }] },
      '/tenants/0/plugins/0/config/n',
    ],
    ['empty store path', { store: { path: '' }, tenants: [] }, '/store/path'],
    [
      'unknown retention property',
      { tenants: [{ id: 'a', retention: { maxAge: 5 } }] },
      '/tenants/0/retention/maxAge',
    ],
    [
      'retention maxRuns of 0',
      { tenants: [{ id: 'a', retention: { maxRuns: 0 } }] },
      '/tenants/0/retention/maxRuns',
    ],
    [
      'retention maxAgeDays as text',
      { tenants: [{ id: 'a', retention: { maxAgeDays: '30' } }] },
      '/tenants/0/retention/maxAgeDays',
    ],
    [
      'retention keepPerSchedule negative',
      { tenants: [{ id: 'a', retention: { keepPerSchedule: -1 } }] },
      '/tenants/0/retention/keepPerSchedule',
    ],
    [
      'retention maxAgeMs and maxAgeDays both',
      { tenants: [{ id: 'a', retention: { maxAgeMs: 1000, maxAgeDays: 1 } }] },
      '/tenants/0/retention/maxAgeDays',
    ],
    [
      'retention maxRowsPerSec of 0',
      { retention: { maxRowsPerSec: 0 }, tenants: [] },
      '/retention/maxRowsPerSec',
    ],
    [
      'retention batchRows of 0',
      { retention: { batchRows: 0 }, tenants: [] },
      '/retention/batchRows',
    ],
    ['not an object', [], '/'],
    ['null', null, '/'],
  ];
  for (const [name, value, field] of cases) {
    test(`${name} → HG_CONFIG_INVALID at ${field}`, () => {
      expectConfigError(() => parseHostConfig(value, FILE, BASE), 'HG_CONFIG_INVALID', FILE, field);
    });
  }

  test('duplicate tenant id → the second occurrence', () => {
    expectConfigError(
      () => parseHostConfig({ tenants: [{ id: 'a' }, { id: 'b' }, { id: 'a' }] }, FILE, BASE),
      'HG_CONFIG_INVALID',
      FILE,
      '/tenants/2/id',
    );
  });
});

describe('loadHostConfig', () => {
  test('reads a file; relative paths resolve against its folder, not the working folder', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'hourglass.config.json');
    writeFileSync(
      file,
      JSON.stringify({
        store: { path: 'state/hg.db' },
        tenants: [{ id: 'a', plugins: [{ manifest: 'p/hourglass.json' }] }],
      }),
    );
    const c = loadHostConfig(file);
    assert.equal(c.source, file);
    assert.equal(c.store.path, join(dir, 'state/hg.db'));
    assert.equal(c.tenants[0]?.plugins[0]?.manifest, join(dir, 'p/hourglass.json'));
  });

  test('a config file named by a relative path still resolves against its own folder', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ tenants: [] }));
    const rel = relative(process.cwd(), file);
    const c = loadHostConfig(rel);
    assert.equal(c.store.path, join(dir, 'data/hourglass.db'));
  });

  test('missing file → HG_CONFIG_INVALID naming the file, field empty', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'nope.json');
    expectConfigError(() => loadHostConfig(file), 'HG_CONFIG_INVALID', file, '');
  });

  test('a folder instead of a file → HG_CONFIG_INVALID', (t) => {
    const dir = tempDir(t);
    expectConfigError(() => loadHostConfig(dir), 'HG_CONFIG_INVALID', dir, '');
  });

  test('non-JSON file → HG_CONFIG_INVALID naming the file, field empty', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ tenants: [ }');
    const err = expectConfigError(() => loadHostConfig(file), 'HG_CONFIG_INVALID', file, '');
    assert.ok(err.cause instanceof SyntaxError);
  });

  test('schema error in a file → HG_CONFIG_INVALID with the file and the field', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ tenants: [{ id: 'a', quotas: { bogus: 1 } }] }));
    expectConfigError(
      () => loadHostConfig(file),
      'HG_CONFIG_INVALID',
      file,
      '/tenants/0/quotas/bogus',
    );
  });
});

describe('defaultHostConfig', () => {
  test('one default tenant running the example poller, store in ./data of the given folder', () => {
    const cwd = '/srv/hourglass';
    const c = defaultHostConfig(cwd);
    assert.equal(c.source, '(embedded default)');
    assert.equal(c.store.path, resolve(cwd, 'data', 'hourglass.db'));
    assert.equal(c.tenants.length, 1);
    const t = c.tenants[0];
    assert.equal(t?.id, 'default');
    assert.deepEqual(t?.quotas, { ...DEFAULT_QUOTAS });
    assert.deepEqual([...(t?.capabilities ?? [])], [...CAPABILITIES]);
    assert.equal(t?.plugins.length, 1);
    const manifest = t?.plugins[0]?.manifest ?? '';
    assert.equal(
      manifest,
      resolve(PROJECT_ROOT, 'guest-examples/assemblyscript/poller/hourglass.json'),
    );
    assert.ok(existsSync(manifest), `${manifest} exists`);
    assert.equal(loadManifest(manifest).name, 'poller');
  });

  test('PROJECT_ROOT is the folder with package.json', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      name: string;
    };
    assert.equal(pkg.name, 'hourglass');
  });
});

describe('parseManifest', () => {
  const MFILE = '/opt/plugins/poller/hourglass.json';

  test('defaults: no capabilities, default limits, empty config; wasm relative to the manifest', () => {
    const m = parseManifest({ name: 'poller', version: '1.0.0', wasm: 'build/poller.wasm' }, MFILE);
    assert.equal(m.file, MFILE);
    assert.equal(m.name, 'poller');
    assert.equal(m.version, '1.0.0');
    assert.equal(m.wasm, '/opt/plugins/poller/build/poller.wasm');
    assert.deepEqual(m.capabilities, []);
    assert.deepEqual(m.limits, {
      memoryPages: 256,
      timeoutMs: 5_000,
      fuel: { discovery: 50_000_000, run: 500_000_000, cleanup: 50_000_000 },
      varBytes: 65_536,
      tableElements: 10_000,
      logLines: 1_000,
      outputBytes: 1_048_576,
    });
    assert.deepEqual(m.config, {});
  });

  test('absolute wasm paths are kept; ../ is resolved', () => {
    assert.equal(
      parseManifest({ name: 'p', version: '1', wasm: '/abs/p.wasm' }, MFILE).wasm,
      '/abs/p.wasm',
    );
    assert.equal(
      parseManifest({ name: 'p', version: '1', wasm: '../shared/p.wasm' }, MFILE).wasm,
      '/opt/plugins/shared/p.wasm',
    );
  });

  test('explicit values; partial limits merge with defaults', () => {
    const m = parseManifest(
      {
        $schema: 'x',
        name: 'p-1_x',
        version: '2.0.0-beta',
        wasm: 'p.wasm',
        description: 'a plugin',
        capabilities: ['schedule_create', 'schedule_list'],
        limits: { memoryPages: 64, fuel: { run: 10 } },
        config: { url: 'https://example.com' },
      },
      MFILE,
    );
    assert.deepEqual(m.capabilities, ['schedule_create', 'schedule_list']);
    assert.equal(m.limits.memoryPages, 64);
    assert.equal(m.limits.timeoutMs, DEFAULT_LIMITS.timeoutMs);
    assert.deepEqual(m.limits.fuel, { discovery: 50_000_000, run: 10, cleanup: 50_000_000 });
    assert.deepEqual(m.config, { url: 'https://example.com' });
    assert.equal(DEFAULT_LIMITS.fuel.run, 500_000_000, 'defaults not mutated');
  });

  const cases: [string, unknown, string][] = [
    ['missing name', { version: '1', wasm: 'p.wasm' }, '/name'],
    ['missing version', { name: 'p', wasm: 'p.wasm' }, '/version'],
    ['missing wasm', { name: 'p', version: '1' }, '/wasm'],
    ['bad name', { name: 'Poller', version: '1', wasm: 'p.wasm' }, '/name'],
    ['empty version', { name: 'p', version: '', wasm: 'p.wasm' }, '/version'],
    ['unknown property', { name: 'p', version: '1', wasm: 'p.wasm', entry: 'run' }, '/entry'],
    [
      'bad capability',
      { name: 'p', version: '1', wasm: 'p.wasm', capabilities: ['net_fetch'] },
      '/capabilities/0',
    ],
    [
      'unknown limit',
      { name: 'p', version: '1', wasm: 'p.wasm', limits: { cpu: 1 } },
      '/limits/cpu',
    ],
    [
      'unknown fuel phase',
      { name: 'p', version: '1', wasm: 'p.wasm', limits: { fuel: { boot: 1 } } },
      '/limits/fuel/boot',
    ],
    [
      'memoryPages 0',
      { name: 'p', version: '1', wasm: 'p.wasm', limits: { memoryPages: 0 } },
      '/limits/memoryPages',
    ],
    [
      'memoryPages too large',
      { name: 'p', version: '1', wasm: 'p.wasm', limits: { memoryPages: 65_537 } },
      '/limits/memoryPages',
    ],
    [
      'non-string config value',
      { name: 'p', version: '1', wasm: 'p.wasm', config: { n: 1 } },
      '/config/n',
    ],
    ['not an object', ['p'], '/'],
  ];
  for (const [name, value, field] of cases) {
    test(`${name} → HG_MANIFEST_INVALID at ${field}`, () => {
      expectConfigError(() => parseManifest(value, MFILE), 'HG_MANIFEST_INVALID', MFILE, field);
    });
  }
});

describe('loadManifest', () => {
  test('wasm resolves relative to the manifest file, not the working folder', (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'plug'));
    const file = join(dir, 'plug', 'hourglass.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'p', version: '1', wasm: 'build/p.wasm', limits: { timeoutMs: 100 } }),
    );
    const m = loadManifest(file);
    assert.equal(m.file, file);
    assert.equal(m.wasm, join(dir, 'plug', 'build', 'p.wasm'));
    assert.equal(m.limits.timeoutMs, 100);
    assert.equal(m.limits.memoryPages, 256);
  });

  test('missing file → HG_MANIFEST_INVALID naming the file, field empty', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'missing.json');
    expectConfigError(() => loadManifest(file), 'HG_MANIFEST_INVALID', file, '');
  });

  test('non-JSON file → HG_MANIFEST_INVALID naming the file, field empty', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'hourglass.json');
    writeFileSync(file, 'name = "p"');
    expectConfigError(() => loadManifest(file), 'HG_MANIFEST_INVALID', file, '');
  });

  test('schema error in a file → HG_MANIFEST_INVALID with the file and field', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'hourglass.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'p', version: '1', wasm: 'p.wasm', capabilities: ['root'] }),
    );
    expectConfigError(() => loadManifest(file), 'HG_MANIFEST_INVALID', file, '/capabilities/0');
  });
});

describe('capLimits', () => {
  test("each limit is min(the manifest's, the tenant's cap); the deadline is the manifest's", () => {
    const capped = capLimits(
      {
        memoryPages: 512,
        timeoutMs: 9_000,
        fuel: { discovery: 10, run: 5e10, cleanup: 2e10 },
        varBytes: 1_000,
        tableElements: 50_000,
        logLines: 10,
        outputBytes: 1,
      },
      {
        maxFuelPerCall: 1e10,
        maxMemoryPages: 256,
        maxVarBytes: 500,
        maxTableElements: 20_000,
        maxLogLines: 100,
        maxOutputBytes: 4_096,
      },
    );
    assert.deepEqual(capped, {
      memoryPages: 256,
      timeoutMs: 9_000,
      fuel: { discovery: 10, run: 1e10, cleanup: 1e10 },
      varBytes: 500,
      tableElements: 20_000,
      logLines: 10,
      outputBytes: 4_096,
    });
    assert.deepEqual(capLimits(DEFAULT_LIMITS, DEFAULT_QUOTAS), DEFAULT_LIMITS);
  });
});

describe('parseHostConfig: api', () => {
  const H = 'a'.repeat(64);
  const base = (api: unknown) => ({ tenants: [{ id: 'a' }], api });

  test('absent: no API; present: loopback on 7070 with the defaults', () => {
    assert.equal(parseHostConfig({ tenants: [] }, 'c.json', '/base').api, null);
    const api = parseHostConfig(base({}), 'c.json', '/base').api;
    assert.deepEqual(api, {
      host: '127.0.0.1',
      port: 7070,
      tls: null,
      tokens: [],
      rateLimitPerMinute: 600,
      bodyLimitBytes: 1_048_576,
    });
  });

  test('tokens: operator and tenant; TLS paths resolve against the config folder', () => {
    const api = parseHostConfig(
      base({
        tls: { cert: 'c.pem', key: '/k.pem' },
        tokens: [
          { name: 'ops', sha256: H },
          { name: 'team-a', sha256: 'b'.repeat(64), tenant: 'a' },
        ],
      }),
      'c.json',
      '/base',
    ).api;
    assert.deepEqual(api?.tls, { cert: resolve('/base', 'c.pem'), key: '/k.pem' });
    assert.deepEqual(api?.tokens, [
      { name: 'ops', sha256: H, tenant: null },
      { name: 'team-a', sha256: 'b'.repeat(64), tenant: 'a' },
    ]);
  });

  for (const [why, api, field] of [
    [
      'a token in clear (not a SHA-256)',
      { tokens: [{ name: 'x', sha256: 'hg_secret' }] },
      '/api/tokens/0/sha256',
    ],
    ['an unknown tenant', { tokens: [{ name: 'x', sha256: H, tenant: 'zz' }] }, '/api/tokens/0'],
    [
      'a duplicate name',
      {
        tokens: [
          { name: 'x', sha256: H },
          { name: 'x', sha256: 'c'.repeat(64) },
        ],
      },
      '/api/tokens/1',
    ],
    [
      'the same token twice',
      {
        tokens: [
          { name: 'x', sha256: H },
          { name: 'y', sha256: H },
        ],
      },
      '/api/tokens/1',
    ],
    ['a port out of range', { port: 70_000 }, '/api/port'],
    ['an unknown field', { listen: '0.0.0.0' }, '/api/listen'],
  ] as const)
    test(`refused: ${why}`, () => {
      expectConfigError(
        () => parseHostConfig(base(api), 'c.json', '/base'),
        'HG_CONFIG_INVALID',
        'c.json',
        field,
      );
    });
});
