;; list-bomb (issue 9 item 5): run() creates 500 schedules with 64,000-byte payloads, then
;; calls schedule_list {"limit":500} forever (freeing each answer). Each page is bounded
;; (256 KiB), so the host never builds a 32 MB answer; the loop ends out_of_fuel.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "schedule_create" (func $schedule_create (param i64) (result i64)))
  (import "extism:host/user" "schedule_list" (func $schedule_list (param i64) (result i64)))
  (memory (export "memory") 2)
  (data (i32.const 0) "[{\"id\":\"bomb\",\"every\":\"1h\"}]") ;; 28 bytes
  (data (i32.const 64) "{\"limit\":500}") ;; 13 bytes
  ;; The create request: 37-byte head, 64,000 x, closing "} (64,039 bytes in all).
  (data (i32.const 1024) "{\"id\":\"s000\",\"every\":\"1h\",\"payload\":\"")

  ;; Copies $len bytes at $ptr into a new Extism block, 8 at a time; returns its offset.
  (func $to_block (param $ptr i32) (param $len i32) (result i64)
    (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $copy
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (call $store_u64
          (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i64.load (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $copy)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (local.get $block))

  (func (export "schedules") (result i32)
    (call $output_set (call $to_block (i32.const 0) (i32.const 28)) (i64.const 28))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $req i64) (local $list i64) (local $n i32)
    ;; 64,000 payload bytes after the head, then the closing quote and brace.
    (memory.fill (i32.const 1061) (i32.const 120) (i32.const 64000))
    (i32.store16 (i32.const 65061) (i32.const 0x7d22))
    (local.set $req (call $to_block (i32.const 1024) (i32.const 64039)))
    (block $created
      (loop $create
        (br_if $created (i32.ge_u (local.get $n) (i32.const 500)))
        ;; The id's three digits, in place: s000 … s499.
        (call $store_u8 (i64.add (local.get $req) (i64.const 8))
          (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 100))))
        (call $store_u8 (i64.add (local.get $req) (i64.const 9))
          (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $n) (i32.const 10)) (i32.const 10))))
        (call $store_u8 (i64.add (local.get $req) (i64.const 10))
          (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
        (call $free (call $schedule_create (local.get $req)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $create)))
    (local.set $list (call $to_block (i32.const 64) (i32.const 13)))
    (loop $again
      (call $free (call $schedule_list (local.get $list)))
      (br $again))
    (i32.const 0)))
