/**
 * Fuel metering overhead: ops/s of each CPU-bound kernel plain and instrumented, measured side
 * by side in one process after warm-up (TurboFan steady state), and the instrumenter's own
 * throughput (MB/s) on the biggest module on the machine.
 *
 *   npm run bench -- fuel      (or: node --import tsx bench/fuel.bench.ts)
 *
 * Kernels are built from source at bench time, never committed as binaries:
 * - `bench/kernels/*.wat` with wabt: fib (recursive), loop (xorshift), sieve, sha256, interp
 *   (a br_table bytecode interpreter), matmul (f64), leafcall (a loop calling a tiny leaf),
 *   fibexp (fib exported and called from JS), whileleaf (a while loop calling an exported leaf);
 * - `bench/kernels/wordfreq.as` with AssemblyScript's asc (incremental GC runtime): strings,
 *   arrays, a Map and a sort;
 * - `bench/kernels/gojson.go` with Go (GOOS=wasip1, c-shared, run through node:wasi): records
 *   sorted, JSON-encoded and decoded; skipped with a warning when no Go toolchain is found;
 * - binaryen.js (node_modules/binaryen: emscripten C++, 8.9 MB of wasm) loaded with plain or
 *   instrumented bytes through its instantiateWasm hook (bench/kernels/binaryen.ts); a call
 *   optimizes bench/kernels/fib.wat. It is also the module the instrumenting speed (MB/s) is
 *   measured on (the biggest module found);
 * - `bench/kernels/docproc.rs`, the realistic module, with Debian's rustc for
 *   wasm32-unknown-unknown (JSON generate → serialize → parse → aggregate → re-serialize →
 *   LZ77 compress → decompress, std only, ~120 KB). Without that rustc the bench fails loudly;
 *   HOURGLASS_RUSTC points at another rustc with the wasm32 standard library.
 *
 * The JSON records the commit, node version, cores and the load average before and after.
 *
 * Each kernel is instrumented with a budget of 2^62 (fuel never runs out); the bench asserts
 * that the instrumented result equals the plain one (and sha256's digest equals node:crypto's),
 * that the exhausted flag stays 0 and that two fresh instances' first calls use the same fuel.
 *
 * Rounds: every round runs each kernel's two tasks back to back (alternating which goes
 * first); a kernel's slowdown is the median over rounds of plain ops/s ÷ instrumented ops/s in
 * that round. Many short rounds make the median robust to load changing under the run:
 * BENCH_ROUNDS (default 31), BENCH_TIME_MS (per task per round, default 40, at least 4
 * calls), and BENCH_WARMUP_MS (per task, first round only, default 500).
 *
 * Comparing placements: FUEL_BENCH_INSTRUMENTER=<path to another instrument.ts> (say, an older
 * commit's src/ extracted with `git archive <commit> src/fuel src/wasm | tar -x -C .tmp/old`)
 * benchmarks that instrumenter instead, and prints without writing bench/results/fuel.json.
 *
 * Instrumenting speed alone: FUEL_BENCH_ONLY=instrument (no kernels; writes
 * bench/results/fuel-instrument.json); FUEL_BENCH_INSTRUMENT_RUNS (default 7) runs. Against
 * another instrumenter in the same process (ABBA, median of per-pair ratios):
 * FUEL_BENCH_BASELINE=<path to its instrument.ts>, e.g. main's:
 *   git archive main src | tar -x -C .tmp/main && \
 *   FUEL_BENCH_ONLY=instrument FUEL_BENCH_BASELINE=.tmp/main/src/fuel/instrument.ts \
 *   FUEL_BENCH_INSTRUMENT_RUNS=11 npm run bench -- fuel
 *
 * Clock: the machine is shared (2 cores, other engineers' tests and benchmarks), so by default
 * tasks are timed in process CPU time (`process.cpuUsage()`, user + system), which does not
 * count the time this process spends descheduled; BENCH_CLOCK=wall uses performance.now().
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { WASI } from 'node:wasi';
import { Bench } from 'tinybench';
import wabtInit from 'wabt';
import { PROJECT_ROOT } from '../src/config/host-config.ts';
import { DEFAULT_COST_TABLE } from '../src/fuel/cost-table.ts';
import * as current from '../src/fuel/instrument.ts';
import { EXHAUSTED_GLOBAL, FUEL_GLOBAL } from '../src/fuel/instrument.ts';
import { binaryenBytes, binaryenInstance } from './kernels/binaryen.ts';
import { rows } from './common.ts';
import type { Row } from './common.ts';

const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 40);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 500);
const CLOCK = process.env.BENCH_CLOCK === 'wall' ? 'wall' : 'cpu';
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const BUDGET = 2n ** 62n;
const KERNELS = join(PROJECT_ROOT, 'bench', 'kernels');
const BUILD = join(KERNELS, 'build');
const RUSTC = process.env.HOURGLASS_RUSTC ?? '/usr/bin/rustc';
const ALT = process.env.FUEL_BENCH_INSTRUMENTER;
/** FUEL_BENCH_KERNELS=sieve,gojson: only the kernels whose names start with one of these. */
const ONLY = process.env.FUEL_BENCH_KERNELS?.split(',').filter(Boolean) ?? null;
const want = (name: string): boolean => !ONLY || ONLY.some((k) => name.startsWith(k));
/** FUEL_BENCH_OPTIONS='{"maxCallDepth":0}': extra instrument() options (experiments only). */
const EXTRA_OPTIONS = JSON.parse(process.env.FUEL_BENCH_OPTIONS ?? '{}') as Record<string, unknown>;
/** A partial or modified run prints only: bench/results/fuel.json is not written. */
/**
 * FUEL_BENCH_AB=<path to another instrument.ts>: each kernel also runs that instrumenter's
 * output in the same process, alternating with this one's in every round, and the table gets
 * its speed ÷ this one's (median over rounds): an A/B that the load's drift between processes
 * does not bias. Only prints.
 */
