/**
 * The two fuel commands of the CLI, as functions over already-parsed arguments that return
 * their text and exit code (the CLI wires argv and prints):
 *
 *   hourglass instrument IN.wasm -o OUT.wasm [--cost-table FILE.json]
 *   hourglass fuel GUEST.wasm --call EXPORT [--input TEXT] [--budget N]
 *
 * Exit codes: 0 success, 1 the guest call failed (trap, out of fuel, error), 2 bad input
 * (unreadable file, refused module, bad cost table).
 */
import createPlugin from '@extism/extism';
import type { CallContext } from '@extism/extism';
import { readFile, writeFile } from 'node:fs/promises';
import { parseCostTable } from './cost-table.ts';
import type { CostTable } from './cost-table.ts';
import { FuelError } from './errors.ts';
import { instrument } from './instrument.ts';
import { FuelMeter } from './meter.ts';

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
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new FuelError('HG_FUEL_COST_TABLE', `cannot read ${path}: ${(err as Error).message}`);
  }
  return parseCostTable(json);
}

function describe(err: unknown): string {
  return err instanceof FuelError ? `${err.code}: ${err.message}` : (err as Error).message;
}

export async function runInstrumentCommand(args: InstrumentCommandArgs): Promise<CommandResult> {
  let original: Uint8Array;
  try {
    original = await readFile(args.input);
  } catch (err) {
    return fail(2, `cannot read ${args.input}: ${(err as Error).message}\n`);
  }
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
  let original: Uint8Array;
  try {
    original = await readFile(args.guest);
  } catch (err) {
    return fail(2, `cannot read ${args.guest}: ${(err as Error).message}\n`);
  }
  let module: WebAssembly.Module;
  try {
    const costTable = await loadCostTable(args.costTable);
    module = await WebAssembly.compile(instrument(original, costTable ? { costTable } : {}).bytes);
  } catch (err) {
    return fail(2, `${describe(err)}\n`);
  }
  // Imports outside Extism's kernel and WASI get stubs that fail the call.
  const functions: Record<string, Record<string, (cx: CallContext, ...a: unknown[]) => never>> = {};
  let useWasi = false;
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === 'wasi_snapshot_preview1') useWasi = true;
    if (
      imp.kind !== 'function' ||
      imp.module === 'extism:host/env' ||
      imp.module === 'wasi_snapshot_preview1'
    ) {
      continue;
    }
    const name = `${imp.module}.${imp.name}`;
    (functions[imp.module] ??= {})[imp.name] = () => {
      throw new Error(`host function ${name} is not available in 'hourglass fuel'`);
    };
  }
  const budget = BigInt(args.budget ?? 1_000_000_000);
  const plugin = await createPlugin({ wasm: [{ module }] }, { useWasi, functions });
  try {
    const meter = new FuelMeter(await plugin.getInstance());
    meter.setBudget(budget);
    const t0 = performance.now();
    let output: string | null = null;
    let error: unknown;
    try {
      output = (await plugin.call(args.call, args.input ?? ''))?.text() ?? null;
    } catch (err) {
      error = err;
    }
    const ms = (performance.now() - t0).toFixed(2);
    const { outcome, fuelUsed } = meter.settle(error);
    const lines = [
      `outcome: ${outcome}`,
      `fuel used: ${fuelUsed} of ${budget} (remaining ${meter.remaining()})`,
      `time: ${ms} ms`,
    ];
    if (output !== null) lines.push(`output: ${output}`);
    if (error !== undefined) lines.push(`error: ${(error as Error).message ?? String(error)}`);
    return { exitCode: error === undefined ? 0 : 1, stdout: `${lines.join('\n')}\n`, stderr: '' };
  } finally {
    await plugin.close();
  }
}
