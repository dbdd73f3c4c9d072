/** Why `root`'s dist/ is missing or older than its sources, or null when it is fresh. */
export function distStaleness(root: string): string | null;
