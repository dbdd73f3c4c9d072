;; A while-shaped loop calling a 5-operation leaf that is itself exported (issue 15: 1.70-1.73x
;; when exported functions used the global on every call).
(module
  (func $leaf (export "leaf") (param $a i32) (result i32)
    (i32.add (i32.mul (local.get $a) (i32.const 0x9e3779b1)) (i32.const 7)))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.xor (local.get $acc) (call $leaf (i32.add (local.get $acc) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc)))
