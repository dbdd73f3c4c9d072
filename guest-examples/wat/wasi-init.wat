;; wasi-init: a WASI reactor whose _initialize writes a log line and reads 32 random bytes
;; (memory and WASI are bound before init runs); run outputs those bytes.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"init\",\"every\":\"1h\"}]") ;; 28 bytes
  (data (i32.const 4096) "init ok\n")

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
    (call $output (i32.const 0) (i32.const 28))
    (i32.const 0))

  ;; Binary output for the sandbox tests, which call with an empty input; a host run (whose
  ;; input is the run context, and whose output must be JSON) gets none.
  (func $report (param $ptr i32) (param $len i32)
    (if (i64.eqz (call $input_length)) (then (call $output (local.get $ptr) (local.get $len)))))

  (func (export "_initialize")
    (i32.store (i32.const 3000) (i32.const 4096))
    (i32.store (i32.const 3004) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3100)))
    (drop (call $random (i32.const 2048) (i32.const 32))))
  (func (export "run") (result i32)
    (call $report (i32.const 2048) (i32.const 32))
    (i32.const 0))
)
