;; wasi-sleep: sleeps 10 s through WASI poll_oneoff (Hourglass's WASI returns at once and
;; advances virtual time). Output (44 bytes): monotonic before u64, monotonic after u64, wall clock
;; u64, poll errno u32, events u32, the event's userdata u64, its error u32.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"sleep\",\"every\":\"1h\"}]") ;; 29 bytes

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

  ;; Sets $len bytes at $ptr as the call's output.
  (func $output (param $ptr i32) (param $len i32)
    (call $output_set (call $to_block (local.get $ptr) (local.get $len))
      (i64.extend_i32_u (local.get $len))))

  (func (export "schedules") (result i32)
    (call $output (i32.const 0) (i32.const 29))
    (i32.const 0))

  ;; Binary output for the sandbox tests, which call with an empty input; a host run (whose
  ;; input is the run context, and whose output must be JSON) gets none.
  (func $report (param $ptr i32) (param $len i32)
    (if (i64.eqz (call $input_length)) (then (call $output (local.get $ptr) (local.get $len)))))

  (func (export "run") (result i32)
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 2048)))
    ;; One clock subscription at 1024: userdata 42, monotonic, relative timeout 10000000000 ns.
    (i64.store (i32.const 1024) (i64.const 42))
    (i32.store8 (i32.const 1032) (i32.const 0))
    (i32.store (i32.const 1040) (i32.const 1))
    (i64.store (i32.const 1048) (i64.const 10000000000))
    (i64.store (i32.const 1056) (i64.const 0))
    (i32.store16 (i32.const 1064) (i32.const 0))
    (i32.store (i32.const 2072)
      (call $poll (i32.const 1024) (i32.const 1100) (i32.const 1) (i32.const 1200)))
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 2056)))
    (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 2064)))
    (i32.store (i32.const 2076) (i32.load (i32.const 1200)))
    (i64.store (i32.const 2080) (i64.load (i32.const 1100)))
    (i32.store (i32.const 2088) (i32.load16_u (i32.const 1108)))
    (call $report (i32.const 2048) (i32.const 44))
    (i32.const 0))
)
