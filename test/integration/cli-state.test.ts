/**
 * `hourglass state` (docs/guest-abi.md, "Plugin state"): listing a plugin's variables, and
 * clearing them through the running host (its copy in memory too: the next run starts from
 * zero) or, with no host running, in the store.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { GUEST, tempDir } from './helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'hourglass.js');

function cli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, HOURGLASS_TOKEN: '', HOURGLASS_URL: '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface RunRow {
  status: string;
  result: string | null;
}

test('`hourglass state list` shows a plugin’s variables; `state clear` empties them through the running host (the next run starts from zero) and in the store when none runs', async (t) => {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'counter.json'),
    JSON.stringify({
      name: 'counter',
      version: '1',
      wasm: GUEST.wat('counter'),
      capabilities: [],
      limits: { varBytes: 1024 },
    }),
  );
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      store: { path: 'state/h.db' },
      commandPollMs: 50,
      tenants: [{ id: 't', plugins: [{ manifest: 'counter.json' }] }],
    }),
  );
  const args = ['--config', join(dir, 'config.json')];
  const runs = (): RunRow[] =>
    JSON.parse(
      cli(['runs', '--schedule', 't/counter/tick', '--json', ...args], dir).out,
    ) as RunRow[];
  /** Triggers a run through the host and waits (polling the store) until it is recorded. */
  const tick = async (): Promise<RunRow> => {
    const before = runs().length;
    const r = cli(['trigger', 't/counter/tick', ...args], dir);
    assert.equal(r.code, 0, r.err);
    for (;;) {
      const rows = runs();
      if (rows.length > before && rows[0]?.status !== 'running') return rows[0] as RunRow;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const child = spawn(process.execPath, [CLI, 'start', ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stopped = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready:\n${output}`)), 40_000);
      const on = (chunk: Buffer) => {
        output += chunk.toString();
        if (/running with 1 plugin/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
    });
    for (const n of ['1', '2', '3']) {
      const run = await tick();
      assert.deepEqual([run.status, run.result], ['succeeded', n]);
    }
    const list = cli(['state', 'list', 't/counter', ...args], dir);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^KEY\s+BYTES\s+COUNTS\s+VALUE$/m);
    assert.match(list.out, /^n\s+8\s+73\s+0x0300000000000000$/m);
    assert.match(list.out, /1 variable\(s\), 73 bytes/);
    const json = JSON.parse(cli(['state', 'list', 't/counter', '--json', ...args], dir).out) as {
      bytes: number;
      vars: { key: string; bytes: number; base64: string }[];
    };
    assert.equal(json.bytes, 73);
    assert.deepEqual(
      json.vars.map((v) => [v.key, v.bytes, v.base64]),
      [['n', 8, Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]).toString('base64')]],
    );
    const clear = cli(['state', 'clear', 't/counter', ...args], dir);
    assert.equal(clear.code, 0, clear.err);
    assert.match(clear.out, /clear_state t\/counter: cleared 1/);
    assert.equal((await tick()).result, '1');
    assert.equal((await tick()).result, '2');
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await stopped, 0);
  // No host: the store is cleared directly (one variable by key), and the next host starts at 1.
  const byKey = cli(['state', 'clear', 't/counter', '--key', 'n', ...args], dir);
  assert.equal(byKey.code, 0, byKey.err);
  assert.match(byKey.out, /clear_state t\/counter: cleared 1/);
  assert.match(cli(['state', 'list', 't/counter', ...args], dir).out, /0 variable\(s\), 0 bytes/);
  const missing = cli(['state', 'clear', 't/nope', ...args], dir);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^hourglass: HG_STATE_NOT_FOUND: not_found/);
  const usage = cli(['state', 'wipe', 't/counter', ...args], dir);
  assert.equal(usage.code, 2);
});
