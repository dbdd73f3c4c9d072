/**
 * The two fuel commands of the CLI, as functions over already-parsed arguments that return
 * their text and exit code (the CLI wires argv and prints):
 *
 *   hourglass instrument IN.wasm -o OUT.wasm [--cost-table FILE.json]
 *   hourglass fuel GUEST.wasm --call EXPORT [--input TEXT] [--budget N]
 *
 * WASI guests get Hourglass's own deterministic WASI, as in the sandbox (no Node WASI).
 *
 * Exit codes: 0 success, 1 the guest call failed (trap, out of fuel, error), 2 bad input
 * (unreadable file, refused module, bad cost table).
 */
import createPlugin from '@extism/extism';
import type { CallContext } from '@extism/extism';
import { writeFile } from 'node:fs/promises';
import { DEFAULT_MAX_WASM_BYTES } from '../config/host-config.ts';
import { readJsonFile, readOperatorFile } from '../config/operator-file.ts';
import { parseCostTable } from './cost-table.ts';
import type { CostTable } from './cost-table.ts';
import { FuelError } from './errors.ts';
import { instrument } from './instrument.ts';
import { FuelMeter } from './meter.ts';
import { HOURGLASS_WASI, rewriteEntries } from '../sandbox/kernel/entry-rewrite.ts';
import { runGuestInit } from '../sandbox/kernel/guest-init.ts';
import { WasiKernel } from '../sandbox/kernel/wasi.ts';
import { checkWasiImports } from '../sandbox/kernel/wasi-abi.ts';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface InstrumentCommandArgs {
  readonly input: string;
  readonly output: string;
  readonly costTable?: string;
  readonly memoryMaxPages?: number;
  readonly maxCallDepth?: number;
}

export interface FuelCommandArgs {
  readonly guest: string;
  readonly call: string;
  readonly input?: string;
  /** @defaultValue 1e9 */
  readonly budget?: bigint | number;
  readonly costTable?: string;
}

const fail = (exitCode: number, stderr: string): CommandResult => ({
  exitCode,
  stdout: '',
  stderr,
});

async function loadCostTable(path: string | undefined): Promise<CostTable | undefined> {
  if (path === undefined) return undefined;
  const read = readJsonFile(path, 1024 * 1024);
  if (!read.ok) throw new FuelError('HG_FUEL_COST_TABLE', `${path}: ${read.problem}`);
  return parseCostTable(read.value);
}

function describe(err: unknown): string {
  return err instanceof FuelError ? `${err.code}: ${err.message}` : (err as Error).message;
}

export async function runInstrumentCommand(args: InstrumentCommandArgs): Promise<CommandResult> {
  const read = readOperatorFile(args.input, DEFAULT_MAX_WASM_BYTES);
  if (!read.ok) return fail(2, `${args.input}: ${read.problem}\n`);
  const original = read.bytes;
  try {
    const costTable = await loadCostTable(args.costTable);
    const { bytes, stats } = instrument(original, {
      ...(costTable ? { costTable } : {}),
      ...(args.memoryMaxPages !== undefined ? { memoryMaxPages: args.memoryMaxPages } : {}),
      ...(args.maxCallDepth !== undefined ? { maxCallDepth: args.maxCallDepth } : {}),
    });
    await writeFile(args.output, bytes);
    const ms = stats.durationMs.toFixed(1);
    return {
      exitCode: 0,
      stdout:
        `${args.output}: ${stats.functions} functions, ${stats.meteredBlocks} metered blocks, ` +
        `${stats.checkpoints} checks; ${stats.originalBytes} -> ${stats.instrumentedBytes} bytes in ${ms} ms\n`,
      stderr: '',
    };
  } catch (err) {
    return fail(2, `${describe(err)}\n`);
  }
}

export async function runFuelCommand(args: FuelCommandArgs): Promise<CommandResult> {
  const read = readOperatorFile(args.guest, DEFAULT_MAX_WASM_BYTES);
  if (!read.ok) return fail(2, `${args.guest}: ${read.problem}\n`);
  const original = read.bytes;
  // As in the sandbox: instrumented, then WASI and init entries renamed, so the guest gets
  // Hourglass's deterministic WASI (src/sandbox/kernel/wasi.ts) and the fuel is the sandbox's.
  let module: WebAssembly.Module;
  let entries: ReturnType<typeof rewriteEntries>;
  try {
    const costTable = await loadCostTable(args.costTable);
    entries = rewriteEntries(instrument(original, costTable ? { costTable } : {}).bytes);
    const problem = checkWasiImports(entries.wasiImports);
    if (problem) return fail(2, `${args.guest}: ${problem}\n`);
    module = await WebAssembly.compile(entries.bytes);
  } catch (err) {
    return fail(2, `${describe(err)}\n`);
  }
  let meter: FuelMeter | null = null;
  let memory: WebAssembly.Memory | null = null;
  const logs: string[] = [];
  const wasi = new WasiKernel(args.guest, {
    memory: () => memory,
    meter: () => meter,
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  // Imports outside Extism's kernel and WASI get stubs that fail the call.
  const functions: Record<
    string,
    Record<string, (cx: CallContext, ...a: (number | bigint)[]) => unknown>
  > = {
    [HOURGLASS_WASI]: wasi.functions(entries.wasiImports),
  };
  for (const imp of WebAssembly.Module.imports(module)) {
    if (
      imp.kind !== 'function' ||
      imp.module === 'extism:host/env' ||
      imp.module === HOURGLASS_WASI
    ) {
      continue;
    }
    const name = `${imp.module}.${imp.name}`;
    (functions[imp.module] ??= {})[imp.name] = () => {
      throw new Error(`host function ${name} is not available in 'hourglass fuel'`);
    };
  }
  const budget = BigInt(args.budget ?? 1_000_000_000);
  const plugin = await createPlugin({ wasm: [{ module }] }, { useWasi: false, functions });
  try {
    const instance = await plugin.getInstance();
    meter = new FuelMeter(instance);
    memory = instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : null;
    try {
      runGuestInit(instance, meter, wasi, Number(budget));
    } catch (err) {
      return fail(1, `init: ${(err as Error).message}\n`);
    }
    meter.setBudget(budget);
    wasi.begin(undefined);
    const t0 = performance.now();
    let output: string | null = null;
    let error: unknown;
    try {
      output = (await plugin.call(args.call, args.input ?? ''))?.text() ?? null;
    } catch (err) {
      error = err;
    }
    const ms = (performance.now() - t0).toFixed(2);
    wasi.end();
    const exit = wasi.exit;
    const settled = meter.settle(error);
    const outcome = exit ? `proc_exit(${exit.code})` : settled.outcome;
    const fuelUsed = exit ? exit.fuelUsed : settled.fuelUsed;
    const lines = [
      `outcome: ${outcome}`,
      `fuel used: ${fuelUsed} of ${budget} (remaining ${meter.remaining()})`,
      `time: ${ms} ms`,
    ];
    if (output !== null) lines.push(`output: ${output}`);
    if (error !== undefined && !exit)
      lines.push(`error: ${(error as Error).message ?? String(error)}`);
    for (const l of logs) lines.push(`log ${l}`);
    const failed = exit ? exit.code !== 0 : error !== undefined;
    return { exitCode: failed ? 1 : 0, stdout: `${lines.join('\n')}\n`, stderr: '' };
  } finally {
    await plugin.close();
  }
}
