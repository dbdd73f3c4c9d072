;; counter: plugin state through Extism variables (docs/guest-abi.md, "Plugin state").
;;   schedules() -> [{"id":"tick","every":"1h"}]
;;   run()       -> reads variable "n" (u64, little-endian; absent: 0), adds 1, writes it back,
;;                  outputs {"result":N}. With config "bloat" set, it then also sets variable
;;                  "big" to 65,536 bytes: over any small `varBytes`, so the call fails
;;                  `memory_limit` / `var_limit` and keeps nothing ("n" included).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))

  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"tick\",\"every\":\"1h\"}]") ;; 28 bytes
  (data (i32.const 64) "n")
  (data (i32.const 72) "bloat")
  (data (i32.const 80) "big")
  (data (i32.const 96) "{\"result\":") ;; 10 bytes

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
    (call $output_set (call $to_block (i32.const 0) (i32.const 28)) (i64.const 28))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $v i64) (local $n i64) (local $block i64) (local $p i32) (local $x i64) (local $i i32)
    ;; n = var "n" + 1
    (local.set $v (call $var_get (call $to_block (i32.const 64) (i32.const 1))))
    (if (i64.ne (local.get $v) (i64.const 0))
      (then (local.set $n (call $load_u64 (local.get $v)))))
    (local.set $n (i64.add (local.get $n) (i64.const 1)))
    (local.set $block (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $block) (local.get $n))
    (call $var_set (call $to_block (i32.const 64) (i32.const 1)) (local.get $block))
    ;; with config "bloat": a variable over the limit
    (if (i64.ne (call $config_get (call $to_block (i32.const 72) (i32.const 5))) (i64.const 0))
      (then
        (call $var_set (call $to_block (i32.const 80) (i32.const 3))
          (call $alloc (i64.const 65536)))))
    ;; {"result":N}: digits backwards ending at 190, '}' at 190, the prefix before the digits
    (i32.store8 (i32.const 190) (i32.const 125))
    (local.set $p (i32.const 190))
    (local.set $x (local.get $n))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $x) (i64.const 10)))))
      (local.set $x (i64.div_u (local.get $x) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $x) (i64.const 0))))
    (local.set $p (i32.sub (local.get $p) (i32.const 10)))
    (block $done
      (loop $prefix
        (br_if $done (i32.ge_u (local.get $i) (i32.const 10)))
        (i32.store8 (i32.add (local.get $p) (local.get $i))
          (i32.load8_u (i32.add (i32.const 96) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $prefix)))
    (call $output_set
      (call $to_block (local.get $p) (i32.sub (i32.const 191) (local.get $p)))
      (i64.extend_i32_u (i32.sub (i32.const 191) (local.get $p))))
    (i32.const 0))

  (func (export "cleanup") (result i32) (i32.const 0)))
