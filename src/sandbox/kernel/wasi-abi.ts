/**
 * The WASI preview-1 surface Hourglass serves (src/sandbox/kernel/wasi.ts): the errno values it
 * answers and every function's signature, checked at load so that no import can be called
 * with a type the host function does not expect (a JS `TypeError` thrown from an import is an
 * exception a guest could catch).
 */
import type { WasiImport } from './entry-rewrite.ts';

/** The errno values this kernel answers. */
export const Errno = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOSYS: 52,
  SPIPE: 70,
  NOTCAPABLE: 76,
} as const;

/** Preview-1 signatures (`params:results`) of the functions a guest may import. */
export const WASI_SIGNATURES: Readonly<Record<string, string>> = {
  args_get: 'ii:i',
  args_sizes_get: 'ii:i',
  environ_get: 'ii:i',
  environ_sizes_get: 'ii:i',
  clock_res_get: 'ii:i',
  clock_time_get: 'iIi:i',
  fd_advise: 'iIIi:i',
  fd_allocate: 'iII:i',
  fd_close: 'i:i',
  fd_datasync: 'i:i',
  fd_fdstat_get: 'ii:i',
  fd_fdstat_set_flags: 'ii:i',
  fd_fdstat_set_rights: 'iII:i',
  fd_filestat_get: 'ii:i',
  fd_filestat_set_size: 'iI:i',
  fd_filestat_set_times: 'iIIi:i',
  fd_pread: 'iiiIi:i',
  fd_prestat_get: 'ii:i',
  fd_prestat_dir_name: 'iii:i',
  fd_pwrite: 'iiiIi:i',
  fd_read: 'iiii:i',
  fd_readdir: 'iiiIi:i',
  fd_renumber: 'ii:i',
  fd_seek: 'iIii:i',
  fd_sync: 'i:i',
  fd_tell: 'ii:i',
  fd_write: 'iiii:i',
  path_create_directory: 'iii:i',
  path_filestat_get: 'iiiii:i',
  path_filestat_set_times: 'iiiiIIi:i',
  path_link: 'iiiiiii:i',
  path_open: 'iiiiiIIii:i',
  path_readlink: 'iiiiii:i',
  path_remove_directory: 'iii:i',
  path_rename: 'iiiiii:i',
  path_symlink: 'iiiii:i',
  path_unlink_file: 'iii:i',
  poll_oneoff: 'iiii:i',
  proc_exit: 'i:',
  proc_raise: 'i:i',
  sched_yield: ':i',
  random_get: 'ii:i',
  sock_accept: 'iii:i',
  sock_recv: 'iiiiii:i',
  sock_send: 'iiiii:i',
  sock_shutdown: 'ii:i',
};

/**
 * Why a module's WASI imports cannot be served, or null. Known functions must have their
 * preview-1 signature; unknown ones must return one i32 (they answer ENOSYS).
 */
export function checkWasiImports(imports: readonly WasiImport[]): string | null {
  for (const imp of imports) {
    const want = WASI_SIGNATURES[imp.name];
    if (want !== undefined ? imp.signature !== want : !imp.signature.endsWith(':i')) {
      return `imports wasi_snapshot_preview1.${imp.name} with signature (${imp.signature})${want ? `; preview 1 has (${want})` : '; unknown WASI functions must return one i32'}`;
    }
  }
  return null;
}
