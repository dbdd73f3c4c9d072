/**
 * A loopback HTTP server for tests of guests that make outbound requests (the pollers' feeds,
 * the webhook example). `startFeedServer()` listens on 127.0.0.1, port 0 (the OS picks one),
 * and serves:
 *
 * - `GET /feed.json` — `{"items":[{"id","title"(,"url")}]}` from `server.items`;
 * - `GET /feed.rss` — the same items as RSS 2.0 (`<item><guid>…</guid><title>…</title>`);
 * - `/slow` — status 200 and its headers at once, one chunk of body, then nothing until
 *   `server.slowMs` ms have passed (`null`, the default: never; the request stays open until
 *   the client gives up or `close()`);
 * - `/huge` — status 200, then body chunks of 64 KiB without end (or until `server.hugeBytes`
 *   bytes), honouring backpressure, until the client goes away;
 * - `/redirect?to=URL` — 302 to `URL`;
 * - `/hook` — records the bodies POSTed to it in `server.hooks` and answers `server.hookStatus`
 *   (default 200) with `{"received":n}`; other methods get 405;
 * - `/status/N` — status N (100 < N < 600) with the body `status N`;
 * - any path given to `server.respond(path, …)` — that fixed answer (for broken feeds);
 * - anything else — 404.
 *
 * Items can be changed between a guest's runs (`server.items = […]` or `addItem`). Every
 * request is recorded in `server.requests` (method, path, query, lowercased headers, body once
 * read) as it arrives; `waitFor(predicate)` waits for a condition without sleeping blindly.
 * `close()` stops listening, destroys every open socket (slow and endless answers included)
 * and resolves once the server is closed.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FeedItemSpec {
  readonly id: string;
  readonly title: string;
  /** Written as `url` (JSON) and `<link>` (RSS) when set. */
  readonly link?: string;
}

export interface RecordedRequest {
  readonly method: string;
  /** The path without the query, e.g. `/feed.json`. */
  readonly path: string;
  /** The query string without `?` ("" when none). */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body (UTF-8), filled in once it has been read in full (up to 1 MiB). */
  body: string;
  /** True once the whole body has arrived. */
  complete: boolean;
}

