/**
 * The placement analysis's vocabulary, shared by the planner (planner.ts), its driver
 * (placement.ts, which re-exports it) and the emitter: block flags, event kinds, the module
 * facts a plan depends on, and the plan itself.
 */
import type { CompiledCosts } from './cost-table.ts';

/** Block flags. */
export const BF = {
  /** Charges and checks (function entry, loop header, exception landing, operand-priced op). */
  check: 1,
  /** Reloads the fuel local from the global first (exception landing). */
  reload: 2,
  /** Restores the depth counter first (exception landing). */
  landing: 4,
  /** Starts with an operand-priced instruction; bits 8+ hold its `Dyn` kind. */
  dyn: 8,
  entry: 16,
} as const;

export const Dyn = { grow: 1, memory: 2, table: 3 } as const;

/** Event kinds: code the emitter inserts before the instruction at `pos`. */
export const Ev = {
  /** Start of metered block `arg`. */
  block: 1,
  /** Write the fuel local back to the global before a call. */
  preCall: 2,
  /** After a call: reload the local; arg = block << 1 | (1 if the callee may be the host). */
  postCall: 3,
  /** Function exit (`return`, tail call): write back fuel, restore the depth counter. */
  exit: 4,
  /** Before `throw` / `rethrow`: write back fuel. */
  throw: 5,
  /** Before the final `end` of a wrapped body: close the wrapper block, then exit. */
  wrapClose: 6,
  /** Reference placement: charge one instruction; arg = cost | dynKind << 24. */
  instr: 7,
  /** Reference placement: exception landing (restore the depth counter). */
  landing: 8,
  /** `local.get/set/tee` of a declared local in a fuel-carrying function: renumber it. */
  local: 9,
  /**
   * A forward `br_if` (to a label without values) that does not end its metered block: the
   * block was charged for the code after it too, so the taken branch refunds that part;
   * arg = index into `refund`.
   */
  brIfRefund: 10,
  /**
   * Reference placement: after a call that may reach JavaScript (imported or indirect), which
   * may have caught an exception that unwound instrumented frames: restore the depth counter.
   */
  hostReturn: 11,
  /** A direct call redirected to the callee's carrying twin; arg = the twin's index. */
  callTwin: 12,
  /**
   * At a `loop` opcode: a counted loop (`FunctionPlan.counted`, entry arg). The emitter puts a
   * fast copy of the loop without its header check beside the checked one, chosen once before
   * the loop by a bound on its trip count (see counted-loops.ts, `matchCounted`).
   */
  countedLoop: 13,
} as const;

/**
 * `FunctionPlan.counted` holds COUNTED_FIELDS int32 per counted loop (counted-loops.ts,
 * `matchCounted`): its form (CK), the position after the loop's `end`, the position of the
 * top-tested form's exit `br_if` and its depth, then the local indices (as emitted:
 * renumbered in a carrying function) of the induction variable j, the bound n (-1: the
 * constant nk) and the step s (-1: the constant k, never 0), and the most one iteration's
 * calls can spend (calls to carrying leaves, bounded with `ModuleFacts.bodies`).
 */
export const COUNTED_FIELDS = 10;
export const CL = {
  kind: 0,
  end: 1,
  brIf: 2,
  depth: 3,
  j: 4,
  n: 5,
  nk: 6,
  s: 7,
  k: 8,
  calls: 9,
} as const;
/** Counted loop forms: exit test at the top (`j >= n`), at the bottom (`j < n`), count-down. */
export const CK = { top: 0, bottom: 1, down: 2 } as const;

export type Placement = 'metered-blocks' | 'per-instruction';

export interface ModuleFacts {
  readonly costs: CompiledCosts;
  readonly placement: Placement;
  /** The module contains `try`: calls end metered blocks, landings reload fuel. */
  readonly catching: boolean;
  readonly numFuncImports: number;
  /** Extra static cost of a direct call to imported function i. */
  readonly importCost: Int32Array;
  readonly allowAtomicWait: boolean;
  /**
   * Per function index, 1 if the function carries fuel (and depth) in extra parameters and
   * an extra result instead of the global; null when no function does.
   */
  readonly carrying: Uint8Array | null;
  /**
   * Per function index, the index of its carrying twin (an exported function's body moved to
   * an appended function; the original index keeps a wrapper for callers from outside), or -1.
   * Direct calls go to the twin. Null when no function has one.
   */
  readonly twin: Int32Array | null;
  /**
   * Per function index, 1 if a call to it may not return (unwind-scan.ts): such calls end
   * their metered block. Null: every call does.
   */
  readonly unwinds: Uint8Array | null;
  /**
   * [start, end) of each defined function's body (2 per function, imports not counted), or
   * null: counted loops (counted-loops.ts) read a callee's body to bound what a call to it spends.
   */
  readonly bodies?: Int32Array | null;
  /**
   * Every table entry is one of this module's own functions, for the whole instance's life:
   * no table is imported or exported, no imported function or global can reach an element
   * segment, and no body mutates a table with a value from outside (`table.set`, `table.grow`,
   * `table.fill`; the planner asks for a restart without this fact when it meets one). An
   * indirect call then cannot reach JavaScript, so it is planned like a direct call to a
   * function that keeps the global counter: no host check, no depth restore after it.
   */
  readonly privateTable?: boolean;
}

export class PlacementError extends Error {
  constructor(
    readonly kind: 'unsupported' | 'invalid' | 'needs-catching' | 'no-carry' | 'table-mutation',
    message: string,
  ) {
    super(message);
  }
}

export const F_FUNC = 0;
export const F_BLOCK = 1;
export const F_LOOP = 2;
export const F_IF = 3;
export const F_TRY = 4;

/**
 * A plan's arrays are the planner's whole reusable buffers (planner.ts), not views cut to
 * length: a view per array per body was 13 MB of garbage per instrumenting of binaryen.js.
 * They are typed without `length` so that no consumer can read one: the counts are `nEv`,
 * `nBlocks`, `nRefunds` and `nCounted`.
 */
export interface PlanArray {
  readonly [index: number]: number;
}

export interface FunctionPlan {
  readonly localsStart: number;
  readonly instrStart: number;
  readonly end: number;
  readonly numLocals: number;
  readonly hasCalls: boolean;
  /** Calls a fuel-carrying function directly. */
  readonly hasCarryCalls: boolean;
  readonly needsWrapper: boolean;
  /** Events (`evPos`, `evKind`, `evArg`), in order of position. */
  readonly nEv: number;
  readonly evPos: PlanArray;
  readonly evKind: PlanArray;
  readonly evArg: PlanArray;
  /** Metered blocks (`cost`, `flags`, `w`, `succ`). */
  readonly nBlocks: number;
  readonly cost: PlanArray;
  /** Per `Ev.brIfRefund` (`nRefunds` of them): the fuel to give back when the branch is taken. */
  readonly nRefunds: number;
  readonly refund: PlanArray;
  readonly flags: PlanArray;
  /** Lookahead per block (W). */
  readonly w: PlanArray;
  /** Max W over non-checkpoint successors (W - cost). */
  readonly succ: PlanArray;
  /** COUNTED_FIELDS int32 per counted loop (`Ev.countedLoop`'s arg indexes it); `nCounted` int32. */
  readonly nCounted: number;
  readonly counted: PlanArray;
}
