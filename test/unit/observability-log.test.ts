/**
 * Logs from the host's events (src/observability/log.ts) and the guarded event emitter
 * (src/host/events.ts): each line carries the ids that apply; guest text is made inert; guest
 * log lines are rate-limited per plugin with the drops reported; a listener that throws becomes
 * a `host:error` and never reaches the emitter.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { HostEvents } from '../../src/host/events.ts';
import {
  createLogger,
  GUEST_LOG_BURST,
  GUEST_LOG_PER_SEC,
  GuestLogLimiter,
  inert,
  logHostEvents,
} from '../../src/observability/log.ts';
import type { RunRecord } from '../../src/store/types.ts';

const T0 = Date.parse('2026-01-15T10:00:00Z');

function capture(format: 'json' | 'pretty' = 'json') {
  const text: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      text.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ format, level: 'debug', destination });
  const lines = () =>
    text
      .join('')
      .split('\n')
      .filter((s) => s !== '')
      .map((s) => JSON.parse(s) as Record<string, unknown>);
  return { logger, text, lines };
}

function run(over: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 42,
    scheduleKey: 'acme/feeds/poll',
    pluginId: 'acme/feeds',
    tenant: 'acme',
    localId: 'poll',
    trigger: 'schedule',
    status: 'succeeded',
    reason: null,
    scheduledAt: T0,
    startedAt: T0 + 1,
    finishedAt: T0 + 8,
    attempt: 1,
    error: null,
    outputBytes: 0,
    fuelUsed: 1234,
    fuelBudget: 1_000_000,
    result: null,
    coversUntil: null,
    pluginVersion: '1.0.0',
    wasmSha256: 'ab'.repeat(32),
    logTail: null,
    ...over,
  };
}

test('inert: control characters and bidirectional overrides are escaped, long text is cut', () => {
  assert.equal(inert('plain text, tabs\tand ünïcode ok'), 'plain text, tabs\tand ünïcode ok');
  assert.equal(inert('a\nb\r\u001b[2Jc'), 'a\\u{a}b\\u{d}\\u{1b}[2Jc');
  assert.equal(inert('\u009b31m\u202egnp.exe\u2028'), '\\u{9b}31m\\u{202e}gnp.exe\\u{2028}');
  assert.equal(inert('x'.repeat(30), 10), `${'x'.repeat(10)}… (20 more)`);
});

test('a run’s lines carry its tenant, plugin, schedule and run; a failed run logs at warn', () => {
  const events = new HostEvents();
  const { logger, lines } = capture();
  const stop = logHostEvents(events, logger);
  events.emit('run:started', {
    runId: 42,
    schedule: { key: 'acme/feeds/poll' } as never,
    scheduledAt: T0,
    firedAt: T0 + 3,
    trigger: 'schedule',
    attempt: 1,
    payload: null,
  });
  events.emit('run:finished', run());
  events.emit('run:finished', run({ id: 43, status: 'trapped', error: 'boom\n{"level":50}' }));
  stop();
  events.emit('run:finished', run({ id: 44 }));
  const [started, ok, trapped, ...rest] = lines();
  assert.deepEqual(rest, [], 'nothing after stop()');
  for (const l of [started, ok, trapped]) {
    assert.equal(l?.tenant, 'acme');
    assert.equal(l?.plugin, 'acme/feeds');
    assert.equal(l?.schedule, 'acme/feeds/poll');
    assert.equal(typeof l?.time, 'string');
  }
  assert.deepEqual(
    [started?.msg, started?.run, started?.lateMs, started?.level],
    ['run started', 42, 3, 20],
  );
  assert.deepEqual(
    [ok?.msg, ok?.run, ok?.status, ok?.fuelUsed, ok?.durationMs, ok?.level],
    ['run finished', 42, 'succeeded', 1234, 7, 30],
  );
  assert.deepEqual(
    [trapped?.run, trapped?.level, trapped?.error],
    [43, 40, 'boom\\u{a}{"level":50}'],
  );
});

test('guest log lines: the guest’s level, text made inert, a plugin over its rate dropped and the drops reported', () => {
  let now = T0;
  const events = new HostEvents();
  const { logger, lines } = capture();
  logHostEvents(events, logger, new GuestLogLimiter(() => now));
  events.emit('guest:log', {
    pluginId: 'acme/feeds',
    level: 'error',
    message: 'fake\n\u001b[31mline',
    runId: 42,
  });
  events.emit('guest:log', { pluginId: 'acme/feeds', level: 'nonsense', message: 'x' });
  for (let i = 0; i < GUEST_LOG_BURST + 50; i++)
    events.emit('guest:log', { pluginId: 'acme/noisy', level: 'info', message: `n${i}` });
  events.emit('guest:log', { pluginId: 'acme/feeds', level: 'info', message: 'still heard' });
  const first = lines();
  assert.deepEqual(
    [first[0]?.level, first[0]?.msg, first[0]?.guest, first[0]?.tenant, first[0]?.plugin],
    [50, 'fake\\u{a}\\u{1b}[31mline', true, 'acme', 'acme/feeds'],
  );
  assert.equal(first[0]?.run, 42, 'a line a run wrote carries its id');
  assert.equal(first[1]?.level, 30, 'an unknown level logs at info');
  assert.equal(first[1]?.run, undefined);
  assert.equal(first.filter((l) => l.plugin === 'acme/noisy').length, GUEST_LOG_BURST);
  assert.equal(first.at(-1)?.msg, 'still heard', 'one plugin’s noise does not silence another');
  now += 1000; // the bucket refills GUEST_LOG_PER_SEC lines a second
  for (let i = 0; i < GUEST_LOG_PER_SEC + 5; i++)
    events.emit('guest:log', { pluginId: 'acme/noisy', level: 'info', message: `m${i}` });
  const later = lines().slice(first.length);
  assert.deepEqual(
    [later[0]?.msg, later[0]?.dropped, later[0]?.level],
    ['guest log lines dropped (rate limit)', 50, 40],
  );
  assert.equal(later.filter((l) => l.guest === true).length, GUEST_LOG_PER_SEC);
});

test('pretty lines for a terminal keep the message and escape what the guest wrote', () => {
  const events = new HostEvents();
  const { logger, text } = capture('pretty');
  logHostEvents(events, logger);
  events.emit('guest:log', { pluginId: 'acme/feeds', level: 'warn', message: 'a\u001b[2Jb\nc' });
  events.emit('run:finished', run());
  const all = text.join('');
  assert.match(all, /WARN.*a\\u\{1b\}\[2Jb\\u\{a\}c/);
  assert.match(all, /run finished/);
  assert.ok(!all.includes('\u001b[2J'), 'the escape sequence reached the terminal');
});

test('a listener that throws becomes a host:error; the emitter and later listeners go on; once-listeners are removed', () => {
  const events = new HostEvents();
  const errors: string[] = [];
  const seen: number[] = [];
  events.on('host:error', (e) => errors.push(e.message));
  events.on('host:error', () => {
    throw new Error('a broken error listener');
  });
  events.on('run:finished', () => {
    throw new Error('listener bug');
  });
  events.on('run:finished', (r) => seen.push(r.id));
  let once = 0;
  events.once('run:finished', () => once++);
  assert.equal(events.emit('run:finished', run({ id: 1 })), true);
  assert.equal(events.emit('run:finished', run({ id: 2 })), true);
  assert.deepEqual(seen, [1, 2]);
  assert.equal(once, 1);
  assert.deepEqual(errors, [
    'a run:finished listener threw: listener bug',
    'a run:finished listener threw: listener bug',
  ]);
  assert.equal(events.emit('plugin:unloaded', { pluginId: 'x/y' }), false, 'no listener');
});
