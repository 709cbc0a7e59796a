/**
 * A 9P2000.L file server over a host directory ({@link Fsdev}), independent of the
 * transport: {@link NinePServer.handle} takes one request message and resolves to its
 * reply. Enough of the protocol for a Linux `mount -t 9p -o version=9p2000.L` to be
 * used normally: version, attach, walk, getattr, setattr, lopen, lcreate, read, write,
 * clunk, remove, readdir, statfs, mkdir, symlink, readlink, mknod (regular files only),
 * link, rename, renameat, unlinkat, fsync, xattrwalk (no attributes), lock and getlock
 * (always granted), flush. Anything else is Rlerror EOPNOTSUPP.
 *
 * Everything in a request comes from the guest. Fields are read with bounds checks
 * (a truncated message is Rlerror EPROTO), names are single components (no '/', no
 * NUL, not '.' or '..' where a new name is expected), a walk to '..' stops at the root,
 * and host paths only come from {@link Fsdev.resolve}, which refuses paths that cross
 * a symbolic link; symbolic links themselves are only read, never followed. Files are
 * opened with O_NOFOLLOW and O_NONBLOCK, and only regular files and directories can be
 * opened. Every error becomes an Rlerror with a Linux errno; no exception escapes.
 *
 * Requests run concurrently (host I/O is asynchronous) and may complete in any order;
 * each reply carries its request's tag. Tflush answers once the flushed request has.
 * The fid table and the number of open host files are bounded.
 *
 * Security models: `passthrough` and `none` give new files the guest's owner (lchown)
 * and mode; under `none` a failed chown is ignored, under `passthrough` it fails the
 * request. Node has no xattr API, so `mapped-xattr` and `mapped-file` do not store the
 * guest's credentials: ownership changes are accepted and dropped, and modes are
 * applied without the set-user-ID, set-group-ID and sticky bits (the guest can never
 * give a host file another owner or a set-ID bit). The guest sees the host's owners.
 */
import { promises as fsp, constants as C, type BigIntStats, type Dir, type Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Fsdev, FsdevUser } from './fsdev.js';
import {
  P9, E, NOTAG, HEADER_SIZE, MAXWELEM, QT, DOTL, SETATTR, GETATTR_BASIC, AT_REMOVEDIR, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK,
  NineError, Reader, Writer, errnoOf, rlerror, type Qid,
} from './9p-proto.js';

