// Net-thread bootstrap when Hourglass runs from its TypeScript sources (tests, development): a
// worker's first module does not inherit tsx from --import, so register it here. Compiled
// (dist/), the net thread boots net-main.js directly (client.ts picks which).
import { register } from 'tsx/esm/api';

register();
await import('./net-main.ts');
