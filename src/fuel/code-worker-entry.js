// The fuel instrumenter's helper thread when Hourglass runs from its TypeScript sources (tests,
// development): a worker's first module does not inherit tsx from --import, so register it
// here, then load the helper. Compiled (dist/), code-helper.ts boots code-worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./code-worker.ts');
