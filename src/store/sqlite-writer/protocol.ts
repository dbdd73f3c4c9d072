/**
 * Messages between the threaded SQLite store (threaded-store.ts, the scheduler's thread) and its
 * writer thread (writer-main.ts), which owns the database file's only connection of this host.
 *
 * A request carries `sync: true` when the caller blocks on it (`Atomics.wait` on `signal`): the
 * writer answers on the sync port and then wakes it. Other requests are answered on the
 * worker's own port, matched by `id`.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PruneSelection } from '../retention.ts';
import type { LeaseClaim, LeaseResult, HostLease, OperatorAction, RunPruneStep } from '../types.ts';

export interface WriterData {
  readonly path: string;
  readonly maxBytes: number | null;
  /** One Int32 the writer sets to 1 (and notifies) once a sync answer is on `port`. */
  readonly signal: SharedArrayBuffer;
  readonly port: MessagePort;
  /** The writer thread's nice value (`ThreadedSqliteStoreOptions.writerNice`). */
  readonly nice: number;
}

/**
 * One table's rows in a write: its name and columns (the key first), and the rows as one JSON
 * array of arrays in column order, as the mirror's SQLite wrote it.
 */
export interface TableJson {
  readonly table: string;
  readonly columns: readonly string[];
  /**
   * Rows new to the file (`Dirty.runsNew`): inserted without looking for them first (a row that
   * is there after all, which the host does not expect, takes the image instead).
   */
  readonly inserted?: boolean;
  /** The columns an existing row's upsert sets (`TableSpec.updatable`); absent: all. */
  readonly updatable?: readonly string[];
  /**
   * The rows carry only the key and `updatable` (`columns` says so): updates of rows the file
   * has. A row it lacks (the host does not expect one) fails the write, and the host sends whole
   * images until a write succeeds. Absent: whole rows, inserted when the update finds none.
   */
  readonly partial?: boolean;
  readonly json: string;
}

/** A flush's rows, committed with the parts sent before it (if any). */
export interface WriteRequest {
  readonly op: 'write';
  /**
   * Sent while an earlier write was in flight: refused if the writer's last write failed (its
   * rows come back in a later write), so a write that commits implies every earlier one did
   * (`WriteBehindStore.flushDepth`). A write sent in parts is chained as its first part was.
   */
  readonly chained: boolean;
  readonly tables: readonly TableJson[];
  /** Plugins whose contracts are replaced: their rows are deleted first. */
  readonly contractPlugins: readonly string[];
  /** The live-schedule counts of the tenants the batch's schedules belong to (JSON rows). */
  readonly counts: string | null;
  /** Runs deleted by retention (finished ones only), after the rows are written. */
  readonly deletedRuns: readonly number[];
}

export type WriterRequest =
  | { readonly op: 'open' }
  | WriteRequest
  /**
   * A part of the next write, applied in a transaction the writer leaves open until that write
   * (`WriteBehindStore.streamRows`). Not answered: a part that fails fails the write.
   */
  | (Omit<WriteRequest, 'op'> & { readonly op: 'part' })
  /** Rolls back the parts applied since the last write (they are sent again). Not answered. */
  | { readonly op: 'abort' }
  | { readonly op: 'acquire'; readonly claim: LeaseClaim }
  | { readonly op: 'renew'; readonly owner: string; readonly now: number }
  | { readonly op: 'release'; readonly owner: string }
  | { readonly op: 'readLease' }
  | {
      readonly op: 'enqueue';
      readonly key: string;
      readonly action: OperatorAction;
      readonly note: string | null;
      readonly now: number;
    }
  | { readonly op: 'commands'; readonly after: number }
  /** Takes not-yet-applied commands out (they were enqueued in a transaction that threw). */
  | { readonly op: 'dequeue'; readonly ids: readonly number[] }
  | { readonly op: 'maxBytes'; readonly bytes: number | null }
  /** Retention's choice for one step, read from the file's whole history (no write). */
  | { readonly op: 'prunable'; readonly step: RunPruneStep }
  | { readonly op: 'close' };

export type Envelope = WriterRequest & { readonly id: number; readonly sync: boolean };

/** What each request answers. */
export interface WriterAnswers {
  open: null;
  write: null;
  part: never;
  abort: never;
  /** `changed`: another connection committed since the store was opened (or last acquired). */
  acquire: { readonly result: LeaseResult; readonly changed: boolean };
  renew: boolean;
  release: null;
  readLease: HostLease | null;
  enqueue: number;
  /** Pending operator commands with an id above `after`, as rows. */
  commands: Record<string, unknown>[];
  dequeue: null;
  maxBytes: null;
  prunable: PruneSelection;
  close: null;
}

export type Answer =
  | { readonly id: number; readonly ok: unknown }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } };
