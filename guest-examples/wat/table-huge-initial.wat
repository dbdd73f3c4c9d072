;; table-huge-initial: declares a 2M-element table (16 MB of host memory at instantiation), over
;; any plugin's table cap: the plugin must be refused at load (HG_WASM_TABLE_LIMIT).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (table 2000000 funcref)
  (func (export "schedules") (result i32) (i32.const 0))
  (func (export "run") (result i32) (i32.const 0)))
