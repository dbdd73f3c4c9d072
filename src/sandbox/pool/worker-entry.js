// Worker bootstrap: the project runs TypeScript sources through tsx, which a worker's first
// module does not inherit from --import; register it here, then load the real worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
