/**
 * The Extism kernel's byte path (src/sandbox/kernel/extism-kernel.ts): what a guest pays to
 * move bytes through Extism's 8-byte calls. The official PDKs copy a call's input in with
 * `input_load_u64` and their output out with `store_u64` 8 bytes at a time (the AssemblyScript
 * proxy's 1,000 declarations are ~48 KB: ~6,000 calls each way, per plugin, at every discovery).
 *
 *   npm run build && npx tsx bench/kernel.bench.ts        (ROUNDS=7 BYTES=48000 COPIES=200)
 *
 * Each round times COPIES copies of BYTES bytes (input in, output out, output read back: three
 * calls per 8 bytes) through the compiled kernel's imports, alternating with the same loops on a
 * plain `DataView` (the baseline: the bytes without the kernel's bounds checks and block
 * table). Reported: sustained MB/s (bytes moved ÷ wall time) and ns per call, medians of the
 * rounds, and the kernel's time as a multiple of the baseline's. Results:
 * bench/results/kernel.json with load average, Node version, commit and cores.
 */
import type * as Kernel from '../src/sandbox/kernel/extism-kernel.ts';
import { median, writeResult } from './common.ts';
import { fromDist } from './built.ts';

const { ExtismKernel } = await fromDist<typeof Kernel>('src/sandbox/kernel/extism-kernel.js');

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const BYTES = Number(process.env.BYTES ?? 48_000) & ~7;
const COPIES = Number(process.env.COPIES ?? 200);

type U64 = (cx: unknown, addr: bigint, v?: bigint) => bigint | undefined;

const kernel = new ExtismKernel(
  { blockBytes: 4 * BYTES + 1024, varBytes: 0, logLines: 0 },
  {
    fault: (f) => {
      throw new Error(`kernel fault: ${JSON.stringify(f)}`);
    },
    charge: () => true,
    log: () => undefined,
  },
  {},
);
const fns = kernel.imports() as unknown as Record<string, U64>;
const alloc = fns.alloc as (cx: unknown, n: bigint) => bigint;
const inputLoad = fns.input_load_u64 as U64;
const store = fns.store_u64 as U64;
const load = fns.load_u64 as U64;
const input = new Uint8Array(BYTES).fill(0x41);
const n = BigInt(BYTES);

/** The guest's own memory (the PDK copies the input there, and its output from there). */
const guest = new BigUint64Array(BYTES / 8);

/**
 * One call's bytes through the kernel, as a PDK moves them: the input read whole into the
 * guest's memory, the output written whole from it, then read back (a host reading a block).
 * Returns a checksum, so nothing is optimised away.
 */
function throughKernel(): bigint {
  kernel.begin(input, BYTES);
  for (let i = 0n, j = 0; i < n; i += 8n, j++) guest[j] = inputLoad(null, i) as bigint;
  const out = alloc(null, n);
  for (let i = 0n, j = 0; i < n; i += 8n, j++) store(null, out + i, guest[j]);
  let sum = 0n;
  for (let i = 0n; i < n; i += 8n) sum += load(null, out + i) as bigint;
  kernel.end();
  return sum;
}

/** The same three passes on plain DataViews. */
function plain(): bigint {
  const src = new DataView(input.buffer);
  const dst = new DataView(new ArrayBuffer(BYTES));
  for (let i = 0, j = 0; i < BYTES; i += 8, j++) guest[j] = src.getBigUint64(i, true);
  for (let i = 0, j = 0; i < BYTES; i += 8, j++) dst.setBigUint64(i, guest[j] as bigint, true);
  let sum = 0n;
  for (let i = 0; i < BYTES; i += 8) sum += dst.getBigUint64(i, true);
  return sum;
}

function timeMs(f: () => bigint): number {
  let check = 0n;
  const t0 = performance.now();
  for (let c = 0; c < COPIES; c++) check ^= f();
  const ms = performance.now() - t0;
  if (check === -1n) console.log('unreachable');
  return ms;
}

// Warm-up: both paths optimised before the first timed round.
timeMs(throughKernel);
timeMs(plain);
const kernelMs: number[] = [];
const plainMs: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  kernelMs.push(timeMs(throughKernel));
  plainMs.push(timeMs(plain));
}
const calls = (3 * BYTES * COPIES) / 8;
const bytesMoved = 2 * BYTES * COPIES; // in, and out (the read-back checks it)
const summary = (ms: number) => ({
  ms: Number(ms.toFixed(1)),
  mbPerSec: Number((bytesMoved / 2 ** 20 / (ms / 1000)).toFixed(1)),
  nsPerCall: Number(((ms * 1e6) / calls).toFixed(1)),
});
const k = summary(median(kernelMs));
const p = summary(median(plainMs));
console.table({ kernel: k, 'plain DataView (baseline)': p });
const ratio = Number((median(kernelMs) / median(plainMs)).toFixed(2));
console.log(`kernel time ÷ baseline: ${ratio}x`);
writeResult('kernel', {
  params: { rounds: ROUNDS, bytes: BYTES, copies: COPIES, callsPerRound: calls },
  median: { kernel: k, plain: p, kernelOverPlain: ratio },
  rounds: { kernelMs: kernelMs.map((x) => Number(x.toFixed(1))), plainMs },
});
