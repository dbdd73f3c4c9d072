/** Prints `runHostileKernels(budget)` as JSON; run under a V8 tier flag by fuel-limits.test.ts. */
import { runHostileKernels } from './hostile-kernels.ts';

process.stdout.write(JSON.stringify(runHostileKernels(BigInt(process.argv[2] ?? '1000000'))));
