// Second half of `npm run build` (after `tsc -p tsconfig.build.json` compiled src/ and
// host-functions/ into dist/): copies the files tsc does not emit (the store's SQL migrations, the dashboard's page)
// and writes dist/.build-stamp, whose time bin/hourglass.js compares with the sources' in a
// checkout. Plain JavaScript so that building needs no tsx.
import { cpSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const migrations = join('src', 'store', 'migrations');
const pgMigrations = join('src', 'store', 'postgres', 'migrations');
cpSync(join(root, migrations), join(root, 'dist', migrations), { recursive: true });
cpSync(join(root, pgMigrations), join(root, 'dist', pgMigrations), { recursive: true });
const dashboard = join('src', 'api', 'dashboard');
cpSync(join(root, dashboard), join(root, 'dist', dashboard), { recursive: true });
writeFileSync(join(root, 'dist', '.build-stamp'), `${new Date().toISOString()}\n`);