export interface FixedAnswer {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface FeedServer {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** The feed's items, newest first; assign or `addItem` between runs. */
  items: FeedItemSpec[];
  /** How long `/slow` waits before finishing its body; null: never. */
  slowMs: number | null;
  /** Bytes `/huge` sends before ending; null: endless. */
  hugeBytes: number | null;
  /** The status `/hook` answers with. */
  hookStatus: number;
  /** Every request, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** The requests POSTed to `/hook`, once their bodies have arrived. */
  readonly hooks: readonly RecordedRequest[];
  /** Puts an item first (the newest, as feeds list them). */
  addItem(item: FeedItemSpec): void;
  /** Answers `path` with a fixed response from now on (takes precedence over the routes). */
  respond(path: string, answer: FixedAnswer): void;
  /** Requests to `path` so far. */
  requestsTo(path: string): RecordedRequest[];
  /** Resolves once `predicate()` holds (checked on every request event), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1_048_576;
const HUGE_CHUNK = Buffer.alloc(65_536, 0x61);

function xmlEscape(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

function jsonFeed(items: readonly FeedItemSpec[]): string {
  return JSON.stringify({
    items: items.map((i) => ({ id: i.id, title: i.title, ...(i.link ? { url: i.link } : {}) })),
  });
}

function rssFeed(items: readonly FeedItemSpec[]): string {
  const entries = items.map(
    (i) =>
      `    <item>\n      <title>${xmlEscape(i.title)}</title>\n` +
      (i.link ? `      <link>${xmlEscape(i.link)}</link>\n` : '') +
      `      <guid isPermaLink="false">${xmlEscape(i.id)}</guid>\n    </item>\n`,
  );
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n  <channel>\n' +
    '    <title>Test feed</title>\n    <link>http://127.0.0.1/</link>\n' +
    `    <description>Items for Hourglass tests</description>\n${entries.join('')}` +
    '  </channel>\n</rss>\n'
  );
}

export async function startFeedServer(): Promise<FeedServer> {
  const requests: RecordedRequest[] = [];
  const hooks: RecordedRequest[] = [];
  const fixed = new Map<string, FixedAnswer>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const state = {
    items: [] as FeedItemSpec[],
    slowMs: null as number | null,
    hugeBytes: null as number | null,
    hookStatus: 200,
  };

  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const huge = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let sent = 0;
    const pump = () => {
      while (!res.destroyed) {
        const limit = state.hugeBytes;
        if (limit !== null && sent >= limit) {
          res.end();
          return;
        }
        const chunk =
          limit !== null && limit - sent < HUGE_CHUNK.length
            ? HUGE_CHUNK.subarray(0, limit - sent)
            : HUGE_CHUNK;
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };

  const server = createServer((req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split(/\?(.*)/s, 2);
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      query,
      headers: req.headers,
      body: '',
      complete: false,
    };
    requests.push(record);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      record.body = Buffer.concat(chunks).toString('utf8');
      record.complete = true;
      route(record, res);
      notify();
    });
    notify();
  });

  const route = (r: RecordedRequest, res: ServerResponse) => {
    const answer = fixed.get(r.path);
    if (answer) {
      res.writeHead(answer.status ?? 200, { ...answer.headers });
      res.end(answer.body);
      return;
    }
    const status = /^\/status\/(\d{3})$/.exec(r.path);
    if (r.path === '/feed.json') {
      send(res, 200, 'application/json', jsonFeed(state.items));
    } else if (r.path === '/feed.rss') {
      send(res, 200, 'application/rss+xml; charset=utf-8', rssFeed(state.items));
    } else if (r.path === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('slow ');
      if (state.slowMs !== null) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          res.end('done');
        }, state.slowMs);
        timers.add(timer);
      }
    } else if (r.path === '/huge') {
      huge(res);
    } else if (r.path === '/redirect') {
      const to = new URLSearchParams(r.query).get('to');
      if (to === null) send(res, 400, 'text/plain', 'missing ?to=');
      else {
        res.writeHead(302, { location: to, 'content-length': 0 });
        res.end();
      }
    } else if (r.path === '/hook') {
      if (r.method !== 'POST') {
        send(res, 405, 'text/plain', 'POST only');
        return;
      }
      hooks.push(r);
      send(res, state.hookStatus, 'application/json', JSON.stringify({ received: hooks.length }));
    } else if (status) {
      const n = Number(status[1]);
      if (n < 101 || n > 599) send(res, 400, 'text/plain', 'bad status');
      else if (n === 204 || n === 304) {
        res.writeHead(n);
        res.end();
      } else send(res, n, 'text/plain', `status ${n}`);
    } else {
      send(res, 404, 'text/plain', 'not found');
    }
  };

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  let closed: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get items() {
      return state.items;
    },
    set items(items: FeedItemSpec[]) {
      state.items = [...items];
    },
    get slowMs() {
      return state.slowMs;
    },
    set slowMs(ms: number | null) {
      state.slowMs = ms;
    },
    get hugeBytes() {
      return state.hugeBytes;
    },
    set hugeBytes(n: number | null) {
      state.hugeBytes = n;
    },
    get hookStatus() {
      return state.hookStatus;
    },
    set hookStatus(n: number) {
      state.hookStatus = n;
    },
    requests,
    hooks,
    addItem(item) {
      state.items = [item, ...state.items];
    },
    respond(path, answer) {
      fixed.set(path, answer);
    },
    requestsTo(path) {
      return requests.filter((r) => r.path === path);
    },
    waitFor(predicate, timeoutMs = 30_000) {
      if (predicate()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate()) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`feed server: condition not met within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    close() {
      closed ??= (async () => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        const done = once(server, 'close');
        server.close();
        for (const s of sockets) s.destroy();
        await done;
      })();
      return closed;
    },
  };
}