const AB = process.env.FUEL_BENCH_AB;
const abInstrument = AB ? ((await import(resolve(AB))) as typeof current).instrument : null;
const PARTIAL =
  ALT !== undefined ||
  AB !== undefined ||
  ONLY !== null ||
  process.env.FUEL_BENCH_OPTIONS !== undefined;
const { instrument, INSTRUMENTER_VERSION } = ALT
  ? ((await import(resolve(ALT))) as typeof current)
  : current;
const BASELINE = process.env.FUEL_BENCH_BASELINE;
const baseline = BASELINE
  ? { path: BASELINE, ...((await import(resolve(BASELINE))) as typeof current) }
  : null;

interface Kernel {
  readonly name: string;
  readonly source: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly args: readonly number[];
  /** Extra check of a plain or instrumented instance after a call (throws on mismatch). */
  readonly check?: (instance: WebAssembly.Instance) => void;
  readonly imports?: WebAssembly.Imports;
  /** Instantiates plain or instrumented bytes when imports alone are not enough (WASI). */
  readonly instantiate?: (bytes: Uint8Array) => WebAssembly.Instance;
  /** Loads plain or instrumented bytes through the guest's own JS glue (emscripten). */
  readonly load?: (bytes: Uint8Array) => Promise<{ instance: WebAssembly.Instance; run: Run }>;
}

const WAT_FEATURES = { bulk_memory: true, sign_extension: true, multi_value: true } as const;

