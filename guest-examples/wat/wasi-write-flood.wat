;; wasi-write-flood: writes its whole 64 KiB memory to stdout (newlines every 64 bytes), forever:
;; the host keeps a bounded number of log lines and the call ends out of fuel.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"write-flood\",\"every\":\"1h\"}]") ;; 35 bytes

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
    (call $output (i32.const 0) (i32.const 35))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $i i32)
    (loop $fill
      (i32.store8 (i32.add (local.get $i) (i32.const 63)) (i32.const 10))
      (local.set $i (i32.add (local.get $i) (i32.const 64)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 65536))))
    (i32.store (i32.const 60000) (i32.const 0))
    (i32.store (i32.const 60004) (i32.const 65536))
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 60000) (i32.const 1) (i32.const 60008)))
      (br $forever))
    (i32.const 0))
)
