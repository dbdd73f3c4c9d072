/**
 * Differential runner for one wast2json output: every module Node 20 can run is instantiated
 * twice, plain and instrumented (two separate "worlds", each with its own spectest module and
 * registry), and every action runs in both; outcomes are normalised (values, trap messages,
 * call-stack exhaustion, exceptions) and must be identical. Functions JS cannot call (`v128`
 * parameters or results) are called through a bridge module (./v128-bridge.ts), the same bytes
 * in both worlds. Binary modules the spec says are invalid or malformed must be refused by the
 * instrumenter before any rewriting. Whatever is not compared is counted by reason.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { instrument } from '../../src/fuel/instrument.ts';
import { FuelError } from '../../src/fuel/errors.ts';
import { FuelMeter, classifyTrap } from '../../src/fuel/meter.ts';
import { WasmException } from './tools.ts';
import {
  BridgeError,
  buildBridge,
  exportedFunctionTypes,
  hasNan,
  matchesExpected,
  needsBridge,
  renderExpected,
  renderResults,
} from './v128-bridge.ts';
import type { FuncSig, WastValue } from './v128-bridge.ts';

export interface SpecCounts {
  modules: number;
  /**
   * Modules not run, by reason: the feature Node 20 lacks, or importing from a module that
   * could not run.
   */
  modulesSkipped: Map<string, number>;
  actions: number;
  /** Of the actions compared, those run through a bridge module, by reason. */
  bridged: Map<string, number>;
  /** Actions not compared, by reason. */
  actionsSkipped: Map<string, number>;
  rejected: number;
  mismatches: string[];
  /**
   * Bridged actions whose plain result differs from the spec's expected value: the bridge
   * (or V8) is wrong, not the instrumenter; must stay empty for the bridge to be trusted.
   */
  bridgeErrors: string[];
}