async function buildKernels(): Promise<Kernel[]> {
  const wabt = await wabtInit();
  const fromWat = (name: string): Uint8Array<ArrayBuffer> => {
    const file = join(KERNELS, `${name}.wat`);
    const mod = wabt.parseWat(basename(file), readFileSync(file, 'utf8'), WAT_FEATURES);
    try {
      mod.resolveNames();
      mod.validate();
      return new Uint8Array(mod.toBinary({}).buffer);
    } finally {
      mod.destroy();
    }
  };
  const sha = (len: number) => (instance: WebAssembly.Instance) => {
    const mem = instance.exports.memory as WebAssembly.Memory;
    const msg = Buffer.from(Array.from({ length: len }, (_, i) => (i * 7 + 3) & 255));
    const want = createHash('sha256').update(msg).digest('hex');
    const got = Buffer.from(mem.buffer, 768, 32).toString('hex');
    if (got !== want) throw new Error(`sha256 kernel: digest ${got}, node:crypto says ${want}`);
  };
  const wat = (name: string, args: number[], check?: Kernel['check']): Kernel => ({
    name,
    source: `bench/kernels/${name}.wat`,
    bytes: fromWat(name),
    args,
    ...(check ? { check } : {}),
  });
  const all: Kernel[] = [
    wat('fib', [25]),
    wat('loop', [2_000_000]),
    wat('sieve', [120_000]),
    wat('sha256', [16_384], sha(16_384)),
    wat('interp', [100_000]),
    wat('matmul', [64]),
    wat('leafcall', [2_000_000]),
    wat('fibexp', [25]),
    wat('whileleaf', [2_000_000]),
  ].filter((k) => want(k.name));
  if (want('wordfreq'))
    all.push({
      name: 'wordfreq (AssemblyScript)',
      source: 'bench/kernels/wordfreq.as',
      bytes: buildAssemblyScript('wordfreq'),
      args: [20_000],
      imports: {
        env: {
          abort: () => {
            throw new Error('wordfreq: AssemblyScript abort');
          },
        },
      },
    });
  if (want('gojson')) all.push(...goKernel());
  if (want('binaryen')) all.push(await binaryenKernel());
  if (want('docproc'))
    all.push({
      name: 'docproc (Rust, realistic)',
      source: 'bench/kernels/docproc.rs',
      bytes: buildRust('docproc'),
      args: [42, 300],
    });
  return all;
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    const dirty = execFileSync(
      'git',
      ['status', '--porcelain', '--', 'src', 'bench/kernels', 'bench/fuel.bench.ts'],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
      },
    );
    return `${head.trim()}${dirty.trim() ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** binaryen.js (emscripten C++, ~9 MB of wasm) optimizing bench/kernels/fib.wat. */
async function binaryenKernel(): Promise<Kernel> {
  const text = readFileSync(join(KERNELS, 'fib.wat'), 'utf8');
  return {
    name: 'binaryen.js (emscripten C++)',
    source: 'node_modules/binaryen (bench/kernels/binaryen.ts)',
    bytes: await binaryenBytes(PROJECT_ROOT),
    args: [],
    load: (bytes) => binaryenInstance(PROJECT_ROOT, bytes, text),
  };
}

function goKernel(): Kernel[] {
  const go = ['go', '/usr/local/go/bin/go'].find((cmd) => {
    try {
      execFileSync(cmd, ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!go) {
    console.warn('WARNING: no Go toolchain (go, /usr/local/go/bin/go): the Go kernel is skipped');
    return [];
  }
  const tmp = mkdtempSync(join(os.tmpdir(), 'hg-fuel-go-'));
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    copyFileSync(join(KERNELS, 'gojson.go'), join(tmp, 'main.go'));
    writeFileSync(join(tmp, 'go.mod'), 'module gojson\n\ngo 1.24\n');
    execFileSync(
      go,
      ['build', '-buildmode=c-shared', '-trimpath', '-buildvcs=false', '-o', 'gojson.wasm', '.'],
      {
        cwd: tmp,
        env: { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm', GOTOOLCHAIN: 'local' },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    bytes = new Uint8Array(readFileSync(join(tmp, 'gojson.wasm')));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return [
    {
      name: 'gojson (Go)',
      source: 'bench/kernels/gojson.go',
      bytes,
      args: [2000],
      instantiate: (b) => {
        // Go seeds its maps from random_get and paces its GC by the clock: both are made
        // deterministic (a fixed random stream, a clock that ticks 1 µs per read), or two
        // instances' runs would differ in what they execute, hence in fuel.
        const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
        const imports = wasi.getImportObject() as Record<string, Record<string, unknown>>;
        const sys = imports.wasi_snapshot_preview1 as Record<string, unknown>;
        let memory: WebAssembly.Memory | null = null;
        let seed = 12345;
        let now = 1_700_000_000_000_000_000n;
        sys.random_get = (ptr: number, len: number): number => {
          const view = new Uint8Array((memory as WebAssembly.Memory).buffer, ptr, len);
          for (let i = 0; i < len; i++) {
            seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
            view[i] = seed >>> 24;
          }
          return 0;
        };
        sys.clock_time_get = (_id: number, _precision: bigint, out: number): number => {
          now += 1000n;
          new DataView((memory as WebAssembly.Memory).buffer).setBigUint64(out, now, true);
          return 0;
        };
        const inst = new WebAssembly.Instance(
          new WebAssembly.Module(b as Uint8Array<ArrayBuffer>),
          imports as WebAssembly.Imports,
        );
        memory = inst.exports.memory as WebAssembly.Memory;
        wasi.initialize(inst);
        return inst;
      },
    },
  ];
}

/** asc only compiles .ts entry files: copy the .as source to a temporary folder first. */
function buildAssemblyScript(name: string): Uint8Array<ArrayBuffer> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'hg-fuel-asc-'));
  try {
    const entry = join(tmp, `${name}.ts`);
    copyFileSync(join(KERNELS, `${name}.as`), entry);
    const out = join(tmp, `${name}.wasm`);
    const asc = join(PROJECT_ROOT, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
    execFileSync(
      process.execPath,
      [asc, entry, '--outFile', out, '-O3', '--noAssert', '--runtime', 'incremental'],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function buildRust(name: string): Uint8Array<ArrayBuffer> {
  mkdirSync(BUILD, { recursive: true });
  const out = join(BUILD, `${name}.wasm`);
  try {
    execFileSync(
      RUSTC,
      [
        '--target=wasm32-unknown-unknown',
        '--edition=2021',
        '--crate-type=cdylib',
        '-O',
        '-Cpanic=abort',
        '-Cstrip=debuginfo',
        '-o',
        out,
        join(KERNELS, `${name}.rs`),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  } catch (err) {
    throw new Error(
      `cannot build bench/kernels/${name}.rs with ${RUSTC} (needs the wasm32-unknown-unknown ` +
        `standard library: apt-get install rustc libstd-rust-dev-wasm32, or set HOURGLASS_RUSTC)`,
      { cause: err },
    );
  }
  return new Uint8Array(readFileSync(out));
}

type Run = (...args: number[]) => unknown;

interface Pair {
  readonly kernel: Kernel;
  readonly plain: WebAssembly.Instance;
  readonly fueled: WebAssembly.Instance;
  readonly run: { plain: Run; fueled: Run; alt: Run | null };
  readonly fuelGlobal: WebAssembly.Global;
  /** FUEL_BENCH_AB's instrumented instance's fuel global. */
  readonly altFuelGlobal: WebAssembly.Global | null;
  readonly flagGlobal: WebAssembly.Global;
  readonly fuelPerCall: bigint;
  readonly expected: unknown;
  readonly codeGrowth: number;
}

function instantiate(kernel: Kernel, bytes: Uint8Array): WebAssembly.Instance {
  if (kernel.instantiate) return kernel.instantiate(bytes);
  return new WebAssembly.Instance(
    new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>),
    kernel.imports ?? {},
  );
}

function exportedRun(instance: WebAssembly.Instance, name: string): Run {
  const fn = instance.exports.run;
  if (typeof fn !== 'function') throw new Error(`${name}: no 'run' export`);
  return fn as Run;
}

async function load(
  kernel: Kernel,
  bytes: Uint8Array,
): Promise<{ instance: WebAssembly.Instance; run: Run }> {
  if (kernel.load) return kernel.load(bytes);
  const instance = instantiate(kernel, bytes);
  return { instance, run: exportedRun(instance, kernel.name) };
}

async function prepare(kernel: Kernel): Promise<Pair> {
  const { bytes, stats } = instrument(kernel.bytes, { ...EXTRA_OPTIONS, initialFuel: BUDGET });
  const p = await load(kernel, kernel.bytes);
  const f = await load(kernel, bytes);
  const plain = p.instance;
  const fueled = f.instance;
  const fuelGlobal = fueled.exports[FUEL_GLOBAL] as WebAssembly.Global;
  const flagGlobal = fueled.exports[EXHAUSTED_GLOBAL] as WebAssembly.Global;
  const a = abInstrument
    ? await load(
        kernel,
        abInstrument(kernel.bytes, { ...EXTRA_OPTIONS, initialFuel: BUDGET }).bytes,
      )
    : null;
  const run = { plain: p.run, fueled: f.run, alt: a ? a.run : null };
  const expected = run.plain(...kernel.args);
  kernel.check?.(plain);
  const check = (got: unknown, instance: WebAssembly.Instance): void => {
    if (!Object.is(got, expected))
      throw new Error(
        `${kernel.name}: instrumented result ${String(got)} ≠ plain ${String(expected)}`,
      );
    kernel.check?.(instance);
  };
  // Determinism: a fresh instance's first call uses the same fuel as this one's first call.
  const fresh = await load(kernel, bytes);
  const fuelOfCall = (inst: WebAssembly.Instance, fn: Run): bigint => {
    const g = inst.exports[FUEL_GLOBAL] as WebAssembly.Global;
    const before = g.value as bigint;
    check(fn(...kernel.args), inst);
    return before - (g.value as bigint);
  };
  const first = fuelOfCall(fueled, run.fueled);
  const again = fuelOfCall(fresh.instance, fresh.run);
  if (first !== again || first <= 0n)
    throw new Error(`${kernel.name}: fuel of a first call differs: ${first} vs ${again}`);
  const steady = fuelOfCall(fueled, run.fueled);
  const altFuelGlobal = a ? (a.instance.exports[FUEL_GLOBAL] as WebAssembly.Global) : null;
  if (a && fuelOfCall(a.instance, a.run) !== first)
    throw new Error(`${kernel.name}: FUEL_BENCH_AB's instrumenter bills another fuel`);
  return {
    kernel,
    plain,
    fueled,
    run,
    fuelGlobal,
    altFuelGlobal,
    flagGlobal,
    fuelPerCall: steady,
    expected,
    codeGrowth: stats.instrumentedBytes / stats.originalBytes,
  };
}

