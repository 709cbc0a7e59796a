/** The block layer's request checks and run-time error, with no host dependency (see block.ts). */

/** A run-time I/O failure: out-of-range request, write to a read-only image, host error, corrupt metadata. */
export class BlockIOError extends Error {}

/**
 * Throws {@link BlockIOError} unless [offset, offset + len) is a valid range of a disk
 * of `size` bytes. Callers pass guest-derived numbers, so everything is checked:
 * integers, non-negative, no overflow past the end.
 */
export function checkRange(size: number, offset: number, len: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 || len > size || offset > size - len) {
    throw new BlockIOError(`request [${offset}, +${len}) outside the disk (${size} bytes)`);
  }
}

/** The bytes of `bufs` together. */
export function totalLength(bufs: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** Bytes [pos, pos + len) of the concatenation of `bufs`, as views of the same memory. */
export function sliceViews(bufs: readonly Uint8Array[], pos: number, len: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of bufs) {
    if (len <= 0) break;
    if (pos >= b.length) {
      pos -= b.length;
      continue;
    }
    const n = Math.min(b.length - pos, len);
    out.push(b.subarray(pos, pos + n));
    len -= n;
    pos = 0;
  }
  return out;
}

/** Copies `srcs`, one after the other, into `dst` from byte `at`. */
export function copyViews(dst: Uint8Array, at: number, srcs: readonly Uint8Array[]): void {
  for (const b of srcs) {
    dst.set(b, at);
    at += b.length;
  }
}
