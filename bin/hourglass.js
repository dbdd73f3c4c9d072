#!/usr/bin/env node
// The `hourglass` command. It runs the compiled CLI in dist/ (built by `npm run build`, which
// `prepare`, `npm start` and `npm test` run): an installed package has only dist/ and needs no
// tsx. In a source checkout whose dist/ is missing or older than a source file, it runs the
// sources through tsx instead (a dev dependency there), so that a test or a developer never runs
// stale compiled code; `HOURGLASS_FROM_SOURCE=1` forces that.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'src', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

/** Newest modification time of the .ts/.sql files under `dir` (0 when there are none). */
function newestSource(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|sql)$/.test(e.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function useSources() {
  if (!existsSync(source)) return false; // an installed package: dist/ only
  if (process.env.HOURGLASS_FROM_SOURCE === '1' || !existsSync(compiled)) return true;
  const built = statSync(join(root, 'dist', '.build-stamp'), { throwIfNoEntry: false });
  if (!built) return true;
  const newest = Math.max(
    newestSource(join(root, 'src')),
    newestSource(join(root, 'host-functions')),
  );
  return newest >= built.mtimeMs;
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
