/**
 * Builds the example and test guests:
 *
 * - every `guest-examples/assemblyscript/<name>/assembly/index.ts` into
 *   `guest-examples/assemblyscript/<name>/build/<name>.wasm` (assemblyscript's `asc`),
 * - every `guest-examples/wat/<name>.wat` into `guest-examples/wat/build/<name>.wasm` (wabt),
 * - every Rust guest `guest-examples/rust/<name>/` (a cdylib crate of the Cargo workspace in
 *   `guest-examples/rust`) into `guest-examples/rust/<name>/build/<name>.wasm`: Debian's cargo +
 *   rustc 1.63 for `wasm32-unknown-unknown` (apt: rustc cargo libstd-rust-dev-wasm32). One
 *   `cargo build --release --locked` for all of them, with CARGO_HOME and the target folder in
 *   `guest-examples/rust/build/` (the first build fetches the crates pinned in Cargo.lock from
 *   crates.io's sparse index; later builds need no network),
 * - every Go guest `guest-examples/go/<name>/` (a main package of the Go module in
 *   `guest-examples/go`) into `guest-examples/go/<name>/build/<name>.wasm`: Go >= 1.24,
 *   `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared` (the first build downloads the modules
 *   in go.mod/go.sum through the Go module proxy into Go's module cache; later builds are offline).
 *
 * A guest's folder is a guest when it has a `hourglass.json` manifest.
 *
 * An output newer than all its inputs is left alone. Outputs are written to a temporary file
 * and renamed, so a concurrent reader never sees half a module. Each guest's line is printed as
 * it finishes (a compile announces itself when it starts). Usage:
 * `npx tsx scripts/build-guests.ts [--force] [--list] [--only LANG/NAME,...] [--for-config
 * [--config FILE]]` (alias `npm run build:guests`): every guest by default, or only those named,
 * or those a host configuration runs (guest-selection.ts); a language none of the selected
 * guests uses is not looked at (`npm start` needs no Rust or Go). `--list` prints the selection.
 *
 * A missing Rust or Go toolchain is never silent: the script prints which one is missing and how
 * to install it, writes that message to `guest-examples/<lang>/build/TOOLCHAIN-MISSING.txt` (the
 * SDK tests fail with it), and exits non-zero when `CI=true`; elsewhere it builds the rest.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import wabtInit from 'wabt';
import { type BuildRequest, parseBuildRequest, ROOT, wantsLanguage } from './guest-selection.ts';

const AS_DIR = join(ROOT, 'guest-examples', 'assemblyscript');
const AS_LIB = join(AS_DIR, 'lib');
const WAT_DIR = join(ROOT, 'guest-examples', 'wat');
const RUST_DIR = join(ROOT, 'guest-examples', 'rust');
const GO_DIR = join(ROOT, 'guest-examples', 'go');
const SELF = fileURLToPath(import.meta.url);
/** The file a skipped language's build leaves behind; the SDK tests fail with its text. */
const TOOLCHAIN_MISSING_FILE = 'TOOLCHAIN-MISSING.txt';
const ASC_BIN = join(ROOT, 'node_modules', 'assemblyscript', 'bin', 'asc.js');

/**
 * asc flags. The default (incremental) runtime is kept because instances live across calls and
 * a stub runtime never frees. `env.abort` stays imported so the host can report abort messages.
 */
const ASC_FLAGS = ['-O3', '--noAssert', '--runtime', 'incremental', '--noColors'];

/** Post-MVP features the .wat guests may use (all supported by Node 20). */
const WAT_FEATURES = {
  mutable_globals: true,
  sign_extension: true,
  sat_float_to_int: true,
  multi_value: true,
  bulk_memory: true,
  reference_types: true,
  exceptions: true,
};

interface Guest {
  /** e.g. `assemblyscript/poller` or `wat/trap`. */
  label: string;
  output: string;
  inputs: string[];
  compile: () => Promise<Uint8Array>;
}

class GuestBuildError extends Error {}

/** Files under `dir` (recursively) whose names end with `ext`. */
async function filesUnder(dir: string, ext: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'build') found.push(...(await filesUnder(path, ext)));
    else if (entry.isFile() && entry.name.endsWith(ext)) found.push(path);
  }
  return found;
}

function packageFile(name: string): string {
  return join(ROOT, 'node_modules', name, 'package.json');
}

