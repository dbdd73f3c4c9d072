;; Dense f64 matrix multiply C = A × B (N × N), with A and B filled on every call.
;; The k loop is a 3-load, 2-flop inner loop (a worst case for per-iteration checks).
(module
  (memory 4)
  ;; A at 0, B at N*N*8, C at 2*N*N*8
  (func (export "run") (param $n i32) (result f64)
    (local $i i32) (local $j i32) (local $k i32) (local $s f64) (local $b i32) (local $c i32)
    (local $sum f64)
    (local.set $b (i32.mul (i32.mul (local.get $n) (local.get $n)) (i32.const 8)))
    (local.set $c (i32.shl (local.get $b) (i32.const 1)))
    ;; fill
    (local.set $i (i32.const 0))
    (loop $fill
      (f64.store (i32.shl (local.get $i) (i32.const 3))
        (f64.convert_i32_u (i32.rem_u (i32.mul (local.get $i) (i32.const 7)) (i32.const 13))))
      (f64.store (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 3)))
        (f64.div (f64.convert_i32_u (i32.rem_u (i32.mul (local.get $i) (i32.const 5)) (i32.const 11)))
                 (f64.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.mul (local.get $n) (local.get $n)))))
    ;; multiply
    (local.set $i (i32.const 0))
    (loop $li
      (local.set $j (i32.const 0))
      (loop $lj
        (local.set $s (f64.const 0))
        (local.set $k (i32.const 0))
        (loop $lk
          (local.set $s
            (f64.add (local.get $s)
              (f64.mul
                (f64.load (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $k)) (i32.const 3)))
                (f64.load (i32.add (local.get $b)
                  (i32.shl (i32.add (i32.mul (local.get $k) (local.get $n)) (local.get $j)) (i32.const 3)))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $lk (i32.lt_u (local.get $k) (local.get $n))))
        (f64.store (i32.add (local.get $c)
          (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 3)))
          (local.get $s))
        (local.set $sum (f64.add (local.get $sum) (local.get $s)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $lj (i32.lt_u (local.get $j) (local.get $n))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $li (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum)))