/** Both tasks of one kernel for one round; asserts the results and the fuel state. */
function measure(
  p: Pair,
  fuelFirst: boolean,
  warmup: boolean,
): { plain: Row; fueled: Row; alt: Row | null } {
  const bench = new Bench({
    time: TIME_MS,
    iterations: 4,
    warmup,
    warmupTime: WARMUP_MS,
    throws: true,
    ...(CLOCK === 'cpu' ? { now: cpuNow } : {}),
  });
  let plainOut: unknown = p.expected;
  let fueledOut: unknown = p.expected;
  const args = p.kernel.args;
  const addPlain = () =>
    bench.add('plain', () => {
      plainOut = p.run.plain(...args);
    });
  const addFueled = () =>
    bench.add('fueled', () => {
      fueledOut = p.run.fueled(...args);
    });
  let altOut: unknown = p.expected;
  const altRun = p.run.alt;
  const addAlt = () => {
    if (altRun)
      bench.add('alt', () => {
        altOut = altRun(...args);
      });
  };
  p.fuelGlobal.value = BUDGET;
  if (p.altFuelGlobal) p.altFuelGlobal.value = BUDGET;
  if (fuelFirst) addFueled();
  else addAlt();
  addPlain();
  if (!fuelFirst) addFueled();
  else addAlt();
  bench.runSync();
  if (
    !Object.is(plainOut, p.expected) ||
    !Object.is(fueledOut, p.expected) ||
    !Object.is(altOut, p.expected)
  ) {
    throw new Error(
      `${p.kernel.name}: results differ after the run (plain ${String(plainOut)}, ` +
        `instrumented ${String(fueledOut)}, expected ${String(p.expected)})`,
    );
  }
  if (p.flagGlobal.value !== 0 || (p.fuelGlobal.value as bigint) <= 0n)
    throw new Error(`${p.kernel.name}: fuel ran out during the benchmark`);
  const r = rows(bench);
  const find = (n: string): Row => {
    const row = r.find((x) => x.name === n);
    if (!row) throw new Error(`task ${n} missing`);
    return row;
  };
  return { plain: find('plain'), fueled: find('fueled'), alt: altRun ? find('alt') : null };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const geomean = (xs: readonly number[]): number =>
  Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/** The biggest .wasm under guest-examples/ and bench/kernels/build (build outputs only). */
function biggestModule(extra: readonly Kernel[]): { name: string; bytes: Uint8Array } {
  let best: { name: string; bytes: Uint8Array } | null = null;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'cargo-home' && e.name !== 'target' && e.name !== 'node_modules') walk(p);
      } else if (e.name.endsWith('.wasm') && (!best || statSync(p).size > best.bytes.length)) {
        best = { name: relative(PROJECT_ROOT, p), bytes: readFileSync(p) };
      }
    }
  };
  const guests = join(PROJECT_ROOT, 'guest-examples');
  if (existsSync(guests)) walk(guests);
  for (const k of extra)
    if (!best || k.bytes.length > best.bytes.length) best = { name: k.source, bytes: k.bytes };
  if (!best) throw new Error('no module to instrument');
  return best;
}