async function assemblyScriptGuests(): Promise<Guest[]> {
  if (!existsSync(AS_DIR)) return [];
  const guests: Guest[] = [];
  const libFiles = await filesUnder(AS_LIB, '.ts');
  for (const entry of await readdir(AS_DIR, { withFileTypes: true })) {
    const entryFile = join(AS_DIR, entry.name, 'assembly', 'index.ts');
    if (!entry.isDirectory() || !existsSync(entryFile)) continue;
    const name = entry.name;
    const output = join(AS_DIR, name, 'build', `${name}.wasm`);
    const inputs = [
      ...(await filesUnder(join(AS_DIR, name, 'assembly'), '.ts')),
      ...libFiles,
      packageFile('assemblyscript'),
      packageFile('@extism/as-pdk'),
      SELF,
    ];
    guests.push({
      label: `assemblyscript/${name}`,
      output,
      inputs,
      compile: () => compileAssemblyScript(entryFile, output),
    });
  }
  return guests;
}

/**
 * Runs asc in a child `node` (not through tsx: tsx makes importing asc's bundled binaryen take
 * ~10 s) and returns the module it wrote.
 */
async function compileAssemblyScript(entryFile: string, output: string): Promise<Uint8Array> {
  if (!existsSync(ASC_BIN)) throw new GuestBuildError(`${ASC_BIN} is missing: run npm ci`);
  const tmp = `${output}.${process.pid}.tmp.wasm`;
  await mkdir(dirname(output), { recursive: true });
  const args = [ASC_BIN, relative(ROOT, entryFile), '--outFile', tmp, ...ASC_FLAGS];
  const { code, text } = await runTool(process.execPath, args, ROOT);
  try {
    if (code !== 0 || !existsSync(tmp)) {
      throw new GuestBuildError(`${text.trim()}\nasc exited with code ${code}`);
    }
    return await readFile(tmp);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Runs a tool and collects its output (stdout and stderr interleaved). */
function runTool(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; text: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (text += d.toString('utf8')));
    child.on('error', fail);
    child.on('close', (code) => ok({ code, text }));
  });
}

/** Folders directly under `dir` that hold a guest (`hourglass.json`). */
async function guestFolders(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'hourglass.json')))
    .map((e) => e.name)
    .sort();
}

async function sourcesUnder(dir: string, exts: readonly string[]): Promise<string[]> {
  return (await Promise.all(exts.map((ext) => filesUnder(dir, ext)))).flat();
}

/** Whether a toolchain is usable; `problem` says exactly what is missing and how to install it. */
type Toolchain = { ok: true; command: string; version: string } | { ok: false; problem: string };

