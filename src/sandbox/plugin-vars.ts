/**
 * Plugin state: a plugin's Extism variables (`var_get` / `var_set`), one set per plugin, kept by
 * the host across calls, instances, workers, reloads and restarts (docs/guest-abi.md, "Plugin
 * state").
 *
 * Who holds what:
 * - The main thread holds the authoritative `PluginVars` of each loaded plugin (the host's
 *   `PluginStateBook`, src/host/plugin-state.ts, loads it from the store and writes it back on
 *   every change). A call names it in `CallRequest.vars`.
 * - The kernel (kernel/extism-kernel.ts) reads a call's variables from a `PluginVars` and keeps
 *   the call's own changes apart (a `VarsDelta`); the sandbox commits them only when the call
 *   succeeds. A call that fails (a trap, out of fuel, a refused `var_set`, a timeout, a crash)
 *   keeps none of its changes, the earlier sets of the same call included: a run's state changes
 *   are all or nothing, like its cursor. (Extism itself keeps the sets made before a trap; a
 *   timed-out or crashed worker could not report them anyway, so "all or nothing" is the only
 *   rule that holds for every way a call can end.)
 * - A pool worker keeps its own copy per plugin, labelled with the main thread's version it
 *   corresponds to; the pool sends a snapshot with a call only when the worker's copy is not
 *   the current version (worker-pool-sandbox.ts tracks that per worker), and the worker applies
 *   a successful call's changes to its copy at once, so the calls it runs next see them. The
 *   outcome carries the changes back (`CallOutcome.vars`); the pool applies them to the
 *   authoritative copy before the call settles.
 *
 * Versions: every change of a `PluginVars` bumps `version` by one. A worker's copy at label L
 * that commits a change becomes L + 1; the pool, applying that change, knows the worker's copy
 * is current exactly when the authoritative copy was at L too (nothing else changed it
 * meanwhile). Otherwise the worker is stale and gets a snapshot with its next call.
 *
 * Concurrency: calls of one plugin running at once on different workers each see the state as
 * of their worker's copy; their changes are applied in the order the calls end, key by key, the
 * last writer winning per key. Runs of one schedule never overlap, so each sees the one before.
 *
 * Bounds: keys + values + VAR_OVERHEAD_BYTES per variable, within the plugin's `varBytes`. The
 * kernel refuses a `var_set` that would pass it (the call fails `memory_limit` / `var_limit`);
 * applying changes here checks the bound again (two workers' changes may each fit and not
 * together): changes that do not fit are refused whole, and the call that made them fails the
 * same way.
 */

/** Counted per variable on top of its key and value, so `varBytes` also bounds the key count. */
export const VAR_OVERHEAD_BYTES = 64;

const utf8 = new TextEncoder();

export interface VarEntry {
  readonly value: Uint8Array;
  /** Key bytes + value bytes + VAR_OVERHEAD_BYTES. */
  readonly size: number;
}

/** The changes of one call, in the order made (a later change of a key replaces an earlier). */
export interface VarsDelta {
  /** The version of the copy the call ran on. */
  readonly base: number;
  /** Each key changed and its new value (null: deleted). */
  readonly changes: readonly (readonly [key: string, value: Uint8Array | null])[];
}

/** A whole copy, sent to a worker whose copy is stale. */
export interface VarsSnapshot {
  readonly version: number;
  readonly entries: readonly (readonly [key: string, value: Uint8Array])[];
}

/** The bytes a variable counts. */
export function varSize(key: string, value: Uint8Array): number {
  return utf8.encode(key).length + value.length + VAR_OVERHEAD_BYTES;
}

export class PluginVars {
  #entries = new Map<string, VarEntry>();
  #bytes = 0;
  #version = 0;
  /** The bound (`limits.varBytes`); a reload may change it. */
  limit: number;
  /** Told of every change (the host persists the state). */
  onChange: ((vars: PluginVars) => void) | null = null;

  constructor(limit: number) {
    this.limit = limit;
  }

  get version(): number {
    return this.#version;
  }

