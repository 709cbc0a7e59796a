/**
 * 9P2000.L wire format: message numbers, the errno values Rlerror carries, and a
 * bounds-checked reader and a writer for the little-endian fields, strings and qids
 * (see the Linux kernel's include/net/9p/9p.h and the 9P2000.L protocol notes).
 *
 * Every field of a request comes from the guest: {@link Reader} never reads past the
 * message it was given and throws {@link NineError} EPROTO instead.
 */

/** Message types. The R-message of a T-message is its number + 1. */
export const P9 = {
  TLERROR: 6, RLERROR: 7,
  TSTATFS: 8, RSTATFS: 9,
  TLOPEN: 12, RLOPEN: 13,
  TLCREATE: 14, RLCREATE: 15,
  TSYMLINK: 16, RSYMLINK: 17,
  TMKNOD: 18, RMKNOD: 19,
  TRENAME: 20, RRENAME: 21,
  TREADLINK: 22, RREADLINK: 23,
  TGETATTR: 24, RGETATTR: 25,
  TSETATTR: 26, RSETATTR: 27,
  TXATTRWALK: 30, RXATTRWALK: 31,
  TXATTRCREATE: 32, RXATTRCREATE: 33,
  TREADDIR: 40, RREADDIR: 41,
  TFSYNC: 50, RFSYNC: 51,
  TLOCK: 52, RLOCK: 53,
  TGETLOCK: 54, RGETLOCK: 55,
  TLINK: 70, RLINK: 71,
  TMKDIR: 72, RMKDIR: 73,
  TRENAMEAT: 74, RRENAMEAT: 75,
  TUNLINKAT: 76, RUNLINKAT: 77,
  TVERSION: 100, RVERSION: 101,
  TAUTH: 102, RAUTH: 103,
  TATTACH: 104, RATTACH: 105,
  TFLUSH: 108, RFLUSH: 109,
  TWALK: 110, RWALK: 111,
  TREAD: 116, RREAD: 117,
  TWRITE: 118, RWRITE: 119,
  TCLUNK: 120, RCLUNK: 121,
  TREMOVE: 122, RREMOVE: 123,
} as const;

/** The tag of a message that has none (Tversion), and the fid that names no fid. */
export const NOTAG = 0xffff;
export const NOFID = 0xffffffff;
/** Size of the header every message starts with: size[4] type[1] tag[2]. */
export const HEADER_SIZE = 7;
/** Longest mount tag a device offers, in bytes (QEMU's limit). */
export const MAX_TAG_LEN = 31;
/** Most names in one Twalk. */
export const MAXWELEM = 16;

/** qid types. */
export const QT = { DIR: 0x80, SYMLINK: 0x02, FILE: 0 } as const;

/** Linux errno values (the numbers Rlerror carries, whatever the host). */
export const E = {
  EPERM: 1, ENOENT: 2, EIO: 5, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22,
  ENFILE: 23, EMFILE: 24, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31,
  ERANGE: 34, ENAMETOOLONG: 36, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENODATA: 61, EPROTO: 71,
  EOVERFLOW: 75, EMSGSIZE: 90, EOPNOTSUPP: 95, ESTALE: 116, EDQUOT: 122,
} as const;

/** A request that fails with a Linux errno (sent back as Rlerror). */
export class NineError extends Error {
  constructor(readonly errno: number, message = `errno ${errno}`) {
    super(message);
  }
}

/** The Linux errno for any error: NineError's own, a Node system error's code, else EIO. */
export function errnoOf(err: unknown): number {
  if (err instanceof NineError) return err.errno;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && Object.hasOwn(E, code)) return E[code as keyof typeof E];
  if (code === 'ENOTSUP') return E.EOPNOTSUPP;
  if (code === 'EWOULDBLOCK') return E.EAGAIN;
  if (code === 'ERR_OUT_OF_RANGE' || code === 'ERR_INVALID_ARG_VALUE') return E.EINVAL;
  return E.EIO;
}

