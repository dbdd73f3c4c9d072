/**
 * Hourglass's Extism kernel (src/sandbox/kernel/extism-kernel.ts) through the real sandbox:
 * real Extism, the real instrumenter, `.wat` guests that abuse each kernel import. Every cap is
 * checked before the host allocates, and every misuse ends the call with a typed outcome that
 * a guest's `catch_all` cannot swallow.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DEFAULT_LIMITS, type PluginLimits } from '../../src/plugin/manifest.ts';
import { InThreadSandbox, type GuestLogEntry } from '../../src/sandbox/in-thread-sandbox.ts';
import type { CallOutcome, CallerContext } from '../../src/sandbox/types.ts';
import { wat } from '../fuel/harness.ts';
import { GUEST } from './helpers.ts';

const ABUSE = new Uint8Array(readFileSync(GUEST.wat('kernel-abuse')));
const NOT_FOUND = JSON.stringify({ error: { code: 'not_found', message: 'no such schedule' } });

interface Rig {
  readonly call: () => Promise<CallOutcome>;
  /** Requests that reached the host-call handler. */
  readonly requests: string[];
  readonly logs: GuestLogEntry[];
  readonly close: () => Promise<void>;
}

async function rig(
  mode: string,
  limits: Partial<PluginLimits> = {},
  wasm: Uint8Array<ArrayBuffer> = ABUSE,
): Promise<Rig> {
  const requests: string[] = [];
  const logs: GuestLogEntry[] = [];
  const sandbox = new InThreadSandbox({
    hostCall: (_caller, _fn, request) => {
      requests.push(request);
      return NOT_FOUND;
    },
    onGuestLog: (e) => logs.push(e),
    hostCallFuel: { schedule_get: 100 },
  });
  const pluginId = `t/${mode}`;
  await sandbox.load({
    pluginId,
    tenant: 't',
    wasm,
    config: { mode },
    limits: { ...DEFAULT_LIMITS, ...limits },
  });
  const caller: CallerContext = { pluginId, tenant: 't', phase: 'run', runId: 1 };
  return {
    call: () => sandbox.call(pluginId, { fn: 'run', input: '{}', caller }),
    requests,
    logs,
    close: () => sandbox.close(),
  };
}

async function outcomeOf(mode: string, limits: Partial<PluginLimits> = {}) {
  const r = await rig(mode, limits);
  try {
    return { outcome: await r.call(), rig: r };
  } finally {
    await r.close();
  }
}

function failure(o: CallOutcome): { status: string; reason: string; message: string } {
  assert.equal(o.ok, false, `expected a failure, got ${JSON.stringify(o)}`);
  if (o.ok) throw new Error('unreachable');
  return o;
}

describe('Extism kernel: variables', () => {
  test('a 100 kB var_set is refused before it is copied: memory_limit / var_limit', async () => {
    const before = process.memoryUsage().arrayBuffers;
    const { outcome } = await outcomeOf('v');
    const f = failure(outcome);
    assert.deepEqual([f.status, f.reason], ['memory_limit', 'var_limit']);
    assert.match(f.message, /limit of 65536/);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  });

  test('the number of keys is bounded too (64 bytes of overhead per variable)', async () => {
    const { outcome } = await outcomeOf('k', { varBytes: 4_096 });
    const f = failure(outcome);
    assert.deepEqual([f.status, f.reason], ['memory_limit', 'var_limit']);
  });

  test('the block a refused alloc would have had (Extism SDK: previous + 2^48) names nothing', async () => {
    const f = failure((await outcomeOf('r')).outcome);
    assert.deepEqual([f.status, f.reason], ['trapped', 'invalid_block']);
    assert.match(f.message, /^var_set: offset 0x/);
  });
});

describe('Extism kernel: output', () => {
  test('output_set of the forged block is invalid_block', async () => {
    const f = failure((await outcomeOf('o')).outcome);
    assert.deepEqual([f.status, f.reason], ['trapped', 'invalid_block']);
  });

  test('a 1 GiB output never materialises: failed / output_too_large, at output_set', async () => {
    const f = failure((await outcomeOf('g', { outputBytes: 1_000 })).outcome);
    assert.deepEqual([f.status, f.reason], ['failed', 'output_too_large']);
    assert.match(f.message, /1073741824 bytes, over the limit of 1000/);
  });
});

