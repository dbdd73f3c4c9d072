/** Keeps src/errors.ts and docs/errors.md in step: every code documented, no stray codes. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { ConfigError, ErrorCodes, HourglassError, isHourglassError } from '../../src/errors.ts';

const DOC = join(PROJECT_ROOT, 'docs', 'errors.md');

function readDoc(): string {
  assert.ok(existsSync(DOC), `${DOC} does not exist`);
  return readFileSync(DOC, 'utf8');
}

/** Codes that start a markdown table row: | `HG_X` | … */
function tableRowCodes(md: string): string[] {
  const out: string[] = [];
  for (const line of md.split(/\r?\n/)) {
    const m = /^\s*\|\s*`(HG_[A-Z0-9_]+)`\s*\|/.exec(line);
    if (m) out.push(m[1] as string);
  }
  return out;
}

const CODES = Object.keys(ErrorCodes);

describe('docs/errors.md', () => {
  test('ErrorCodes is non-empty and every key is HG_ upper case', () => {
    assert.ok(CODES.length > 0);
    for (const c of CODES) assert.match(c, /^HG_[A-Z0-9_]+$/);
  });

  test('every ErrorCodes key has a table row', () => {
    const rows = new Set(tableRowCodes(readDoc()));
    const missing = CODES.filter((c) => !rows.has(c));
    assert.deepEqual(missing, [], `codes without a row in docs/errors.md: ${missing.join(', ')}`);
  });

  test('every HG_ code mentioned in the doc exists in ErrorCodes', () => {
    const mentioned = new Set(readDoc().match(/\bHG_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []);
    const unknown = [...mentioned].filter((c) => !(c in ErrorCodes));
    assert.deepEqual(
      unknown,
      [],
      `codes in docs/errors.md that src/errors.ts does not define: ${unknown.join(', ')}`,
    );
  });

  test('no code has two table rows', () => {
    const rows = tableRowCodes(readDoc());
    const dupes = rows.filter((c, i) => rows.indexOf(c) !== i);
    assert.deepEqual(dupes, []);
  });
});

describe('src/errors.ts', () => {
  test('HourglassError carries its code and cause', () => {
    const cause = new Error('inner');
    const e = new HourglassError('HG_STORE', 'outer', { cause });
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'HG_STORE');
    assert.equal(e.name, 'HourglassError');
    assert.equal(e.cause, cause);
    assert.ok(isHourglassError(e));
    assert.ok(!isHourglassError(new Error('x')));
    assert.ok(!isHourglassError({ code: 'HG_STORE' }));
  });

  test('ConfigError names the file and field, and says (root) for an empty field', () => {
    const e = new ConfigError('HG_CONFIG_INVALID', '/etc/hg.json', '/tenants/0/id', 'is bad');
    assert.ok(e instanceof HourglassError);
    assert.equal(e.code, 'HG_CONFIG_INVALID');
    assert.equal(e.file, '/etc/hg.json');
    assert.equal(e.field, '/tenants/0/id');
    assert.ok(e.message.includes('/etc/hg.json'));
    assert.ok(e.message.includes('/tenants/0/id'));
    const root = new ConfigError('HG_MANIFEST_INVALID', 'm.json', '', 'not valid JSON');
    assert.equal(root.field, '');
    assert.ok(root.message.includes('m.json'));
    assert.ok(root.message.includes('(root)'));
  });
});