/**
 * The instrumenter's speed on `mod`: FUEL_BENCH_INSTRUMENT_RUNS (default 7, at least 7) runs
 * after a warm-up; medians of wall and process CPU time (all threads). With
 * FUEL_BENCH_BASELINE (another instrument.ts, e.g. main's extracted with `git archive`), as
 * many runs of that one in the same process, alternating (ABBA), and the median of the
 * per-pair ratios.
 */
function instrumentThroughput(mod: { name: string; bytes: Uint8Array }) {
  const runs = Math.max(7, Number(process.env.FUEL_BENCH_INSTRUMENT_RUNS ?? 7));
  const fns = baseline ? { cur: instrument, base: baseline.instrument } : { cur: instrument };
  // Warm-up (JIT of the instrumenter).
  const outBytes = instrument(mod.bytes).bytes.length;
  for (let i = 0; i < 2; i++) for (const f of Object.values(fns)) f(mod.bytes);
  const times = {
    cur: { ms: [] as number[], cpu: [] as number[] },
    base: { ms: [] as number[], cpu: [] as number[] },
  };
  const loadavg = os.loadavg();
  const modes = Object.keys(fns) as (keyof typeof fns)[];
  for (let i = 0; i < runs * modes.length; i++) {
    // ABBA order, so neither side always runs first.
    const mode = modes.length === 1 ? 'cur' : i % 4 === 0 || i % 4 === 3 ? 'cur' : 'base';
    const f = fns[mode] ?? instrument;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f(mod.bytes);
    times[mode].ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    times[mode].cpu.push((c.user + c.system) / 1000);
  }
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) WebAssembly.validate(mod.bytes as Uint8Array<ArrayBuffer>);
  const validateMs = (performance.now() - t0) / 3;
  const rate = (t: { ms: number[]; cpu: number[] }) => {
    const med = median(t.ms);
    const medCpu = median(t.cpu);
    return {
      medianMs: med,
      mbPerSec: mod.bytes.length / 1e6 / (med / 1000),
      /** Process CPU time (all threads): what a loaded machine's wall time hides. */
      medianCpuMs: medCpu,
      mbPerCpuSec: mod.bytes.length / 1e6 / (medCpu / 1000),
      runsMs: t.ms,
      runsCpuMs: t.cpu,
    };
  };
  const ratio = (k: 'ms' | 'cpu') =>
    median(times.cur[k].map((x, i) => x / (times.base[k][i] ?? NaN)));
  return {
    module: mod.name,
    bytes: mod.bytes.length,
    outputBytes: outBytes,
    runs,
    loadavg,
    ...rate(times.cur),
    /** FUEL_BENCH_BASELINE's instrumenter in the same process, alternating; null without it. */
    baseline: baseline
      ? {
          path: baseline.path,
          version: baseline.INSTRUMENTER_VERSION,
          ...rate(times.base),
          /** Median over pairs of this instrumenter's time ÷ the baseline's. */
          wallRatio: ratio('ms'),
          cpuRatio: ratio('cpu'),
        }
      : null,
    /** instrument() validates its input once (the output only with `validateOutput`): */
    validateMs,
  };
}