function versionOf(command: string, args: readonly string[]): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}`.trim() : null;
}

/** Debian's rustc lives in /usr/bin; rustup's (first in PATH here) has no wasm32 target. */
const RUSTC = process.env.HOURGLASS_RUSTC ?? '/usr/bin/rustc';
const CARGO = process.env.HOURGLASS_CARGO ?? '/usr/bin/cargo';
const RUST_INSTALL =
  'install it with: sudo apt-get install rustc cargo libstd-rust-dev-wasm32 ' +
  "(Debian's rustc has the wasm32 standard library; a rustup toolchain without the wasm32 " +
  'target does not work; HOURGLASS_RUSTC / HOURGLASS_CARGO point at another rustc / cargo)';

function rustToolchain(): Toolchain {
  const rustc = versionOf(RUSTC, ['--version']);
  if (!rustc) return { ok: false, problem: `Rust: ${RUSTC} not found; ${RUST_INSTALL}` };
  const sysroot = versionOf(RUSTC, ['--print', 'sysroot']);
  if (!sysroot || !existsSync(join(sysroot, 'lib', 'rustlib', 'wasm32-unknown-unknown'))) {
    return {
      ok: false,
      problem: `Rust: ${RUSTC} (${rustc}) has no wasm32-unknown-unknown standard library; ${RUST_INSTALL}`,
    };
  }
  const cargo = versionOf(CARGO, ['--version']);
  if (!cargo) return { ok: false, problem: `Rust: ${CARGO} not found; ${RUST_INSTALL}` };
  return { ok: true, command: CARGO, version: `${rustc}, ${cargo}` };
}

const GO_INSTALL =
  'Go guests need Go >= 1.24 (wasip1 with go:wasmexport); install it from https://go.dev/dl ' +
  "into /usr/local/go (Debian's golang package is 1.19, too old) and put /usr/local/go/bin in PATH";

function goToolchain(): Toolchain {
  for (const command of ['go', '/usr/local/go/bin/go']) {
    const v = versionOf(command, ['env', 'GOVERSION']);
    if (!v) continue;
    const m = /^go(\d+)\.(\d+)/.exec(v);
    if (m && (Number(m[1]) > 1 || Number(m[2]) >= 24)) return { ok: true, command, version: v };
    return { ok: false, problem: `Go: ${command} is ${v}; ${GO_INSTALL}` };
  }
  return { ok: false, problem: `Go: no go command found; ${GO_INSTALL}` };
}

/** Cargo before 1.68 reaches crates.io only through the (unstable there) sparse index. */
function cargoArgs(cargoVersion: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const m = /cargo (\d+)\.(\d+)/.exec(cargoVersion);
  const old = m !== null && Number(m[1]) === 1 && Number(m[2]) < 68;
  return old
    ? {
        args: ['-Z', 'sparse-registry'],
        // Lets this stable cargo accept `-Z sparse-registry` (affects cargo only, not rustc).
        env: { __CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS: 'nightly' },
      }
    : { args: [], env: {} };
}

async function rustGuests(toolchain: Extract<Toolchain, { ok: true }>): Promise<Guest[]> {
  const names = await guestFolders(RUST_DIR);
  const inputs = [...(await sourcesUnder(RUST_DIR, ['.rs', '.toml', 'Cargo.lock'])), SELF];
  const buildDir = join(RUST_DIR, 'build');
  const extra = cargoArgs(toolchain.version);
  let cargoRun: Promise<void> | null = null;
  const cargoBuild = () =>
    (cargoRun ??= (async () => {
      const args = [
        ...extra.args,
        'build',
        '--release',
        '--locked',
        '--target',
        'wasm32-unknown-unknown',
        ...names.flatMap((n) => ['-p', n]),
      ];
      const env = {
        ...process.env,
        ...extra.env,
        RUSTC,
        CARGO_HOME: join(buildDir, 'cargo-home'),
        CARGO_TARGET_DIR: join(buildDir, 'target'),
        CARGO_TERM_COLOR: 'never',
      };
      const { code, text } = await runTool(toolchain.command, args, RUST_DIR, env);
      if (code !== 0) {
        const lines = text.split('\n').filter((l) => !l.includes('rustc-check-cfg'));
        throw new GuestBuildError(`${lines.join('\n').trim()}\ncargo exited with code ${code}`);
      }
    })());
  return names.map((name) => ({
    label: `rust/${name}`,
    output: join(RUST_DIR, name, 'build', `${name}.wasm`),
    inputs,
    compile: async () => {
      await cargoBuild();
      const artifact = `${name.replaceAll('-', '_')}.wasm`;
      return readFile(join(buildDir, 'target', 'wasm32-unknown-unknown', 'release', artifact));
    },
  }));
}

async function goGuests(toolchain: Extract<Toolchain, { ok: true }>): Promise<Guest[]> {
  const names = await guestFolders(GO_DIR);
  const inputs = [...(await sourcesUnder(GO_DIR, ['.go', 'go.mod', 'go.sum'])), SELF];
  return names.map((name) => {
    const output = join(GO_DIR, name, 'build', `${name}.wasm`);
    return {
      label: `go/${name}`,
      output,
      inputs,
      compile: async () => {
        const tmp = `${output}.${process.pid}.tmp.wasm`;
        await mkdir(dirname(output), { recursive: true });
        const args = ['build', '-buildmode=c-shared', '-trimpath', '-buildvcs=false'];
        const env = { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm', GOTOOLCHAIN: 'local' };
        try {
          const r = await runTool(
            toolchain.command,
            [...args, '-o', tmp, `./${name}`],
            GO_DIR,
            env,
          );
          if (r.code !== 0 || !existsSync(tmp)) {
            throw new GuestBuildError(`${r.text.trim()}\ngo build exited with code ${r.code}`);
          }
          return await readFile(tmp);
        } finally {
          await rm(tmp, { force: true });
        }
      },
    };
  });
}

/**
 * The guests of one toolchain language, or none (with a loud warning and a marker file for the
 * tests) when its toolchain is missing.
 */
async function toolchainGuests(
  dir: string,
  detect: () => Toolchain,
  guests: (t: Extract<Toolchain, { ok: true }>) => Promise<Guest[]>,
  missing: string[],
): Promise<Guest[]> {
  if ((await guestFolders(dir)).length === 0) return [];
  const marker = join(dir, 'build', TOOLCHAIN_MISSING_FILE);
  const toolchain = detect();
  if (toolchain.ok) {
    await rm(marker, { force: true });
    return guests(toolchain);
  }
  missing.push(toolchain.problem);
  await mkdir(dirname(marker), { recursive: true });
  await writeFile(marker, `${toolchain.problem}\n`);
  return [];
}

async function watGuests(): Promise<Guest[]> {
  const wabt = await wabtInit();
  const sources = existsSync(WAT_DIR)
    ? (await readdir(WAT_DIR)).filter((f) => f.endsWith('.wat')).map((f) => join(WAT_DIR, f))
    : [];
  return sources.map((source) => {
    const name = basename(source, '.wat');
    return {
      label: `wat/${name}`,
      output: join(WAT_DIR, 'build', `${name}.wasm`),
      inputs: [source, packageFile('wabt'), SELF],
      compile: async () => {
        const text = await readFile(source, 'utf8');
        let mod: ReturnType<typeof wabt.parseWat> | undefined;
        try {
          mod = wabt.parseWat(basename(source), text, WAT_FEATURES);
          mod.resolveNames();
          mod.validate();
          return mod.toBinary({ write_debug_names: true }).buffer;
        } catch (err) {
          throw new GuestBuildError(err instanceof Error ? err.message : String(err));
        } finally {
          mod?.destroy();
        }
      },
    };
  });
}

async function isUpToDate(guest: Guest): Promise<boolean> {
  if (!existsSync(guest.output)) return false;
  const outTime = (await stat(guest.output)).mtimeMs;
  for (const input of guest.inputs) {
    if (existsSync(input) && (await stat(input)).mtimeMs >= outTime) return false;
  }
  return true;
}

async function writeAtomically(path: string, data: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function formatSize(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

type Outcome = { ok: true; line: string } | { ok: false; message: string };

async function buildOne(guest: Guest, force: boolean, width: number): Promise<Outcome> {
  const label = guest.label.padEnd(width);
  try {
    if (!force && (await isUpToDate(guest))) {
      const size = (await stat(guest.output)).size;
      return { ok: true, line: `  ${label}  ${formatSize(size).padStart(9)}  (up to date)` };
    }
    console.log(`  ${label}  compiling ...`);
    const binary = await guest.compile();
    await writeAtomically(guest.output, binary);
    const out = relative(ROOT, guest.output);
    return { ok: true, line: `  ${label}  ${formatSize(binary.length).padStart(9)}  -> ${out}` };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return {
      ok: false,
      message: `build-guests: failed to build guest ${guest.label}:\n${detail}\n`,
    };
  }
}

async function selectedGuests(request: BuildRequest, missing: string[]): Promise<Guest[]> {
  const wants = (lang: string) => wantsLanguage(request, lang);
  const all = [
    ...(wants('assemblyscript') ? await assemblyScriptGuests() : []),
    ...(wants('wat') ? await watGuests() : []),
    ...(wants('rust') ? await toolchainGuests(RUST_DIR, rustToolchain, rustGuests, missing) : []),
    ...(wants('go') ? await toolchainGuests(GO_DIR, goToolchain, goGuests, missing) : []),
  ];
  if (request.only === null) return all;
  const known = new Set(all.map((g) => g.label));
  const unknown = [...request.only].filter((l) => !known.has(l));
  const unbuildable = unknown.filter((l) => !missing.some((m) => m.startsWith(langName(l))));
  if (unbuildable.length > 0) {
    console.error(`build-guests: no guest named ${unbuildable.join(', ')}`);
    process.exit(2);
  }
  return all.filter((g) => request.only?.has(g.label));
}

/** `rust/x` -> `Rust` (how a toolchain problem starts). */
function langName(label: string): string {
  const lang = label.split('/')[0] ?? '';
  return lang === 'go' ? 'Go:' : lang === 'rust' ? 'Rust:' : `${lang}:`;
}

async function main(): Promise<void> {
  const request = parseBuildRequest(process.argv.slice(2));
  const missing: string[] = [];
  const guests = await selectedGuests(request, missing);
  for (const wasm of request.foreign) {
    console.log(`build-guests: ${relative(ROOT, wasm)} is not an example guest: not built here`);
  }
  if (request.list) {
    for (const g of guests) console.log(g.label);
    return;
  }
  const what = request.only === null ? 'all guests' : guests.map((g) => g.label).join(', ');
  console.log(`build-guests: ${guests.length} guest(s) (${what || 'none'})`);
  const width = Math.max(0, ...guests.map((g) => g.label.length));
  // asc is CPU-bound and single-threaded: one child per core.
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < guests.length) {
      const o = await buildOne(guests[next++]!, request.force, width);
      if (o.ok) console.log(o.line);
      else failures.push(o.message);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
  for (const message of failures) console.error(message);
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  for (const problem of missing) {
    const banner = '!'.repeat(100);
    console.error(
      `\n${banner}\nbuild-guests: ${ci ? 'ERROR' : 'WARNING'}: toolchain missing, guests NOT built:\n  ${problem}\n` +
        `${ci ? '  CI=true: failing the build.' : '  The SDK tests (test/integration/guest-sdks.test.ts) will fail until it is installed.'}\n${banner}\n`,
    );
  }
  if (failures.length > 0) {
    console.error(`build-guests: ${failures.length} guest(s) failed to build`);
    process.exit(1);
  }
  if (missing.length > 0 && ci) process.exit(1);
}

await main();
