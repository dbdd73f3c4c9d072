;; wasi-files: tries files, sockets, environment and arguments through WASI; returns the number
;; of answers that differ from Hourglass's WASI (0: every one refused as documented).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $filestat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"files\",\"every\":\"1h\"}]") ;; 29 bytes
  (data (i32.const 4096) "/etc/passwd")

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

  (global $bad (mut i32) (i32.const 0))
  (func $expect (param $got i32) (param $want i32)
    (if (i32.ne (local.get $got) (local.get $want))
      (then (global.set $bad (i32.add (global.get $bad) (i32.const 1))))))
  (func (export "run") (result i32)
    (i32.store (i32.const 3000) (i32.const 7))
    (i32.store (i32.const 3004) (i32.const 7))
    (call $expect (call $path_open (i32.const 3) (i32.const 0) (i32.const 4096) (i32.const 11)
      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 3000)) (i32.const 76))
    (call $expect (call $path_open (i32.const 0) (i32.const 0) (i32.const 4096) (i32.const 11)
      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 3000)) (i32.const 76))
    (call $expect (call $path_unlink (i32.const 3) (i32.const 4096) (i32.const 11)) (i32.const 76))
    (call $expect (call $prestat (i32.const 3) (i32.const 3000)) (i32.const 8))
    (call $expect (call $fd_read (i32.const 5) (i32.const 3000) (i32.const 0) (i32.const 3100)) (i32.const 8))
    (call $expect (call $filestat (i32.const 3) (i32.const 3000)) (i32.const 8))
    (call $expect (call $environ_sizes (i32.const 3000) (i32.const 3004)) (i32.const 0))
    (call $expect (i32.load (i32.const 3000)) (i32.const 0))
    (call $expect (i32.load (i32.const 3004)) (i32.const 0))
    (i32.store (i32.const 3000) (i32.const 7))
    (call $expect (call $args_sizes (i32.const 3000) (i32.const 3004)) (i32.const 0))
    (call $expect (i32.load (i32.const 3000)) (i32.const 0))
    (call $expect (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 3000)) (i32.const 76))
    (call $expect (call $proc_raise (i32.const 9)) (i32.const 52))
    ;; Out-of-bounds pointers are EFAULT, not a host crash.
    (call $expect (call $args_sizes (i32.const -8) (i32.const 3004)) (i32.const 21))
    (global.get $bad))
)
