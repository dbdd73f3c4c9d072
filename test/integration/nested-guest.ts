/**
 * A guest whose `run()` nests `depth` `if`s (never entered) and whose `schedules()` declares
 * `[{"id":"nest","every":"1h"}]`. Written as binary directly: wabt's text parser recurses and
 * fails long before 10,000 levels. Imports only the Extism kernel functions it uses.
 */

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const section = (id: number, payload: number[]): number[] => [
  id,
  ...uleb(payload.length),
  ...payload,
];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s)];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

export const NESTED_SCHEDULES = '[{"id":"nest","every":"1h"}]';

export function nestedIfsGuest(depth: number): Uint8Array {
  const KERNEL = 'extism:host/env';
  const I32 = 0x7f;
  const I64 = 0x7e;
  const types = vec([
    [0x60, 0, 1, I32], // 0: () -> i32
    [0x60, 1, I64, 1, I64], // 1: alloc
    [0x60, 2, I64, I32, 0], // 2: store_u8
    [0x60, 2, I64, I64, 0], // 3: output_set
  ]);
  const imports = vec([
    [...name(KERNEL), ...name('alloc'), 0, 1],
    [...name(KERNEL), ...name('store_u8'), 0, 2],
    [...name(KERNEL), ...name('output_set'), 0, 3],
  ]);
  const exports = vec([
    [...name('memory'), 2, 0],
    [...name('schedules'), 0, 3],
    [...name('run'), 0, 4],
  ]);
  // schedules(): block = alloc(len); store each byte; output_set(block, len); return 0
  const json = Buffer.from(NESTED_SCHEDULES);
  const sched: number[] = [1, 1, I64]; // one i64 local
  sched.push(0x42, ...sleb(json.length), 0x10, 0, 0x21, 0);
  json.forEach((byte, i) => {
    sched.push(0x20, 0, 0x42, ...sleb(i), 0x7c, 0x41, ...sleb(byte), 0x10, 1);
  });
  sched.push(0x20, 0, 0x42, ...sleb(json.length), 0x10, 2, 0x41, 0, 0x0b);
  // run(): depth nested ifs over a zero local, then return 0
  const run = new Uint8Array(3 + depth * 5 + 1 + 3);
  run.set([1, 1, I32], 0);
  let p = 3;
  for (let i = 0; i < depth; i++) {
    run.set([0x20, 0, 0x04, 0x40], p);
    p += 4;
  }
  run[p++] = 0x01; // nop
  run.fill(0x0b, p, p + depth);
  p += depth;
  run.set([0x41, 0, 0x0b], p);
  const codeHead = [2, ...uleb(sched.length), ...sched, ...uleb(run.length)];
  const head = [
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, vec([[0], [0]])),
    ...section(5, vec([[0, 1]])),
    ...section(7, exports),
    10,
    ...uleb(codeHead.length + run.length),
    ...codeHead,
  ];
  const out = new Uint8Array(head.length + run.length);
  out.set(head, 0);
  out.set(run, head.length);
  return out;
}
