// Whether a checkout's compiled dist/ is missing or older than its sources (shared by
// bin/hourglass.js, which then runs the sources through tsx, and bench/built.ts, which refuses
// to measure stale code). Compares dist/.build-stamp (written by `npm run build`) with the
// newest .ts/.sql (or dashboard .html/.js/.css) file under src/ and host-functions/. Plain JavaScript: it runs without tsx.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time of the source files under `dir` (0 when there are none). */
function newestSource(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|sql|html|js|css)$/.test(e.name))
      newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Why `root`'s dist/ cannot be trusted ('missing' or 'stale', with the newer source's time), or
 * null when it is built and newer than every source.
 * @param {string} root the package's root folder
 * @returns {string | null}
 */
export function distStaleness(root) {
  const built = statSync(join(root, 'dist', '.build-stamp'), { throwIfNoEntry: false });
  if (!built) return 'dist/ is missing (no dist/.build-stamp)';
  const newest = Math.max(
    newestSource(join(root, 'src')),
    newestSource(join(root, 'host-functions')),
  );
  if (newest >= built.mtimeMs) {
    return `dist/ is stale: a source file changed at ${new Date(newest).toISOString()}, after the build at ${built.mtime.toISOString()}`;
  }
  return null;
}