/** Largest msize the server agrees to (the client may ask for less). */
export const MAX_MSIZE = 512 * 1024;
/** Smallest msize accepted (as QEMU's P9_MIN_MSIZE). */
export const MIN_MSIZE = 4096;
/** Fids a session may hold at once. */
export const MAX_FIDS = 1 << 18;
/** Host files and directories a session may hold open at once. */
export const MAX_OPEN = 1024;
/** Size of the Rread / Rreaddir header: size, type, tag, count. */
const IOHDR = 11;
const NAME_MAX = 255;
const NONUNAME = 0xffffffff;
/** Directory entry types (d_type). */
const DT = { FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;
/** Tgetlock's answer: nothing is locked. */
const F_UNLCK = 2;

/** One directory entry, numbered from 0 ('.' and '..' first). */
interface DirEntry {
  index: number;
  name: Buffer;
  type: number;
}

/** '.' and '..', entries 0 and 1 of every directory (the host's own entries follow). */
const DOTS: readonly DirEntry[] = [{ index: 0, name: Buffer.from('.'), type: 4 }, { index: 1, name: Buffer.from('..'), type: 4 }];

/**
 * An open directory, read in order. The entries from the start of the last reply on
 * are kept, since the client asks again from the middle of a reply when its own buffer
 * filled up; a read from further back reopens the directory.
 */
class DirStream {
  private dir: Dir | null = null;
  /** Index of the entry the next dir.read() returns. */
  private next = 2;
  /** Entries read and kept, consecutive, ending with entry next - 1. */
  private kept: DirEntry[] = [];
  /** Readdir requests on one fid run one at a time. */
  busy: Promise<unknown> = Promise.resolve();

  constructor(private readonly open: () => Promise<Dir>) {}

  /** Opens the directory (again), at its start. */
  async rewind(): Promise<void> {
    await this.close();
    this.dir = await this.open();
    this.next = 2;
    this.kept = [...DOTS];
  }

  /** Entries from `offset` on, while `fits` accepts them (it sees them one at a time). */
  async entries(offset: number, fits: (e: DirEntry) => boolean): Promise<DirEntry[]> {
    if (offset < (this.kept[0]?.index ?? this.next)) await this.rewind();
    this.kept = this.kept.filter((e) => e.index >= offset);
    while (this.next < offset && (await this.read())) { /* skip forward */ }
    const out: DirEntry[] = [];
    for (let i = 0; ; i++) {
      let e = this.kept[i];
      if (!e) {
        const got = await this.read();
        if (!got) break;
        this.kept.push((e = got));
      }
      if (!fits(e)) break;
      out.push(e);
    }
    return out;
  }

  /** The next host entry, or null at the end. */
  private async read(): Promise<DirEntry | null> {
    const d = this.dir ? ((await this.dir.read()) as unknown as Dirent | null) : null;
    if (!d) return null;
    return { index: this.next++, name: d.name as unknown as Buffer, type: direntType(d) };
  }

  async close(): Promise<void> {
    const d = this.dir;
    this.dir = null;
    if (d) await d.close().catch(() => undefined);
  }
}

function direntType(d: Dirent): number {
  if (d.isDirectory()) return DT.DIR;
  if (d.isFile()) return DT.REG;
  if (d.isSymbolicLink()) return DT.LNK;
  if (d.isFIFO()) return DT.FIFO;
  if (d.isSocket()) return DT.SOCK;
  if (d.isCharacterDevice()) return DT.CHR;
  if (d.isBlockDevice()) return DT.BLK;
  return 0;
}

/** What a fid stands for: a path below the root, and what is open on it. */
interface Fid {
  path: Buffer[];
  /** The user it was attached as (owner of the files created through it). */
  uid: number;
  file?: FileHandle;
  dir?: DirStream;
  /** An xattr fid (from Txattrwalk): the attribute's value. */
  xattr?: Uint8Array;
  /** Set once clunked: an open finishing later closes what it opened. */
  clunked: boolean;
}

/** The state between a Tversion and the next (or a device reset). */
class Session {
  msize = 0;
  readonly fids = new Map<number, Fid>();
  readonly pending = new Map<number, Promise<Uint8Array>>();
  openCount = 0;
  closed = false;

  /** Closes every host file and forgets every fid. */
  clunkAll(): void {
    for (const f of this.fids.values()) this.release(f);
    this.fids.clear();
  }

  release(f: Fid): void {
    f.clunked = true;
    if (f.file) void f.file.close().catch(() => undefined);
    const dir = f.dir;
    if (dir) void dir.busy.then(() => dir.close()); // after a readdir in progress
    if (f.file || f.dir) this.openCount--;
    f.file = undefined;
    f.dir = undefined;
  }
}

const isDot = (n: Buffer) => (n.length === 1 && n[0] === 0x2e) || (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e);

/** Checks a name that is to become (or names) a directory entry. */
function checkName(n: Buffer): Buffer {
  if (n.length === 0 || n.includes(0x2f) || n.includes(0) || isDot(n)) throw new NineError(E.EINVAL, 'bad name');
  if (n.length > NAME_MAX) throw new NineError(E.ENAMETOOLONG);
  return n;
}

const startsWith = (path: Buffer[], prefix: Buffer[]) => prefix.length <= path.length && prefix.every((c, i) => c.equals(path[i]!));

const kindOf = (mode: number) => mode & S_IFMT;

/** Host open(2) flags for the 9P2000.L flags of a Tlopen/Tlcreate (O_NOFOLLOW and O_NONBLOCK always). */
function hostFlags(f: number): number {
  const acc = f & DOTL.ACCMODE;
  let h = acc === DOTL.WRONLY ? C.O_WRONLY : acc === DOTL.RDWR ? C.O_RDWR : C.O_RDONLY;
  if (f & DOTL.TRUNC) h |= C.O_TRUNC;
  if (f & DOTL.APPEND) h |= C.O_APPEND;
  if (f & DOTL.DSYNC) h |= C.O_DSYNC;
  if (f & DOTL.SYNC) h |= C.O_SYNC;
  return h | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY;
}

const writes = (f: number) => (f & DOTL.ACCMODE) === DOTL.WRONLY || (f & DOTL.ACCMODE) === DOTL.RDWR || (f & DOTL.TRUNC) !== 0;

/** The 9P server of one device. */
export class NinePServer implements FsdevUser {
  private session = new Session();
  /** Small numbers for the devices of mounts inside the share, so their inode numbers do not collide. */
  private readonly devIndex = new Map<bigint, bigint>();

  constructor(private readonly fs: Fsdev) {
    fs.claim(this);
  }

  /**
   * Serves one request; resolves to the reply, at most `maxReply` bytes (never rejects).
   * Only the first `msg.length` bytes are looked at; the size field says how many count.
   */
  handle(msg: Uint8Array, maxReply: number): Promise<Uint8Array> {
    const s = this.session;
    if (msg.length < HEADER_SIZE) return Promise.resolve(rlerror(NOTAG, E.EPROTO));
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    const size = dv.getUint32(0, true);
    const type = dv.getUint8(4);
    const tag = dv.getUint16(5, true);
    if (size < HEADER_SIZE || size > msg.length || size > (s.msize || MAX_MSIZE)) return Promise.resolve(rlerror(tag, E.EPROTO));
    const limit = Math.min(maxReply, s.msize || MAX_MSIZE);
    const p = this.dispatch(s, type, tag, new Reader(msg, HEADER_SIZE, size), limit).then(
      (w) => (w.length > limit ? rlerror(tag, E.EMSGSIZE) : w.finish()),
      (err: unknown) => rlerror(tag, errnoOf(err)),
    );
    s.pending.set(tag, p);
    void p.then(() => {
      if (s.pending.get(tag) === p) s.pending.delete(tag);
    });
    return p;
  }

  /** Forgets every fid and closes every host file; the next request must be a Tversion. */
  reset(): void {
    this.session.closed = true;
    this.session.clunkAll();
    this.session = new Session();
  }

  close(): void {
    this.reset();
  }

  private async dispatch(s: Session, type: number, tag: number, r: Reader, limit: number): Promise<Writer> {
    if (type === P9.TVERSION) return this.version(s, tag, r);
    if (s.msize === 0) throw new NineError(E.EPROTO, 'no Tversion yet');
    const reply = (t: number) => new Writer(t, tag);
    switch (type) {
      case P9.TATTACH: return this.attach(s, reply(P9.RATTACH), r);
      case P9.TWALK: return this.walk(s, reply(P9.RWALK), r);
      case P9.TGETATTR: return this.getattr(s, reply(P9.RGETATTR), r);
      case P9.TSETATTR: return this.setattr(s, reply(P9.RSETATTR), r);
      case P9.TLOPEN: return this.lopen(s, reply(P9.RLOPEN), r);
      case P9.TLCREATE: return this.lcreate(s, reply(P9.RLCREATE), r);
      case P9.TREAD: return this.read(s, tag, r, limit);
      case P9.TWRITE: return this.write(s, reply(P9.RWRITE), r);
      case P9.TCLUNK: {
        const fid = r.u32();
        const f = this.fid(s, fid);
        s.fids.delete(fid);
        s.release(f);
        return reply(P9.RCLUNK);
      }
      case P9.TREMOVE: return this.remove(s, reply(P9.RREMOVE), r);
      case P9.TREADDIR: return this.readdir(s, tag, r, limit);
      case P9.TSTATFS: return this.statfs(s, reply(P9.RSTATFS), r);
      case P9.TMKDIR: return this.mkdir(s, reply(P9.RMKDIR), r);
      case P9.TSYMLINK: return this.symlink(s, reply(P9.RSYMLINK), r);
      case P9.TMKNOD: return this.mknod(s, reply(P9.RMKNOD), r);
      case P9.TREADLINK: return this.readlink(s, reply(P9.RREADLINK), r);
      case P9.TLINK: return this.link(s, reply(P9.RLINK), r);
      case P9.TRENAME: return this.rename(s, reply(P9.RRENAME), r);
      case P9.TRENAMEAT: return this.renameat(s, reply(P9.RRENAMEAT), r);
      case P9.TUNLINKAT: return this.unlinkat(s, reply(P9.RUNLINKAT), r);
      case P9.TFSYNC: return this.fsync(s, reply(P9.RFSYNC), r);
      case P9.TXATTRWALK: return this.xattrwalk(s, reply(P9.RXATTRWALK), r);
      case P9.TXATTRCREATE:
        this.fid(s, r.u32());
        throw new NineError(this.fs.readOnly ? E.EROFS : E.EOPNOTSUPP);
      case P9.TLOCK: {
        this.fid(s, r.u32());
        r.u8(); r.u32(); r.u64(); r.u64(); r.u32(); r.str(); // type flags start length proc_id client_id
        return reply(P9.RLOCK).u8(0); // P9_LOCK_SUCCESS
      }
      case P9.TGETLOCK: {
        this.fid(s, r.u32());
        r.u8();
        const start = r.u64(), length = r.u64(), procId = r.u32(), client = r.str();
        return reply(P9.RGETLOCK).u8(F_UNLCK).u64(start).u64(length).u32(procId).str(client);
      }
      case P9.TFLUSH: {
        const old = s.pending.get(r.u16());
        if (old) await old;
        return reply(P9.RFLUSH);
      }
      default:
        throw new NineError(E.EOPNOTSUPP, `message type ${type}`);
    }
  }

  // --- helpers --------------------------------------------------------------------

  private fid(s: Session, n: number): Fid {
    const f = s.fids.get(n);
    if (!f) throw new NineError(E.EBADF, `fid ${n}`);
    return f;
  }

  /** Adds a new fid, checking that the number is free and the table has room. */
  private addFid(s: Session, n: number, f: Fid): void {
    if (s.closed) {
      s.release(f);
      throw new NineError(E.EBADF);
    }
    if (s.fids.has(n)) throw new NineError(E.EINVAL, `fid ${n} in use`);
    if (s.fids.size >= MAX_FIDS) throw new NineError(E.ENFILE, 'too many fids');
    s.fids.set(n, f);
  }

  private checkNewFid(s: Session, n: number): void {
    if (s.fids.has(n)) throw new NineError(E.EINVAL, `fid ${n} in use`);
    if (s.fids.size >= MAX_FIDS) throw new NineError(E.ENFILE, 'too many fids');
  }

  private writable(): void {
    if (this.fs.readOnly) throw new NineError(E.EROFS);
  }

  /** A fid that names a path (not open, not an xattr). */
  private pathFid(s: Session, n: number): Fid {
    const f = this.fid(s, n);
    if (f.xattr) throw new NineError(E.EINVAL);
    return f;
  }

  private lstat(host: Buffer): Promise<BigIntStats> {
    return fsp.lstat(host, { bigint: true });
  }

  private qid(st: BigIntStats): Qid {
    const k = kindOf(Number(st.mode));
    const type = k === S_IFDIR ? QT.DIR : k === S_IFLNK ? QT.SYMLINK : QT.FILE;
    // As QEMU: seconds of mtime xor size << 8.
    const version = Number(BigInt.asUintN(32, (st.mtimeNs / 1_000_000_000n) ^ (st.size << 8n)));
    let path = st.ino;
    if (st.dev !== this.fs.rootDev) {
      let i = this.devIndex.get(st.dev);
      if (i === undefined) {
        i = BigInt(Math.min(this.devIndex.size + 1, 255));
        if (this.devIndex.size < 255) this.devIndex.set(st.dev, i);
      }
      path = (i << 56n) | BigInt.asUintN(56, st.ino);
    }
    return { type, version, path };
  }

  /** Gives a newly created file the guest's owner (by security model) and exact mode. */
  private async setCred(host: Buffer, uid: number, gid: number, mode: number, fh?: FileHandle): Promise<void> {
    const model = this.fs.securityModel;
    if (model === 'passthrough' || model === 'none') {
      try {
        await fsp.lchown(host, uid, gid);
      } catch (err) {
        if (model === 'passthrough') throw err;
      }
    }
    if (mode < 0) return; // symbolic links have no mode of their own
    const m = model === 'passthrough' || model === 'none' ? mode & 0o7777 : mode & 0o777;
    if (fh) await fh.chmod(m);
    else await fsp.chmod(host, m);
  }

  /** Undoes a creation whose credentials could not be set. */
  private async undo(host: Buffer, dir: boolean): Promise<void> {
    await (dir ? fsp.rmdir(host) : fsp.unlink(host)).catch(() => undefined);
  }

  /** After a rename, fids below the old path follow the file (as QEMU's v9fs_fix_fid_paths). */
  private fixPaths(s: Session, from: Buffer[], to: Buffer[]): void {
    for (const f of s.fids.values()) {
      if (startsWith(f.path, from)) f.path = [...to, ...f.path.slice(from.length)];
    }
  }

  // --- messages -------------------------------------------------------------------

  private version(s: Session, tag: number, r: Reader): Writer {
    const msize = r.u32();
    const ver = r.str().toString('latin1');
    // A Tversion starts a new session: every fid goes.
    s.clunkAll();
    const ok = ver === '9P2000.L' || ver.startsWith('9P2000.L.');
    if (ok && msize < MIN_MSIZE) throw new NineError(E.EINVAL, `msize ${msize} too small`);
    s.msize = ok ? Math.min(msize, MAX_MSIZE) : 0;
    return new Writer(P9.RVERSION, tag).u32(Math.min(msize, MAX_MSIZE)).str(ok ? '9P2000.L' : 'unknown');
  }

  private async attach(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const fid = r.u32();
    r.u32(); // afid: no authentication
    r.str(); // uname
    r.str(); // aname: the whole share is exported
    const nUname = r.remaining >= 4 ? r.u32() : NONUNAME;
    this.checkNewFid(s, fid);
    const st = await this.fs.lock.shared(async () => this.lstat(await this.fs.resolve([])));
    this.addFid(s, fid, { path: [], uid: nUname === NONUNAME ? 0 : nUname, clunked: false });
    return w.qid(this.qid(st));
  }

  private async walk(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const fid = r.u32();
    const newfid = r.u32();
    const n = r.u16();
    if (n > MAXWELEM) throw new NineError(E.EINVAL, 'too many names');
    const names: Buffer[] = [];
    for (let i = 0; i < n; i++) names.push(r.str());
    const f = this.pathFid(s, fid);
    if (newfid !== fid) this.checkNewFid(s, newfid);
    const qids: Qid[] = [];
    const path = await this.fs.lock.shared(async () => {
      let cur = f.path;
      /** cur passed checkDir, or was reached from a path that did through a real directory. */
      let checked = false;
      for (const name of names) {
        try {
          const dotdot = name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
          let next: Buffer[];
          if (dotdot || (name.length === 1 && name[0] === 0x2e)) {
            next = dotdot ? cur.slice(0, -1) : cur; // '..' of the root is the root
            if (!checked) await this.fs.checkDir(next);
            checked = true;
          } else {
            checkName(name);
            if (!checked) await this.fs.checkDir(cur);
            next = [...cur, name];
          }
          const st = await this.lstat(this.fs.hostPath(next));
          // A symbolic link is walked to, never through.
          if (next.length > cur.length) checked = kindOf(Number(st.mode)) === S_IFDIR;
          cur = next;
          qids.push(this.qid(st));
        } catch (err) {
          if (qids.length === 0) throw err;
          break;
        }
      }
      return cur;
    });
    w.u16(qids.length);
    for (const q of qids) w.qid(q);
    // A partial walk answers with the qids found and creates no fid (an error if none).
    if (qids.length === names.length) {
      if (newfid === fid) {
        if (f.file || f.dir) throw new NineError(E.EBUSY, 'fid is open');
        f.path = path;
      } else this.addFid(s, newfid, { path, uid: f.uid, clunked: false });
    }
    return w;
  }

  private async getattr(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    r.u64(); // request mask: the basic fields are always sent
    const st = f.file ? await f.file.stat({ bigint: true }) : await this.fs.lock.shared(async () => this.lstat(await this.fs.resolve(f.path)));
    const time = (ns: bigint) => {
      const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
      return [sec, ns - sec * 1_000_000_000n] as const;
    };
    w.u64(GETATTR_BASIC).qid(this.qid(st)).u32(Number(st.mode)).u32(Number(st.uid)).u32(Number(st.gid))
      .u64(st.nlink).u64(st.rdev).u64(st.size).u64(st.blksize).u64(st.blocks);
    for (const t of [st.atimeNs, st.mtimeNs, st.ctimeNs]) {
      const [sec, nsec] = time(t);
      w.u64(sec).u64(nsec);
    }
    return w.u64(0).u64(0).u64(0).u64(0); // btime, gen, data_version
  }

  private async setattr(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const valid = r.u32(), mode = r.u32(), uid = r.u32(), gid = r.u32();
    const size = r.u64();
    const atime = [r.u64(), r.u64()] as const, mtime = [r.u64(), r.u64()] as const;
    if (valid & ~0x1ff) throw new NineError(E.EINVAL);
    const changes = valid & ~SETATTR.CTIME;
    if (changes === 0) return w; // ctime alone: nothing to do
    this.writable();
    const model = this.fs.securityModel;
    const owners = model === 'passthrough' || model === 'none';
    const chownOk = (err: unknown) => {
      if (model === 'passthrough') throw err;
    };
    const times = (st: BigIntStats) => {
      const now = Date.now() / 1000;
      const pick = (bit: number, setBit: number, t: readonly [bigint, bigint], old: bigint) =>
        !(valid & bit) ? Number(old) / 1e9 : valid & setBit ? Number(t[0]) + Number(t[1]) / 1e9 : now;
      return [pick(SETATTR.ATIME, SETATTR.ATIME_SET, atime, st.atimeNs), pick(SETATTR.MTIME, SETATTR.MTIME_SET, mtime, st.mtimeNs)] as const;
    };
    const m = owners ? mode & 0o7777 : mode & 0o777;
    const u = (st: BigIntStats) => (valid & SETATTR.UID ? uid : Number(st.uid));
    const g = (st: BigIntStats) => (valid & SETATTR.GID ? gid : Number(st.gid));
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new NineError(E.EFBIG);
    const fh = f.file;
    if (fh) {
      // An open file: through its descriptor, whatever became of its name.
      const st = await fh.stat({ bigint: true });
      if (valid & SETATTR.MODE) await fh.chmod(m);
      if (valid & (SETATTR.UID | SETATTR.GID) && owners) await fh.chown(u(st), g(st)).catch(chownOk);
      if (valid & SETATTR.SIZE) await fh.truncate(Number(size));
      if (valid & (SETATTR.ATIME | SETATTR.MTIME)) await fh.utimes(...times(st));
      return w;
    }
    await this.fs.lock.shared(async () => {
      const host = await this.fs.resolve(f.path);
      const st = await this.lstat(host);
      const k = kindOf(Number(st.mode));
      // chmod and truncate by name follow symbolic links (and a link has no mode of its own).
      if (valid & SETATTR.MODE) {
        if (k === S_IFLNK) throw new NineError(E.EOPNOTSUPP);
        await fsp.chmod(host, m);
      }
      if (valid & (SETATTR.UID | SETATTR.GID) && owners) await fsp.lchown(host, u(st), g(st)).catch(chownOk);
      if (valid & SETATTR.SIZE) {
        if (k !== S_IFREG) throw new NineError(k === S_IFDIR ? E.EISDIR : E.EINVAL);
        const t = await fsp.open(host, C.O_WRONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY);
        try {
          await t.truncate(Number(size));
        } finally {
          await t.close();
        }
      }
      if (valid & (SETATTR.ATIME | SETATTR.MTIME)) await fsp.lutimes(host, ...times(st));
    });
    return w;
  }

  private async lopen(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const flags = r.u32();
    if (f.file || f.dir) throw new NineError(E.EINVAL, 'fid already open');
    if (writes(flags)) this.writable();
    if (s.openCount >= MAX_OPEN) throw new NineError(E.EMFILE);
    s.openCount++;
    let opened: { file?: FileHandle; dir?: DirStream; st: BigIntStats } | undefined;
    try {
      opened = await this.fs.lock.shared(async () => {
        const host = await this.fs.resolve(f.path);
        const st = await this.lstat(host);
        const k = kindOf(Number(st.mode));
        if (k === S_IFDIR) {
          if ((flags & DOTL.ACCMODE) !== 0 || flags & DOTL.TRUNC) throw new NineError(E.EISDIR);
          // Reopened by name (after a rewind) wherever the directory is by then.
          const dir = new DirStream(async () => fsp.opendir(await this.fs.checkDir(f.path), { encoding: 'buffer' as BufferEncoding, bufferSize: 64 }));
          await dir.rewind();
          return { dir, st };
        }
        if (k === S_IFLNK) throw new NineError(E.ELOOP);
        if (k !== S_IFREG) throw new NineError(E.EOPNOTSUPP, 'only regular files and directories can be opened');
        const file = await fsp.open(host, hostFlags(flags));
        const fst = await file.stat({ bigint: true }).catch(async (err: unknown) => {
          await file.close();
          throw err;
        });
        if (!fst.isFile()) {
          await file.close();
          throw new NineError(E.EOPNOTSUPP);
        }
        return { file, st: fst };
      });
    } finally {
      if (!opened) s.openCount--;
    }
    if (f.clunked || s.closed || f.file || f.dir) {
      // Clunked (or opened twice) meanwhile: do not keep what was opened.
      if (!s.closed) s.openCount--;
      void opened.file?.close().catch(() => undefined);
      void opened.dir?.close();
      throw new NineError(f.clunked || s.closed ? E.EBADF : E.EINVAL);
    }
    f.file = opened.file;
    f.dir = opened.dir;
    return w.qid(this.qid(opened.st)).u32(0);
  }

  private async lcreate(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const name = r.str();
    const flags = r.u32(), mode = r.u32(), gid = r.u32();
    this.writable();
    checkName(name);
    if (f.file || f.dir) throw new NineError(E.EINVAL, 'fid already open');
    if (s.openCount >= MAX_OPEN) throw new NineError(E.EMFILE);
    s.openCount++;
    let file: FileHandle | undefined;
    let st: BigIntStats | undefined;
    const path = [...f.path, name];
    try {
      await this.fs.lock.exclusive(async () => {
        await this.fs.checkDir(f.path);
        const host = this.fs.hostPath(path);
        const perm = mode & 0o777;
        try {
          file = await fsp.open(host, hostFlags(flags) | C.O_CREAT | C.O_EXCL, perm);
        } catch (err) {
          if ((err as { code?: string }).code !== 'EEXIST' || flags & DOTL.EXCL) throw err;
          file = await fsp.open(host, hostFlags(flags)); // it exists: open it as it is
          st = await file.stat({ bigint: true });
          if (!st.isFile()) throw new NineError(st.isDirectory() ? E.EISDIR : E.EOPNOTSUPP);
          return;
        }
        try {
          await this.setCred(host, f.uid, gid, mode, file);
        } catch (err) {
          await this.undo(host, false);
          throw err;
        }
        st = await file.stat({ bigint: true });
      });
    } catch (err) {
      s.openCount--;
      void file?.close().catch(() => undefined);
      throw err;
    }
    if (f.clunked || s.closed || f.file || f.dir) {
      if (!s.closed) s.openCount--;
      void file!.close().catch(() => undefined);
      throw new NineError(E.EBADF);
    }
    f.path = path;
    f.file = file;
    return w.qid(this.qid(st!)).u32(0);
  }

  private async read(s: Session, tag: number, r: Reader, limit: number): Promise<Writer> {
    const f = this.fid(s, r.u32());
    const offset = r.u64();
    const count = Math.min(r.u32(), limit - IOHDR);
    if (count < 0) throw new NineError(E.EMSGSIZE);
    let data: Uint8Array;
    if (f.xattr) {
      data = offset >= BigInt(f.xattr.length) ? new Uint8Array(0) : f.xattr.subarray(Number(offset), Number(offset) + count);
    } else if (f.file) {
      if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new NineError(E.EINVAL);
      const buf = Buffer.alloc(count);
      const { bytesRead } = await f.file.read(buf, 0, count, Number(offset));
      data = buf.subarray(0, bytesRead);
    } else throw new NineError(f.dir ? E.EISDIR : E.EBADF);
    return new Writer(P9.RREAD, tag, IOHDR + data.length).u32(data.length).bytes(data);
  }

  private async write(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.fid(s, r.u32());
    const offset = r.u64();
    const data = r.bytes(r.u32());
    this.writable();
    if (!f.file) throw new NineError(f.dir ? E.EISDIR : E.EBADF);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER - data.length)) throw new NineError(E.EFBIG);
    const { bytesWritten } = await f.file.write(data, 0, data.length, Number(offset));
    return w.u32(bytesWritten);
  }

  private async remove(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const fid = r.u32();
    const f = this.pathFid(s, fid);
    // Tremove clunks the fid whether or not the removal works.
    s.fids.delete(fid);
    s.release(f);
    this.writable();
    if (f.path.length === 0) throw new NineError(E.EBUSY, 'cannot remove the root');
    await this.fs.lock.exclusive(async () => {
      const host = await this.fs.resolve(f.path);
      const st = await this.lstat(host);
      await (kindOf(Number(st.mode)) === S_IFDIR ? fsp.rmdir(host) : fsp.unlink(host));
    });
    return w;
  }

  private async readdir(s: Session, tag: number, r: Reader, limit: number): Promise<Writer> {
    const f = this.fid(s, r.u32());
    const offset = r.u64();
    const count = Math.min(r.u32(), limit - IOHDR);
    if (!f.dir) throw new NineError(f.file ? E.ENOTDIR : E.EBADF);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) return new Writer(P9.RREADDIR, tag).u32(0);
    const dir = f.dir;
    const work = dir.busy.then(() => this.fs.lock.shared(async () => {
      let room = count;
      const list = await dir.entries(Number(offset), (e) => {
        const need = 13 + 8 + 1 + 2 + e.name.length;
        if (need > room) return false;
        room -= need;
        return true;
      });
      const base = await this.fs.checkDir(f.path).then(() => true, () => false);
      const stats = await Promise.all(list.map((e) => {
        const p = e.index === 0 ? f.path : e.index === 1 ? f.path.slice(0, -1) : [...f.path, e.name];
        return (base ? this.lstat(this.fs.hostPath(p)) : Promise.reject(new Error('gone'))).catch(() => null);
      }));
      const w = new Writer(P9.RREADDIR, tag, IOHDR + count - room).u32(count - room);
      list.forEach((e, i) => {
        const st = stats[i];
        const qid = st ? this.qid(st) : { type: e.type === DT.DIR ? QT.DIR : e.type === DT.LNK ? QT.SYMLINK : QT.FILE, version: 0, path: 0n };
        w.qid(qid).u64(e.index + 1).u8(e.type).str(e.name);
      });
      return w;
    }));
    dir.busy = work.catch(() => undefined);
    return work;
  }

  private async statfs(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const st = await this.fs.lock.shared(async () => {
      const host = await this.fs.resolve(f.path);
      // statfs follows links: for a link, ask about the directory holding it.
      const link = kindOf(Number((await this.lstat(host)).mode)) === S_IFLNK;
      return fsp.statfs(link ? this.fs.hostPath(f.path.slice(0, -1)) : host, { bigint: true });
    });
    return w.u32(Number(BigInt.asUintN(32, st.type))).u32(Number(st.bsize)).u64(st.blocks).u64(st.bfree).u64(st.bavail)
      .u64(st.files).u64(st.ffree).u64(this.fs.rootDev).u32(NAME_MAX);
  }

  /** Runs a creation in directory fid `dfid` under the exclusive lock; replies with the new entry's qid. */
  private async create(s: Session, w: Writer, dfid: number, name: Buffer, make: (host: Buffer, uid: number) => Promise<void>): Promise<Writer> {
    const d = this.pathFid(s, dfid);
    this.writable();
    checkName(name);
    const st = await this.fs.lock.exclusive(async () => {
      await this.fs.checkDir(d.path);
      const host = this.fs.hostPath([...d.path, name]);
      await make(host, d.uid);
      return this.lstat(host);
    });
    return w.qid(this.qid(st));
  }

  private mkdir(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const dfid = r.u32(), name = r.str(), mode = r.u32(), gid = r.u32();
    return this.create(s, w, dfid, name, async (host, uid) => {
      await fsp.mkdir(host, mode & 0o777);
      await this.setCred(host, uid, gid, mode).catch(async (err: unknown) => {
        await this.undo(host, true);
        throw err;
      });
    });
  }

  private symlink(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const dfid = r.u32(), name = r.str(), target = r.str(), gid = r.u32();
    if (target.length === 0 || target.includes(0)) throw new NineError(E.EINVAL);
    return this.create(s, w, dfid, name, async (host, uid) => {
      await fsp.symlink(target, host);
      await this.setCred(host, uid, gid, -1).catch(async (err: unknown) => {
        await this.undo(host, false);
        throw err;
      });
    });
  }

  private mknod(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const dfid = r.u32(), name = r.str(), mode = r.u32();
    r.u32(); r.u32(); // major, minor
    const gid = r.u32();
    // Only regular files: devices need privileges, and Node cannot make FIFOs or sockets.
    if (kindOf(mode) !== S_IFREG && kindOf(mode) !== 0) throw new NineError(this.fs.readOnly ? E.EROFS : E.EOPNOTSUPP);
    return this.create(s, w, dfid, name, async (host, uid) => {
      const fh = await fsp.open(host, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | C.O_NONBLOCK, mode & 0o777);
      try {
        await this.setCred(host, uid, gid, mode, fh);
      } catch (err) {
        await this.undo(host, false);
        throw err;
      } finally {
        await fh.close();
      }
    });
  }

  private async readlink(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const target = await this.fs.lock.shared(async () => fsp.readlink(await this.fs.resolve(f.path), { encoding: 'buffer' }));
    return w.str(target);
  }

  private async link(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const d = this.pathFid(s, r.u32());
    const f = this.pathFid(s, r.u32());
    const name = r.str();
    this.writable();
    checkName(name);
    if (f.path.length === 0) throw new NineError(E.EPERM);
    await this.fs.lock.exclusive(async () => {
      const from = await this.fs.resolve(f.path);
      await this.fs.checkDir(d.path);
      await fsp.link(from, this.fs.hostPath([...d.path, name]));
    });
    return w;
  }

  /** Renames guest path `from` to `to` and moves the fids below it. */
  private async move(s: Session, from: Buffer[], to: Buffer[]): Promise<void> {
    this.writable();
    if (from.length === 0 || to.length === 0) throw new NineError(E.EBUSY);
    await this.fs.lock.exclusive(async () => {
      const a = await this.fs.resolve(from);
      const b = await this.fs.resolve(to);
      await fsp.rename(a, b);
      this.fixPaths(s, from, to);
    });
  }

  private async rename(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const d = this.pathFid(s, r.u32());
    const name = checkName(r.str());
    await this.move(s, f.path, [...d.path, name]);
    return w;
  }

  private async renameat(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const od = this.pathFid(s, r.u32());
    const oldName = r.str();
    const nd = this.pathFid(s, r.u32());
    const newName = r.str();
    checkName(oldName);
    checkName(newName);
    await this.move(s, [...od.path, oldName], [...nd.path, newName]);
    return w;
  }

  private async unlinkat(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const d = this.pathFid(s, r.u32());
    const name = r.str();
    const flags = r.u32();
    this.writable();
    checkName(name);
    await this.fs.lock.exclusive(async () => {
      await this.fs.checkDir(d.path);
      const host = this.fs.hostPath([...d.path, name]);
      await (flags & AT_REMOVEDIR ? fsp.rmdir(host) : fsp.unlink(host));
    });
    return w;
  }

  private async fsync(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.fid(s, r.u32());
    const datasync = r.remaining >= 4 ? r.u32() : 0;
    if (f.file) await (datasync ? f.file.datasync() : f.file.sync());
    return w;
  }

  private async xattrwalk(s: Session, w: Writer, r: Reader): Promise<Writer> {
    const f = this.pathFid(s, r.u32());
    const newfid = r.u32();
    const name = r.str();
    // No extended attributes: the list is empty and every attribute is absent.
    if (name.length > 0) throw new NineError(E.ENODATA);
    this.checkNewFid(s, newfid);
    this.addFid(s, newfid, { path: f.path, uid: f.uid, xattr: new Uint8Array(0), clunked: false });
    return w.u64(0);
  }
}