export function newSpecCounts(): SpecCounts {
  return {
    modules: 0,
    modulesSkipped: new Map(),
    actions: 0,
    bridged: new Map(),
    actionsSkipped: new Map(),
    rejected: 0,
    mismatches: [],
    bridgeErrors: [],
  };
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

function total(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

/** `n (a: x, b: y)`, largest first. */
export function byReason(m: Map<string, number>): string {
  const parts = [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`);
  return parts.length ? `${total(m)} (${parts.join('; ')})` : '0';
}

/** The proposal a module Node 20 (V8 11.3) refuses to compile needs, from V8's message. */
const UNSUPPORTED: readonly (readonly [RegExp, string])[] = [
  [/memory64|memory limits flags/, 'memory64'],
  [/memory count|at most one memory/i, 'multi-memory'],
  [/typed-funcref|\(ref /, 'typed function references'],
  [/not allowed in constant expressions/, 'extended constant expressions'],
  [
    /non-imported globals cannot be used in constant/,
    'defined globals in constant expressions (GC)',
  ],
  [/relaxed/, 'relaxed SIMD'],
];

function unsupportedFeature(bytes: Uint8Array<ArrayBuffer>): string {
  try {
    new WebAssembly.Module(bytes);
    return 'compiles after all';
  } catch (err) {
    const msg = (err as Error).message;
    const hit = UNSUPPORTED.find(([re]) => re.test(msg));
    if (hit) return hit[1];
    const brief = msg.replace(/^WebAssembly\.Module\(\): (Compiling function #\d+ failed: )?/, '');
    return `other: ${brief.replace(/ @\+\d+$/, '')}`;
  }
}

type JsonValue = WastValue;
interface JsonAction {
  readonly type: 'invoke' | 'get';
  readonly module?: string;
  readonly field: string;
  readonly args?: readonly JsonValue[];
}
interface JsonCommand {
  readonly type: string;
  readonly line: number;
  readonly filename?: string;
  readonly name?: string;
  readonly as?: string;
  readonly module_type?: string;
  readonly action?: JsonAction;
  readonly expected?: readonly JsonValue[];
}

type Exports = WebAssembly.Exports;

class World {
  readonly registry = new Map<string, Exports>();
  readonly meters: FuelMeter[] = [];
  constructor(readonly metered: boolean) {
    const print = (): void => {};
    this.registry.set('spectest', {
      print,
      print_i32: print,
      print_i64: print,
      print_f32: print,
      print_f64: print,
      print_i32_f32: print,
      print_f64_f64: print,
      global_i32: new WebAssembly.Global({ value: 'i32' }, 666),
      global_i64: new WebAssembly.Global({ value: 'i64' }, 666n),
      global_f32: new WebAssembly.Global({ value: 'f32' }, 666.6),
      global_f64: new WebAssembly.Global({ value: 'f64' }, 666.6),
      table: new WebAssembly.Table({ initial: 10, maximum: 20, element: 'anyfunc' }),
      memory: new WebAssembly.Memory({ initial: 1, maximum: 2 }),
    } as unknown as Exports);
  }

  instantiate(module: WebAssembly.Module): WebAssembly.Instance {
    const imports: Record<string, Record<string, unknown>> = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      const value = this.registry.get(imp.module)?.[imp.name];
      (imports[imp.module] ??= {})[imp.name] = value;
    }
    const instance = new WebAssembly.Instance(module, imports as WebAssembly.Imports);
    if (this.metered) this.meters.push(new FuelMeter(instance));
    return instance;
  }

  /** After a trap the depth counters of every instance on the stack are stale: reset all. */
  afterTrap(): void {
    for (const m of this.meters) {
      m.reset();
      m.setBudget(1n << 50n);
    }
  }
}

const externs = new Map<number, object>();
const externLabel = new Map<object, number>();
function extern(n: number): object {
  let o = externs.get(n);
  if (!o) {
    o = { extern: n };
    externs.set(n, o);
    externLabel.set(o, n);
  }
  return o;
}

function arg(v: JsonValue): unknown {
  const s = v.value as string;
  switch (v.type) {
    case 'i32':
      return Number(BigInt.asIntN(32, BigInt(s)));
    case 'i64':
      return BigInt.asIntN(64, BigInt(s));
    case 'f32': {
      const dv = new DataView(new ArrayBuffer(4));
      dv.setUint32(0, Number(s));
      return dv.getFloat32(0);
    }
    case 'f64': {
      const dv = new DataView(new ArrayBuffer(8));
      dv.setBigUint64(0, BigInt(s));
      return dv.getFloat64(0);
    }
    case 'externref':
      return s === 'null' ? null : extern(Number(s));
    case 'funcref':
      return null;
    default:
      throw new Error(`unsupported argument type ${v.type}`);
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(',')}]`;
  if (typeof v === 'function') return 'func';
  if (typeof v === 'object' && externLabel.has(v)) return `extern ${externLabel.get(v)}`;
  return typeof v;
}

function outcome(world: World, run: () => unknown): string {
  try {
    return `ok ${show(run())}`;
  } catch (err) {
    const meter = world.meters.find((m) => m.exhausted() || m.depthExceeded());
    const kind = meter ? classifyTrap(meter, err) : null;
    world.afterTrap();
    if (kind) return kind === 'stack_overflow' ? 'exhaustion' : kind;
    if (err instanceof RangeError && /call stack/i.test(err.message)) return 'exhaustion';
    if (err instanceof WasmException) return 'exception';
    const e = err as Error;
    return `${e?.constructor?.name}: ${e?.message}`;
  }
}

export function runSpecJson(jsonPath: string, counts: SpecCounts): void {
  const dir = dirname(jsonPath);
  const spec = JSON.parse(readFileSync(jsonPath, 'utf8')) as { commands: JsonCommand[] };
  const plain = new World(false);
  const metered = new World(true);
  /** A module's exports (plain, metered) and function types, or why its actions cannot run. */
  interface Instantiated {
    readonly exports: [Exports, Exports];
    readonly types: () => Map<string, FuncSig>;
  }
  type Loaded = Instantiated | string;
  const named = new Map<string, Loaded>();
  let current: Loaded = 'no module yet';
  /** Registered names whose module could not run, with the reason. */
  const unrunnable = new Map<string, string>();
  const dependsOnUnrunnable = (m: WebAssembly.Module): string | null => {
    const dep = WebAssembly.Module.imports(m).find((imp) => unrunnable.has(imp.module));
    return dep ? `imports from a ${unrunnable.get(dep.module)}` : null;
  };
  const where = (c: JsonCommand): string => `${jsonPath.replace(/\.json$/, '.wast')}:${c.line}`;

  const load = (c: JsonCommand): [WebAssembly.Module, WebAssembly.Module, Uint8Array] | string => {
    const bytes = readFileSync(join(dir, c.filename as string));
    if (!WebAssembly.validate(bytes)) return unsupportedFeature(bytes);
    const out = instrument(bytes, { initialFuel: 1n << 50n, allowAtomicWait: true }).bytes;
    if (!WebAssembly.validate(out))
      throw new Error(`${where(c)}: instrumented module does not validate`);
    return [new WebAssembly.Module(bytes), new WebAssembly.Module(out), bytes];
  };

  /**
   * An invoke JS cannot make (v128 parameters or results) or would blur (a signalling NaN
   * argument comes in quieted, a NaN result's payload is invisible): one bridge module,
   * instantiated in each world around that world's export, calls it with constant arguments
   * and returns the results in JS-safe pieces. The plain result must also be the spec's
   * expected value, which checks the bridge itself.
   */
  const runBridged = (
    c: JsonCommand,
    act: JsonAction,
    sig: FuncSig,
    exports: [Exports, Exports],
  ): void => {
    let bridge: ReturnType<typeof buildBridge>;
    try {
      bridge = buildBridge(sig, act.args ?? []);
    } catch (err) {
      if (!(err instanceof BridgeError)) throw err;
      bump(counts.actionsSkipped, `no bridge (${err.message})`);
      return;
    }
    const module = new WebAssembly.Module(bridge.bytes);
    const [runPlain, runMetered] = exports.map((ex) => {
      const inst = new WebAssembly.Instance(module, {
        t: { f: ex[act.field] },
      } as WebAssembly.Imports);
      return inst.exports.run as (...a: unknown[]) => unknown;
    }) as [(...a: unknown[]) => unknown, (...a: unknown[]) => unknown];
    counts.actions++;
    bump(counts.bridged, needsBridge(sig) ? 'v128' : 'NaN payload');
    let plainResults: string[] = [];
    const a = outcome(plain, () => {
      plainResults = renderResults(sig, runPlain(...bridge.refArgs.map(arg)), c.expected, show);
      return plainResults;
    });
    const b = outcome(metered, () =>
      renderResults(sig, runMetered(...bridge.refArgs.map(arg)), c.expected, show),
    );
    if (a !== b) counts.mismatches.push(`${where(c)}: ${act.field}: plain ${a}, metered ${b}`);
    if (c.type !== 'assert_return' || !c.expected) return;
    const expected = renderExpected(sig, c.expected);
    const ok =
      a.startsWith('ok') &&
      expected !== null &&
      plainResults.every((r, i) => matchesExpected(r, expected[i] ?? null));
    if (!ok) {
      counts.bridgeErrors.push(
        `${where(c)}: ${act.field}: plain ${a}, expected [${expected?.join(',') ?? '?'}]`,
      );
    }
  };

  for (const c of spec.commands) {
    switch (c.type) {
      case 'module': {
        const mods = c.module_type === 'text' ? 'text module' : load(c);
        const dep = typeof mods === 'string' ? null : dependsOnUnrunnable(mods[0]);
        if (typeof mods === 'string') {
          bump(counts.modulesSkipped, mods);
          current = `module Node 20 cannot run (${mods})`;
        } else if (dep) {
          bump(counts.modulesSkipped, dep);
          current = `module ${dep}`;
        } else {
          counts.modules++;
          const pair: [Exports, Exports] = [{}, {}];
          const a = outcome(plain, () => (pair[0] = plain.instantiate(mods[0]).exports));
          const b = outcome(metered, () => (pair[1] = metered.instantiate(mods[1]).exports));
          if (a !== b) counts.mismatches.push(`${where(c)}: instantiate: plain ${a}, metered ${b}`);
          let types: Map<string, FuncSig> | undefined;
          current = a.startsWith('ok')
            ? { exports: pair, types: () => (types ??= exportedFunctionTypes(mods[2])) }
            : `module failed to instantiate (${a})`;
        }
        if (c.name) named.set(c.name, current);
        break;
      }
      case 'register': {
        const loaded = c.name ? named.get(c.name) : current;
        if (typeof loaded === 'object') {
          plain.registry.set(c.as as string, loaded.exports[0]);
          metered.registry.set(c.as as string, loaded.exports[1]);
          unrunnable.delete(c.as as string);
        } else if (loaded !== undefined) {
          unrunnable.set(c.as as string, loaded);
        }
        break;
      }
      case 'action':
      case 'assert_return':
      case 'assert_trap':
      case 'assert_exhaustion':
      case 'assert_exception': {
        const act = c.action as JsonAction;
        const loaded = act.module ? (named.get(act.module) ?? 'unknown module name') : current;
        if (typeof loaded === 'string') {
          bump(counts.actionsSkipped, loaded);
          break;
        }
        if (!(act.field in loaded.exports[0])) {
          bump(counts.actionsSkipped, 'export dropped by the wast2json conversion');
          break;
        }
        const sig = act.type === 'invoke' ? loaded.types().get(act.field) : undefined;
        if (sig && (needsBridge(sig) || hasNan([...(act.args ?? []), ...(c.expected ?? [])]))) {
          runBridged(c, act, sig, loaded.exports);
          break;
        }
        if (act.type === 'get' && c.expected?.some((v) => v.type === 'v128')) {
          bump(counts.actionsSkipped, 'v128 global at the JS boundary');
          break;
        }
        counts.actions++;
        const run = (ex: Exports) => (): unknown => {
          const target = ex[act.field];
          if (act.type === 'get') return (target as WebAssembly.Global).value;
          return (target as (...a: unknown[]) => unknown)(...(act.args ?? []).map(arg));
        };
        const a = outcome(plain, run(loaded.exports[0]));
        const b = outcome(metered, run(loaded.exports[1]));
        if (a !== b) counts.mismatches.push(`${where(c)}: ${act.field}: plain ${a}, metered ${b}`);
        break;
      }
      case 'assert_uninstantiable':
      case 'assert_unlinkable': {
        const mods = load(c);
        if (typeof mods === 'string') {
          bump(counts.modulesSkipped, mods);
          break;
        }
        const dep = dependsOnUnrunnable(mods[0]);
        if (dep) {
          bump(counts.modulesSkipped, dep);
          break;
        }
        counts.modules++;
        const a = outcome(plain, () => plain.instantiate(mods[0]));
        const b = outcome(metered, () => metered.instantiate(mods[1]));
        if (a.startsWith('ok') !== b.startsWith('ok')) {
          counts.mismatches.push(`${where(c)}: ${c.type}: plain ${a}, metered ${b}`);
        }
        break;
      }
      case 'assert_invalid':
      case 'assert_malformed': {
        if (c.module_type !== 'binary') break;
        const bytes = readFileSync(join(dir, c.filename as string));
        if (WebAssembly.validate(bytes)) break;
        try {
          instrument(bytes);
          counts.mismatches.push(`${where(c)}: ${c.type} module was instrumented`);
        } catch (err) {
          if (err instanceof FuelError) counts.rejected++;
          else counts.mismatches.push(`${where(c)}: ${c.type}: ${String(err)}`);
        }
        break;
      }
      default:
        break;
    }
  }
}