function printThroughput(t: ReturnType<typeof instrumentThroughput>): void {
  const line = (r: {
    medianMs: number;
    mbPerSec: number;
    medianCpuMs: number;
    mbPerCpuSec: number;
  }) =>
    `${r.medianMs.toFixed(0)} ms = ${r.mbPerSec.toFixed(1)} MB/s wall, ` +
    `${r.medianCpuMs.toFixed(0)} ms = ${r.mbPerCpuSec.toFixed(1)} MB/s CPU`;
  console.log(
    `instrumentation: ${t.module} (${(t.bytes / 1e6).toFixed(2)} MB) in ${line(t)}, ` +
      `output ${(t.outputBytes / 1e6).toFixed(2)} MB (one WebAssembly.validate of the input: ` +
      `${t.validateMs.toFixed(0)} ms); median of ${t.runs}, load ${t.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
  );
  if (t.baseline) {
    console.log(
      `  baseline ${t.baseline.version} (${t.baseline.path}), same process, alternating: ` +
        `${line(t.baseline)}; this ÷ baseline: wall ${t.baseline.wallRatio.toFixed(3)}, ` +
        `CPU ${t.baseline.cpuRatio.toFixed(3)} (median over pairs)`,
    );
  }
}

// FUEL_BENCH_ONLY=instrument: the instrumenting speed alone (no kernels are built or timed),
// written to bench/results/fuel-instrument.json.
if (process.env.FUEL_BENCH_ONLY === 'instrument') {
  const big = biggestModule([
    {
      name: 'binaryen.js',
      source: 'node_modules/binaryen (bench/kernels/binaryen.ts)',
      bytes: await binaryenBytes(PROJECT_ROOT),
      args: [],
    },
  ]);
  const t = instrumentThroughput(big);
  printThroughput(t);
  if (!ALT) {
    const dir = join(PROJECT_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'fuel-instrument.json');
    const machine = {
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? '?',
    };
    const result = {
      name: 'fuel-instrument',
      date: new Date().toISOString(),
      machine,
      commit: gitCommit(),
      instrumenterVersion: INSTRUMENTER_VERSION,
      instrumentation: t,
    };
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`results written to ${file}`);
  }
  process.exit(0);
}

const loadBefore = os.loadavg();
const kernels = await buildKernels();
const pairs: Pair[] = [];
for (const k of kernels) pairs.push(await prepare(k));
const perRound = new Map<
  string,
  { plain: Row[]; fueled: Row[]; ratio: number[]; abRatio: number[] }
>();
for (const p of pairs)
  perRound.set(p.kernel.name, { plain: [], fueled: [], ratio: [], abRatio: [] });
for (let round = 0; round < ROUNDS; round++) {
  for (const p of pairs) {
    const m = measure(p, round % 2 === 1, round === 0);
    const acc = perRound.get(p.kernel.name);
    if (!acc) throw new Error('unreachable');
    acc.plain.push(m.plain);
    acc.fueled.push(m.fueled);
    acc.ratio.push(m.plain.opsPerSec / m.fueled.opsPerSec);
    if (m.alt) acc.abRatio.push(m.alt.opsPerSec / m.fueled.opsPerSec);
  }
  console.log(`round ${round + 1}/${ROUNDS} done`);
}

const summary = pairs.map((p) => {
  const acc = perRound.get(p.kernel.name);
  if (!acc) throw new Error('unreachable');
  return {
    kernel: p.kernel.name,
    source: p.kernel.source,
    plainOpsPerSec: median(acc.plain.map((r) => r.opsPerSec)),
    fueledOpsPerSec: median(acc.fueled.map((r) => r.opsPerSec)),
    slowdown: median(acc.ratio),
    slowdownPerRound: acc.ratio,
    fuelPerCall: Number(p.fuelPerCall),
    codeGrowth: p.codeGrowth,
    acc,
  };
});
const slowdowns = summary.map((s) => s.slowdown);
const gm = geomean(slowdowns);
const micro = summary.filter((s) => !s.kernel.includes('realistic')).map((s) => s.slowdown);
const worst = summary.reduce((a, b) => (b.slowdown > a.slowdown ? b : a));
const throughput = ONLY ? null : instrumentThroughput(biggestModule(kernels));

console.log(
  `\nfuel (${INSTRUMENTER_VERSION}, ${DEFAULT_COST_TABLE.version}; ${ROUNDS} rounds × ${TIME_MS} ms ${CLOCK} time per task; slowdown = median over rounds)`,
);
console.table(
  summary.map((s) => ({
    kernel: s.kernel,
    'plain ops/s': Math.round(s.plainOpsPerSec),
    'fuel ops/s': Math.round(s.fueledOpsPerSec),
    slowdown: `${s.slowdown.toFixed(3)}×`,
    'rounds min–max': `${Math.min(...s.slowdownPerRound).toFixed(2)}–${Math.max(...s.slowdownPerRound).toFixed(2)}`,
    'fuel/call': s.fuelPerCall,
    'size ×': s.codeGrowth.toFixed(2),
    ...(AB
      ? {
          'AB speed ÷ this': median(s.acc.abRatio).toFixed(3),
          'AB slowdown': (median(s.acc.ratio) * median(s.acc.abRatio)).toFixed(3),
        }
      : {}),
  })),
);
console.log(`geomean ${gm.toFixed(3)}× (kernels only: ${geomean(micro).toFixed(3)}×)`);
console.log(
  `load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
console.log(`worst   ${worst.slowdown.toFixed(3)}× (${worst.kernel})`);
if (throughput) printThroughput(throughput);

// Same shape as the other results files: rows with a ratio (here: to the kernel's own plain row).
const outRows = summary.flatMap((s) => {
  const pick = (xs: Row[], ops: number): Row =>
    xs.reduce((a, b) => (Math.abs(b.opsPerSec - ops) < Math.abs(a.opsPerSec - ops) ? b : a));
  const pr = pick(s.acc.plain, s.plainOpsPerSec);
  const fr = pick(s.acc.fueled, s.fueledOpsPerSec);
  return [
    { ...pr, name: `${s.kernel}: plain`, opsPerSec: s.plainOpsPerSec, ratio: 1 },
    {
      ...fr,
      name: `${s.kernel}: instrumented`,
      opsPerSec: s.fueledOpsPerSec,
      ratio: 1 / s.slowdown,
    },
  ];
});
const dir = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, 'fuel.json');
if (!PARTIAL) {
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        name: 'fuel',
        date: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?' },
        commit: gitCommit(),
        loadavgBefore: loadBefore,
        loadavgAfter: os.loadavg(),
        baseline: 'each kernel’s plain (uninstrumented) row',
        rows: outRows,
        instrumenterVersion: INSTRUMENTER_VERSION,
        costTable: DEFAULT_COST_TABLE.version,
        rounds: ROUNDS,
        timeMsPerTask: TIME_MS,
        clock: CLOCK === 'cpu' ? 'process CPU time (user + system)' : 'wall (performance.now)',
        kernels: summary.map(({ acc: _acc, ...s }) => s),
        geomeanSlowdown: gm,
        geomeanSlowdownKernelsOnly: geomean(micro),
        worstSlowdown: { kernel: worst.kernel, slowdown: worst.slowdown },
        instrumentation: throughput,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`results written to ${file}`);
}
