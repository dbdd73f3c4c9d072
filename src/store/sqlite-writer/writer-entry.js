// Writer-thread bootstrap when Hourglass runs from its TypeScript sources (tests, development):
// a worker's first module does not inherit tsx from --import, so register it here. Compiled
// (dist/), the store boots writer-main.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./writer-main.ts');
