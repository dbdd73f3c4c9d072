/**
 * Hourglass's own WASI (src/sandbox/kernel/wasi.ts) through the real in-thread sandbox, with
 * `.wat` fixtures from guest-examples/wat/ (wasi-*.wat) and the real Go guests: sleeps return
 * at once and are billed, stdout/stderr become capped log lines, randomness is a seeded
 * stream, `proc_exit` is a typed outcome, files and sockets are refused, init runs under the
 * discovery budget with WASI bound, and a Go call bills exactly the same fuel on two fresh
 * instances.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import wabtInit from 'wabt';
import { PROJECT_ROOT } from '../../src/config/host-config.ts';
import { runFuelCommand } from '../../src/fuel/cli-commands.ts';
import type { RunContext } from '../../src/host/run-executor.ts';
import { DEFAULT_LIMITS, type PluginLimits } from '../../src/plugin/manifest.ts';
import { InThreadSandbox, type GuestLogEntry } from '../../src/sandbox/in-thread-sandbox.ts';
import {
  MAX_WASI_LINES_PER_CALL,
  MAX_WASI_OUTPUT_BYTES_PER_CALL,
  WASI_CALL_FUEL,
  WASI_POLL_FUEL,
  WASI_SUBSCRIPTION_FUEL,
} from '../../src/sandbox/kernel/wasi.ts';
import type { CallOutcome, CallerContext } from '../../src/sandbox/types.ts';
import { GUEST, T0 } from './helpers.ts';

const RUN: CallerContext = { pluginId: 't/p', tenant: 't', phase: 'run', scheduledAt: T0 };

interface Loaded {
  readonly sandbox: InThreadSandbox;
  readonly logs: GuestLogEntry[];
}

function wasm(path: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(path));
}

async function load(
  path: string,
  opts: { pluginId?: string; limits?: Partial<PluginLimits> } = {},
): Promise<Loaded> {
  const logs: GuestLogEntry[] = [];
  const sandbox = new InThreadSandbox({
    hostCall: () => '{"ok":{}}',
    onGuestLog: (e) => logs.push(e),
  });
  await sandbox.load({
    pluginId: opts.pluginId ?? 't/p',
    tenant: 't',
    wasm: wasm(path),
    config: {},
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
  });
  return { sandbox, logs };
}

async function run(l: Loaded, input = '', pluginId = 't/p'): Promise<CallOutcome> {
  return l.sandbox.call(pluginId, { fn: 'run', input, caller: { ...RUN, pluginId } });
}

function okOutput(o: CallOutcome): DataView {
  assert.ok(o.ok, o.ok ? '' : `${o.status}/${o.reason}: ${o.message}`);
  assert.ok(o.output);
  return new DataView(o.output.buffer, o.output.byteOffset, o.output.byteLength);
}

test('poll_oneoff: a 10 s sleep returns at once, advances virtual time and is billed', async () => {
  const l = await load(GUEST.wat('wasi-sleep'));
  try {
    const o = await run(l);
    const v = okOutput(o);
    const [before, after, wall] = [0, 8, 16].map((at) => v.getBigUint64(at, true)) as [
      bigint,
      bigint,
      bigint,
    ];
    assert.equal(v.getUint32(24, true), 0, 'poll errno');
    assert.equal(v.getUint32(28, true), 1, 'one event');
    assert.equal(v.getBigUint64(32, true), 42n, 'the event carries the userdata');
    assert.equal(v.getUint32(40, true), 0, 'event error');
    const slept = after - before;
    assert.ok(slept >= 10_000_000_000n && slept < 10_001_000_000n, `slept ${slept} ns`);
    // The wall clock is the scheduled time plus the virtual time elapsed in the call.
    const wallBase = BigInt(T0) * 1_000_000n;
    assert.ok(wall - wallBase >= slept && wall - wallBase < slept + 1_000_000n, `${wall}`);
    assert.ok(o.durationMs < 2_000, `returned at once (${o.durationMs} ms)`);
    assert.ok(
      (o.fuelUsed ?? 0) >= 4 * WASI_CALL_FUEL + WASI_POLL_FUEL + WASI_SUBSCRIPTION_FUEL,
      `billed ${o.fuelUsed}`,
    );

    // Same input, same fuel, same virtual readings (relative to the call's start).
    const again = await run(l);
    assert.equal(again.fuelUsed, o.fuelUsed);
    assert.equal(
      okOutput(again).getBigUint64(16, true),
      wall,
      'the wall clock reads the same scheduled time + the same elapsed fuel',
    );
  } finally {
    await l.sandbox.close();
  }
});

test('poll_oneoff and clock loops end out of fuel, never blocked', async () => {
  for (const name of ['wasi-sleep-loop', 'wasi-clock-loop']) {
    const l = await load(GUEST.wat(name), {
      limits: { fuel: { ...DEFAULT_LIMITS.fuel, run: 20_000_000 } },
    });
    try {
      const o = await run(l);
      assert.equal(o.ok, false, name);
      assert.equal(!o.ok && o.status, 'out_of_fuel', name);
      assert.equal(o.fuelUsed, 20_000_000);
    } finally {
      await l.sandbox.close();
    }
  }
});

test('fd_write: stdout and stderr become log lines; other fds are EBADF', async () => {
  const l = await load(GUEST.wat('wasi-write'));
  try {
    const v = okOutput(await run(l));
    assert.deepEqual(
      [0, 4, 8, 12, 16].map((at) => v.getUint32(at, true)),
      [0, 19, 0, 5, 8],
    );
    assert.deepEqual(
      l.logs.map((e) => [e.level, e.message]),
      [
        ['info', 'hello'],
        ['info', 'world'],
        ['warn', 'oops'],
        ['info', 'partial'],
      ],
    );
    assert.ok(l.logs.every((e) => e.pluginId === 't/p'));
  } finally {
    await l.sandbox.close();
  }
});

test('fd_write flood: bounded log lines, out of fuel', async () => {
  const l = await load(GUEST.wat('wasi-write-flood'), {
    limits: { fuel: { ...DEFAULT_LIMITS.fuel, run: 50_000_000 } },
  });
  try {
    const o = await run(l);
    assert.equal(!o.ok && o.status, 'out_of_fuel');
    const lines = l.logs.filter((e) => e.level === 'info');
    const bytes = lines.reduce((n, e) => n + e.message.length + 1, 0);
    assert.ok(lines.length <= MAX_WASI_LINES_PER_CALL, `${lines.length} lines`);
    assert.ok(bytes <= MAX_WASI_OUTPUT_BYTES_PER_CALL, `${bytes} bytes kept`);
    assert.match(l.logs.at(-1)?.message ?? '', /bytes of stdout\/stderr were dropped/);
    assert.equal(l.logs.length, MAX_WASI_LINES_PER_CALL + 1);
  } finally {
    await l.sandbox.close();
  }
});

test('random_get: a seeded stream, the same on fresh instances, per plugin id', async () => {
  const read = async (pluginId: string) => {
    const l = await load(GUEST.wat('wasi-random'), { pluginId });
    try {
      const first = okOutput(await run(l, '', pluginId));
      const second = okOutput(await run(l, '', pluginId));
      assert.equal(first.getUint32(32, true), 0);
      const hex = (d: DataView) => Buffer.from(d.buffer, d.byteOffset, 32).toString('hex');
      return [hex(first), hex(second)] as const;
    } finally {
      await l.sandbox.close();
    }
  };
  const a1 = await read('t/a');
  const a2 = await read('t/a');
  const b = await read('t/b');
  assert.deepEqual(a1, a2, 'two fresh instances of one plugin read the same stream');
  assert.notEqual(a1[0], a1[1], 'the stream goes on between calls');
  assert.notEqual(a1[0], b[0], 'another plugin id, another stream');
  assert.notEqual(a1[0], '0'.repeat(64));
});

test('random_get of a huge buffer is priced per byte: out of fuel, host memory bounded', async () => {
  const l = await load(GUEST.wat('wasi-random-huge'), {
    limits: { fuel: { ...DEFAULT_LIMITS.fuel, run: 20_000_000 } },
  });
  try {
    const before = process.memoryUsage().rss;
    const o = await run(l);
    assert.equal(!o.ok && o.status, 'out_of_fuel');
    assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20, 'no huge host buffer');
  } finally {
    await l.sandbox.close();
  }
});

test('proc_exit: 0 succeeds without output, non-zero fails with reason proc_exit', async () => {
  const l = await load(GUEST.wat('wasi-exit'));
  try {
    const zero = await run(l, '');
    assert.equal(zero.ok, true);
    assert.equal(zero.ok && zero.output, null);
    assert.ok((zero.fuelUsed ?? 0) > 0 && (zero.fuelUsed ?? 0) < 100_000, `${zero.fuelUsed}`);
    const three = await run(l, 'abc');
    assert.equal(three.ok, false);
    assert.equal(!three.ok && three.status, 'failed');
    assert.equal(!three.ok && three.reason, 'proc_exit');
    assert.match(!three.ok ? three.message : '', /proc_exit\(3\)/);
    // Billed what it used, like a completed call (not the whole budget).
    assert.equal(three.fuelUsed, zero.fuelUsed);
    // A fresh instance serves the next call.
    assert.equal((await run(l, '')).ok, true);
  } finally {
    await l.sandbox.close();
  }
});

test('files, sockets, environment and arguments are refused as documented', async () => {
  const l = await load(GUEST.wat('wasi-files'));
  try {
    const o = await run(l);
    assert.ok(o.ok, o.ok ? '' : `${o.reason}: ${o.message} (mismatches are the return code)`);
  } finally {
    await l.sandbox.close();
  }
});

test('init runs with memory and WASI bound, under the discovery budget', async () => {
  const a = await load(GUEST.wat('wasi-init'));
  const b = await load(GUEST.wat('wasi-init'));
  try {
    assert.deepEqual(
      a.logs.map((e) => e.message),
      ['init ok'],
    );
    const ra = okOutput(await run(a));
    const rb = okOutput(await run(b));
    assert.deepEqual(new Uint8Array(ra.buffer), new Uint8Array(rb.buffer));
  } finally {
    await a.sandbox.close();
    await b.sandbox.close();
  }
});

test('a start function out of fuel fails the load with HG_PLUGIN_INIT_FUEL', async () => {
  await assert.rejects(
    load(GUEST.wat('wasi-start-spin'), {
      limits: { fuel: { ...DEFAULT_LIMITS.fuel, discovery: 1_000_000 } },
    }),
    (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'HG_PLUGIN_INIT_FUEL');
      assert.match(err.message ?? '', /start function ran out of fuel/);
      return true;
    },
  );
});

test('init that sleeps forever ends out of fuel; init that exits non-zero fails the load', async () => {
  await assert.rejects(
    load(GUEST.wat('wasi-init-sleep'), {
      limits: { fuel: { ...DEFAULT_LIMITS.fuel, discovery: 1_000_000 } },
    }),
    (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'HG_PLUGIN_INIT_FUEL');
      assert.match(err.message ?? '', /_initialize ran out of fuel/);
      return true;
    },
  );
  await assert.rejects(
    load(GUEST.wat('wasi-init-exit')),
    (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'HG_PLUGIN_LOAD');
      assert.match(err.message ?? '', /_start called proc_exit\(7\)/);
      return true;
    },
  );
});

test('a WASI import with the wrong signature is refused at load', async () => {
  await assert.rejects(load(GUEST.wat('wasi-bad-signature')), (err: { code?: string }) => {
    assert.equal(err.code, 'HG_PLUGIN_LOAD');
    return true;
  });
});

test('Go: the same call on two fresh instances bills exactly the same fuel', async () => {
  const path = resolve(PROJECT_ROOT, 'guest-examples/go/poller/build/poller.wasm');
  const bills: (number | null)[][] = [];
  for (let i = 0; i < 2; i++) {
    const l = await load(path, { pluginId: 'acme/go-poller' });
    try {
      const caller = { pluginId: 'acme/go-poller', tenant: 'acme' };
      const discovery = await l.sandbox.call('acme/go-poller', {
        fn: 'schedules',
        caller: { ...caller, phase: 'discovery' },
      });
      assert.ok(discovery.ok, discovery.ok ? '' : discovery.message);
      const context: RunContext = {
        scheduleId: 'housekeeping',
        runId: '1',
        plugin: 'acme/go-poller',
        scheduledAt: new Date(T0).toISOString(),
        firedAt: new Date(T0).toISOString(),
        attempt: 1,
        catchUp: false,
        trigger: 'schedule',
        payload: null,
        cursor: null,
      };
      const input = JSON.stringify(context);
      const runs: (number | null)[] = [discovery.fuelUsed];
      for (let k = 0; k < 3; k++) {
        const o = await l.sandbox.call('acme/go-poller', {
          fn: 'run',
          input,
          caller: {
            ...caller,
            phase: 'run',
            scheduleKey: 'acme/go-poller/housekeeping',
            scheduledAt: T0,
          },
        });
        assert.ok(o.ok, o.ok ? '' : `${o.status}: ${o.message}`);
        runs.push(o.fuelUsed);
      }
      bills.push(runs);
    } finally {
      await l.sandbox.close();
    }
  }
  assert.ok((bills[0]?.[0] ?? 0) > 0);
  assert.deepEqual(bills[1], bills[0]);
});

test('`hourglass fuel` runs WASI guests on the same WASI: sleeps end by fuel, Go bills repeat', async () => {
  const sleep = await runFuelCommand({
    guest: GUEST.wat('wasi-sleep-loop'),
    call: 'run',
    budget: 1_000_000,
  });
  assert.equal(sleep.exitCode, 1);
  assert.match(sleep.stdout, /^outcome: out_of_fuel$/m);
  const exit = await runFuelCommand({ guest: GUEST.wat('wasi-exit'), call: 'run', input: 'ab' });
  assert.match(exit.stdout, /^outcome: proc_exit\(2\)$/m);
  const go = resolve(PROJECT_ROOT, 'guest-examples/go/cron-report/build/cron-report.wasm');
  const used = async () => {
    const r = await runFuelCommand({ guest: go, call: 'schedules' });
    return /^fuel used: (\d+) of/m.exec(r.stdout)?.[1];
  };
  const first = await used();
  assert.ok(first !== undefined && Number(first) > 0);
  assert.equal(await used(), first);
});

test('proc_exit cannot be caught: a guest that catches it still ends with its exit', async () => {
  const wabt = await wabtInit();
  const compile = (text: string): Uint8Array<ArrayBuffer> => {
    const m = wabt.parseWat('x.wat', text, { exceptions: true });
    try {
      return new Uint8Array(m.toBinary({}).buffer);
    } finally {
      m.destroy();
    }
  };
  const guest = (init: string, run: string) =>
    compile(`(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "schedules") (result i32) (i32.const 0))
      ${init}
      (func (export "run") (result i32) (local $i i32)
        ${run}
        ;; Carries on after the catch: a loop, then success.
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
        (i32.const 0)))`);
  const sandbox = new InThreadSandbox({ hostCall: () => '{"ok":{}}' });
  const spec = { pluginId: 't/p', tenant: 't', config: {}, limits: DEFAULT_LIMITS };
  try {
    await sandbox.load({
      ...spec,
      wasm: guest('', '(try (do (call $exit (i32.const 5))) (catch_all))'),
    });
    const o = await sandbox.call('t/p', { fn: 'run', input: '', caller: RUN });
    assert.equal(o.ok, false);
    assert.equal(!o.ok && o.status, 'failed');
    assert.equal(!o.ok && o.reason, 'proc_exit');
    assert.match(!o.ok ? o.message : '', /proc_exit\(5\)/);

    await assert.rejects(
      sandbox.load({
        ...spec,
        pluginId: 't/q',
        wasm: guest(
          '(func (export "_initialize") (try (do (call $exit (i32.const 3))) (catch_all)))',
          '',
        ),
      }),
      (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'HG_PLUGIN_LOAD');
        assert.match(err.message ?? '', /_initialize called proc_exit\(3\)/);
        return true;
      },
    );
  } finally {
    await sandbox.close();
  }
});
