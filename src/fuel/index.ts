/**
 * Public entry of the fuel instrumenter (see instrument.ts for the design, docs/fuel.md for
 * the cost model, placement, billing rule and measurements).
 */
export {
  instrument,
  INSTRUMENTER_VERSION,
  FUEL_GLOBAL,
  EXHAUSTED_GLOBAL,
  DEPTH_GLOBAL,
  RESERVED_PREFIX,
  DEFAULT_MAX_CALL_DEPTH,
  DEFAULT_INITIAL_FUEL,
} from './instrument.ts';
export type { InstrumentOptions, InstrumentResult, InstrumentStats } from './instrument.ts';
export type { Placement } from './placement.ts';
export {
  DEFAULT_COST_TABLE,
  compileCostTable,
  parseCostTable,
  OPCODE_NAMES,
} from './cost-table.ts';
export type { CostTable } from './cost-table.ts';
export { FuelError, FuelErrorCodes, isFuelError } from './errors.ts';
export type { FuelErrorCode } from './errors.ts';
export { FuelMeter, classifyTrap, DEFAULT_PHASE_BUDGETS } from './meter.ts';
export type { TrapKind, FuelPhase } from './meter.ts';
export { ExhaustedFlag } from './body-emitter.ts';
export { cacheKey, sha256Hex } from './cache.ts';
export { runInstrumentCommand, runFuelCommand } from './cli-commands.ts';
export type { InstrumentCommandArgs, FuelCommandArgs, CommandResult } from './cli-commands.ts';
