// The Hourglass dashboard: one page over the HTTP API (src/api/server.ts), no framework, no CDN.
//
// Untrusted text. Schedule ids, notes, payloads, run results and error messages come from
// guests: they are only ever set with `textContent` or as attribute values through the DOM
// (never `innerHTML`), and the server's Content-Security-Policy allows this script alone, so a
// stored `<script>` or `onerror=` is shown as text and never runs.
//
// The token is kept in sessionStorage (this tab) and sent as a bearer header; there are no
// cookies, so another site cannot make the browser send an authenticated request (no CSRF).
'use strict';

const TOKEN_KEY = 'hourglass-token';
const REFRESH_MS = 2000;
const RUNS_SHOWN = 60;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);
let timer = null;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, init = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { ...init, headers });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body?.error?.message ?? `HTTP ${res.status}`);
  return body;
}

/** `/v1/schedules/<tenant>/<plugin>/<id>` of a key, each part encoded. */
function schedulePath(key) {
  return `/v1/schedules/${key.split('/').map(encodeURIComponent).join('/')}`;
}

const iso = (ms) => (ms === null || ms === undefined ? '—' : new Date(ms).toISOString());

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function row(cells, attrs = {}) {
  const tr = el('tr', null, attrs);
  for (const c of cells) {
    const td = el('td');
    if (c instanceof Node) td.append(c);
    else td.textContent = c === null || c === undefined ? '—' : String(c);
    tr.append(td);
  }
  return tr;
}

function statusCell(status) {
  const span = el('span');
  span.append(el('span', null, { class: `dot st-${status}` }), document.createTextNode(status));
  return span;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function say(text) {
  $('status').textContent = text;
}

async function act(key, action) {
  const method = action === 'delete' ? 'DELETE' : 'POST';
  const suffix = action === 'delete' ? '' : `/${action}`;
  const body =
    action === 'pause' ? JSON.stringify({ note: 'paused from the dashboard' }) : undefined;
  try {
    const r = await api(`${schedulePath(key)}${suffix}`, { method, body });
    say(`${action} ${key}: ${r.value ?? 'done'}`);
  } catch (err) {
    say(`${action} ${key} failed: ${err.message}`);
  }
  await refresh();
}

function renderSchedules(items) {
  fill(
    $('schedules').tBodies[0],
    items.map((s) => {
      const buttons = el('span');
      const button = (label, action) => {
        const b = el('button', label, { type: 'button', 'data-action': action });
        b.addEventListener('click', () => act(s.key, action));
        buttons.append(b);
      };
      if (s.state === 'active') button('Pause', 'pause');
      if (s.state === 'paused') button('Resume', 'resume');
      if (s.state === 'active' || s.state === 'paused') button('Trigger', 'trigger');
      return row([s.key, s.description, s.state, iso(s.nextAt), s.pauseNote, buttons], {
        'data-key': s.key,
        'data-state': s.state,
      });
    }),
  );
}

function duration(r) {
  return r.finishedAt === null ? null : `${r.finishedAt - r.startedAt} ms`;
}

function renderRuns(items) {
  const timeline = $('timeline');
  timeline.replaceChildren(
    ...[...items].reverse().map((r) => {
      const b = el('button', null, {
        type: 'button',
        class: `st-${r.status}`,
        'data-run': String(r.id),
        'data-schedule': r.scheduleKey,
        title: `${r.scheduleKey} · ${r.status} · fuel ${r.fuelUsed ?? '—'} · ${duration(r) ?? '—'}`,
        'aria-label': `run ${r.id} ${r.status}`,
      });
      b.addEventListener('click', () => showRun(r.id));
      return b;
    }),
  );
  fill(
    $('runs').tBodies[0],
    items.map((r) => {
      const tr = row(
        [
          r.id,
          r.scheduleKey,
          statusCell(r.status),
          r.trigger,
          iso(r.startedAt),
          duration(r),
          r.fuelUsed,
        ],
        { class: 'clickable', 'data-run': String(r.id) },
      );
      tr.addEventListener('click', () => showRun(r.id));
      return tr;
    }),
  );
}

function renderPlugins(items) {
  fill(
    $('plugins').tBodies[0],
    items.map((p) => row([p.id, p.version, p.status, p.error], { 'data-plugin': p.id })),
  );
}

async function showRun(id) {
  let r;
  try {
    r = await api(`/v1/runs/${encodeURIComponent(id)}`);
  } catch (err) {
    say(`run ${id}: ${err.message}`);
    return;
  }
  $('run-id').textContent = String(r.id);
  const fields = [
    ['Schedule', r.scheduleKey],
    ['Status', r.status],
    ['Reason', r.reason],
    ['Trigger', r.trigger],
    ['Attempt', r.attempt],
    ['Scheduled for', iso(r.scheduledAt)],
    ['Started', iso(r.startedAt)],
    ['Finished', iso(r.finishedAt)],
    ['Duration', duration(r)],
    ['Fuel used', r.fuelUsed],
    ['Fuel budget', r.fuelBudget],
    ['Output bytes', r.outputBytes],
    ['Plugin version', r.pluginVersion],
    ['Module SHA-256', r.wasmSha256],
  ];
  $('run-fields').replaceChildren(
    ...fields.flatMap(([k, v]) => [el('dt', k), el('dd', v ?? '—', { 'data-field': k })]),
  );
  $('run-result').textContent = r.result ?? '—';
  $('run-error').textContent = r.error ?? '—';
  $('run-log').textContent = r.logTail ?? '—';
  $('run-detail').hidden = false;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [schedules, runs, plugins] = await Promise.all([
      api('/v1/schedules?limit=200'),
      api(`/v1/runs?limit=${RUNS_SHOWN}`),
      api('/v1/plugins'),
    ]);
    renderSchedules(schedules.items);
    renderRuns(runs.items);
    renderPlugins(plugins);
    document.body.dataset.refreshedAt = String(Date.now());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut('the token was refused');
    say(`refresh failed: ${err.message}`);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

async function signIn(candidate) {
  token = candidate;
  try {
    const me = await api('/v1/whoami');
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $('who').textContent =
      me.scope === 'operator' ? `${me.name} (operator)` : `${me.name} (tenant ${me.tenant})`;
    $('signin').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    await refresh();
  } catch (err) {
    signOut(err instanceof ApiError && err.status === 401 ? 'the token was refused' : err.message);
  }
}

function signOut(why) {
  clearTimeout(timer);
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('app').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('who').textContent = '';
  $('signin-error').textContent = why ?? '';
}

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('token').value.trim());
});
$('signout').addEventListener('click', () => signOut());
if (token) signIn(token);
