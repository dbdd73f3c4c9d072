// Runs a command beside a throwaway PostgreSQL: `node scripts/postgres-for-tests.mjs -- <command…>`.
// `npm test` runs the suite through it, so the PostgreSQL tests need no server set up beforehand.
//
// - With HOURGLASS_TEST_PG_URL already set, it only runs the command (an existing server; the
//   tests create and drop their own databases in it).
// - Otherwise it makes a cluster in a fresh temp dir (initdb, trust auth, C locale), starts it
//   with `pg_ctl start` on 127.0.0.1 and a free port (bound to port 0 first; retried when another
//   process takes it meanwhile), its Unix socket inside the temp dir, with durability off for
//   speed (fsync, synchronous_commit, full_page_writes). It waits until a TCP connection succeeds,
//   runs the command with HOURGLASS_TEST_PG_URL=postgres://postgres@127.0.0.1:<port>/postgres,
//   then stops the server (`pg_ctl stop -m immediate`), removes the dir and exits with the
//   command's status. SIGINT/SIGTERM/SIGHUP are passed to the command and the cluster is still
//   stopped; a detached watchdog shell does the same within a second if this process is
//   SIGKILLed.
// - Binaries: initdb and pg_ctl from PATH, else the newest /usr/lib/postgresql/<version>/bin (a
//   fresh Debian has them only there). None found is an error, never a skip.
// - initdb and postgres refuse to run as root: as root they run as the `postgres` system user
//   (created by Debian's package) through runuser, and the temp dir is given to that user.
// Plain Node ESM (no tsx), so it works before anything is compiled.
import { spawn, spawnSync } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  chownSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const URL_VAR = 'HOURGLASS_TEST_PG_URL';
const START_TIMEOUT_S = 120; // generous: CI machines and the tests themselves can be busy
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function log(message) {
  process.stderr.write(`postgres-for-tests: ${message}\n`);
}

class Interrupted extends Error {}

/** The dir holding initdb, pg_ctl and postgres: PATH first, then Debian's newest version. */
function findBinDir() {
  const has = (dir) => ['initdb', 'pg_ctl', 'postgres'].every((b) => isExecutable(join(dir, b)));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'initdb'))) {
      const real = dirname(realpathSync(join(dir, 'initdb'))); // /usr/local/bin/initdb → its version's dir
      if (has(real)) return real;
      if (has(dir)) return dir;
    }
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+(\.\d+)?$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions) if (has(join(root, v, 'bin'))) return join(root, v, 'bin');
  return undefined;
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** uid/gid of the `postgres` user when running as root (initdb refuses root), else undefined. */
function serverUser() {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) {
    throw new Error(
      "running as root, but there is no `postgres` user to run the server as (Debian's postgresql package creates it)",
    );
  }
  const [, , uid, gid] = line.split(':');
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find(isExecutable);
  if (!runuser) throw new Error('running as root, but runuser (util-linux) is missing');
  return { uid: Number(uid), gid: Number(gid), runuser };
}

/** The argv that runs a PostgreSQL binary: as `postgres` through runuser when we are root. */
function pgCommand(cluster, bin, args) {
  const file = join(cluster.binDir, bin);
  return cluster.user
    ? [cluster.user.runuser, '-u', 'postgres', '--', file, ...args]
    : [file, ...args];
}

/** Runs a PostgreSQL binary; resolves with its exit status and output. */
function runPg(cluster, bin, args) {
  const [cmd, ...argv] = pgCommand(cluster, bin, args);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: cluster.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk) => (output += chunk);
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => resolve({ status: -1, output: `${output}${err.message}\n` }));
    child.on('close', (status) => resolve({ status: status ?? -1, output }));
  });
}

function runPgSync(cluster, bin, args) {
  const [cmd, ...argv] = pgCommand(cluster, bin, args);
  return spawnSync(cmd, argv, { cwd: cluster.dir, stdio: 'ignore', timeout: 60_000 }).status;
}

/**
 * A detached shell that stops the server and removes the dir once this process is gone, so a
 * SIGKILL of the wrapper (or of its whole process group) leaves nothing running. On a normal
 * exit the wrapper has cleaned up already and kills it.
 */