describe('Extism kernel: offsets', () => {
  test('a host function given a bogus offset answers invalid_argument, never an empty request', async () => {
    const { outcome, rig: r } = await outcomeOf('b');
    assert.equal(outcome.ok, true, JSON.stringify(outcome));
    assert.deepEqual(r.requests, [], 'no bogus request reached the handler');
  });

  test('a kernel load at a bogus offset ends the call: trapped / invalid_block', async () => {
    const f = failure((await outcomeOf('l')).outcome);
    assert.deepEqual([f.status, f.reason], ['trapped', 'invalid_block']);
  });

  test('kernel misuse cannot be caught with catch_all (it is never a JS exception)', async () => {
    const f = failure((await outcomeOf('c')).outcome);
    assert.deepEqual([f.status, f.reason], ['trapped', 'invalid_block']);
  });

  test('a host answer that does not fit in the Extism memory left: memory_limit / block_limit', async () => {
    const { outcome, rig: r } = await outcomeOf('h', { memoryPages: 4 });
    const f = failure(outcome);
    assert.deepEqual([f.status, f.reason], ['memory_limit', 'block_limit']);
    assert.equal(r.requests.length, 1);
  });
});

describe('Extism kernel: abort and logs', () => {
  test('env.abort caught with catch_all still ends the call: trapped / abort', async () => {
    const f = failure((await outcomeOf('a')).outcome);
    assert.deepEqual([f.status, f.reason], ['trapped', 'abort']);
    assert.match(f.message, /^abort: /);
  });

  test('a log flood delivers limits.logLines lines, then one line saying how many were dropped', async () => {
    const { outcome, rig: r } = await outcomeOf('L', {
      logLines: 50,
      fuel: { ...DEFAULT_LIMITS.fuel, run: 5_000_000 },
    });
    assert.deepEqual(
      [failure(outcome).status, failure(outcome).reason],
      ['out_of_fuel', 'out_of_fuel'],
    );
    assert.equal(r.logs.length, 51);
    assert.ok(r.logs.slice(0, 50).every((l) => l.level === 'info' && l.message === 'flood'));
    assert.match(
      r.logs[50]?.message ?? '',
      /^\d+ more log lines of this run\(\) call were dropped \(limit 50\)$/,
    );
  });
});

describe('start function', () => {
  test('a start function that catches its own abort still fails the load', async () => {
    const bytes = wat(`(module
      (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
      (memory (export "memory") 1)
      (func $start (try (do (call $abort (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 1))) (catch_all)))
      (start $start)
      (func (export "schedules") (result i32) (i32.const 0))
      (func (export "run") (result i32) (i32.const 0)))`);
    await assert.rejects(rig('-', {}, bytes), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'HG_PLUGIN_LOAD');
      assert.match(err.message, /abort: /);
      return true;
    });
  });
});

describe('tables', () => {
  test('eight tables cannot grow past limits.tableElements together', async () => {
    const { outcome } = await outcomeOf('t');
    assert.equal(outcome.ok, true, JSON.stringify(outcome));
  });

  test('huge table.grow in a loop is priced before it runs: out_of_fuel', async () => {
    const f = failure((await outcomeOf('T')).outcome);
    assert.deepEqual([f.status, f.reason], ['out_of_fuel', 'out_of_fuel']);
  });

  test('a table declared over the cap is refused at load', async () => {
    const wasm = new Uint8Array(readFileSync(GUEST.wat('table-huge-initial')));
    await assert.rejects(rig('-', {}, wasm), (err: Error & { code?: string; cause?: unknown }) => {
      assert.equal(err.code, 'HG_PLUGIN_LOAD');
      assert.equal((err.cause as { code?: string }).code, 'HG_WASM_TABLE_LIMIT');
      return true;
    });
  });
});

describe('import types', () => {
  const guest = (imports: string) =>
    wat(`(module ${imports} (memory (export "memory") 1)
      (func (export "schedules") (result i32) (i32.const 0))
      (func (export "run") (result i32) (i32.const 0)))`);

  for (const [what, imp] of [
    ['a kernel function', '(import "extism:host/env" "alloc" (func (param i32) (result i32)))'],
    [
      'a host function',
      '(import "extism:host/user" "schedule_get" (func (param i64) (result i32)))',
    ],
    ['env.abort', '(import "env" "abort" (func (param i32 i32 i32 i32) (result i32)))'],
  ] as const) {
    test(`${what} imported with another type is refused at load (it would throw at the boundary)`, async () => {
      await assert.rejects(rig('-', {}, guest(imp)), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'HG_PLUGIN_LOAD');
        assert.match(err.message, /Hourglass implements it as/);
        return true;
      });
    });
  }

  test('an import Extism does not define is refused', async () => {
    await assert.rejects(
      rig('-', {}, guest('(import "extism:host/env" "var_dump" (func (param i64)))')),
      { code: 'HG_PLUGIN_LOAD' },
    );
  });
});

describe('well-behaved calls', () => {
  test('an instance serves call after call (an unknown mode: run() returns 0)', async () => {
    const r = await rig('x');
    try {
      for (let i = 0; i < 3; i++) assert.equal((await r.call()).ok, true);
    } finally {
      await r.close();
    }
  });
});
