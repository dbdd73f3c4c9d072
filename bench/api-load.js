// The API bench's load generator (bench/api.bench.ts starts it as a worker thread, so the
// clients have an event loop of their own beside the server's): plain JS, no tsx.
//
// For each message `{ id, origin, scenario, ms }` it runs `scenario.concurrency` clients over one
// keep-alive `http.Agent` (one socket each) until `ms` have passed, then waits for the requests
// in flight, and answers `{ id, requests, wallMs, errors, firstError, bytes, walks, latencies }`:
// requests completed, wall time from the first request to the last answer (so requests ÷ wall
// time is a sustained rate), non-200 answers, body bytes read, walks finished, and each
// request's latency in ms (a transferred Float64Array).
//
// A scenario is `{ kind: 'paths', paths, tokens, concurrency }` (client c asks for
// `paths[(c + k * concurrency) % paths.length]` with `tokens[c % tokens.length]`) or
// `{ kind: 'walk', tenants, token, limit, concurrency }` (client c walks tenant
// `tenants[c % n]`'s runs page by page, passing each page's `next` back as `cursor`, then walks
// the tenant `concurrency` further on). A null token sends no Authorization header.
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';

function get(agent, origin, path, token) {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const req = http.get(`${origin}${path}`, { agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function run({ origin, scenario, ms }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: scenario.concurrency });
  let latencies = new Float64Array(1 << 16);
  let requests = 0;
  let errors = 0;
  let firstError = null;
  let bytes = 0;
  let walks = 0;
  const record = (t0, status, body) => {
    const dt = performance.now() - t0;
    if (requests === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[requests++] = dt;
    bytes += body.length;
    if (status !== 200) {
      errors++;
      firstError ??= `${status} ${body.toString('utf8').slice(0, 200)}`;
    }
  };
  const start = performance.now();
  const deadline = start + ms;
  const client = async (c) => {
    if (scenario.kind === 'paths') {
      const { paths, tokens, concurrency } = scenario;
      for (let k = 0; performance.now() < deadline; k++) {
        const t0 = performance.now();
        const r = await get(
          agent,
          origin,
          paths[(c + k * concurrency) % paths.length],
          tokens[c % tokens.length],
        );
        record(t0, r.status, r.body);
      }
    } else {
      const { tenants, token, limit, concurrency } = scenario;
      let t = c % tenants.length;
      let cursor = null;
      while (performance.now() < deadline) {
        const path = `/v1/runs?tenant=${tenants[t]}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
        const t0 = performance.now();
        const r = await get(agent, origin, path, token);
        record(t0, r.status, r.body);
        cursor = r.status === 200 ? JSON.parse(r.body.toString('utf8')).next : null;
        if (cursor === null) {
          if (r.status === 200) walks++;
          t = (t + concurrency) % tenants.length;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: scenario.concurrency }, (_, c) => client(c)));
  const wallMs = performance.now() - start;
  agent.destroy();
  return {
    requests,
    wallMs,
    errors,
    firstError,
    bytes,
    walks,
    latencies: latencies.slice(0, requests),
  };
}

parentPort.on('message', (msg) => {
  run(msg).then(
    (r) => parentPort.postMessage({ id: msg.id, ...r }, [r.latencies.buffer]),
    (err) => parentPort.postMessage({ id: msg.id, failed: String(err?.stack ?? err) }),
  );
});
