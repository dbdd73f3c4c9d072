/**
 * Host processes for the cluster tests (cluster-chaos.test.ts, every-host.test.ts): each runs
 * cluster-host.ts on a config file; its JSON event lines go to `log`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';

const CHILD = join(PROJECT_ROOT, 'test/integration/cluster-host.ts');

export interface Proc {
  child: ChildProcess;
  owner: string | null;
  ready: Promise<void>;
  exited: Promise<void>;
  errors: string[];
}

export function spawnHost(config: string, log: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, config], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = {
    child,
    owner: null,
    errors: [],
    ready: Promise.resolve(),
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
  p.ready = new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`host exited (${code ?? signal})`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      log.push(line);
      try {
        const e = JSON.parse(line) as { ev: string; owner?: string; message?: string };
        if (e.ev === 'ready') {
          p.owner = e.owner ?? null;
          resolve();
        }
        if (e.ev === 'error') p.errors.push(e.message ?? '');
      } catch {
        // not an event line
      }
    });
  });
  p.ready.catch(() => undefined);
  child.stderr?.on('data', (d: Buffer) => log.push(`stderr ${child.pid}: ${d.toString()}`));
  return p;
}
