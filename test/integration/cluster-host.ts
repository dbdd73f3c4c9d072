/**
 * One host process of the cluster tests (cluster-chaos.test.ts): a real Host on a PostgreSQL
 * store, joined to the cluster through `openHost`, with the real worker pool. Prints JSON lines:
 * `{"ev":"ready","owner"}` once started, `{"ev":"adopted"|"dropped", …}` as its tenants change,
 * `{"ev":"error","message"}` for reported problems. SIGTERM stops it gracefully (exit 0).
 *
 * Usage: node --import tsx cluster-host.ts <config.json>
 */
import { loadHostConfig } from '../../src/config/host-config.ts';
import { openHost } from '../../src/cluster/open-host.ts';

const say = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ ...o, at: Date.now(), pid: process.pid })}\n`);
};

const config = loadHostConfig(process.argv[2] as string);
const opened = await openHost(config, {
  clusterEvents: {
    onAdopted: (e) => say({ ev: 'adopted', ...e }),
    onDropped: (e) => say({ ev: 'dropped', ...e }),
  },
});
opened.host.events.on('host:error', (e) => say({ ev: 'error', message: e.message }));
await opened.start();
say({ ev: 'ready', owner: opened.cluster?.owner });
const keepAlive = setInterval(() => undefined, 1 << 30);
process.once('SIGTERM', () => {
  void opened.stop(2_000).finally(() => {
    clearInterval(keepAlive);
    say({ ev: 'stopped' });
    process.exit(0);
  });
});
