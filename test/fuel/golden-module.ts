/**
 * The golden-fuel module: one export per control construct, with the exact fuel each call
 * must use at cost table hg-costs/2 (1 per operator; 0 for nop drop block loop end else
 * unreachable return try catch catch_all delegate; memory.grow 1024/page; bulk memory 1 per
 * 64 bytes; table ops 1024 per 8 elements; a host call 1 + 10). Counts are worked out by hand in
 * the comments. `withExceptions` adds try/catch, which switches the module to the placement
 * where calls end metered blocks, so every case is checked under both regimes.
 */

export interface GoldenCase {
  readonly name: string;
  readonly args: readonly unknown[];
  readonly fuel: number;
  readonly result?: unknown;
}

export function goldenWat(withExceptions: boolean): string {
  const eh = withExceptions
    ? `
  (tag $e (param i32))
  (func $thrower (param i32) (throw $e (local.get 0)))
  (func (export "catch") (result i32)
    (try (result i32)
      (do (call $thrower (i32.const 5)) (i32.const 9) (i32.const 1) (i32.add))
      (catch $e (i32.const 1) (i32.add))))
  (func (export "catch_host") (result i32)
    (try (result i32) (do (call $throws) (i32.const 1)) (catch_all (i32.const 2))))
  (func (export "rethrow_caught") (result i32)
    (try (result i32)
      (do (try (do (call $thrower (i32.const 3))) (catch $e (drop) (rethrow 0))) (i32.const 0))
      (catch $e)))
  (func (export "delegate") (result i32)
    (try $outer (result i32)
      (do (try (do (call $thrower (i32.const 4))) (delegate $outer)) (i32.const 0))
      (catch $e (i32.const 10) (i32.add))))`
    : '';
  return `(module
  (import "env" "host" (func $host (result i32)))
  (import "env" "throws" (func $throws))
  (type $v_i (func (result i32)))
  (memory 1 100)
  (table $t 4 funcref)
  (elem (i32.const 0) $leaf $leaf2)
  (data $d "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
  (func $leaf (result i32) (i32.const 1))
  (func $leaf2 (result i32) (i32.const 2) (i32.const 3) (i32.add))
  (func (export "block") (result i32) (block (nop)) (i32.const 1))
  (func (export "loop") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1))
  (func (export "if") (param i32) (result i32)
    (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2) (i32.const 3) (i32.add))))
  (func (export "if_no_else") (param i32) (result i32) (local i32)
    (if (local.get 0) (then (local.set 1 (i32.const 5))))
    (local.get 1))
  (func (export "br") (result i32) (block $b (br $b) (unreachable)) (i32.const 7))
  (func (export "br_if") (param i32) (result i32)
    (block $b (br_if $b (local.get 0)) (i32.const 1) (drop))
    (i32.const 7))
  (func (export "br_table") (param i32) (result i32)
    (block $a
      (block $b
        (block $c (br_table $a $b $c (local.get 0)))
        (i32.const 10) (return))
      (i32.const 20) (i32.const 1) (i32.add) (return))
    (i32.const 30) (i32.const 1) (i32.add) (i32.const 1) (i32.add))
  (func (export "br_func") (param i32) (result i32)
    (br_if 0 (i32.const 1) (local.get 0))
    (drop) (i32.const 2))
  (func (export "return") (param i32) (result i32)
    (if (local.get 0) (then (return (i32.const 1))))
    (i32.const 2) (i32.const 3) (i32.add))
  (func (export "call") (result i32) (call $leaf) (call $leaf2) (i32.add))
  (func (export "call_indirect") (param i32) (result i32)
    (call_indirect (type $v_i) (local.get 0)))
  (func $count (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (return_call $count (i32.sub (local.get 0) (i32.const 1))))))
  (export "tail" (func $count))
  (func (export "tail_indirect") (param i32) (result i32)
    (return_call_indirect (type $v_i) (local.get 0)))
  (func (export "host") (result i32) (call $host) (i32.const 1) (i32.add))
  (func (export "grow") (result i32) (memory.grow (i32.const 3)))
  (func (export "grow_fail") (result i32) (memory.grow (i32.const 1000)))
  (func (export "fill") (memory.fill (i32.const 0) (i32.const 7) (i32.const 100)))
  (func (export "copy") (memory.copy (i32.const 100) (i32.const 0) (i32.const 64)))
  (func (export "init") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 65)))
  (func (export "table") (result i32)
    (drop (table.grow $t (ref.null func) (i32.const 9)))
    (table.fill $t (i32.const 0) (ref.func $leaf) (i32.const 13))
    (table.copy (i32.const 0) (i32.const 1) (i32.const 8))
    (table.size $t))
  (func (export "multi") (param i32) (result i32 i32)
    (block $b (result i32 i32)
      (i32.const 1) (i32.const 2)
      (br_if 1 (local.get 0))
      (drop) (drop) (i32.const 3) (i32.const 4))
    (return))
  ${eh}
)`;
}

