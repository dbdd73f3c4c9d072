/**
 * The host's plugin state (Extism variables; src/sandbox/plugin-vars.ts has the design): the
 * authoritative `PluginVars` of each loaded plugin, read from the store when the plugin loads
 * and written back whole on every change.
 *
 * - A change (a call's changes applied by the sandbox, an operator's clear) is written at once,
 *   as the plugin's `plugin_state` row, before the call settles: on the write-behind stores it
 *   goes out with the same flush as the run's outcome or an earlier one, so an outcome that is
 *   durable implies its state is. A write that throws is reported; the state in memory stays and
 *   the next change writes it whole again.
 * - A reload keeps the plugin's `PluginVars` (its bound follows the new version's `varBytes`; a
 *   state over a lowered bound is kept, and only changes that shrink it fit until it is under).
 *   An unload forgets it in memory (the row stays); the next load reads it again.
 * - Keyed by the plugin id the host serves (`<tenant>/<name>`; a replica shard's copies, on
 *   `<tenant>@<host>/<name>`, each have their own).
 */
import type { Store } from '../store/types.ts';
import { decodeStoredVars, encodeStoredVars, PluginVars } from '../sandbox/plugin-vars.ts';

export interface PluginStateDeps {
  readonly store: Store;
  readonly now: () => number;
  readonly onError: (message: string, cause: unknown) => void;
}

/** A variable as operators see it. */
export interface StateEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** What it counts (key bytes + value bytes + VAR_OVERHEAD_BYTES). */
  readonly size: number;
}

export class PluginStateBook {
  readonly #deps: PluginStateDeps;
  readonly #vars = new Map<string, { vars: PluginVars; tenant: string }>();

  constructor(deps: PluginStateDeps) {
    this.#deps = deps;
  }

  /** The plugin's variables (read from the store the first time), bounded by `limit`. */
  open(pluginId: string, tenant: string, limit: number): PluginVars {
    const held = this.#vars.get(pluginId);
    if (held) {
      held.vars.limit = limit;
      return held.vars;
    }
    const vars = new PluginVars(limit);
    const rec = this.#deps.store.getPluginState(pluginId);
    if (rec) vars.replace({ version: 0, entries: decodeStoredVars(rec.vars) });
    vars.onChange = (v) => this.#persist(pluginId, tenant, v);
    this.#vars.set(pluginId, { vars, tenant });
    return vars;
  }

  get(pluginId: string): PluginVars | undefined {
    return this.#vars.get(pluginId)?.vars;
  }

  /** The plugin is no longer served here: its state stays in the store only. */
  forget(pluginId: string): void {
    const held = this.#vars.get(pluginId);
    if (held) held.vars.onChange = null;
    this.#vars.delete(pluginId);
  }

  /**
   * Clears one variable (or all) of a plugin: in memory when it is loaded here (the workers'
   * copies are refreshed with their next call), in the store either way. The number of
   * variables removed, or null when the store has no state for a plugin not loaded here.
   */
  clear(pluginId: string, tenant: string, key: string | null): number | null {
    const held = this.#vars.get(pluginId);
    if (held) {
      const before = held.vars.size;
      if (key === null) held.vars.clear();
      else held.vars.clear(key);
      return before - held.vars.size;
    }
    const rec = this.#deps.store.getPluginState(pluginId);
    if (!rec) return null;
    const vars = new PluginVars(Number.MAX_SAFE_INTEGER);
    vars.replace({ version: 0, entries: decodeStoredVars(rec.vars) });
    const before = vars.size;
    if (key === null) vars.clear();
    else vars.clear(key);
    if (vars.size !== before) this.#write(pluginId, tenant, vars);
    return before - vars.size;
  }

  #persist(pluginId: string, tenant: string, vars: PluginVars): void {
    try {
      this.#write(pluginId, tenant, vars);
    } catch (err) {
      this.#deps.onError(
        `plugin ${pluginId}: writing its state failed (kept in memory; written again with its next change): ${String(err)}`,
        err,
      );
    }
  }

  #write(pluginId: string, tenant: string, vars: PluginVars): void {
    this.#deps.store.putPluginState({
      pluginId,
      tenant,
      vars: encodeStoredVars(vars),
      bytes: vars.bytes,
      updatedAt: this.#deps.now(),
    });
  }
}

/** A stored state's variables, as operators see them (sorted by key). */
export function stateEntries(varsText: string): StateEntry[] {
  const vars = new PluginVars(Number.MAX_SAFE_INTEGER);
  vars.replace({ version: 0, entries: decodeStoredVars(varsText) });
  return [...vars.entries()]
    .map(([key, e]) => ({ key, value: e.value, size: e.size }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
