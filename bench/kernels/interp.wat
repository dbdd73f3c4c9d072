;; A small register-machine bytecode interpreter: fetch, decode, br_table dispatch, with the
;; registers in linear memory. The program (at 256, 8 bytes per instruction: op, a, b, c,
;; imm32) runs an LCG for r0 iterations and folds it into r1, which `run` returns.
;; Ops: 0 halt, 1 li a imm, 2 add a b c, 3 sub a b c, 4 mul a b c, 5 jnz a imm, 6 xor a b c,
;; 7 shr_u a b imm.
(module
  (memory 1)
  (data (i32.const 256)
    "\01\01\00\00\00\00\00\00"  ;; 0: li r1, 0
    "\01\02\00\00\01\00\00\00"  ;; 1: li r2, 1
    "\01\03\00\00\39\30\00\00"  ;; 2: li r3, 12345
    "\01\05\00\00\6d\4e\c6\41"  ;; 3: li r5, 1103515245
    "\01\06\00\00\39\30\00\00"  ;; 4: li r6, 12345
    "\04\03\03\05\00\00\00\00"  ;; 5: mul r3, r3, r5
    "\02\03\03\06\00\00\00\00"  ;; 6: add r3, r3, r6
    "\07\04\03\00\10\00\00\00"  ;; 7: shr_u r4, r3, 16
    "\06\01\01\04\00\00\00\00"  ;; 8: xor r1, r1, r4
    "\02\01\01\04\00\00\00\00"  ;; 9: add r1, r1, r4
    "\03\00\00\02\00\00\00\00"  ;; 10: sub r0, r0, r2
    "\05\00\00\00\05\00\00\00"  ;; 11: jnz r0, 5
    "\00\00\00\00\00\00\00\00") ;; 12: halt
  (func (export "run") (param $n i32) (result i32)
    (local $pc i32) (local $ins i32) (local $a i32) (local $imm i32)
    (i32.store (i32.const 0) (local.get $n))
    (block $halt
      (loop $next
        (local.set $ins (i32.add (i32.const 256) (i32.shl (local.get $pc) (i32.const 3))))
        (local.set $a (i32.shl (i32.load8_u offset=1 (local.get $ins)) (i32.const 2)))
        (local.set $imm (i32.load offset=4 (local.get $ins)))
        (local.set $pc (i32.add (local.get $pc) (i32.const 1)))
        (block $shr (block $xor (block $jnz (block $mul (block $sub (block $add (block $li
          (br_table $halt $li $add $sub $mul $jnz $xor $shr $halt
            (i32.load8_u (local.get $ins))))
          ;; li
          (i32.store (local.get $a) (local.get $imm))
          (br $next))
          ;; add
          (i32.store (local.get $a)
            (i32.add (i32.load (i32.shl (i32.load8_u offset=2 (local.get $ins)) (i32.const 2)))
                     (i32.load (i32.shl (i32.load8_u offset=3 (local.get $ins)) (i32.const 2)))))
          (br $next))
          ;; sub
          (i32.store (local.get $a)
            (i32.sub (i32.load (i32.shl (i32.load8_u offset=2 (local.get $ins)) (i32.const 2)))
                     (i32.load (i32.shl (i32.load8_u offset=3 (local.get $ins)) (i32.const 2)))))
          (br $next))
          ;; mul
          (i32.store (local.get $a)
            (i32.mul (i32.load (i32.shl (i32.load8_u offset=2 (local.get $ins)) (i32.const 2)))
                     (i32.load (i32.shl (i32.load8_u offset=3 (local.get $ins)) (i32.const 2)))))
          (br $next))
          ;; jnz
          (if (i32.load (local.get $a)) (then (local.set $pc (local.get $imm))))
          (br $next))
          ;; xor
          (i32.store (local.get $a)
            (i32.xor (i32.load (i32.shl (i32.load8_u offset=2 (local.get $ins)) (i32.const 2)))
                     (i32.load (i32.shl (i32.load8_u offset=3 (local.get $ins)) (i32.const 2)))))
          (br $next))
        ;; shr_u
        (i32.store (local.get $a)
          (i32.shr_u (i32.load (i32.shl (i32.load8_u offset=2 (local.get $ins)) (i32.const 2)))
                     (local.get $imm)))
        (br $next)))
    (i32.load offset=4 (i32.const 0))))
