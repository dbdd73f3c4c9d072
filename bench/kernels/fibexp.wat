;; Recursive Fibonacci exported and called from JavaScript (issue 15: the shape where the
;; function is both an export and its own recursive callee, 1.94-1.99x before twins).
(module
  (func $fib (export "run") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
