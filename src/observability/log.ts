/**
 * Logs: the host's events as pino lines (JSON, or `pretty` for a terminal), each with the ids
 * that apply (`tenant`, `plugin`, `schedule`, `run`). Nothing else in the host formats a log
 * line: it emits events (src/host/events.ts) and this module writes them.
 *
 * - Text a guest controls (its log lines, error messages, schedule ids) is made inert before it
 *   is logged: control characters (C0, C1, DEL) and bidirectional overrides become `\u{..}`
 *   escapes, so a line cannot forge another line, move a terminal's cursor or reorder what an
 *   operator reads; it is cut to a length.
 * - Guest log lines are rate-limited per plugin (a token bucket: `GUEST_LOG_BURST` lines, then
 *   `GUEST_LOG_PER_SEC` a second); the lines dropped are counted and reported in one `warn`
 *   line when the plugin may log again.
 * - The JSON destination writes asynchronously (sonic-boom on libuv's pool): a slow reader of
 *   stdout never blocks the scheduler's thread. `flush()` before the process exits.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { HostEventMap, HostEvents } from '../host/events.ts';
import { tenantOf } from '../store/postgres/tables.ts';
import { escapeUnsafe } from './inert.ts';

export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly format?: LogFormat;
  readonly level?: LogLevel;
  /** Where lines go. @defaultValue stdout */
  readonly destination?: NodeJS.WritableStream;
}

/** A pino logger with ISO timestamps; JSON lines by default. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = { level: opts.level ?? 'info', timestamp: pino.stdTimeFunctions.isoTime };
  if (opts.format === 'pretty')
    return pino(
      options,
      pretty({
        destination: opts.destination ?? 1,
        sync: true,
        colorize: opts.destination === undefined && process.stdout.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      }),
    );
  return pino(options, opts.destination ?? pino.destination({ dest: 1, sync: false }));
}

/** Longest guest text logged, in characters (the rest is cut, and the cut says so). */
const MAX_GUEST_TEXT = 500;
const MAX_ERROR_TEXT = 1000;

/** Guest-controlled text, made safe to show: control characters escaped, cut to `max`. */
export function inert(text: string, max = MAX_GUEST_TEXT): string {
  return escapeUnsafe(
    text.length > max ? `${text.slice(0, max)}… (${text.length - max} more)` : text,
  );
}

export const GUEST_LOG_BURST = 100;
export const GUEST_LOG_PER_SEC = 20;

/** Per-plugin token buckets for guest log lines. */
export class GuestLogLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; dropped: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Whether `pluginId` may log a line now; `dropped` is how many lines were refused since its
   * last allowed one (to report), or 0.
   */
  take(pluginId: string): { ok: boolean; dropped: number } {
    const now = this.#now();
    let b = this.#buckets.get(pluginId);
    if (!b) this.#buckets.set(pluginId, (b = { tokens: GUEST_LOG_BURST, at: now, dropped: 0 }));
    b.tokens = Math.min(GUEST_LOG_BURST, b.tokens + ((now - b.at) / 1000) * GUEST_LOG_PER_SEC);
    b.at = now;
    if (b.tokens < 1) {
      b.dropped++;
      return { ok: false, dropped: 0 };
    }
    b.tokens -= 1;
    const dropped = b.dropped;
    b.dropped = 0;
    return { ok: true, dropped };
  }

  /** Forgets a plugin (unloaded). */
  forget(pluginId: string): void {
    this.#buckets.delete(pluginId);
  }
}

const GUEST_LEVELS: ReadonlySet<string> = new Set(LOG_LEVELS);

/** The ids of a schedule key `<tenant>/<plugin>/<id>`. */
function scheduleIds(key: string): { tenant: string; plugin: string; schedule: string } {
  const a = key.indexOf('/');
  const b = key.indexOf('/', a + 1);
  return { tenant: key.slice(0, a), plugin: key.slice(0, b), schedule: inert(key) };
}

/**
 * Writes the host's events to `logger`; returns a function that stops. The messages are stable
 * texts (`msg`); everything variable is a field.
 */
