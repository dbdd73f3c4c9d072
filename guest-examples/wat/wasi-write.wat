;; wasi-write: writes to stdout (a line split across two iovecs and a partial last line), to
;; stderr, and to fd 3. Output (20 bytes, u32 each): errno and bytes written for stdout, for
;; stderr, then fd 3's errno.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"write\",\"every\":\"1h\"}]") ;; 29 bytes
  (data (i32.const 4096) "hello\nworld\npartial")
  (data (i32.const 4160) "oops\n")

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
    ;; iovecs at 3000: "hello\nwor" + "ld\npartial"; at 3016: "oops\n".
    (i32.store (i32.const 3000) (i32.const 4096))
    (i32.store (i32.const 3004) (i32.const 9))
    (i32.store (i32.const 3008) (i32.const 4105))
    (i32.store (i32.const 3012) (i32.const 10))
    (i32.store (i32.const 3016) (i32.const 4160))
    (i32.store (i32.const 3020) (i32.const 5))
    (i32.store (i32.const 2048) (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 2) (i32.const 2052)))
    (i32.store (i32.const 2056) (call $fd_write (i32.const 2) (i32.const 3016) (i32.const 1) (i32.const 2060)))
    (i32.store (i32.const 2064) (call $fd_write (i32.const 3) (i32.const 3000) (i32.const 2) (i32.const 3100)))
    (call $report (i32.const 2048) (i32.const 20))
    (i32.const 0))
)
