#!/usr/bin/env node
// The `hourglass` command. It runs the compiled CLI in dist/ (built by `npm run build`, which
// `prepare`, `npm start` and `npm test` run): an installed package has only dist/ and needs no
// tsx. In a source checkout whose dist/ is missing or older than a source file, it runs the
// sources through tsx instead (a dev dependency there), so that a test or a developer never runs
// stale compiled code; `HOURGLASS_FROM_SOURCE=1` forces that.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distStaleness } from './dist-stale.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'src', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

function useSources() {
  if (!existsSync(source)) return false; // an installed package: dist/ only
  if (process.env.HOURGLASS_FROM_SOURCE === '1' || !existsSync(compiled)) return true;
  return distStaleness(root) !== null;
}

// Node's experimental-feature warnings (WASI, type stripping) are noise for an operator.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
});
let main;
if (useSources()) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import('../dist/src/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
