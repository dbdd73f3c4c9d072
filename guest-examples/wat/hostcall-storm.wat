;; hostcall-storm (issue 9 item 5): run() calls schedule_list {} as fast as it can, forever
;; (freeing each answer). Past its tenant's main-thread share the host answers `busy` at once;
;; the loop ends out_of_fuel (every call costs its static price, busy or not).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "schedule_list" (func $schedule_list (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"storm\",\"every\":\"1h\"}]") ;; 29 bytes
  (data (i32.const 64) "{}")

  ;; Copies $len bytes at $ptr into a new Extism block; returns its offset.
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
    (call $output_set (call $to_block (i32.const 0) (i32.const 29)) (i64.const 29))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $req i64)
    (local.set $req (call $to_block (i32.const 64) (i32.const 2)))
    (loop $again
      (call $free (call $schedule_list (local.get $req)))
      (br $again))
    (i32.const 0)))
