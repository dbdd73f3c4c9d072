;; discovery-grow: schedules() leaves state behind, run() says whether it sees any (tests that a
;; run gets a fresh instance, not the one discovery used).
;;   schedules() -> grows memory from 1 to 16 pages, sets a global, [{"id":"tick","every":"1h"}]
;;   run()       -> 0 on a fresh instance (1 page, global unset); otherwise pages - 1 + global
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))

  (memory (export "memory") 1)
  (global $touched (mut i32) (i32.const 0))
  (data (i32.const 0) "[{\"id\":\"tick\",\"every\":\"1h\"}]") ;; 28 bytes

  ;; Copies $len bytes of linear memory at $ptr into a new Extism block; returns its offset.
  (func $to_block (param $ptr i32) (param $len i32) (result i64)
    (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (local.get $block))

  (func (export "schedules") (result i32)
    (drop (memory.grow (i32.const 15)))
    (global.set $touched (i32.const 1))
    (call $output_set (call $to_block (i32.const 0) (i32.const 28)) (i64.const 28))
    (i32.const 0))

  (func (export "run") (result i32)
    (i32.add (i32.sub (memory.size) (i32.const 1)) (global.get $touched))))
