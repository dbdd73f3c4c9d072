;; kernel-abuse: run() misuses Extism's kernel imports in the way its Extism config value `mode`
;; (one character) names; each must end the call with a typed outcome (docs/sandbox-kernel.md):
;;   v  var_set bomb: 100 kB variables in a loop                  -> memory_limit / var_limit
;;   k  var_set of ever more 1-byte variables (the key count)     -> memory_limit / var_limit
;;   r  var_set of the block a refused alloc would have made      -> trapped / invalid_block
;;   o  output_set of that block                                  -> trapped / invalid_block
;;   g  1 GiB output (alloc refused, output_set of 1 GiB)         -> failed / output_too_large
;;   b  host function given bogus offsets (none, 0, inside a block): every answer must be
;;      invalid_argument, else run() returns 3                    -> succeeded
;;   l  load_u8 at a bogus offset                                 -> trapped / invalid_block
;;   c  output_set at a bogus offset inside try/catch_all, then returns 0
;;                                                                -> trapped / invalid_block
;;   a  env.abort inside try/catch_all, then returns 0            -> trapped / abort
;;   L  log flood: log_info forever                               -> out_of_fuel
;;   h  fills Extism memory, then calls schedule_get (its answer cannot fit)
;;                                                                -> memory_limit / block_limit
;;   t  grows 8 tables (11,000 at once, then by 100) until refused; returns 1 if they hold more
;;      than 10,000 elements in all                               -> succeeded
;;   T  table.grow of 1M elements forever                         -> out_of_fuel
;;   otherwise run() returns 0.
;;   schedules() -> [{"id":"k","every":"1h"}]
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/user" "schedule_get" (func $schedule_get (param i64) (result i64)))
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (table $t0 0 funcref) (table $t1 0 funcref) (table $t2 0 funcref) (table $t3 0 funcref)
  (table $t4 0 funcref) (table $t5 0 funcref) (table $t6 0 funcref) (table $t7 0 funcref)
  (data (i32.const 0) "[{\"id\":\"k\",\"every\":\"1h\"}]")    ;; 25 bytes
  (data (i32.const 64) "mode")                                ;; 4 bytes
  (data (i32.const 96) "{\"error\":{\"code\":\"invalid_argument\"") ;; 35 bytes
  (data (i32.const 160) "{\"id\":\"x\"}")                     ;; 10 bytes
  (data (i32.const 192) "flood")                              ;; 5 bytes

  (global $HUGE i64 (i64.const 0x00000000dead0000))

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

  ;; 1 if block $b starts with the $len bytes at $ptr.
  (func $starts_with (param $b i64) (param $ptr i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i64.lt_u (call $length (local.get $b)) (i64.extend_i32_u (local.get $len)))
      (then (return (i32.const 0))))
    (block $done
      (loop $cmp
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne
              (call $load_u8 (i64.add (local.get $b) (i64.extend_i32_u (local.get $i))))
              (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $cmp)))
    (i32.const 1))

  ;; The first byte of config value `mode` (0 if unset).
  (func $mode (result i32)
    (local $v i64)
    (local.set $v (call $config_get (call $to_block (i32.const 64) (i32.const 4))))
    (if (result i32) (i64.eqz (local.get $v))
      (then (i32.const 0))
      (else (call $load_u8 (local.get $v)))))

  ;; A key block holding the 4 bytes of $n.
  (func $key (param $n i32) (result i64)
    (i32.store (i32.const 512) (local.get $n))
    (call $to_block (i32.const 512) (i32.const 4)))

  (func $var_loop (param $size i64)
    (local $n i32) (local $v i64)
    (loop $more
      (local.set $v (call $alloc (local.get $size)))
      (call $var_set (call $key (local.get $n)) (local.get $v))
      (call $free (local.get $v))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))

  ;; The block a refused alloc would have had in Extism's JS SDK (previous + 2^48).
  (func $forged (result i64)
    (local $a i64)
    (local.set $a (call $alloc (i64.const 16)))
    (drop (call $alloc (i64.const 0x10000000000)))
    (i64.add (local.get $a) (i64.const 0x1000000000000)))

  (func $fill_extism_memory
    (local $size i64)
    (local.set $size (i64.const 1048576))
    (loop $sizes
      (block $refused
        (loop $more
          (br_if $refused (i64.eqz (call $alloc (local.get $size))))
          (br $more)))
      (local.set $size (i64.shr_u (local.get $size) (i64.const 4)))
      (br_if $sizes (i64.ne (local.get $size) (i64.const 0)))))

  (func $grow_all (result i32)
    (local $total i32)
    (drop (table.grow $t0 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t1 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t2 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t3 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t4 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t5 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t6 (ref.null func) (i32.const 11000)))
    (drop (table.grow $t7 (ref.null func) (i32.const 11000)))
    (loop $l (br_if $l (i32.ne (table.grow $t0 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t1 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t2 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t3 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t4 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t5 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t6 (ref.null func) (i32.const 100)) (i32.const -1))))
    (loop $l (br_if $l (i32.ne (table.grow $t7 (ref.null func) (i32.const 100)) (i32.const -1))))
    (local.set $total
      (i32.add
        (i32.add (i32.add (table.size $t0) (table.size $t1)) (i32.add (table.size $t2) (table.size $t3)))
        (i32.add (i32.add (table.size $t4) (table.size $t5)) (i32.add (table.size $t6) (table.size $t7)))))
    (i32.gt_u (local.get $total) (i32.const 10000)))

  (func (export "schedules") (result i32)
    (call $output_set (call $to_block (i32.const 0) (i32.const 25)) (i64.const 25))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $m i32) (local $req i64) (local $ok i32) (local $b i64)
    (local.set $m (call $mode))
    (if (i32.eq (local.get $m) (i32.const 118)) ;; v
      (then (call $var_loop (i64.const 100000))))
    (if (i32.eq (local.get $m) (i32.const 107)) ;; k
      (then (call $var_loop (i64.const 1))))
    (if (i32.eq (local.get $m) (i32.const 114)) ;; r
      (then
        (local.set $req (call $key (i32.const 7)))
        (call $var_set (local.get $req) (call $forged))))
    (if (i32.eq (local.get $m) (i32.const 111)) ;; o
      (then (call $output_set (call $forged) (i64.const 16))))
    (if (i32.eq (local.get $m) (i32.const 103)) ;; g
      (then
        (local.set $b (call $alloc (i64.const 1)))
        (drop (call $alloc (i64.const 1073741824)))
        (call $output_set (i64.add (local.get $b) (i64.const 0x1000000000000)) (i64.const 1073741824))))
    (if (i32.eq (local.get $m) (i32.const 98)) ;; b
      (then
        (local.set $req (call $to_block (i32.const 160) (i32.const 10)))
        (local.set $ok
          (i32.and
            (i32.and
              (call $starts_with (call $schedule_get (global.get $HUGE)) (i32.const 96) (i32.const 35))
              (call $starts_with (call $schedule_get (i64.const 0)) (i32.const 96) (i32.const 35)))
            (call $starts_with
              (call $schedule_get (i64.add (local.get $req) (i64.const 2)))
              (i32.const 96) (i32.const 35))))
        (return (select (i32.const 0) (i32.const 3) (local.get $ok)))))
    (if (i32.eq (local.get $m) (i32.const 108)) ;; l
      (then (drop (call $load_u8 (i64.shl (i64.const 0xdead) (i64.const 48))))))
    (if (i32.eq (local.get $m) (i32.const 99)) ;; c
      (then
        (try (do (call $output_set (i64.shl (i64.const 0xdead) (i64.const 48)) (i64.const 1)))
          (catch_all))
        (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 97)) ;; a
      (then
        (try (do (call $abort (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 1)))
          (catch_all))
        (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 76)) ;; L
      (then (loop $flood (call $log_info (call $to_block (i32.const 192) (i32.const 5))) (br $flood))))
    (if (i32.eq (local.get $m) (i32.const 104)) ;; h
      (then
        (local.set $req (call $to_block (i32.const 160) (i32.const 10)))
        (call $fill_extism_memory)
        (drop (call $schedule_get (local.get $req)))))
    (if (i32.eq (local.get $m) (i32.const 116)) ;; t
      (then (return (call $grow_all))))
    (if (i32.eq (local.get $m) (i32.const 84)) ;; T
      (then (loop $huge (drop (table.grow $t0 (ref.null func) (i32.const 1000000))) (br $huge))))
    (i32.const 0)))
