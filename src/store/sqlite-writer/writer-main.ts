/**
 * The writer thread of the threaded SQLite store (threaded-store.ts): it owns this host's
 * connection to the database file and does every file write, so that a write or sync that waits
 * behind other I/O (on a loaded disk: tens to hundreds of milliseconds) stalls this thread, not
 * the scheduler's. It applies each flush in one transaction (a statement per row, parsed from
 * each table's JSON text; a large flush comes in parts, applied as they come in a
 * transaction left open until its last part; flushes that queued up while it wrote commit
 * together, `groupWrites`), and answers the rare
 * synchronous operations (the lease, enqueueing a command) and the command poll.
 *
 * Images are written with `INSERT OR REPLACE` for schedules: a replace fires no trigger (SQLite
 * fires delete triggers on a replace only with `recursive_triggers`), so neither the
 * incarnation trigger nor the live counts move on their own; the counts are copied from the
 * mirror, which keeps them exactly (`counts` in the request). Runs go row by row: new ones as
 * inserts (`insertRows`), changed ones as updates (`writeRows`); other tables have no triggers
 * and take an upsert.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { SqliteStore } from '../sqlite-store.ts';
import { HourglassError } from '../../errors.ts';
import { lowerThreadPriority } from '../../thread-priority.ts';
import { storeError } from '../sqlite-errors.ts';
import type {
  Answer,
  Envelope,
  TableJson,
  WriteRequest,
  WriterAnswers,
  WriterData,
  WriterRequest,
} from './protocol.ts';

type PartRequest = Extract<WriterRequest, { op: 'part' }>;

const data = workerData as WriterData;
lowerThreadPriority(data.nice); // threaded-store.ts, `writerNice`
const port = parentPort as NonNullable<typeof parentPort>;
const signal = new Int32Array(data.signal);
let store: SqliteStore | null = null;
let openError: unknown = null;
try {
  store = new SqliteStore(data.path, { maxBytes: data.maxBytes });
} catch (err) {
  openError = err;
}
const db: Database.Database | null = store?.mirrorDatabase ?? null;
/**
 * The writer's page cache: SQLite's own default (2 MB), not better-sqlite3's 16 MB. The host
 * reads from its mirror, so this connection's cache only spares the writer's updates a read
 * from the OS's cache; at 16 MB it was most of the writer's memory (user RSS with 100k
 * schedules: docs/store.md).
 */
db?.pragma('cache_size = -2000');
/** `PRAGMA data_version` when the host last read the file: changes when another connection commits. */
let seenVersion = db ? dataVersion(db) : 0;

function dataVersion(d: Database.Database): number {
  return d.pragma('data_version', { simple: true }) as number;
}

const statements = new Map<string, Database.Statement>();
function statement(sql: string): Database.Statement {
  let st = statements.get(sql);
  if (!st) statements.set(sql, (st = (db as Database.Database).prepare(sql)));
  return st;
}

/**
 * Writes a table's JSON rows (`TableJson`) whole, a statement per row (`INSERT OR REPLACE` for
 * schedules and contracts, an upsert otherwise). Parsed here rather than by SQLite's `json_each`:
 * SQLite copied each flush's text and parsed it in allocations of hundreds of KB, which left
 * this thread's allocator holding 20-60 MB after a plugin's declarations were written.
 */
function writeWhole(t: TableJson): void {
  const st = statement(
    t.table === 'schedules' || t.table === 'job_contracts'
      ? `INSERT OR REPLACE INTO ${t.table} (${t.columns.join(', ')}) ${valuesSql(t)}`
      : upsertSql(t),
  );
  for (const row of JSON.parse(t.json) as unknown[][]) st.run(row);
}

/** `VALUES (?, …)`: one parameter per column of `t`. */
function valuesSql(t: TableJson): string {
  return `VALUES (${t.columns.map(() => '?').join(', ')})`;
}

/** An insert of a row of `t` by parameters. */
function insertSql(t: TableJson): string {
  return `INSERT INTO ${t.table} (${t.columns.join(', ')}) ${valuesSql(t)}`;
}

/** A row of `t` by parameters: inserted, or its image replaces every column but the key. */
function upsertSql(t: TableJson): string {
  const set = t.columns
    .slice(1)
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  return `${insertSql(t)}
          ON CONFLICT (${t.columns[0] as string}) DO UPDATE SET ${set}`;
}

