;; start-burn: the start function loops until its budget (limits.fuel.discovery) runs out, so
;; the plugin's load ends out of fuel, or at the load deadline when the budget outlasts it.
;; Either way the load runs in a pool worker: other tenants load and fire meanwhile.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))

  (memory (export "memory") 1)

  (func $burn
    (local $i i64)
    (loop $spin
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $spin)))
  (start $burn)

  (func (export "schedules") (result i32) (i32.const 0))
  (func (export "run") (result i32) (i32.const 0)))
