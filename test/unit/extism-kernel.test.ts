/**
 * The Extism kernel's bookkeeping on its own (the same class the sandbox gives every instance;
 * test/integration/extism-kernel.test.ts drives it through real guests): block accounting,
 * dead offsets, variable accounting, log caps, and that no import ever throws.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ExtismKernel,
  KERNEL_FUNCTIONS,
  VAR_OVERHEAD_BYTES,
  type KernelFault,
  type LogLevel,
} from '../../src/sandbox/kernel/extism-kernel.ts';
import { PluginVars } from '../../src/sandbox/plugin-vars.ts';

type Fn = (cx: unknown, ...args: unknown[]) => unknown;

function kernel(limits: { blockBytes?: number; varBytes?: number; logLines?: number } = {}) {
  const faults: KernelFault[] = [];
  const logs: [LogLevel, string][] = [];
  let fuel = 1_000_000;
  const k = new ExtismKernel(
    { blockBytes: 1_000, varBytes: 1_000, logLines: 3, ...limits },
    {
      fault: (f) => faults.push(f),
      charge: (n) => (fuel -= n) >= 0,
      log: (level, message) => logs.push([level, message]),
    },
    { greeting: 'hello' },
  );
  const fns = k.imports() as unknown as Record<string, Fn>;
  const call = (name: string, ...args: unknown[]) => (fns[name] as Fn)(null, ...args);
  const block = (text: string): bigint => {
    const addr = call('alloc', BigInt(text.length)) as bigint;
    [...Buffer.from(text)].forEach((b, i) => call('store_u8', addr + BigInt(i), b));
    return addr;
  };
  return { k, call, block, faults, logs };
}

describe('ExtismKernel', () => {
  test('alloc past the allowance returns 0 and keeps nothing; free gives the bytes back', () => {
    const { k, call, faults } = kernel();
    k.begin(new Uint8Array(100), 1_000);
    const a = call('alloc', 800n) as bigint;
    assert.notEqual(a, 0n);
    assert.equal(call('alloc', 101n), 0n, '100 input + 800 + 101 > 1000');
    const b = call('alloc', 100n) as bigint;
    assert.equal(b, a + (1n << 48n), 'the refused alloc took no index');
    call('free', a);
    assert.equal(call('length', a), 0n, 'a freed offset names nothing until reused');
    assert.equal(call('alloc', 800n), a, "a freed block's index is reused");
    assert.equal(call('length', a), 800n);
    assert.equal(call('alloc', -1n), 0n);
    assert.deepEqual(faults, []);
  });

  test('loads, stores and output_set check the whole range; misuse is a fault, never a throw', () => {
    const { k, call, faults } = kernel();
    k.begin(new Uint8Array(0), 1_000);
    const a = call('alloc', 8n) as bigint;
    call('store_u64', a, 0x0102030405060708n);
    assert.equal(call('load_u64', a), 0x0102030405060708n);
    assert.equal(call('load_u8', a + 7n), 1);
    assert.equal(call('load_u64', a + 1n), 0n);
    assert.equal(call('load_u8', 0n), 0);
    call('output_set', a, 9n);
    call('error_set', a + (5n << 48n));
    assert.deepEqual(
      faults.map((f) => [f.status, f.reason]),
      Array(4).fill(['trapped', 'invalid_block']),
    );
    for (const name of KERNEL_FUNCTIONS) {
      assert.doesNotThrow(() => call(name, 0xdead_0000_0000_0000n, 0xbeefn), name);
    }
  });

  test('output over the call cap is refused at output_set; the output is copied when the call ends', () => {
    const { k, call, block, faults } = kernel();
    k.begin(new Uint8Array(0), 4);
    const a = block('hello');
    call('output_set', a, 5n);
    assert.deepEqual(
      faults.map((f) => f.reason),
      ['output_too_large'],
    );
    call('output_set', a + 1n, 4n);
    assert.equal(Buffer.from(k.end().output ?? []).toString(), 'ello');
  });

  test('variables count key + value + overhead, across calls; replacing and deleting give bytes back', () => {
    const { k, call, block, faults } = kernel({ varBytes: 2 * (1 + 100 + VAR_OVERHEAD_BYTES) });
    const vars = new PluginVars(2 * (1 + 100 + VAR_OVERHEAD_BYTES));
    k.begin(new Uint8Array(0), 10, vars);
    const value = call('alloc', 100n) as bigint;
    call('var_set', block('a'), value);
    k.end();
    // The sandbox commits a successful call's changes (in-thread-sandbox.ts).
    const first = k.takeVars();
    assert.ok(first);
    assert.equal(first.base, 0);
    assert.equal(vars.apply(first.changes), true);
    k.begin(new Uint8Array(0), 10, vars);
    call('var_set', block('b'), call('alloc', 100n));
    assert.equal(k.varBytes(), 2 * (1 + 100 + VAR_OVERHEAD_BYTES));
    call('var_set', block('c'), call('alloc', 1n));
    assert.deepEqual(
      faults.map((f) => [f.status, f.reason]),
      [['memory_limit', 'var_limit']],
    );
    call('var_set', block('b'), 0n);
    call('var_set', block('c'), call('alloc', 1n));
    assert.equal(k.varBytes(), 1 + 100 + VAR_OVERHEAD_BYTES + 1 + 1 + VAR_OVERHEAD_BYTES);
    assert.equal(call('length', call('var_get', block('a'))), 100n);
    assert.equal(call('var_get', block('b')), 0n);
  });

  test("a call's changes are its own until committed: a call that is not committed leaves the variables as they were", () => {
    const { k, call, block } = kernel();
    const vars = new PluginVars(1_000);
    k.begin(new Uint8Array(0), 10, vars);
    call('var_set', block('a'), block('xyz'));
    assert.equal(call('length', call('var_get', block('a'))), 3n); // the call sees its own set
    k.end();
    assert.equal(vars.size, 0); // nothing applied yet
    k.takeVars(); // dropped (the call failed)
    k.begin(new Uint8Array(0), 10, vars);
    assert.equal(call('var_get', block('a')), 0n);
    assert.equal(k.takeVars(), null); // no changes: nothing to report
  });

  test('config_get reads the config; an unknown key is 0', () => {
    const { k, call, block } = kernel();
    k.begin(new Uint8Array(0), 10);
    const v = call('config_get', block('greeting')) as bigint;
    assert.equal(call('length', v), 5n);
    assert.equal(call('config_get', block('nope')), 0n);
  });

  test('log lines past the cap are counted, not delivered; each logged block is freed', () => {
    const { k, call, block, logs } = kernel({ logLines: 2 });
    k.begin(new Uint8Array(0), 10);
    for (let i = 0; i < 5; i++) call('log_warn', block(`line ${i}`));
    assert.deepEqual(logs, [
      ['warn', 'line 0'],
      ['warn', 'line 1'],
    ]);
    assert.equal(k.end().droppedLogLines, 3);
  });

  test('host answers that do not fit are a block_limit fault', () => {
    const { k, faults } = kernel({ blockBytes: 10 });
    k.begin(new Uint8Array(5), 10);
    assert.notEqual(k.store('12345'), 0n);
    assert.equal(k.store('x'), 0n);
    assert.deepEqual(
      faults.map((f) => [f.status, f.reason]),
      [['memory_limit', 'block_limit']],
    );
  });

  test('limits are validated at construction', () => {
    assert.throws(
      () =>
        new ExtismKernel(
          { blockBytes: Number.NaN, varBytes: 1, logLines: 1 },
          { fault() {}, charge: () => true, log() {} },
          {},
        ),
      RangeError,
    );
  });
});
