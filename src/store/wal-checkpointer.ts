/**
 * WAL checkpoints off the host's thread. SQLite's automatic checkpoint runs inside the commit
 * that pushes the WAL past 1,000 pages: that commit copies the WAL into the database and syncs
 * it, 4–30 ms on the event loop (measured: commit p50 7 µs, p99.9 4.4 ms, max 11 ms at 30k
 * commits; fires queued behind it are that late). With a checkpointer, a worker thread with a
 * connection of its own runs a PASSIVE checkpoint every `everyMs` (PASSIVE never blocks the writer nor waits for it), and
 * again at once while commits made during a pass added frames: the WAL restarts from its
 * beginning only when the writer begins a transaction while the whole log is checkpointed
 * (measured: with one pass per tick under steady commits, that never happened and the WAL grew
 * to 785 MB; with repeated passes it stays under 2 MB). As a bound if it still cannot catch up,
 * the host's connection keeps an automatic checkpoint, at `BOUND_PAGES` instead of 1,000.
 *
 * The worker is an `eval` worker in CommonJS that requires better-sqlite3 by resolved path:
 * nothing to compile, and it runs the same under tsx and from `dist/`. It is unref'd (never
 * keeps the process up). A group-committing store (the host's) starts it when it opens, so the
 * thread is part of a host from its start (a host's thread count does not change as it runs)
 * and ends with `close()`; the CLI's stores do not group and start none. Durability does not change: a
 * commit is in the WAL either way, and a checkpoint that never ran is redone at the next open.
 * If the worker fails, the automatic checkpoint goes back to SQLite's default.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The host connection's automatic checkpoint while the worker runs (pages; 4 KiB each). */
export const BOUND_PAGES = 16_000;

const SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
const timer = setInterval(() => {
  try {
    // Until a pass finds no frame added since the previous one (a pass's "log" is the WAL's
    // length when it began, so log === checkpointed alone does not mean caught up).
    let prev = -1;
    for (let i = 0; i < 16; i++) {
      const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
      if (r.busy || r.log === prev) break;
      prev = r.log;
    }
  } catch {}
}, workerData.everyMs);
parentPort.once('message', () => {
  clearInterval(timer);
  try { db.close(); } catch {}
  parentPort.close();
});
parentPort.postMessage('ready');
`;

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

export class WalCheckpointer {
  readonly #worker: Worker;
  #closed = false;

  /**
   * `onReady`: the worker checkpoints (move the automatic checkpoint to `BOUND_PAGES`);
   * `onFailed`: it stopped (move it back to SQLite's default).
   */
  constructor(path: string, everyMs: number, onReady: () => void, onFailed: () => void) {
    this.#worker = new Worker(SOURCE, {
      eval: true,
      workerData: { module: BETTER_SQLITE3, path, everyMs },
    });
    this.#worker.unref();
    this.#worker.once('message', () => {
      if (!this.#closed) onReady();
    });
    const failed = () => {
      if (!this.#closed) onFailed();
      this.#closed = true;
    };
    this.#worker.once('error', failed);
    this.#worker.once('exit', failed);
  }

  /** Stops the worker (it closes its connection; nothing waits for it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.postMessage('close');
  }
}
