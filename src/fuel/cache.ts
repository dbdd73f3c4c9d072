/**
 * The key under which an instrumented, compiled guest is cached (src/sandbox/guest-module.ts):
 * the sha256 of the original bytes, the instrumenter version, the cost table's version and
 * digest, and every option that changes the output (memory and table caps, depth limit, initial fuel,
 * placement), so a changed cost table or instrumenter never serves stale code.
 */
import { createHash } from 'node:crypto';
import { compileCostTable, DEFAULT_COST_TABLE } from './cost-table.ts';
import { DEFAULT_INITIAL_FUEL, DEFAULT_MAX_CALL_DEPTH, INSTRUMENTER_VERSION } from './abi.ts';
import type { InstrumentOptions } from './instrument.ts';

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
    `tab=${opts.tableMaxElements ?? '-'}`,
    `depth=${opts.maxCallDepth ?? DEFAULT_MAX_CALL_DEPTH}`,
    `init=${BigInt(opts.initialFuel ?? DEFAULT_INITIAL_FUEL)}`,
    `place=${opts.placement ?? 'metered-blocks'}`,
    `wait=${opts.allowAtomicWait === true ? 1 : 0}`,
  ].join('|');
}
