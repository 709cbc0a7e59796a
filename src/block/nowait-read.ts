/**
 * Reads that never wait for a disk: preadv2() with RWF_NOWAIT (Linux 4.14 and later)
 * copies what the host's page cache holds and fails with EAGAIN rather than start or wait
 * for I/O. A read that the cache serves whole is then done on the calling thread, in about
 * the time of the copy (~1.5 us for 4 KiB here), instead of a round trip through the block
 * I/O thread (host-io.ts), whose spinning for the next request also takes a host core a
 * guest's stream of small reads would rather leave to the vCPU and V8's compiler. Any other
 * read (not cached, cut short, a file system without RWF_NOWAIT) goes on to the thread.
 * Linux's io_uring works the same way: it tries each read without waiting first, and hands
 * it to a worker thread only if that fails. The same binding gives the block I/O thread
 * the iovecs of large writes from guest RAM (writeIovecs).
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
/** Where a buffer's bytes are in the process (koffi), or null without the binding. */
let addressOf: ((d: Uint8Array) => number) | null = null;
let loading: Promise<void> | null = null;

/**
 * Binds preadv2 (koffi, loaded once); without it (not a 64-bit little-endian Linux, koffi
 * missing) every read takes the thread.
 */
export function enableNowaitReads(): Promise<void> {
  loading ??= (async () => {
    if (typeof process !== 'object' || process.platform !== 'linux') return;
    try {
      const { default: koffi } = await import('koffi');
      // The iovec array is built here rather than by koffi, whose marshalling of an array
      // of structs took ~70 us of the ~130 of a 1 MiB read into 256 guest pages.
      if (koffi.sizeof('void *') !== 8 || new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) return;
      const libc = koffi.load('libc.so.6');
      const preadv2 = libc.func('preadv2', 'long', ['int', 'void *', 'int', 'int64_t', 'int']) as
        (fd: number, iov: Uint32Array, count: number, pos: number, flags: number) => number;
      // memmove(p, p, 0) copies nothing and returns p: the address koffi passes for a buffer.
      const memmove = libc.func('memmove', 'uintptr_t', ['void *', 'void *', 'size_t']) as
        (dst: Uint8Array, src: Uint8Array, n: number) => number | bigint;
      /** Where each buffer's memory starts (an ArrayBuffer's memory never moves). */
      const bases = new WeakMap<ArrayBufferLike, number>();
      addressOf = (d) => {
        let base = bases.get(d.buffer);
        // Not from an empty view: koffi may pass no address for one (its length 0 makes any address do).
        if (base === undefined && d.length > 0) {
          base = Number(memmove(d, d, 0)) - d.byteOffset;
          bases.set(d.buffer, base);
        }
        return (base ?? 0) + d.byteOffset;
      };
      const iov = new Uint32Array(IOV_MAX * 4);
      preadNowait = (fd, dsts, pos) => {
        writeIovecs(dsts, iov);
        return preadv2(fd, iov, dsts.length, pos, RWF_NOWAIT);
      };
      errno = () => koffi.errno();
    } catch {
      // No binding: reads go to the thread.
    }
  })();
  return loading;
}

/**
 * Writes `views` as an array of struct iovec { void *iov_base; size_t iov_len; } (each
 * as four 32-bit words) into `iov`, for a system call that another thread may make: the
 * memory must stay where it is until then (shared memory, kept referenced). False without
 * the binding (enableNowaitReads) or if there are more than IOV_MAX.
 */
export function writeIovecs(views: readonly Uint8Array[], iov: Uint32Array): boolean {
  if (addressOf === null || views.length > IOV_MAX) return false;
  for (let i = 0; i < views.length; i++) {
    const v = views[i]!;
    const addr = addressOf(v);
    iov[i * 4] = addr % 0x100000000;
    iov[i * 4 + 1] = Math.floor(addr / 0x100000000);
    iov[i * 4 + 2] = v.length;
    iov[i * 4 + 3] = 0;
  }
  return true;
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