function startWatchdog(cluster) {
  const stop = pgCommand(cluster, 'pg_ctl', ['stop', '-D', cluster.data, '-m', 'immediate']);
  const script =
    'p=$1 d=$2; shift 2; while kill -0 "$p" 2>/dev/null; do sleep 1; done; ' +
    '[ -e "$d/data/postmaster.pid" ] && "$@" >/dev/null 2>&1; rm -rf "$d"';
  const child = spawn(
    '/bin/sh',
    ['-c', script, 'pg-watchdog', String(process.pid), cluster.dir, ...stop],
    {
      cwd: '/',
      detached: true,
      stdio: 'ignore',
    },
  );
  child.unref();
  return child;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A temp dir the server's user may write in (TMPDIR may be one it cannot reach, e.g. /root/…). */
function makeDir(user) {
  for (const base of [tmpdir(), '/tmp']) {
    const dir = mkdtempSync(join(base, 'hourglass-pg-'));
    if (!user) return dir;
    chownSync(dir, user.uid, user.gid);
    const probe = spawnSync(user.runuser, ['-u', 'postgres', '--', 'test', '-w', dir], {
      cwd: '/',
    });
    if (probe.status === 0) return dir;
    rmSync(dir, { recursive: true, force: true });
  }
  throw new Error(`the postgres user cannot write to a temp dir in ${tmpdir()} or /tmp`);
}

async function startCluster(state) {
  const binDir = findBinDir();
  if (!binDir) {
    throw new Error(
      `no PostgreSQL binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin: install Debian's postgresql package, or set ${URL_VAR} to a database the tests may create databases in`,
    );
  }
  const user = serverUser();
  const dir = makeDir(user);
  const cluster = { binDir, user, dir, data: join(dir, 'data'), started: false };
  state.cluster = cluster;
  cluster.watchdog = startWatchdog(cluster);
  const checkpoint = () => {
    if (state.signal) throw new Interrupted();
  };

  const init = await runPg(cluster, 'initdb', [
    ...['-D', cluster.data, '-U', 'postgres', '-A', 'trust'],
    ...['-E', 'UTF8', '--locale=C', '--no-sync'],
  ]);
  checkpoint();
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.output}`);
  appendFileSync(
    join(cluster.data, 'postgresql.conf'),
    [
      '',
      '# postgres-for-tests.mjs: a throwaway cluster for tests',
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 200',
      '',
    ].join('\n'),
  );

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    checkpoint();
    cluster.started = true; // from here on, stopping is needed (pg_ctl may have launched it)
    const start = await runPg(cluster, 'pg_ctl', [
      ...['start', '-D', cluster.data, '-l', join(dir, 'server.log')],
      ...['-w', '-t', String(START_TIMEOUT_S), '-o', `-p ${port}`],
    ]);
    checkpoint();
    if (start.status === 0) {
      cluster.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      break;
    }
    const serverLog = readLog(cluster);
    if (attempt < 5 && /could not bind|address already in use/i.test(serverLog)) {
      log(`port ${port} was taken meanwhile; trying another`);
      continue;
    }
    throw new Error(`pg_ctl start failed:\n${start.output}\n--- server log ---\n${serverLog}`);
  }
  await waitForConnection(cluster.url, checkpoint);
  return cluster;
}

function readLog(cluster) {
  try {
    return readFileSync(join(cluster.dir, 'server.log'), 'utf8');
  } catch {
    return '';
  }
}

/** pg_ctl -w waits on the socket; this proves the TCP listener the tests use. */
async function waitForConnection(url, checkpoint) {
  const deadline = Date.now() + START_TIMEOUT_S * 1000;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the server does not accept connections: ${err}`);
    } finally {
      await client.end().catch(() => {});
    }
    checkpoint();
    await sleep(200);
  }
}

/** Synchronous, so that it also runs from an 'exit' handler. Idempotent. */
function stopCluster(state) {
  const cluster = state.cluster;
  if (!cluster) return;
  state.cluster = undefined;
  if (cluster.started) {
    // pg_ctl start may have been interrupted before the postmaster wrote its pid file.
    const pidFile = join(cluster.data, 'postmaster.pid');
    for (let i = 0; i < 50 && !existsSync(pidFile); i++) sleepSync(100);
    if (existsSync(pidFile)) {
      const status = runPgSync(cluster, 'pg_ctl', [
        'stop',
        '-D',
        cluster.data,
        '-m',
        'immediate',
        '-w',
      ]);
      if (status !== 0) killPostmaster(pidFile);
    }
  }
  rmSync(cluster.dir, { recursive: true, force: true });
  try {
    process.kill(-cluster.watchdog.pid, 'SIGTERM'); // its group: the shell and its `sleep`
  } catch {
    // already gone
  }
}

function killPostmaster(pidFile) {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGKILL'); // backends exit when they see the postmaster gone
  } catch {
    // already gone
  }
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs the command with `env`; resolves with its exit code or terminating signal. */
function runCommand(argv, env, state) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env });
    state.child = child;
    child.on('error', (err) => {
      log(`cannot run ${argv[0]}: ${err.message}`);
      resolve({ code: 127 });
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf('--');
  const command = sep >= 0 ? argv.slice(sep + 1) : argv;
  if (command.length === 0) {
    log('usage: node scripts/postgres-for-tests.mjs -- <command> [args…]');
    return 2;
  }
  const state = { cluster: undefined, child: undefined, signal: undefined };
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      state.signal ??= signal;
      // The command, when in our process group (a terminal's ^C), has the signal already;
      // a second SIGINT/SIGTERM is harmless to it.
      if (state.child && state.child.exitCode === null) state.child.kill(signal);
    });
  }
  process.on('exit', () => stopCluster(state));

  let env = process.env;
  if (!process.env[URL_VAR]) {
    try {
      const cluster = await startCluster(state);
      env = { ...process.env, [URL_VAR]: cluster.url };
    } catch (err) {
      stopCluster(state);
      if (err instanceof Interrupted) return reraise(state.signal);
      log(err instanceof Error ? err.message : String(err));
      return 1;
    }
  }
  const { code, signal } = await runCommand(command, env, state);
  stopCluster(state);
  if (signal) return reraise(signal);
  if (state.signal && code === 0) return reraise(state.signal);
  return code ?? 1;
}

/** Dies of the signal itself (after cleaning up), so callers see how the run ended. */
function reraise(signal) {
  if (SIGNALS.includes(signal)) {
    for (const s of SIGNALS) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  }
  return 128 + (osConstants.signals[signal] ?? 0);
}

process.exitCode = await main();
