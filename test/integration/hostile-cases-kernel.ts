/**
 * Hostile-corpus cases of the Extism kernel and tables (issue 9 items 2, 3, 4, 13 and the log
 * caps): each runs `guest-examples/wat/kernel-abuse.wat` in one of its modes (its Extism config
 * `mode`; the modes are listed at the top of the .wat) or a fixture of its own. The focused
 * tests are in extism-kernel.test.ts and fuel-limits.test.ts.
 */
import type { HostileCase } from './hostile-case.ts';

const abuse = (
  name: string,
  item: string,
  mode: string,
  status: string,
  reason: string,
  more: Partial<HostileCase> = {},
): HostileCase => ({
  name,
  item,
  guest: { wat: 'kernel-abuse' },
  config: { mode },
  expect: { trigger: 'k', status, reason },
  ...more,
});

export const CASES: readonly HostileCase[] = [
  // Item 2: variables are bounded per plugin (limits.varBytes, 64 KiB by default), across runs.
  abuse('var-set-bomb', '2', 'v', 'memory_limit', 'var_limit', {
    expect: { trigger: 'k', times: 3, status: 'memory_limit', reason: 'var_limit' },
  }),
  abuse('var-set-key-count', '2', 'k', 'memory_limit', 'var_limit', {
    limits: { varBytes: 4_096 },
  }),
  // Item 4: a refused alloc keeps nothing, so the offset Extism's SDK would have given its
  // block names nothing; output over maxOutputBytes fails at output_set.
  abuse('refused-alloc-var-set', '4', 'r', 'trapped', 'invalid_block'),
  abuse('refused-alloc-output', '4', 'o', 'trapped', 'invalid_block'),
  abuse('output-1gb', '4', 'g', 'failed', 'output_too_large'),
  abuse('host-answer-over-extism-memory', '4', 'h', 'memory_limit', 'block_limit', {
    limits: { memoryPages: 4 },
  }),
  // Item 13: bogus offsets, and throws a guest could catch with catch_all.
  {
    name: 'bogus-offset-host-function',
    item: '13',
    guest: { wat: 'kernel-abuse' },
    config: { mode: 'b' },
    // run() returns 3 unless all three answers are invalid_argument.
    expect: { trigger: 'k', status: 'succeeded' },
  },
  abuse('bogus-offset-kernel-load', '13', 'l', 'trapped', 'invalid_block'),
  abuse('kernel-fault-caught-by-catch-all', '13', 'c', 'trapped', 'invalid_block'),
  abuse('abort-caught-by-catch-all', '13', 'a', 'trapped', 'abort'),
  // Log lines per call are capped (limits.logLines), bytes per line too.
  abuse('log-flood', 'logs', 'L', 'out_of_fuel', 'out_of_fuel', {
    limits: { fuel: { run: 20_000_000 } },
  }),
  // Item 3: tables share limits.tableElements; growth is priced before it runs.
  {
    name: 'table-grow-eight-tables',
    item: '3',
    guest: { wat: 'kernel-abuse' },
    config: { mode: 't' },
    limits: { fuel: { run: 100_000_000 } },
    // run() returns 1 if its tables hold more than 10,000 elements in all.
    expect: { trigger: 'k', status: 'succeeded' },
  },
  abuse('table-grow-huge', '3', 'T', 'out_of_fuel', 'out_of_fuel'),
  {
    name: 'table-huge-initial',
    item: '3',
    guest: { wat: 'table-huge-initial' },
    expect: { loadFails: 'HG_PLUGIN_LOAD' },
  },
];