export function logHostEvents(
  events: HostEvents,
  logger: Logger,
  limiter: GuestLogLimiter = new GuestLogLimiter(),
): () => void {
  const subs: (() => void)[] = [];
  const sub = <K extends keyof HostEventMap>(k: K, f: (...a: HostEventMap[K]) => void) => {
    events.on(k, f as never);
    subs.push(() => events.off(k, f as never));
  };
  sub('plugin:loaded', (e) =>
    logger.info(
      {
        tenant: tenantOf(e.pluginId),
        plugin: e.pluginId,
        schedules: e.schedules,
        created: e.reconcile.created.length,
        updated: e.reconcile.updated.length,
        retired: e.reconcile.retired.length,
      },
      'plugin loaded',
    ),
  );
  sub('plugin:failed', (e) =>
    logger.error(
      {
        tenant: tenantOf(e.pluginId),
        plugin: e.pluginId,
        code: e.code,
        error: inert(e.message, MAX_ERROR_TEXT),
      },
      'plugin failed to load',
    ),
  );
  sub('plugin:unloaded', (e) => {
    limiter.forget(e.pluginId);
    logger.info({ tenant: tenantOf(e.pluginId), plugin: e.pluginId }, 'plugin unloaded');
  });
  sub('run:started', (r) =>
    logger.debug(
      {
        ...scheduleIds(r.schedule.key),
        run: r.runId,
        trigger: r.trigger,
        scheduledAt: new Date(r.scheduledAt).toISOString(),
        lateMs: r.firedAt - r.scheduledAt,
      },
      'run started',
    ),
  );
  sub('run:finished', (r) => {
    const fields = {
      ...scheduleIds(r.scheduleKey),
      run: r.id,
      status: r.status,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.error ? { error: inert(r.error, MAX_ERROR_TEXT) } : {}),
      fuelUsed: r.fuelUsed,
      durationMs: r.finishedAt === null ? null : r.finishedAt - r.startedAt,
    };
    if (r.status === 'succeeded') logger.info(fields, 'run finished');
    else logger.warn(fields, 'run finished');
  });
  sub('run:retrying', (e) =>
    logger.info(
      {
        ...scheduleIds(e.schedule.key),
        run: e.runId,
        status: e.status,
        attempt: e.attempt,
        retryRun: e.retryRunId,
        dueAt: new Date(e.dueAt).toISOString(),
      },
      'run will be retried',
    ),
  );
  sub('schedule:tripped', (e) =>
    logger.warn(
      { ...scheduleIds(e.schedule.key), failures: e.failures, note: e.note },
      'schedule paused by its breaker',
    ),
  );
  sub('schedule:skipped', (e) =>
    logger.info(
      { ...scheduleIds(e.schedule.key), status: e.status, reason: e.reason },
      'tick not run',
    ),
  );
  sub('guest:log', (e) => {
    const { ok, dropped } = limiter.take(e.pluginId);
    if (!ok) return;
    const ids = {
      tenant: tenantOf(e.pluginId),
      plugin: e.pluginId,
      ...(e.runId === undefined || e.runId === null ? {} : { run: e.runId }),
    };
    if (dropped > 0) logger.warn({ ...ids, dropped }, 'guest log lines dropped (rate limit)');
    const level = GUEST_LEVELS.has(e.level) ? (e.level as LogLevel) : 'info';
    logger[level]({ ...ids, guest: true }, inert(e.message));
  });
  sub('guest:http', (e) =>
    logger.debug(
      {
        tenant: e.tenant,
        plugin: e.pluginId,
        ...(e.runId === null ? {} : { run: e.runId }),
        method: e.method,
        origin: inert(e.origin),
        status: e.status,
        ...(e.error === null ? {} : { error: e.error }),
        ms: Math.round(e.ms),
        bytesIn: e.bytesIn,
        bytesOut: e.bytesOut,
      },
      'guest http request',
    ),
  );
  sub('host:error', (e) => logger.error({ error: inert(e.message, MAX_ERROR_TEXT) }, 'host error'));
  sub('store:failed', (e) =>
    logger.error({ code: e.code, error: e.message }, 'store failed: firing stopped, retrying'),
  );
  sub('store:recovered', (e) =>
    logger.info({ downMs: e.downMs }, 'store takes writes again: firing resumed'),
  );
  sub('lease:lost', () => logger.error('lease lost to another host'));
  sub('tenant:quota_exhausted', (e) =>
    logger.warn(
      {
        tenant: e.tenant,
        fuel: e.fuel,
        used: e.used,
        windowStart: new Date(e.windowStart).toISOString(),
        windowEnd: new Date(e.windowEnd).toISOString(),
      },
      "tenant's fuel window spent: its ticks are recorded quota_exhausted until the window turns",
    ),
  );
  sub('runs:pruned', (e) => logger.debug({ tenant: e.tenant, count: e.count }, 'runs pruned'));
  return () => {
    for (const off of subs) off();
  };
}
