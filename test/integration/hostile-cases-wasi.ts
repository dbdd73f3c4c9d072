/**
 * Hostile-corpus cases for Hourglass's own WASI (issue 9 item 1, and item 13's start function
 * out of fuel). Each guest is a `.wat` fixture in guest-examples/wat/ (wasi-*.wat); the
 * focused tests are in test/integration/wasi.test.ts.
 *
 * Before: a guest sleeping in WASI `poll_oneoff` blocked its worker in native code, so the
 * deadline's `worker.terminate()` could not return (threads and memory leaked, the host could
 * not exit). Now no WASI import blocks: sleeps return at once and are billed, so every case
 * below ends by fuel or succeeds at once.
 */
import type { HostileCase } from './hostile-case.ts';

/**
 * The loops must end by fuel, never by the deadline, even on a loaded machine: a budget that
 * ends them in well under a second of host time, and a deadline far beyond it.
 */
const BY_FUEL = { timeoutMs: 30_000, fuel: { run: 50_000_000 } } as const;

export const CASES: readonly HostileCase[] = [
  {
    name: 'wasi-sleep-loop',
    item: '1',
    guest: { wat: 'wasi-sleep-loop' },
    limits: BY_FUEL,
    expect: { trigger: 'sleep-loop', times: 2, status: 'out_of_fuel', reason: 'out_of_fuel' },
  },
  {
    name: 'wasi-sleep-once',
    item: '1',
    guest: { wat: 'wasi-sleep' },
    expect: { trigger: 'sleep', status: 'succeeded' },
  },
  {
    name: 'wasi-clock-loop',
    item: '1',
    guest: { wat: 'wasi-clock-loop' },
    limits: BY_FUEL,
    expect: { trigger: 'clock-loop', status: 'out_of_fuel', reason: 'out_of_fuel' },
  },
  {
    name: 'wasi-fd-write-flood',
    item: '1',
    guest: { wat: 'wasi-write-flood' },
    limits: BY_FUEL,
    expect: { trigger: 'write-flood', status: 'out_of_fuel', reason: 'out_of_fuel' },
  },
  {
    name: 'wasi-random-get-huge',
    item: '1',
    guest: { wat: 'wasi-random-huge' },
    // The guest's memory is 4 MiB (64 pages), all of it filled by each random_get.
    limits: { ...BY_FUEL, memoryPages: 64 },
    expect: { trigger: 'random-huge', status: 'out_of_fuel', reason: 'out_of_fuel' },
  },
  {
    name: 'wasi-proc-exit',
    item: '1',
    guest: { wat: 'wasi-exit' },
    expect: { trigger: 'exit', times: 2, status: 'failed', reason: 'proc_exit' },
  },
  {
    // The guest returns the number of WASI answers that differ from the documented refusals
    // (path_open, path_unlink_file, fd_prestat_get, fd_read, sockets, environment, arguments,
    // proc_raise, an out-of-bounds pointer); 0 is success.
    name: 'wasi-path-open',
    item: '1',
    guest: { wat: 'wasi-files' },
    expect: { trigger: 'files', status: 'succeeded' },
  },
  {
    name: 'start-function-out-of-fuel',
    item: '1,13',
    guest: { wat: 'wasi-start-spin' },
    limits: { fuel: { discovery: 5_000_000 } },
    expect: { loadFails: 'HG_PLUGIN_INIT_FUEL' },
  },
  {
    // Go's and wasi-libc's reactors run `_initialize` when an instance is created.
    name: 'wasi-initialize-sleeps-forever',
    item: '1,13',
    guest: { wat: 'wasi-init-sleep' },
    limits: { fuel: { discovery: 5_000_000 } },
    expect: { loadFails: 'HG_PLUGIN_INIT_FUEL' },
  },
  {
    name: 'wasi-start-proc-exit',
    item: '1',
    guest: { wat: 'wasi-init-exit' },
    expect: { loadFails: 'HG_PLUGIN_LOAD' },
  },
];
