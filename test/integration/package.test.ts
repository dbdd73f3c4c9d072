/**
 * The package as a user gets it: `npm pack` (whose `prepare` compiles dist/), then
 * `npm install ./hourglass-*.tgz` into an empty folder, then plain Node with no tsx anywhere:
 * `import('hourglass')` gives `Host` (and loads no dependency of `hourglass/operator`, which
 * gives the API, metrics and logs), `npx hourglass --help` works, a host started from the
 * installed package loads a plugin (its pool workers boot the compiled worker), and
 * `hourglass check --run` accepts a guest.
 *
 * The install is real: the npm registry (or npm's cache: --prefer-offline) for the dependencies,
 * and better-sqlite3 compiled from source where no prebuilt binary can be fetched (the
 * environment is inherited, so CI's npm_config_nodedir points node-gyp at this Node's headers).
 * That compile makes this the slowest test file (1-2 minutes on 2 cores).
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { GUEST, POLLER_MANIFEST, tempDir } from './helpers.ts';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const INSTALL_TIMEOUT_MS = 15 * 60_000;

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeout = 120_000,
): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout, env: process.env });
  const shown = `${command} ${args.join(' ')} (in ${cwd})`;
  assert.equal(r.error, undefined, `${shown}: ${r.error?.message}`);
  assert.equal(
    r.status,
    0,
    `${shown}: exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`,
  );
  return r;
}

/** Every folder named `name` under `dir` (node_modules trees, nested ones included). */
function foldersNamed(dir: string, name: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const path = join(dir, e.name);
    if (e.name === name) found.push(path);
    found.push(...foldersNamed(path, name));
  }
  return found;
}

test('package: npm pack + npm install into an empty folder runs without tsx', (t) => {
  const dir = tempDir(t);
  const app = join(dir, 'app');
  mkdirSync(app);
  const packed = run(NPM, ['pack', '--pack-destination', dir], PROJECT_ROOT, 5 * 60_000);
  const tarball = packed.stdout.trim().split('\n').pop() ?? '';
  assert.match(tarball, /^hourglass-.*\.tgz$/);
  assert.ok(existsSync(join(dir, tarball)), `${tarball} in ${dir}`);

  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }),
  );
  run(
    NPM,
    ['install', `../${tarball}`, '--prefer-offline', '--no-audit', '--no-fund'],
    app,
    INSTALL_TIMEOUT_MS,
  );
  assert.deepEqual(foldersNamed(join(app, 'node_modules'), 'tsx'), [], 'no tsx installed');
  assert.ok(!existsSync(join(app, 'node_modules', 'hourglass', 'src')), 'only dist/ ships');

  // The main entry loads none of the operator surfaces' dependencies (all CommonJS: a module
  // they load is in require.cache); `hourglass/operator` has them.
  const heavy = String.raw`/node_modules\/(fastify|pg|prom-client|pino)\//`;
  const imported = run(
    process.execPath,
    [
      '-e',
      `import('hourglass').then(m => console.log(typeof m.Host, Object.keys(require.cache).filter(k => ${heavy}.test(k)).length))`,
    ],
    app,
  );
  assert.equal(imported.stdout.trim(), 'function 0');
  const operator = run(
    process.execPath,
    [
      '-e',
      `import('hourglass/operator').then(m => console.log(typeof m.serveApi, typeof m.openHost, typeof m.HostMetrics, Object.keys(require.cache).filter(k => ${heavy}.test(k)).length > 0))`,
    ],
    app,
  );
  assert.equal(operator.stdout.trim(), 'function function function true');

  const help = run(NPM, ['exec', '--offline', '--', 'hourglass', '--help'], app);
  assert.match(help.stdout, /usage: hourglass <command>/);

  // A host from the installed package: loading the poller boots a pool worker (compiled).
  writeFileSync(
    join(app, 'host.mjs'),
    `import { Host, parseHostConfig, WorkerPoolSandbox } from 'hourglass';
const config = parseHostConfig(
  { store: { path: 'h.db' }, tenants: [{ id: 't', plugins: [{ manifest: ${JSON.stringify(POLLER_MANIFEST)} }] }] },
  'package test',
  process.cwd(),
);
const host = new Host(config);
const { loaded, failed } = await host.start();
await host.stop();
console.log(JSON.stringify({ loaded: loaded.length, failed: failed.length, pool: typeof WorkerPoolSandbox }));
`,
  );
  const hosted = run(process.execPath, ['host.mjs'], app);
  assert.deepEqual(JSON.parse(hosted.stdout.trim().split('\n').pop() ?? ''), {
    loaded: 1,
    failed: 0,
    pool: 'function',
  });

  const checked = run(
    join(app, 'node_modules', '.bin', 'hourglass'),
    ['check', GUEST.poller, '--manifest', POLLER_MANIFEST, '--run'],
    app,
  );
  assert.match(checked.stdout, /ACCEPTED/);
});
