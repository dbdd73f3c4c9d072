/**
 * scripts/build-guests.ts builds only what is asked: named guests (`--only`), or the guests a
 * host configuration runs (`--for-config`, what `npm start` uses), never looking at a language
 * none of them uses; with no selection, every guest (what `npm test` uses).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  GUESTS_DIR,
  labelOfOutput,
  parseBuildRequest,
  ROOT,
  wantsLanguage,
} from '../../scripts/guest-selection.ts';

const SCRIPT = join(ROOT, 'scripts', 'build-guests.ts');

function buildGuests(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('build-guests: a guest label comes from where its module is written', () => {
  const at = (p: string) => join(GUESTS_DIR, p);
  assert.equal(
    labelOfOutput(at('assemblyscript/poller/build/poller.wasm')),
    'assemblyscript/poller',
  );
  assert.equal(labelOfOutput(at('rust/cron-report/build/cron-report.wasm')), 'rust/cron-report');
  assert.equal(labelOfOutput(at('wat/build/trap.wasm')), 'wat/trap');
  assert.equal(labelOfOutput(at('go/poller/poller.wasm')), null);
  assert.equal(labelOfOutput('/elsewhere/build/x.wasm'), null);
});

test('build-guests: the selection: all, --only, --for-config (the default config: the poller only)', () => {
  const all = parseBuildRequest([]);
  assert.equal(all.only, null);
  assert.ok(wantsLanguage(all, 'rust') && wantsLanguage(all, 'go'));

  const named = parseBuildRequest(['--only', 'wat/trap,wat/noop', '--only', 'rust/poller']);
  assert.deepEqual([...(named.only ?? [])].sort(), ['rust/poller', 'wat/noop', 'wat/trap']);
  assert.ok(wantsLanguage(named, 'rust') && !wantsLanguage(named, 'go'));

  const start = parseBuildRequest(['--for-config']);
  assert.deepEqual([...(start.only ?? [])], ['assemblyscript/poller']);
  for (const lang of ['rust', 'go', 'wat']) assert.ok(!wantsLanguage(start, lang), lang);

  assert.throws(() => parseBuildRequest(['--config', 'x.json']), /--for-config/);
});

test('build-guests --for-config --config FILE: the guests that config runs; others are reported', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-build-guests-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const foreign = join(dir, 'mine.json');
  writeFileSync(foreign, JSON.stringify({ name: 'mine', version: '1.0.0', wasm: 'mine.wasm' }));
  const config = join(dir, 'hourglass.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      store: { path: join(dir, 'h.db') },
      tenants: [
        { id: 'a', plugins: [{ manifest: join(GUESTS_DIR, 'wat', 'trap.json') }] },
        { id: 'b', plugins: [{ manifest: join(GUESTS_DIR, 'wat', 'noop.json') }] },
        { id: 'c', plugins: [{ manifest: foreign }] },
      ],
    }),
  );
  const r = buildGuests(['--for-config', '--config', config, '--list']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /mine\.wasm is not an example guest/);
  assert.deepEqual(r.out.trim().split('\n').slice(1), ['wat/noop', 'wat/trap']);

  const defaults = buildGuests(['--for-config', '--list']);
  assert.equal(defaults.code, 0, defaults.err);
  assert.equal(defaults.out.trim(), 'assemblyscript/poller');
});

test('build-guests --only: builds just those, with progress, never looking at Rust or Go', () => {
  const r = buildGuests(['--only', 'wat/noop', '--force']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.equal(lines[0], 'build-guests: 1 guest(s) (wat/noop)');
  assert.match(lines[1] ?? '', /wat\/noop\s+compiling/);
  assert.match(lines[2] ?? '', /wat\/noop\s+.*-> guest-examples\/wat\/build\/noop\.wasm/);
  assert.equal(lines.length, 3, r.out);
  assert.doesNotMatch(r.err, /toolchain/);

  const unknown = buildGuests(['--only', 'wat/no-such-guest', '--list']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /no guest named wat\/no-such-guest/);
});
