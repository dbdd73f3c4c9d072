/**
 * The host process of the SIGKILL test (sigkill.test.ts): a real Host on the real clock and a
 * real SQLite store, or a one-host cluster on PostgreSQL (`openHost`), running the proxy guest
 * through the real in-thread sandbox with each run held for `HG_RUN_MS` (a stand-in for a slow guest, so ticks wait for the tenant's slot). Each
 * run's cursor counts the runs that recorded one: the guest returns the cursor it saw + 1.
 *
 * Usage: node --import tsx sigkill-host.ts <config.json> [stop-after-ms]
 * Prints "ready" once started (on PostgreSQL: once it owns every tenant, which is after the
 * killed host's leases expired); with stop-after-ms, stops gracefully after it and exits 0.
 */
import { readFileSync } from 'node:fs';
import { parseHostConfig } from '../../src/config/host-config.ts';
import { openHost } from '../../src/cluster/open-host.ts';
import { InThreadSandbox } from '../../src/sandbox/in-thread-sandbox.ts';
import type {
  CallOutcome,
  CallRequest,
  GuestInfo,
  GuestSpec,
  HostCallHandler,
  Sandbox,
} from '../../src/sandbox/types.ts';

const RUN_MS = Number(process.env.HG_RUN_MS ?? 600);

class SlowSandbox implements Sandbox {
  readonly #inner: InThreadSandbox;
  constructor(hostCall: HostCallHandler) {
    this.#inner = new InThreadSandbox({ hostCall });
  }
  load(spec: GuestSpec): Promise<GuestInfo> {
    return this.#inner.load(spec);
  }
  async call(pluginId: string, req: CallRequest): Promise<CallOutcome> {
    if (req.fn !== 'run') return this.#inner.call(pluginId, req);
    await new Promise((resolve) => setTimeout(resolve, RUN_MS));
    const ctx = JSON.parse(req.input ?? '{}') as { cursor: number | null };
    const input = JSON.stringify({ ...ctx, payload: { setCursor: (ctx.cursor ?? 0) + 1 } });
    return this.#inner.call(pluginId, { ...req, input });
  }
  unload(pluginId: string): Promise<void> {
    return this.#inner.unload(pluginId);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

const [file, stopAfter] = process.argv.slice(2);
if (!file) throw new Error('usage: sigkill-host.ts <config.json> [stop-after-ms]');
const config = parseHostConfig(JSON.parse(readFileSync(file, 'utf8')), file, process.cwd());
const opened = await openHost(config, { sandbox: (hc) => new SlowSandbox(hc) });
opened.host.events.on('host:error', (e) => process.stderr.write(`host:error ${e.message}\n`));
const started = await opened.start();
if (started.failed.length > 0) {
  process.stderr.write(`failed: ${JSON.stringify(started.failed)}\n`);
  process.exit(2);
}
// On PostgreSQL the tenant is this host's once the killed host's lease has expired.
while (opened.cluster && opened.cluster.owned.length < config.tenants.length)
  await new Promise((resolve) => setTimeout(resolve, 50));
process.stdout.write('ready\n');
setInterval(() => undefined, 1 << 30); // stay up until killed (or stopped below)
if (stopAfter !== undefined) {
  setTimeout(() => {
    void opened.stop().then(() => process.exit(0));
  }, Number(stopAfter));
}
