/**
 * The operator store of a remote host, through its HTTP API (`hourglass <command> --url URL`,
 * the token in `HOURGLASS_TOKEN`): the CLI's reads and actions, scoped by the server to what the
 * token may see. Listings page through the API's pages (at most 1000 rows each) up to the limit
 * asked for.
 */
import { HourglassError, type ErrorCode } from '../errors.ts';
import type { JobContractRecord, PluginRecord, RunRecord, ScheduleRecord } from '../store/types.ts';
import type { CommandOutcome, OperatorStore } from './operator-store.ts';
import type { PluginStateView } from './service.ts';

/** The environment variable the CLI reads the API token from (never a flag: shells log those). */
export const TOKEN_ENV = 'HOURGLASS_TOKEN';
/** The environment variable naming a remote host's API when `--url` is not given. */
export const URL_ENV = 'HOURGLASS_URL';

const PAGE = 1000;
const TIMEOUT_MS = 30_000;

interface ApiErrorBody {
  readonly error?: { readonly code?: string; readonly message?: string };
}

function keyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

export function openHttpOperatorStore(url: string, token: string): OperatorStore {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new HourglassError('HG_CLI_USAGE', `--url: '${url}' is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new HourglassError('HG_CLI_USAGE', `--url: '${url}' is not an http(s) URL`);

  async function call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(new URL(path, base), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw new HourglassError(
        'HG_API_UNAVAILABLE',
        `${base.origin}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`,
      );
    }
    const json: unknown = await res.json().catch(() => null);
    return { status: res.status, json };
  }

  /** A command the API refused, as its outcome (404: `not_found`, like the stores' own). */
  function refused(r: { status: number; json: unknown }): CommandOutcome {
    const e = (r.json as ApiErrorBody | null)?.error;
    const code = r.status === 404 ? 'not_found' : (e?.code ?? `http_${r.status}`);
    return {
      via: 'host',
      ok: false,
      code,
      message: `${code}: ${e?.message ?? `HTTP ${r.status}`}`,
    };
  }

  /** A read's answer, or its error as an HourglassError with the API's code. */
  async function get<T>(path: string): Promise<T> {
    const r = await call('GET', path);
    if (r.status === 200) return r.json as T;
    const e = (r.json as ApiErrorBody | null)?.error;
    const code = (e?.code?.startsWith('HG_API_') ? e.code : 'HG_API_UNAVAILABLE') as ErrorCode;
    throw new HourglassError(code, `${base.origin}${path}: ${e?.message ?? `HTTP ${r.status}`}`);
  }

  const query = (q: Record<string, string | number | readonly string[] | undefined>) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const x of v) p.append(k, x);
      else p.set(k, String(v));
    }
    return p.toString();
  };

  /**
   * A listing's rows, page after page from cursor `start` until `want` rows or its last page:
   * `page(cursor, limit)` is a page's query (the cursor is `after` for schedules).
   */
  async function walk<T>(
    path: string,
    want: number,
    start: string | undefined,
    page: (cursor: string | undefined, limit: number) => string,
  ): Promise<T[]> {
    const rows: T[] = [];
    let cursor = start;
    while (rows.length < want) {
      const got = await get<{ items: T[]; next: string | null }>(
        `${path}?${page(cursor, Math.min(PAGE, want - rows.length))}`,
      );
      rows.push(...got.items);
      if (got.next === null) break;
      cursor = got.next;
    }
    return rows;
  }

  return {
    listPlugins: () => get<PluginRecord[]>('/v1/plugins'),
    listSchedules: (q) =>
      walk<ScheduleRecord>('/v1/schedules', q.limit ?? Infinity, q.after, (after, limit) =>
        query({ tenant: q.tenant, plugin: q.pluginId, state: q.states, after, limit }),
      ),
    async getSchedule(key) {
      return get<ScheduleRecord>(`/v1/schedules/${keyPath(key)}`).catch((err: unknown) => {
        if (err instanceof HourglassError && err.code === 'HG_API_NOT_FOUND') return undefined;
        throw err;
      });
    },
    listRuns: (q) =>
      walk<RunRecord>(
        '/v1/runs',
        q.limit ?? 100,
        q.before ? `${q.before.startedAt}.${q.before.id}` : undefined,
        (cursor, limit) =>
          query({
            tenant: q.tenant,
            plugin: q.pluginId,
            schedule: q.scheduleKey,
            status: q.status,
            since: q.since,
            until: q.until,
            cursor,
            limit,
          }),
      ),
    async getRun(id) {
      return get<RunRecord>(`/v1/runs/${id}`).catch((err: unknown) => {
        if (err instanceof HourglassError && err.code === 'HG_API_NOT_FOUND') return undefined;
        throw err;
      });
    },
    listJobContracts: (pluginId) =>
      get<JobContractRecord[]>(
        `/v1/jobs${pluginId === undefined ? '' : `?${query({ plugin: pluginId })}`}`,
      ),
    async getPluginState(pluginId) {
      const view = await get<PluginStateView>(`/v1/plugins/${keyPath(pluginId)}/state`).catch(
        (err: unknown) => {
          if (err instanceof HourglassError && err.code === 'HG_API_NOT_FOUND') return undefined;
          throw err;
        },
      );
      if (!view) return undefined;
      return {
        pluginId,
        tenant: pluginId.slice(0, Math.max(0, pluginId.indexOf('/'))),
        vars: JSON.stringify(view.vars.map((v) => [v.key, v.base64])),
        bytes: view.bytes,
        updatedAt: view.updatedAt ?? 0,
      };
    },
    async applyCommand(key, action, note): Promise<CommandOutcome> {
      if (action === 'clear_state') {
        const q = note === null ? '' : `?${query({ key: note })}`;
        const r = await call('DELETE', `/v1/plugins/${keyPath(key)}/state${q}`);
        if (r.status === 200) {
          const ok = r.json as { via: CommandOutcome['via']; value: string | null };
          const value = ok.value ?? 'done';
          return { via: ok.via, ok: true, value, message: `clear_state ${key}: ${value}` };
        }
        return refused(r);
      }
      const path = `/v1/schedules/${keyPath(key)}${action === 'delete' ? '' : `/${action}`}`;
      let body: unknown;
      if (action === 'pause' && note !== null) body = { note };
      if (action === 'backfill') {
        try {
          body = JSON.parse(note ?? 'null') as unknown;
        } catch {
          return { via: 'host', ok: false, code: 'invalid', message: 'invalid: not JSON' };
        }
      }
      if (action === 'trigger' && note !== null) {
        try {
          body = { payload: JSON.parse(note) as unknown };
        } catch (err) {
          const message = `invalid: the payload is not JSON: ${err instanceof Error ? err.message : String(err)}`;
          return { via: 'host', ok: false, code: 'invalid', message };
        }
      }
      const r = await call(action === 'delete' ? 'DELETE' : 'POST', path, body);
      if (r.status === 200) {
        const ok = r.json as { via: CommandOutcome['via']; value: string | null };
        return {
          via: ok.via,
          ok: true,
          ...(ok.value === null ? {} : { value: ok.value }),
          message: `${action} ${key}: ${ok.value ?? 'done'}`,
        };
      }
      return refused(r);
    },
    close: async () => undefined,
  };
}
