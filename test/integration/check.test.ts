/**
 * `hourglass check` (runCheck): accepts every example guest in every language, refuses guests
 * the host would refuse, with the host's own reason and a non-zero exit code.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { runCheck, type CheckReport } from '../../src/check/check.ts';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { runFuelCommand } from '../../src/fuel/cli-commands.ts';
import { GUEST, T0 } from './helpers.ts';

const EXAMPLES = ['assemblyscript', 'rust', 'go'].flatMap((lang) =>
  ['poller', 'cron-report'].map((name) => ({ lang, name })),
);

function example(lang: string, name: string): { wasm: string; manifest: string } {
  const dir = resolve(PROJECT_ROOT, 'guest-examples', lang);
  const marker = resolve(dir, 'build', 'TOOLCHAIN-MISSING.txt');
  if (existsSync(marker)) {
    assert.fail(
      `the ${lang} examples were not built because a toolchain is missing:\n  ${readFileSync(marker, 'utf8').trim()}`,
    );
  }
  const wasm = resolve(dir, name, 'build', `${name}.wasm`);
  if (!existsSync(wasm)) assert.fail(`${wasm} is missing: run \`npm run build:guests\``);
  return { wasm, manifest: resolve(dir, name, 'hourglass.json') };
}

async function checkJson(opts: Parameters<typeof runCheck>[0]) {
  const r = await runCheck({ ...opts, json: true, now: T0 });
  return { exitCode: r.exitCode, report: JSON.parse(r.text) as CheckReport };
}

for (const { lang, name } of EXAMPLES) {
  test(`check accepts ${lang}/${name} (with its manifest and without one)`, async () => {
    const { wasm, manifest } = example(lang, name);
    const text = await runCheck({ wasm, manifest, now: T0 });
    assert.equal(text.exitCode, 0, text.text);
    assert.match(text.text, /^ACCEPTED: Hourglass would load this guest\.$/m);
    assert.match(text.text, /Discovery +ok.*; fuel used: [1-9]\d* of 50000000/);
    const bare = await checkJson({ wasm });
    assert.equal(bare.exitCode, 0, JSON.stringify(bare.report.problems));
    assert.equal(bare.report.verdict, 'accepted');
    assert.ok(bare.report.imports.every((i) => i.role !== 'unknown'));
  });
}

for (const lang of ['assemblyscript', 'rust']) {
  test(`check accepts ${lang}/webhook without its manifest; its HTTP imports are Extism's kernel`, async () => {
    // (Its manifest asks for the `http` capability, which this host does not know yet.)
    const { wasm } = example(lang, 'webhook');
    const bare = await checkJson({ wasm });
    assert.equal(bare.exitCode, 0, JSON.stringify(bare.report.problems));
    const http = bare.report.imports.filter((i) => i.name.startsWith('extism:host/env.http_'));
    assert.deepEqual(http.map((i) => i.name).sort(), [
      'extism:host/env.http_headers',
      'extism:host/env.http_request',
      'extism:host/env.http_status_code',
    ]);
    assert.ok(
      http.every((i) => i.role === 'extism_kernel'),
      JSON.stringify(http),
    );
  });
}

test('check reports declarations with their next five fire times in their time zone, and contracts', async () => {
  const { wasm, manifest } = example('rust', 'cron-report');
  const { exitCode, report } = await checkJson({ wasm, manifest });
  assert.equal(exitCode, 0);
  const weekday = report.schedules.find((s) => s.id === 'weekday-report');
  assert.deepEqual(weekday?.next, [
    '2026-01-16T08:00:00.000Z',
    '2026-01-19T08:00:00.000Z',
    '2026-01-20T08:00:00.000Z',
    '2026-01-21T08:00:00.000Z',
    '2026-01-22T08:00:00.000Z',
  ]);
  assert.equal(weekday?.nextLocal[0], '2026-01-16 09:00:00 CET');
  assert.equal(weekday?.timezone, 'Europe/Berlin');
  assert.equal(report.schedules.find((s) => s.id === 'nightly-cleanup')?.next.length, 5);
  assert.deepEqual(
    report.contracts.map((c) => (c as { name: string }).name),
    ['weekday-report'],
  );
  assert.equal(report.phases.discovery?.status, 'ok');
  const discovery = report.phases.discovery;
  assert.ok(
    discovery?.fuelUsed && discovery.fuelUsed > 0 && discovery.fuelUsed < discovery.fuelBudget,
  );
  assert.equal(discovery.fuelBudget, 50_000_000);
  assert.ok(report.binary?.memory && report.binary.memory.initial > 0);

  const text = (await runCheck({ wasm, manifest, now: T0 })).text;
  assert.match(text, /weekday-report: cron "0 9 \* \* 1-5" in Europe\/Berlin/);
  assert.match(text, /next: 2026-01-16 09:00:00 CET {2}\(2026-01-16T08:00:00\.000Z\)/);
});

test('check --run calls run() once; --payload drives it with a sample payload', async () => {
  for (const lang of ['assemblyscript', 'rust', 'go']) {
    const { wasm, manifest } = example(lang, 'poller');
    const plain = await checkJson({ wasm, manifest, run: true });
    assert.equal(plain.exitCode, 0, JSON.stringify(plain.report.problems));
    assert.equal(plain.report.run?.scheduleId, 'housekeeping');
    assert.equal(plain.report.run?.status, 'succeeded');
    assert.deepEqual(plain.report.run?.result, { created: true });
    assert.deepEqual(plain.report.run?.cursor, { ticks: 1 });

    const foreign = await checkJson({
      wasm,
      manifest,
      payload: JSON.stringify({ action: 'pause', id: 'someone-elses' }),
    });
    assert.equal(foreign.exitCode, 0);
    const result = foreign.report.run?.result as { response: { error?: { code: string } } };
    assert.equal(result.response.error?.code, 'not_found', `${lang}`);
  }
  // A run that fails makes the check fail.
  const { wasm, manifest } = example('go', 'cron-report');
  const failed = await runCheck({ wasm, manifest, payload: '{}', now: T0 });
  assert.equal(failed.exitCode, 1);
  assert.match(
    failed.text,
    /^FAILED: the guest loads, but: run\(\) failed .*unknown schedule: hourglass-check/m,
  );
});

const REFUSED: [string, RegExp][] = [
  ['check-unknown-import', /imports unknown function 'wasi_unstable\.fd_write'/],
  ['missing-run', /missing required export 'run'/],
  ['garbage-schedules', /schedules\(\) did not return JSON/],
  ['check-invalid-cron', /declaration 'bad-cron': \/cron invalid cron '61 \* \* \* \*'/],
];

for (const [name, reason] of REFUSED) {
  test(`check refuses wat/${name} with a clear reason`, async () => {
    const r = await runCheck({ wasm: GUEST.wat(name), now: T0 });
    assert.equal(r.exitCode, 1, r.text);
    const verdict = r.text.split('\n').at(-1) ?? '';
    assert.match(verdict, /^REFUSED: Hourglass would not load this guest: /);
    assert.match(verdict, reason);
    const { exitCode, report } = await checkJson({ wasm: GUEST.wat(name) });
    assert.equal(exitCode, 1);
    assert.equal(report.verdict, 'refused');
    assert.match(report.problems[0]?.message ?? '', reason);
  });
}

test('check flags the unknown import in its listing, and usage errors exit 2', async () => {
  const { report } = await checkJson({ wasm: GUEST.wat('check-unknown-import') });
  assert.deepEqual(
    report.imports.filter((i) => i.role === 'unknown').map((i) => i.name),
    ['wasi_unstable.fd_write'],
  );
  const missing = await runCheck({ wasm: '/nonexistent/guest.wasm' });
  assert.equal(missing.exitCode, 2);
  assert.match(missing.text, /\/nonexistent\/guest\.wasm: cannot read: ENOENT/);
  // Not a regular file: refused before a byte is read (reading /dev/zero would never end).
  for (const wasm of ['/dev/zero', PROJECT_ROOT]) {
    const r = await runCheck({ wasm });
    assert.equal(r.exitCode, 2, wasm);
    assert.match(r.text, /not a regular file/, wasm);
    const fuel = await runFuelCommand({ guest: wasm, call: 'run' });
    assert.equal(fuel.exitCode, 2, wasm);
    assert.match(fuel.stderr, /not a regular file/, wasm);
  }
  const badPayload = await runCheck({ wasm: GUEST.wat('noop'), payload: '{nope' });
  assert.equal(badPayload.exitCode, 2);
  assert.match(badPayload.text, /--payload is not valid JSON/);
});

test('`hourglass check` from the command line: exit 0 for an example, 1 with a one-line verdict for a refused guest', () => {
  const cli = resolve(PROJECT_ROOT, 'bin', 'hourglass.js');
  const good = spawnSync(process.execPath, [cli, 'check', GUEST.poller], { encoding: 'utf8' });
  assert.equal(good.status, 0, good.stderr);
  const bad = spawnSync(process.execPath, [cli, 'check', GUEST.wat('missing-run')], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout.trim().split('\n').at(-1) ?? '', /^REFUSED: .*'run'/);
});
