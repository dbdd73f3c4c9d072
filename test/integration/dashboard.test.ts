/**
 * The dashboard in real headless Chromium (Debian's `chromium`, driven by playwright-core; CI
 * installs it: .ci/run), against a real host and its API: sign in with a tenant token, see only
 * that tenant's schedules, a schedule firing shows up in the runs timeline, a run's detail, text
 * a guest stored shown as text (never run), and a pause through the button reaches the store.
 *
 * `HOURGLASS_DASHBOARD_SCREENSHOT=docs/dashboard.png` also writes the screenshot the README shows.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { serve, TOKENS, written } from './api-harness.ts';
import { advance, storedCopy } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Generous: the page refreshes every 2 s, and the machine may be busy. */
const WAIT_MS = 30_000;

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

async function launch(t: { after(fn: () => Promise<void>): void }): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`,
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Chromium's sandbox needs user namespaces, or a non-root user; CI may be root in a container.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  t.after(() => browser.close());
  return browser;
}

test('dashboard: a tenant signs in, sees its schedule fire, reads a run, pauses through the button', async (t) => {
  const s = await serve(t, 'sqlite', {}, [
    { id: 's1', every: '1h', payload: {}, description: HOSTILE },
    { id: 's2', every: '1h', payload: { fail: HOSTILE } },
  ]);
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  const res = await page.goto(`${s.api.url}/`);
  assert.equal(res?.status(), 200);
  assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  await page.fill('#token', TOKENS.a);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('tr[data-key="a/p/s1"][data-state="active"]', { timeout: WAIT_MS });
  assert.equal(await page.textContent('#who'), 'team-a (tenant a)');
  assert.equal(await page.textContent('tr[data-key="a/p/s1"] td:nth-child(2)'), HOSTILE);
  // Tenant a's schedules only.
  assert.deepEqual(
    await page.$$eval('#schedules tbody tr', (rows) => rows.map((r) => r.getAttribute('data-key'))),
    ['a/p/s1', 'a/p/s2'],
  );

  // The schedules fire (virtual time: an hour on); the page's refresh shows their runs.
  await advance(s.opened.host, s.clock, 3_600_000, 600_000);
  await written(s);
  await page.waitForSelector('#timeline button[data-schedule="a/p/s1"].st-succeeded', {
    timeout: WAIT_MS,
  });
  await page.waitForSelector('#timeline button[data-schedule="a/p/s2"].st-failed', {
    timeout: WAIT_MS,
  });
  assert.equal(await page.$('#timeline button[data-schedule^="b/"]'), null, "no run of b's");

  // A run's detail.
  await page.click('#timeline button[data-schedule="a/p/s1"]');
  await page.waitForSelector('#run-detail:not([hidden]) dd[data-field="Status"]');
  assert.equal(await page.textContent('dd[data-field="Schedule"]'), 'a/p/s1');
  assert.equal(await page.textContent('dd[data-field="Status"]'), 'succeeded');
  assert.equal(await page.textContent('dd[data-field="Trigger"]'), 'schedule');
  const fuel = Number(await page.textContent('dd[data-field="Fuel used"]'));
  assert.ok(fuel > 0, `fuel used: ${fuel}`);
  assert.match((await page.textContent('#run-result')) ?? '', /"scheduleId":"s1"/);

  // Guest text (a failure message) is shown as text and nothing in it ran.
  await page.click('#timeline button[data-schedule="a/p/s2"]');
  await page.waitForFunction(
    (id) => document.querySelector('dd[data-field="Schedule"]')?.textContent === id,
    'a/p/s2',
    { timeout: WAIT_MS },
  );
  assert.equal(await page.textContent('#run-error'), HOSTILE);
  assert.equal(
    await page.evaluate(() => document.querySelectorAll('img, script:not([src])').length),
    0,
  );
  assert.equal(await page.evaluate(() => (window as { __pwned?: number }).__pwned), undefined);

  // Pause through the button: the store has it, and the page shows it.
  await page.click('tr[data-key="a/p/s1"] button[data-action="pause"]');
  await page.waitForSelector('tr[data-key="a/p/s1"][data-state="paused"]', { timeout: WAIT_MS });
  await written(s);
  const stored = await storedCopy(s.config);
  try {
    const rec = stored.getSchedule('a/p/s1');
    assert.equal(rec?.state, 'paused');
    assert.equal(rec?.pauseNote, 'paused from the dashboard');
    assert.equal(stored.getSchedule('b/p/s1')?.state, 'active');
  } finally {
    stored.close();
  }
  assert.match(
    (await page.textContent('tr[data-key="a/p/s1"]')) ?? '',
    /paused from the dashboard/,
  );

  const shot = process.env.HOURGLASS_DASHBOARD_SCREENSHOT;
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  assert.deepEqual(errors, [], 'no script errors on the page');

  // A refused token goes back to the sign-in form with the reason.
  await page.evaluate(() => sessionStorage.setItem('hourglass-token', 'hg_wrong'));
  await page.reload();
  await page.waitForSelector('#signin:not([hidden])', { timeout: WAIT_MS });
  assert.equal(await page.textContent('#signin-error'), 'the token was refused');
});
