/**
 * The external tools the differential tests need. They are required, never optional: a
 * missing tool fails the test with the Debian package to install (CI installs both).
 */
import { spawnSync } from 'node:child_process';

export function requireTool(
  command: string,
  args: readonly string[],
  aptPackage: string,
  path?: string,
): string {
  const exe = path ?? command;
  const r = spawnSync(exe, [...args], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const where = process.env.CI === 'true' ? 'CI must install it' : 'install it';
    throw new Error(
      `${exe} is required for this test but is not available (${r.error?.message ?? `exit ${r.status}`}); ` +
        `${where}: apt-get install -y ${aptPackage}`,
    );
  }
  return exe;
}

/** `WebAssembly.Exception` (Node 20 ships it; TypeScript's DOM-less lib does not declare it). */
export const WasmException = (
  WebAssembly as unknown as { Exception: abstract new (...args: never[]) => object }
).Exception;