/** A qid: the server's identity for a file. */
export interface Qid {
  type: number;
  version: number;
  path: bigint;
}

/** Reads the fields of one message; every read is checked against its end. */
export class Reader {
  private pos: number;
  private readonly dv: DataView;

  constructor(private readonly buf: Uint8Array, start = 0, private readonly end = buf.length) {
    this.pos = start;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private take(n: number): number {
    if (n > this.end - this.pos) throw new NineError(E.EPROTO, 'truncated message');
    const at = this.pos;
    this.pos += n;
    return at;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number { return this.dv.getUint8(this.take(1)); }
  u16(): number { return this.dv.getUint16(this.take(2), true); }
  u32(): number { return this.dv.getUint32(this.take(4), true); }
  u64(): bigint { return this.dv.getBigUint64(this.take(8), true); }

  /** `n` raw bytes (a view into the message). */
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.subarray(at, at + n);
  }

  /**
   * A string: len[2] then that many bytes, returned raw (file names are bytes, not
   * UTF-8) as a copy, so that a name kept in a fid does not keep the message alive.
   */
  str(): Buffer {
    return Buffer.from(this.bytes(this.u16()));
  }
}

/** Builds one message; {@link finish} fills in the size. */
export class Writer {
  private buf: Buffer;
  private len = 0;

  constructor(type: number, tag: number, capacity = 64) {
    this.buf = Buffer.alloc(Math.max(capacity, HEADER_SIZE));
    this.u32(0);
    this.u8(type);
    this.u16(tag);
  }

  get length(): number {
    return this.len;
  }

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  // room() may replace this.buf: call it before touching the buffer.
  u8(v: number): this { const at = this.room(1); this.buf.writeUInt8(v & 0xff, at); return this; }
  u16(v: number): this { const at = this.room(2); this.buf.writeUInt16LE(v & 0xffff, at); return this; }
  u32(v: number): this { const at = this.room(4); this.buf.writeUInt32LE(v >>> 0, at); return this; }
  u64(v: bigint | number): this { const at = this.room(8); this.buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), at); return this; }
  bytes(b: Uint8Array): this { const at = this.room(b.length); this.buf.set(b, at); return this; }
  /** A string (at most 65535 bytes: longer ones are cut). */
  str(s: Uint8Array | string): this {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    const n = Math.min(b.length, 0xffff);
    return this.u16(n).bytes(b.subarray(0, n));
  }
  qid(q: Qid): this { return this.u8(q.type).u32(q.version).u64(q.path); }

  /** The message with its size field set. */
  finish(): Uint8Array {
    this.buf.writeUInt32LE(this.len, 0);
    return this.buf.subarray(0, this.len);
  }
}

/** Encoded size of a qid. */
export const QID_SIZE = 13;

/** Rlerror for `tag`. */
export function rlerror(tag: number, errno: number): Uint8Array {
  return new Writer(P9.RLERROR, tag, 11).u32(errno).finish();
}

/** 9P2000.L open/create flags (P9_DOTL_*: the Linux generic values). */
export const DOTL = {
  ACCMODE: 3, WRONLY: 1, RDWR: 2, CREATE: 0o100, EXCL: 0o200, TRUNC: 0o1000, APPEND: 0o2000,
  DSYNC: 0o10000, DIRECTORY: 0o200000, SYNC: 0o4000000,
} as const;

/** Tsetattr `valid` bits. */
export const SETATTR = {
  MODE: 0x1, UID: 0x2, GID: 0x4, SIZE: 0x8, ATIME: 0x10, MTIME: 0x20, CTIME: 0x40, ATIME_SET: 0x80, MTIME_SET: 0x100,
} as const;

/** Rgetattr `valid`: the basic fields (mode through blocks), which the server always fills. */
export const GETATTR_BASIC = 0x7ffn;

/** Tunlinkat flag: remove a directory. */
export const AT_REMOVEDIR = 0x200;

/** Linux st_mode file type bits. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
