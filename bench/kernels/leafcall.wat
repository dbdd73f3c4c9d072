;; A loop calling a tiny loop-free leaf function (FUEL.md: a worst case, every call syncs fuel).
(module
  (func $mix (param $a i32) (param $b i32) (result i32)
    (i32.xor (i32.add (i32.mul (local.get $a) (i32.const 31)) (local.get $b))
             (i32.shr_u (local.get $a) (i32.const 3))))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (call $mix (local.get $acc) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))
