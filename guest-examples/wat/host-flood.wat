;; host-flood: run() calls schedule_get in a tight loop forever (ends out_of_fuel: each host call costs fuel).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "schedule_get" (func $schedule_get (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"flood\",\"every\":\"1s\"}]")

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

  (data (i32.const 512) "{\"id\":\"flood\"}")
  (func (export "run") (result i32)
    (loop $again
      (drop (call $schedule_get (call $to_block (i32.const 512) (i32.const 14))))
      (br $again))
    (i32.const 0)))
