/**
 * Reads that never wait for a disk: preadv2() with RWF_NOWAIT (Linux 4.14 and later)
 * copies what the host's page cache holds and fails with EAGAIN rather than start or wait
 * for I/O. A read that the cache serves whole is then done on the calling thread, in about
 * the time of the copy (~1.5 us for 4 KiB here), instead of a round trip through the block
 * I/O thread (host-io.ts), whose spinning for the next request also takes a host core a
 * guest's stream of small reads would rather leave to the vCPU and V8's compiler. Any other
 * read (not cached, cut short, a file system without RWF_NOWAIT) goes on to the thread.
 * Linux's io_uring works the same way: it tries each read without waiting first, and hands
 * it to a worker thread only if that fails.
 */
import { totalLength } from './range.js';

/** preadv2 into `dsts` (consecutive in the file) from `pos` with RWF_NOWAIT: bytes read, or -1 with errno set. */
type PreadNowait = (fd: number, dsts: readonly Uint8Array[], pos: number) => number;

const RWF_NOWAIT = 8;
/** Linux's IOV_MAX: the most buffers one preadv2 takes. */
const IOV_MAX = 1024;
/** What a kernel or file system without RWF_NOWAIT answers. */
const UNSUPPORTED = new Set([22 /* EINVAL */, 38 /* ENOSYS */, 95 /* EOPNOTSUPP */]);

let preadNowait: PreadNowait | null = null;
let errno: () => number = () => 0;
let loading: Promise<void> | null = null;

/** Binds preadv2 (koffi, loaded once); without it (not Linux, koffi missing) every read takes the thread. */
export function enableNowaitReads(): Promise<void> {
  loading ??= (async () => {
    if (typeof process !== 'object' || process.platform !== 'linux') return;
    try {
      const { default: koffi } = await import('koffi');
      const iovec = koffi.struct({ iov_base: 'void *', iov_len: 'size_t' });
      const preadv2 = koffi.load('libc.so.6').func('preadv2', 'long', ['int', koffi.pointer(iovec), 'int', 'int64_t', 'int']) as
        (fd: number, iov: { iov_base: Uint8Array; iov_len: number }[], count: number, pos: number, flags: number) => number;
      preadNowait = (fd, dsts, pos) => preadv2(fd, dsts.map((d) => ({ iov_base: d, iov_len: d.length })), dsts.length, pos, RWF_NOWAIT);
      errno = () => koffi.errno();
    } catch {
      // No binding: reads go to the thread.
    }
  })();
  return loading;
}

/**
 * Fills `dsts`, which follow each other in the file from offset `pos`, if the host's page
 * cache holds all of it; returns whether it did. On false they may hold part of the data:
 * the caller reads it all again. The buffers may be views of guest RAM (shared memory).
 */
export function readNowait(fd: number, dsts: readonly Uint8Array[], pos: number): boolean {
  if (preadNowait === null || dsts.length === 0 || dsts.length > IOV_MAX) return false;
  const len = totalLength(dsts);
  if (len === 0) return false;
  const n = preadNowait(fd, dsts, pos);
  if (n === len) return true;
  if (n < 0 && UNSUPPORTED.has(errno())) preadNowait = null;
  return false;
}
