/**
 * What an instrumented module exports and the host reads: the names of the fuel, exhausted-flag
 * and call-depth globals, the flag's values, the defaults and the instrumenter's version (part of
 * the cache key). A module of its own so that the host's runtime side (meter.ts, cache.ts, a pool
 * worker that only runs prepared modules) loads none of the instrumenter (guest-module.ts imports
 * it at the first prepare). instrument.ts and index.ts re-export these.
 */

/** Bumped whenever the emitted code changes; part of the cache key. */
export const INSTRUMENTER_VERSION = 'hg-fuel/7';

export const FUEL_GLOBAL = '__hg_fuel';
export const EXHAUSTED_GLOBAL = '__hg_fuel_exhausted';
export const DEPTH_GLOBAL = '__hg_depth';
export const RESERVED_PREFIX = '__hg_';

export const DEFAULT_MAX_CALL_DEPTH = 10_000;
export const DEFAULT_INITIAL_FUEL = 1_000_000_000n;

/** Values of the exhausted flag global. */
export const ExhaustedFlag = { none: 0, fuel: 1, depth: 2 } as const;
