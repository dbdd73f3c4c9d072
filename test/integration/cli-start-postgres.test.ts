/**
 * `hourglass start` on PostgreSQL (issue 11): with `HOURGLASS_POSTGRES_URL` set, the CLI's host
 * joins the cluster on that database (the URL in the environment wins over the config file's
 * SQLite path), takes the tenant, fires, records in PostgreSQL, and on SIGTERM stops and
 * releases its lease. The CLI's reads and operator commands on PostgreSQL are tested with them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { freshDatabase } from '../support/postgres.ts';
import { GUEST, decls, logLines, runsLogged, tempDir } from './helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'hourglass.js');

test('`hourglass start` with HOURGLASS_POSTGRES_URL joins the cluster, fires, records in PostgreSQL and releases its lease on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const db = await freshDatabase(t);
  writeFileSync(
    join(dir, 'p.json'),
    JSON.stringify({ name: 'p', version: '1', wasm: GUEST.proxy, capabilities: [] }),
  );
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      store: { path: 'state/h.db' },
      tenants: [
        {
          id: 't',
          plugins: [{ manifest: 'p.json', config: { schedules: decls({ id: 's', every: '1s' }) } }],
        },
      ],
    }),
  );
  const child = spawn(process.execPath, [CLI, 'start', '--config', join(dir, 'config.json')], {
    cwd: dir,
    env: { ...process.env, HOURGLASS_POSTGRES_URL: db.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const fired = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no run within 40 s:\n${output}`)), 40_000);
    const on = (chunk: Buffer) => {
      output += chunk.toString();
      if (runsLogged(output, 't/p/s').length > 0) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await fired;
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, output);
  const lines = logLines(output);
  assert.match(
    String(lines.find((l) => l.msg === 'hourglass: starting')?.store),
    /^postgres:\/\/.*\/hg_test_/,
  );
  const took = lines.find((l) => l.msg === 'took tenant');
  assert.deepEqual([took?.tenant, took?.epoch], ['t', 1]);
  assert.match(output, /hourglass: running with 1 plugin\(s\);/);
  assert.match(output, /hourglass: stopped/);
  assert.ok(!existsSync(join(dir, 'state/h.db')), 'the URL in the environment wins over the file');
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const runs = await c.query<{ status: string }>(
      "SELECT status FROM runs WHERE schedule_key = 't/p/s' ORDER BY id",
    );
    assert.ok(runs.rows.some((r) => r.status === 'succeeded'));
    assert.ok(
      runs.rows.every((r) => r.status !== 'running'),
      JSON.stringify(runs.rows),
    );
    const shard = await c.query<{ owner: string | null }>(
      "SELECT owner FROM hg_shards WHERE tenant = 't'",
    );
    assert.deepEqual(shard.rows, [{ owner: null }], 'the lease is released at the stop');
  } finally {
    await c.end();
  }
});
