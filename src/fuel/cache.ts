/**
 * Instrument-and-compile with a cache. The key is the sha256 of the original bytes, the
 * instrumenter version, the cost table's version and digest, and every option that changes
 * the output (memory cap, depth limit, initial fuel, placement), so a changed cost table or
 * instrumenter never serves stale code. Entries hold the instrumented bytes and the compiled
 * `WebAssembly.Module` (which can be posted to worker threads). Concurrent requests for the
 * same key share one compilation; a failed compilation is not cached.
 */
import { createHash } from 'node:crypto';
import { compileCostTable, DEFAULT_COST_TABLE } from './cost-table.ts';
import {
  DEFAULT_INITIAL_FUEL,
  DEFAULT_MAX_CALL_DEPTH,
  instrument,
  INSTRUMENTER_VERSION,
} from './instrument.ts';
import type { InstrumentOptions, InstrumentStats } from './instrument.ts';

export interface MeteredModule {
  readonly module: WebAssembly.Module;
  /** sha256 (hex) of the original bytes. */
  readonly hash: string;
  /** The full cache key. */
  readonly key: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly stats: InstrumentStats;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function cacheKey(hash: string, opts: InstrumentOptions): string {
  const table = opts.costTable ?? DEFAULT_COST_TABLE;
  const costs = compileCostTable(table);
  return [
    hash,
    INSTRUMENTER_VERSION,
    table.version,
    costs.digest.slice(0, 16),
    `mem=${opts.memoryMaxPages ?? '-'}`,
    `depth=${opts.maxCallDepth ?? DEFAULT_MAX_CALL_DEPTH}`,
    `init=${BigInt(opts.initialFuel ?? DEFAULT_INITIAL_FUEL)}`,
    `place=${opts.placement ?? 'metered-blocks'}`,
    `wait=${opts.allowAtomicWait === true ? 1 : 0}`,
  ].join('|');
}

export class MeteredModuleCache {
  private readonly entries = new Map<string, Promise<MeteredModule>>();

  constructor(private readonly maxEntries = 64) {}

  get size(): number {
    return this.entries.size;
  }

  compile(bytes: Uint8Array, opts: InstrumentOptions = {}): Promise<MeteredModule> {
    const hash = sha256Hex(bytes);
    const key = cacheKey(hash, opts);
    const hit = this.entries.get(key);
    if (hit) {
      // Refresh recency (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const pending = (async (): Promise<MeteredModule> => {
      const { bytes: out, stats } = instrument(bytes, opts);
      const module = await WebAssembly.compile(out);
      return { module, hash, key, bytes: out, stats };
    })();
    this.entries.set(key, pending);
    pending.catch(() => {
      if (this.entries.get(key) === pending) this.entries.delete(key);
    });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return pending;
  }

  clear(): void {
    this.entries.clear();
  }
}

const shared = new MeteredModuleCache();

/** Instruments and compiles `bytes` through the process-wide cache. */
export function compileMetered(
  bytes: Uint8Array,
  opts: InstrumentOptions = {},
): Promise<MeteredModule> {
  return shared.compile(bytes, opts);
}
