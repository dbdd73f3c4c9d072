/**
 * Builds the example and test guests:
 *
 * - every `guest-examples/assemblyscript/<name>/assembly/index.ts` into
 *   `guest-examples/assemblyscript/<name>/build/<name>.wasm` (assemblyscript's `asc`),
 * - every `guest-examples/wat/<name>.wat` into `guest-examples/wat/build/<name>.wasm` (wabt).
 *
 * An output newer than all its inputs is left alone. Outputs are written to a temporary file
 * and renamed, so a concurrent reader never sees half a module. Usage:
 * `npx tsx scripts/build-guests.ts [--force]` (alias `npm run build:guests`).
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import wabtInit from 'wabt';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const AS_DIR = join(ROOT, 'guest-examples', 'assemblyscript');
const AS_LIB = join(AS_DIR, 'lib');
const WAT_DIR = join(ROOT, 'guest-examples', 'wat');
const SELF = fileURLToPath(import.meta.url);
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
  const { code, text } = await new Promise<{ code: number | null; text: string }>((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (text += d.toString('utf8')));
    child.on('error', fail);
    child.on('close', (code) => ok({ code, text }));
  });
  try {
    if (code !== 0 || !existsSync(tmp)) {
      throw new GuestBuildError(`${text.trim()}\nasc exited with code ${code}`);
    }
    return await readFile(tmp);
  } finally {
    await rm(tmp, { force: true });
  }
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

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  const guests = [...(await assemblyScriptGuests()), ...(await watGuests())];
  const width = Math.max(0, ...guests.map((g) => g.label.length));
  // asc is CPU-bound and single-threaded: one child per core.
  const outcomes: Outcome[] = new Array<Outcome>(guests.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < guests.length) {
      const i = next++;
      outcomes[i] = await buildOne(guests[i]!, force, width);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
  const failures = outcomes.filter((o) => !o.ok);
  for (const o of outcomes) if (o.ok) console.log(o.line);
  for (const o of failures) if (!o.ok) console.error(o.message);
  if (failures.length > 0) {
    console.error(`build-guests: ${failures.length} guest(s) failed to build`);
    process.exit(1);
  }
}

await main();
