#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (the project ships TypeScript sources; no build step).
import { register } from 'tsx/esm/api';

process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
});
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