  /** Bytes held (keys, values and per-variable overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): VarEntry | undefined {
    return this.#entries.get(key);
  }

  entries(): IterableIterator<[string, VarEntry]> {
    return this.#entries.entries();
  }

  snapshot(): VarsSnapshot {
    const entries: [string, Uint8Array][] = [];
    for (const [k, e] of this.#entries) entries.push([k, e.value]);
    return { version: this.#version, entries };
  }

  /** Replaces the whole copy (a worker's, from a snapshot; the host's, from the store). */
  replace(snapshot: VarsSnapshot): void {
    const m = new Map<string, VarEntry>();
    let bytes = 0;
    for (const [k, v] of snapshot.entries) {
      const size = varSize(k, v);
      m.set(k, { value: v, size });
      bytes += size;
    }
    this.#entries = m;
    this.#bytes = bytes;
    this.#version = snapshot.version;
  }

  /**
   * Applies a call's changes (key by key, last writer wins). False, changing nothing, when the
   * result would pass `limit` (see the head comment). Bumps the version when it changes.
   */
  apply(changes: VarsDelta['changes']): boolean {
    if (changes.length === 0) return true;
    const net = new Map<string, Uint8Array | null>();
    for (const [k, v] of changes) net.set(k, v);
    let bytes = this.#bytes;
    const sized: [string, VarEntry | null][] = [];
    for (const [k, v] of net) {
      const entry = v === null ? null : { value: v, size: varSize(k, v) };
      sized.push([k, entry]);
      bytes += (entry?.size ?? 0) - (this.#entries.get(k)?.size ?? 0);
    }
    if (bytes > this.limit) return false;
    for (const [k, e] of sized) {
      if (e === null) this.#entries.delete(k);
      else this.#entries.set(k, e);
    }
    this.#bytes = bytes;
    this.#version++;
    this.onChange?.(this);
    return true;
  }

  /**
   * Moves the version on by 2 without a change: a worker's copy kept changes this copy refused
   * (pool/vars-sync.ts), and no label that copy takes later may equal this version.
   */
  skip(): void {
    this.#version += 2;
  }

  /** Removes one variable (or all): the operator's `state clear`. True if anything changed. */
  clear(key?: string): boolean {
    if (key === undefined) {
      if (this.#entries.size === 0) return false;
      this.#entries = new Map();
      this.#bytes = 0;
    } else {
      const e = this.#entries.get(key);
      if (e === undefined) return false;
      this.#entries.delete(key);
      this.#bytes -= e.size;
    }
    this.#version++;
    this.onChange?.(this);
    return true;
  }
}

/** A delta as JSON-able data (values in base64), for the pool's outcome meta (result-ring.ts). */
export function deltaToJson(d: VarsDelta): { base: number; changes: [string, string | null][] } {
  return {
    base: d.base,
    changes: d.changes.map(([k, v]) => [k, v === null ? null : Buffer.from(v).toString('base64')]),
  };
}

/** What `deltaToJson` wrote, back (throws on anything else). */
export function deltaFromJson(j: unknown): VarsDelta {
  const o = j as { base?: unknown; changes?: unknown };
  if (!o || typeof o.base !== 'number' || !Array.isArray(o.changes))
    throw new Error('bad variables delta');
  const changes: [string, Uint8Array | null][] = [];
  for (const c of o.changes as unknown[]) {
    if (
      !Array.isArray(c) ||
      typeof c[0] !== 'string' ||
      (c[1] !== null && typeof c[1] !== 'string')
    )
      throw new Error('bad variables change');
    changes.push([
      c[0],
      c[1] === null ? null : new Uint8Array(Buffer.from(c[1] as string, 'base64')),
    ]);
  }
  return { base: o.base, changes };
}

/**
 * A plugin's variables as the store keeps them (`plugin_state.vars`): JSON, an array of
 * `[key, base64 value]` pairs. One row per plugin, written whole: see docs/store.md.
 */
export function encodeStoredVars(vars: PluginVars): string {
  const pairs: [string, string][] = [];
  for (const [k, e] of vars.entries()) pairs.push([k, Buffer.from(e.value).toString('base64')]);
  return JSON.stringify(pairs);
}

/** What `encodeStoredVars` wrote, as entries (a malformed text reads as none). */
export function decodeStoredVars(text: string): [string, Uint8Array][] {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(j)) return [];
  const out: [string, Uint8Array][] = [];
  for (const p of j as unknown[])
    if (Array.isArray(p) && typeof p[0] === 'string' && typeof p[1] === 'string')
      out.push([p[0], new Uint8Array(Buffer.from(p[1], 'base64'))]);
  return out;
}