/**
 * Writes the JSON rows of a table whose rows change after their insert (`updatable`: a run's
 * start and its outcome) row by row: an update of those columns by key, and the insert when it
 * changed no row (a new row; rows sent `partial` cannot be inserted: the write fails). A run
 * costs about half what one JSON upsert costs (13 µs against 28 µs for a start and an outcome,
 * 8 runs a transaction): the upsert tries the insert first, and reads each row's JSON again for
 * every column.
 */
function writeRows(t: TableJson, updatable: readonly string[]): void {
  const key = t.columns[0] as string;
  const update = statement(
    `UPDATE ${t.table} SET ${updatable.map((c) => `${c} = ?`).join(', ')} WHERE ${key} = ?`,
  );
  const at = updatable.map((c) => t.columns.indexOf(c));
  const args: unknown[] = new Array(at.length + 1);
  for (const row of JSON.parse(t.json) as unknown[][]) {
    for (let i = 0; i < at.length; i++) args[i] = row[at[i] as number];
    args[at.length] = row[0];
    if (update.run(args).changes > 0) continue;
    if (t.partial)
      throw new HourglassError(
        'HG_STORE_WRITE',
        `${t.table} row ${String(row[0])} is not in the file; the host writes whole rows again`,
      );
    statement(insertSql(t)).run(row);
  }
}

/**
 * Writes rows new to the file (`TableJson.inserted`): an insert each, 30% cheaper than the
 * update that `writeRows` tries first. A row already there (which the host does not expect: it
 * inserted the row since its last write) takes the image instead.
 */
function insertRows(t: TableJson): void {
  const insert = statement(insertSql(t));
  for (const row of JSON.parse(t.json) as unknown[][]) {
    try {
      insert.run(row);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw err;
      statement(upsertSql(t)).run(row);
    }
  }
}

/** The last write failed: a chained write is refused until one that is not succeeds. */
let lastWriteFailed = false;
/** A transaction holds the parts of the next write (`part`), until that write or an abort. */
let partsOpen = false;
/** Why a part of the next write failed (its transaction was rolled back): that write fails. */
let partsError: unknown = null;

function refuseChained(req: WriteRequest | PartRequest): void {
  if (req.chained && lastWriteFailed)
    throw new HourglassError(
      'HG_STORE_WRITE',
      `store '${data.path}': a flush failed, and this one was sent behind it (both are written again)`,
    );
}

/** Writes a flush's rows (or a part's) inside the transaction open on `db`. */
function apply(req: WriteRequest | PartRequest): void {
  if (req.contractPlugins.length > 0)
    statement('DELETE FROM job_contracts WHERE plugin_id IN (SELECT value FROM json_each(?))').run(
      JSON.stringify(req.contractPlugins),
    );
  for (const t of req.tables)
    if (t.inserted) insertRows(t);
    else if (t.updatable) writeRows(t, t.updatable);
    else writeWhole(t);
  if (req.deletedRuns.length > 0) (store as SqliteStore).deleteRuns(req.deletedRuns);
  if (req.counts !== null)
    statement(
      `INSERT OR REPLACE INTO schedule_counts (tenant, plugin_id, live)
       SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)`,
    ).run(req.counts);
}

function rollbackParts(): void {
  partsOpen = false;
  const d = db as Database.Database;
  if (d.inTransaction) d.exec('ROLLBACK');
}

/** Applies a part of the next write in the transaction the first part opened. */
function part(req: PartRequest): void {
  if (partsError !== null) return;
  try {
    if (!partsOpen) {
      refuseChained(req);
      (db as Database.Database).exec('BEGIN');
      partsOpen = true;
    }
    apply(req);
  } catch (err) {
    partsError = err;
    rollbackParts();
  }
}

/** Undoes the parts applied since the last write (the host sends their rows again). */
function abort(): void {
  if (partsOpen) rollbackParts();
  partsError = null;
}

/**
 * Writes flushes in one transaction: the one the first flush's parts opened, if any, committed
 * now. Several flushes are the writes that queued up while this thread wrote the previous
 * ones (`groupWrites`): one commit for all of them writes each page they share once, to the WAL
 * and at the next checkpoint. They fail together (each answers the failure, and the host keeps
 * all their rows dirty and sends them again), as flushes chained behind a failed one do anyway.
 */
