;; forged-id: run() tries to pause a schedule it does not own ("victim") and echoes the answer,
;; which must be `not_found`, exactly as for an id that does not exist.
;;   schedules() -> [{"id":"forger","every":"1s"}]
;;   run()       -> R = schedule_pause({"id":"victim"}); output {"result":{"responses":[R]}}
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "schedule_pause" (func $schedule_pause (param i64) (result i64)))

  (memory (export "memory") 1)
  (data (i32.const 0)   "[{\"id\":\"forger\",\"every\":\"1s\"}]") ;; 30 bytes
  (data (i32.const 64)  "{\"id\":\"victim\"}")                  ;; 15 bytes
  (data (i32.const 128) "{\"result\":{\"responses\":[")        ;; 24 bytes
  (data (i32.const 192) "]}}")                                 ;; 3 bytes

  ;; Copies $len bytes of linear memory at $ptr to Extism memory at $dst; returns $dst + $len.
  (func $put_data (param $dst i64) (param $ptr i32) (param $len i32) (result i64)
    (local $i i32)
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $dst) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (i64.add (local.get $dst) (i64.extend_i32_u (local.get $len))))

  ;; Copies the whole Extism block $src to Extism memory at $dst; returns the end position.
  (func $put_block (param $dst i64) (param $src i64) (result i64)
    (local $len i64) (local $i i64)
    (local.set $len (call $length (local.get $src)))
    (block $done
      (loop $copy
        (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $dst) (local.get $i))
          (call $load_u8 (i64.add (local.get $src) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (i64.add (local.get $dst) (local.get $len)))

  ;; Copies $len bytes at $ptr into a new Extism block; returns its offset.
  (func $to_block (param $ptr i32) (param $len i32) (result i64)
    (local $block i64)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (drop (call $put_data (local.get $block) (local.get $ptr) (local.get $len)))
    (local.get $block))

  (func (export "schedules") (result i32)
    (call $output_set (call $to_block (i32.const 0) (i32.const 30)) (i64.const 30))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $r i64) (local $total i64) (local $out i64) (local $pos i64)
    (local.set $r (call $schedule_pause (call $to_block (i32.const 64) (i32.const 15))))
    ;; prefix + R + suffix
    (local.set $total (i64.add (i64.const 27) (call $length (local.get $r)))) ;; 24 + 3
    (local.set $out (call $alloc (local.get $total)))
    (local.set $pos (call $put_data (local.get $out) (i32.const 128) (i32.const 24)))
    (local.set $pos (call $put_block (local.get $pos) (local.get $r)))
    (drop (call $put_data (local.get $pos) (i32.const 192) (i32.const 3)))
    (call $output_set (local.get $out) (local.get $total))
    (i32.const 0)))
