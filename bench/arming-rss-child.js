// The arming bench's memory figures as users run the host (bench/arming.bench.ts starts this):
// plain `node` on the compiled dist/, no tsx, one host with the default worker pool.
//   node --expose-gc bench/arming-rss-child.js <config.json> <configDir>
// Prints one JSON line: the process's RSS with only the modules loaded (`rssModulesMb`), with
// the host started on no plugins (`rssIdleMb`: Node, modules, the pool's idle worker threads),
// and with every plugin of the config loaded and armed (`rssAfterStartMb`, after a full GC
// `rssAfterGcMb`); the main thread's heap then (`heapUsedMb`, `heapTotalMb`, `externalMb`),
// the pool's threads, and the estimates derived from them: per idle worker (`perWorkerIdleMb`)
// and the rest (`otherMb`); then the same host restarted on that store (`rssAfterRestartGcMb`,
// `heapAfterRestartGcMb`: records read from the rows, as at a user's every later start).
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { URL } from 'node:url';

const root = new URL('../dist/', import.meta.url);
const { Host, WorkerPoolSandbox } = await import(new URL('src/index.js', root).href);
const { parseHostConfig } = await import(new URL('src/config/host-config.js', root).href);
const { HOST_CALL_FUEL } = await import(new URL('host-functions/registry.js', root).href);

const [configPath, configDir] = process.argv.slice(2);
const raw = JSON.parse(readFileSync(configPath, 'utf8'));
const mb = (bytes) => bytes / 2 ** 20;
const gc = () => globalThis.gc?.();
const settle = () => new Promise((r) => setTimeout(r, 200));

async function started(tenants) {
  let pool = null;
  const config = parseHostConfig({ ...raw, tenants }, configPath, configDir);
  const host = new Host(config, {
    sandbox: (hostCall) =>
      (pool = new WorkerPoolSandbox({ hostCall, hostCallFuel: HOST_CALL_FUEL })),
  });
  const r = await host.start();
  if (r.failed.length > 0) throw new Error(`plugins failed: ${JSON.stringify(r.failed[0])}`);
  return { host, pool };
}

const keepAlive = setInterval(() => undefined, 1000);
gc();
const modules = process.memoryUsage();
// Idle: the same pool, started on no plugins (its workers boot when it is made).
let idle = await started([]);
await settle();
gc();
const idleMem = process.memoryUsage();
const idleThreads = idle.pool.threads;
await idle.host.stop(0);
idle = null;
await settle();

let full = await started(raw.tenants);
const rssAfterStartMb = mb(process.memoryUsage().rss);
gc();
const mem = process.memoryUsage();
const workers = full.pool.threads;
// RSS an idle worker thread adds: the idle host's growth beyond the main heap's growth.
const perWorkerIdleMb =
  mb(idleMem.rss - modules.rss - (idleMem.heapTotal - modules.heapTotal)) / idleThreads;
const out = {
  rssModulesMb: mb(modules.rss),
  rssIdleMb: mb(idleMem.rss),
  rssAfterStartMb,
  rssAfterGcMb: mb(mem.rss),
  heapUsedMb: mb(mem.heapUsed),
  heapTotalMb: mb(mem.heapTotal),
  externalMb: mb(mem.external),
  workers,
  perWorkerIdleMb,
  // The rest: what the workers hold beyond idle (compiled modules, heaps grown by discovery;
  // guest instances are dropped after it), SQLite's page cache,
  // buffers, and the main heap's share the modules already had.
  otherMb:
    mb(
      mem.rss -
        modules.rss -
        (mem.heapTotal - modules.heapTotal) -
        (mem.external - modules.external),
    ) -
    perWorkerIdleMb * workers,
  queued: full.host.scheduler.queued,
};
await full.host.stop(0);
full = null; // its scheduler's records must not count in the restart's figures
await settle();
// A restart on that store: the usual start of a user's host (records read from the rows).
const again = await started(raw.tenants);
gc();
out.rssAfterRestartGcMb = mb(process.memoryUsage().rss);
out.heapAfterRestartGcMb = mb(process.memoryUsage().heapUsed);
await again.host.stop(0);
clearInterval(keepAlive);
process.stdout.write(`${JSON.stringify(out)}\n`);