export const GOLDEN_CASES: readonly GoldenCase[] = [
  { name: 'block', args: [], fuel: 1, result: 1 }, // i32.const
  { name: 'loop', args: [1], fuel: 9, result: 1 }, // 8 per iteration + local.get
  { name: 'loop', args: [100], fuel: 801, result: 100 },
  { name: 'if', args: [1], fuel: 3, result: 1 }, // local.get if i32.const
  { name: 'if', args: [0], fuel: 5, result: 5 }, // local.get if const const add
  { name: 'if_no_else', args: [1], fuel: 5, result: 5 }, // local.get if const set get
  { name: 'if_no_else', args: [0], fuel: 3, result: 0 },
  { name: 'br', args: [], fuel: 2, result: 7 }, // br const
  { name: 'br_if', args: [1], fuel: 3, result: 7 }, // get br_if const
  { name: 'br_if', args: [0], fuel: 4, result: 7 }, // get br_if const (drop) const
  { name: 'br_table', args: [0], fuel: 7, result: 32 }, // get br_table + 5
  { name: 'br_table', args: [1], fuel: 5, result: 21 }, // + 3
  { name: 'br_table', args: [7], fuel: 3, result: 10 }, // + 1
  { name: 'br_func', args: [1], fuel: 3, result: 1 }, // const get br_if
  { name: 'br_func', args: [0], fuel: 4, result: 2 }, // ... (drop) const
  { name: 'return', args: [1], fuel: 3, result: 1 }, // get if const (return)
  { name: 'return', args: [0], fuel: 5, result: 5 },
  { name: 'call', args: [], fuel: 7, result: 4 }, // call+1, call+3, add
  { name: 'call_indirect', args: [0], fuel: 3, result: 1 }, // get call_indirect +1
  { name: 'call_indirect', args: [1], fuel: 5, result: 5 },
  { name: 'tail', args: [0], fuel: 4, result: 0 }, // get eqz if const
  { name: 'tail', args: [10], fuel: 74, result: 0 }, // 7 per level + 4
  { name: 'tail_indirect', args: [1], fuel: 5, result: 5 }, // get return_call_indirect +3
  { name: 'host', args: [], fuel: 13, result: 43 }, // call (1 + 10) const add
  { name: 'grow', args: [], fuel: 3074, result: 1 }, // const grow + 3 × 1024
  { name: 'grow_fail', args: [], fuel: 1_024_002, result: -1 }, // charged even when refused
  { name: 'fill', args: [], fuel: 6 }, // 3 consts + fill + ceil(100/64)
  { name: 'copy', args: [], fuel: 5 }, // 3 consts + copy + 1
  { name: 'init', args: [], fuel: 6 }, // 3 consts + init + ceil(65/64)
  { name: 'table', args: [], fuel: 5132, result: 13 }, // grow 3+2k, fill 4+2k, copy 4+1k, size 1 (k = 1024)
  { name: 'multi', args: [1], fuel: 4, result: [1, 2] }, // const const get br_if (return)
  { name: 'multi', args: [0], fuel: 6, result: [3, 4] },
];

export const EXCEPTION_CASES: readonly GoldenCase[] = [
  // const, call, thrower (get, throw), [skipped const const add], (catch) const add
  { name: 'catch', args: [], fuel: 6, result: 6 },
  // call host (1 + 10), [skipped const], (catch_all) const
  { name: 'catch_host', args: [], fuel: 12, result: 2 },
  // const call get throw, (catch) rethrow, (outer catch): 1+1+2+1 = 5
  { name: 'rethrow_caught', args: [], fuel: 5, result: 3 },
  // const call get throw, (delegate → outer catch) const add: 1+1+2+2 = 6
  { name: 'delegate', args: [], fuel: 6, result: 14 },
];
