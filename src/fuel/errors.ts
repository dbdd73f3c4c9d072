/**
 * Errors raised by the fuel instrumenter. Each carries a stable `code`; callers match on it,
 * never on the message. The host maps them onto its own `HG_PLUGIN_LOAD` with `{ cause }`.
 */

export const FuelErrorCodes = {
  HG_WASM_INVALID: 'the binary is not a valid WebAssembly module (checked before any rewriting)',
  HG_WASM_COMPONENT: 'the binary is a component, not a core module',
  HG_WASM_UNSUPPORTED:
    'the module uses a feature the instrumenter does not support (GC, typed function references, exnref, memory64, atomic waits, ...)',
  HG_WASM_RESERVED_NAME: "the module exports a name with the reserved prefix '__hg_'",
  HG_WASM_MEMORY_LIMIT: "the module's initial memory is larger than the plugin's memory cap",
  HG_WASM_TABLE_LIMIT:
    "the module's tables start with more elements in all than the plugin's table cap (limits.tableElements)",
  HG_FUEL_COST_TABLE: 'a cost table is malformed',
  HG_FUEL_INTERNAL: 'the instrumented module failed validation (an instrumenter bug)',
} as const;

export type FuelErrorCode = keyof typeof FuelErrorCodes;

export class FuelError extends Error {
  readonly code: FuelErrorCode;
  constructor(code: FuelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FuelError';
    this.code = code;
  }
}

export function isFuelError(err: unknown): err is FuelError {
  return err instanceof FuelError;
}
