;; check-unknown-import: a guest that imports a function outside the guest ABI
;; (`wasi_unstable.fd_write`), otherwise well-formed. Hourglass refuses it at load time.
;;   schedules() -> []
;;   run()       -> 0
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "[]")

  (func (export "schedules") (result i32)
    (local $block i64)
    (local.set $block (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $block) (i32.const 0x5b))
    (call $store_u8 (i64.add (local.get $block) (i64.const 1)) (i32.const 0x5d))
    (call $output_set (local.get $block) (i64.const 2))
    (i32.const 0))

  (func (export "run") (result i32) (i32.const 0)))
