/**
 * Reading files an operator names (the host config, plugin manifests, guests' `.wasm`) without
 * trusting what the path points at. The file is opened non-blocking (opening a FIFO for reading
 * would otherwise wait for a writer forever) and checked with `fstat` on the opened descriptor
 * (not `stat` on the path, which could be swapped between the check and the open): it must be a
 * regular file no larger than the limit, so `/dev/zero`, a FIFO, a directory or a huge file is
 * refused at once, before a byte is read. At most the size `fstat` reported is read, so a file
 * that grows meanwhile cannot make the host read more. A NUL in the path is refused (Node would
 * throw a plain TypeError; SQLite would cut the path short).
 *
 * Problems are values (`FileRefusal`): each caller turns them into its own error code.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export type FileRead =
  | { readonly ok: true; readonly bytes: Uint8Array<ArrayBuffer> }
  | { readonly ok: false; readonly problem: string; readonly cause?: unknown };

function kind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export function hasNul(path: string): boolean {
  return path.includes('\0');
}

/** Reads `path` if it is a regular file of at most `maxBytes` bytes. */
export function readOperatorFile(path: string, maxBytes: number): FileRead {
  if (hasNul(path)) return { ok: false, problem: 'the path contains a NUL byte' };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { ok: false, problem: `cannot read: ${code}`, cause: err };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, problem: `cannot read: ${kind(st)}, not a regular file` };
    if (st.size > maxBytes) {
      return {
        ok: false,
        problem: `cannot read: ${st.size} bytes, over the limit of ${maxBytes}`,
      };
    }
    const bytes = new Uint8Array(st.size);
    let n = 0;
    while (n < bytes.length) {
      const got = readSync(fd, bytes, n, bytes.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return { ok: true, bytes: n === bytes.length ? bytes : bytes.slice(0, n) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { ok: false, problem: `cannot read: ${code}`, cause: err };
  } finally {
    closeSync(fd);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a JSON file: a UTF-8 byte order mark is skipped (editors on Windows write one);
 * invalid UTF-8 or JSON is a problem naming the cause.
 */
export function readJsonFile(
  path: string,
  maxBytes: number,
): { ok: true; value: unknown } | { ok: false; problem: string; cause?: unknown } {
  const r = readOperatorFile(path, maxBytes);
  if (!r.ok) return r;
  let text: string;
  try {
    text = utf8.decode(r.bytes); // TextDecoder drops a leading BOM (ignoreBOM: false)
  } catch (err) {
    return { ok: false, problem: 'not valid UTF-8', cause: err };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, problem: `not valid JSON: ${(err as Error).message}`, cause: err };
  }
}
