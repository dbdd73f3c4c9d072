/**
 * The host process of the deferred-rows crash test (deferred-rows.test.ts): starts a real Host
 * (in-thread sandbox, real SQLite) and SIGKILLs itself the moment its first plugin is armed,
 * while the plugin's declared rows are still deferred (not yet on disk). Prints
 * "armed <deferred rows>" first (synchronously, so the line is out before the kill).
 *
 * Usage: node --import tsx deferred-crash-host.ts <config.json>
 */
import { readFileSync, writeSync } from 'node:fs';
import { parseHostConfig } from '../../src/config/host-config.ts';
import { Host } from '../../src/host/host.ts';

const [file] = process.argv.slice(2);
if (!file) throw new Error('usage: deferred-crash-host.ts <config.json>');
const config = parseHostConfig(JSON.parse(readFileSync(file, 'utf8')), file, process.cwd());
const host = new Host(config);
host.events.on('plugin:loaded', () => {
  const store = host.store as { readonly deferredRows?: number };
  writeSync(1, `armed ${store.deferredRows ?? 0} ${host.scheduler.queued}\n`);
  process.kill(process.pid, 'SIGKILL');
});
await host.start();
writeSync(1, 'started without a kill\n');
process.exit(3);
