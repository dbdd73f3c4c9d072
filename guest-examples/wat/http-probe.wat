;; http-probe: run() makes outbound HTTP requests through Extism's kernel imports, as its
;; config says (tests of src/sandbox/http/):
;;   req   the request JSON (`{"url":…,"method":…,"headers":{…}}`), passed as is
;;   body  optional request body
;;   mode  first byte: o (default) one request; output = `{"result":[status,answer]}`, the answer's
;;         body as is (it must be JSON: the server's, or the error JSON when the status is 0)
;;         h the same, with the http_headers() JSON as the answer
;;         l requests forever (each answer freed): stopped by a cap or by fuel
;;         s calls schedule_get with `req` and outputs its answer (the host-call seam)
;;   schedules() -> [{"id":"probe","every":"1h"}]
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status_code (result i32)))
  (import "extism:host/env" "http_headers" (func $http_headers (result i64)))
  (import "extism:host/user" "schedule_get" (func $schedule_get (param i64) (result i64)))

  (memory (export "memory") 1)
  (data (i32.const 0) "[{\"id\":\"probe\",\"every\":\"1h\"}]") ;; 29 bytes
  (data (i32.const 32) "mode")
  (data (i32.const 48) "req")
  (data (i32.const 64) "body")
  (data (i32.const 80) "{\"result\":[")                     ;; 11 bytes

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

  (func $config (param $ptr i32) (param $len i32) (result i64)
    (call $config_get (call $to_block (local.get $ptr) (local.get $len))))

  (func $mode (result i32)
    (local $v i64)
    (local.set $v (call $config (i32.const 32) (i32.const 4)))
    (if (result i32) (i64.eqz (local.get $v))
      (then (i32.const 111))
      (else (call $load_u8 (local.get $v)))))

  (func $digit (param $at i64) (param $d i32)
    (call $store_u8 (local.get $at) (i32.add (i32.const 48) (local.get $d))))

  ;; One request; output: JSON `{"result":[status,answer]}` (the answer is JSON; `null` when empty).
  (func $once (param $headers i32)
    (local $req i64) (local $body i64) (local $resp i64) (local $len i64) (local $out i64)
    (local $status i32) (local $i i64) (local $n i64)
    (local.set $req (call $config (i32.const 48) (i32.const 3)))
    (local.set $body (call $config (i32.const 64) (i32.const 4)))
    (local.set $resp (call $http_request (local.get $req) (local.get $body)))
    (local.set $status (call $http_status_code))
    (if (local.get $headers) (then (local.set $resp (call $http_headers))))
    (local.set $len (call $length (local.get $resp)))
    (local.set $n (if (result i64) (i64.eqz (local.get $len)) (then (i64.const 4)) (else (local.get $len))))
    ;; {"result":[ + 3 status characters + "," + answer + "]}"
    (local.set $out (call $alloc (i64.add (local.get $n) (i64.const 17))))
    (block $done
      (loop $head
        (br_if $done (i64.ge_u (local.get $i) (i64.const 11)))
        (call $store_u8 (i64.add (local.get $out) (local.get $i))
          (i32.load8_u (i32.add (i32.const 80) (i32.wrap_i64 (local.get $i)))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $head)))
    (local.set $i (i64.const 0))
    (call $digit (i64.add (local.get $out) (i64.const 11)) (i32.rem_u (i32.div_u (local.get $status) (i32.const 100)) (i32.const 10)))
    (call $digit (i64.add (local.get $out) (i64.const 12)) (i32.rem_u (i32.div_u (local.get $status) (i32.const 10)) (i32.const 10)))
    (call $digit (i64.add (local.get $out) (i64.const 13)) (i32.rem_u (local.get $status) (i32.const 10)))
    (if (i32.lt_u (local.get $status) (i32.const 100))
      (then (call $store_u8 (i64.add (local.get $out) (i64.const 11)) (i32.const 32))))
    (if (i32.lt_u (local.get $status) (i32.const 10))
      (then (call $store_u8 (i64.add (local.get $out) (i64.const 12)) (i32.const 32))))
    (call $store_u8 (i64.add (local.get $out) (i64.const 14)) (i32.const 44))
    (if (i64.eqz (local.get $len))
      (then
        (call $store_u8 (i64.add (local.get $out) (i64.const 15)) (i32.const 110))
        (call $store_u8 (i64.add (local.get $out) (i64.const 16)) (i32.const 117))
        (call $store_u8 (i64.add (local.get $out) (i64.const 17)) (i32.const 108))
        (call $store_u8 (i64.add (local.get $out) (i64.const 18)) (i32.const 108))))
    (block $done
      (loop $copy
        (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $out) (i64.add (local.get $i) (i64.const 15)))
          (call $load_u8 (i64.add (local.get $resp) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (call $store_u8 (i64.add (local.get $out) (i64.add (local.get $n) (i64.const 15))) (i32.const 93))
    (call $store_u8 (i64.add (local.get $out) (i64.add (local.get $n) (i64.const 16))) (i32.const 125))
    (call $output_set (local.get $out) (i64.add (local.get $n) (i64.const 17))))

  (func $forever
    (local $req i64)
    (local.set $req (call $config (i32.const 48) (i32.const 3)))
    (loop $more
      (call $free (call $http_request (local.get $req) (i64.const 0)))
      (br $more)))

  (func $seam
    (local $a i64)
    (local.set $a (call $schedule_get (call $config (i32.const 48) (i32.const 3))))
    (call $output_set (local.get $a) (call $length (local.get $a))))

  (func (export "schedules") (result i32)
    (call $output_set (call $to_block (i32.const 0) (i32.const 29)) (i64.const 29))
    (i32.const 0))

  (func (export "run") (result i32)
    (local $m i32)
    (local.set $m (call $mode))
    (if (i32.eq (local.get $m) (i32.const 104)) (then (call $once (i32.const 1)) (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 108)) (then (call $forever) (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 115)) (then (call $seam) (return (i32.const 0))))
    (call $once (i32.const 0))
    (i32.const 0)))
