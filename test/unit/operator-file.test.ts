/**
 * Files an operator names: configs, manifests and `.wasm` must be regular files under a size
 * limit (checked with fstat on the opened fd, so /dev/zero and FIFOs are refused at once, never
 * read); a UTF-8 BOM is tolerated; a NUL in any path is refused with a typed code.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadHostConfig } from '../../src/config/host-config.ts';
import { readJsonFile, readOperatorFile } from '../../src/config/operator-file.ts';
import { HourglassError } from '../../src/errors.ts';
import { loadManifest, readWasmFile } from '../../src/plugin/manifest.ts';

function dir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'hg-opfile-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function fifo(d: string): string {
  const p = join(d, 'pipe');
  execFileSync('mkfifo', [p]);
  return p;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HourglassError, String(err));
    return err.code;
  }
  assert.fail('did not throw');
}

const BOM = '\uFEFF';

test('readOperatorFile: a regular file under the limit is read whole', (t) => {
  const f = join(dir(t), 'a.bin');
  writeFileSync(f, Buffer.from([0, 1, 2, 3]));
  const r = readOperatorFile(f, 4);
  assert.ok(r.ok);
  assert.deepEqual([...r.bytes], [0, 1, 2, 3]);
});

test('readOperatorFile: /dev/zero, a FIFO, a directory, a huge sparse file and a NUL are refused without reading', (t) => {
  const d = dir(t);
  const huge = join(d, 'huge.wasm');
  writeFileSync(huge, '');
  truncateSync(huge, 8 * 1024 ** 3); // 8 GiB, sparse: costs nothing, must not be read
  const started = Date.now();
  const cases: [string, RegExp][] = [
    ['/dev/zero', /character device/],
    [fifo(d), /FIFO/],
    [d, /directory/],
    [huge, /8589934592 bytes, over the limit of 1048576/],
    [join(d, 'a\0b'), /NUL/],
    [join(d, 'missing'), /ENOENT/],
  ];
  for (const [path, problem] of cases) {
    const r = readOperatorFile(path, 1024 * 1024);
    assert.equal(r.ok, false, path);
    assert.match(!r.ok ? r.problem : '', problem, path);
  }
  // Refused at once: nothing waited for a FIFO writer or read gigabytes.
  assert.ok(Date.now() - started < 5_000);
});

test('readJsonFile: a UTF-8 BOM is skipped; invalid UTF-8 and JSON are problems', (t) => {
  const d = dir(t);
  const f = join(d, 'c.json');
  writeFileSync(f, `${BOM}{"a": 1}`);
  assert.deepEqual(readJsonFile(f, 100), { ok: true, value: { a: 1 } });
  writeFileSync(f, Buffer.from([0x7b, 0xff, 0x7d]));
  const bad = readJsonFile(f, 100);
  assert.equal(!bad.ok && bad.problem, 'not valid UTF-8');
  writeFileSync(f, '{');
  const notJson = readJsonFile(f, 100);
  assert.match(!notJson.ok ? notJson.problem : '', /not valid JSON/);
});

test('host config: BOM tolerated; a NUL in the store or manifest path → HG_CONFIG_INVALID; /dev/zero or a FIFO as config refused', (t) => {
  const d = dir(t);
  const f = join(d, 'hourglass.json');
  writeFileSync(f, `${BOM}${JSON.stringify({ store: { path: 's.db' }, tenants: [] })}`);
  assert.equal(loadHostConfig(f).store.path, join(d, 's.db'));
  assert.equal(loadHostConfig(f).maxWasmBytes, 64 * 1024 * 1024);
  assert.equal(loadHostConfig(f).leaseHeartbeatMs, 1_000);
  writeFileSync(f, JSON.stringify({ store: { path: 's.db\0x' }, tenants: [] }));
  assert.equal(
    codeOf(() => loadHostConfig(f)),
    'HG_CONFIG_INVALID',
  );
  writeFileSync(f, JSON.stringify({ tenants: [{ id: 'a', plugins: [{ manifest: 'm.json\0' }] }] }));
  assert.equal(
    codeOf(() => loadHostConfig(f)),
    'HG_CONFIG_INVALID',
  );
  for (const p of ['/dev/zero', fifo(d), `${f}\0`])
    assert.equal(
      codeOf(() => loadHostConfig(p)),
      'HG_CONFIG_INVALID',
      p,
    );
});

test('manifest: BOM tolerated; wasm must be a regular file under maxWasmBytes (HG_PLUGIN_LOAD); NUL → HG_MANIFEST_INVALID', (t) => {
  const d = dir(t);
  const m = join(d, 'hourglass.json');
  const write = (wasm: string) =>
    writeFileSync(m, `${BOM}${JSON.stringify({ name: 'p', version: '1', wasm })}`);
  writeFileSync(join(d, 'g.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  write('g.wasm');
  const ok = loadManifest(m);
  assert.equal(readWasmFile(ok, 8, 't/p').length, 8);
  assert.equal(
    codeOf(() => readWasmFile(ok, 7, 't/p')),
    'HG_PLUGIN_LOAD',
  );
  for (const wasm of ['/dev/zero', fifo(d), d]) {
    write(wasm);
    assert.equal(
      codeOf(() => readWasmFile(loadManifest(m), 1024, 't/p')),
      'HG_PLUGIN_LOAD',
      wasm,
    );
  }
  write('g.wasm\0');
  assert.equal(
    codeOf(() => loadManifest(m)),
    'HG_MANIFEST_INVALID',
  );
  assert.equal(
    codeOf(() => loadManifest('/dev/zero')),
    'HG_MANIFEST_INVALID',
  );
});