function write(reqs: readonly WriteRequest[]): null {
  if (partsError !== null) {
    const err = partsError;
    partsError = null;
    lastWriteFailed = true;
    throw err;
  }
  if (!partsOpen) refuseChained(reqs[0] as WriteRequest);
  lastWriteFailed = true;
  const d = db as Database.Database;
  if (partsOpen) {
    try {
      for (const req of reqs) apply(req);
      d.exec('COMMIT');
    } finally {
      rollbackParts(); // after a commit: nothing is open, only the flag is cleared
    }
  } else
    d.transaction(() => {
      for (const req of reqs) apply(req);
    })();
  lastWriteFailed = false;
  return null;
}

type WriteEnvelope = Extract<Envelope, { op: 'write' }>;

/**
 * The writes queued behind `first` on this thread's port, taken off it up to the first message
 * that is not one (returned as `next`, handled after them): parts belong to a later write and
 * must not commit with these.
 */
function groupWrites(first: WriteEnvelope): { writes: WriteEnvelope[]; next: Envelope | null } {
  const writes = [first];
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (m === undefined) return { writes, next: null };
    const e = m.message as Envelope;
    if (e.op !== 'write' || e.sync) return { writes, next: e };
    writes.push(e);
  }
}

function handle(req: WriterRequest): WriterAnswers[WriterRequest['op']] {
  if (req.op === 'open') {
    if (openError) throw openError;
    return null;
  }
  const s = store as SqliteStore;
  const d = db as Database.Database;
  // The host abandons a write's parts before anything else (`abandonParts`); never run another
  // operation inside their transaction.
  if (req.op !== 'write') abort();
  switch (req.op) {
    case 'write':
      return write([req]);
    case 'part':
    case 'abort':
      throw new Error(`'${req.op}' is not answered`);
    case 'acquire': {
      const result = s.acquireLease(req.claim);
      const v = dataVersion(d);
      const changed = v !== seenVersion;
      seenVersion = v;
      return { result, changed };
    }
    case 'renew':
      return s.renewLease(req.owner, req.now);
    case 'release':
      s.releaseLease(req.owner);
      return null;
    case 'readLease':
      return s.readLease() ?? null;
    case 'enqueue':
      return s.enqueueCommand(req.key, req.action, req.note, req.now);
    case 'commands':
      return statement(
        'SELECT * FROM operator_commands WHERE applied_at IS NULL AND id > ? ORDER BY id',
      ).all(req.after) as Record<string, unknown>[];
    case 'dequeue':
      statement(
        'DELETE FROM operator_commands WHERE applied_at IS NULL AND id IN (SELECT value FROM json_each(?))',
      ).run(JSON.stringify(req.ids));
      return null;
    case 'maxBytes':
      s.setMaxBytes(req.bytes);
      return null;
    case 'prunable':
      return s.selectPrunable(req.step);
    case 'close':
      store = null;
      s.close();
      return null;
  }
}

function answer(m: Envelope, a: Answer): void {
  if (m.sync) {
    data.port.postMessage(a);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  } else {
    port.postMessage(a);
  }
}

function failure(m: Envelope, err: unknown): Answer {
  const e = storeError(err, data.path, m.op === 'write' ? 'a flush' : m.op, m.op !== 'readLease');
  return { id: m.id, error: { code: e.code, message: e.message } };
}

function receive(m: Envelope): void {
  if (m.op === 'part' || m.op === 'abort') {
    if (store === null) return; // the write that ends them fails
    if (m.op === 'part') part(m);
    else abort();
    return;
  }
  if (m.op === 'write' && !m.sync && store !== null) {
    const { writes, next } = groupWrites(m);
    let failed: unknown = null;
    try {
      write(writes);
    } catch (err) {
      failed = err;
    }
    for (const w of writes)
      answer(w, failed === null ? { id: w.id, ok: null } : failure(w, failed));
    if (next !== null) receive(next);
    return;
  }
  let a: Answer;
  try {
    if (store === null && m.op !== 'open' && openError === null)
      throw new Error('the store is closed');
    a = { id: m.id, ok: handle(m) };
  } catch (err) {
    a = failure(m, err);
  }
  answer(m, a);
}

port.on('message', receive);
