/**
 * Tests for virtio-9p (src/hw/virtio/virtio-9p.ts) and its 9P2000.L server
 * (src/fsdev/), driven through the virtio driver mock against a temporary host
 * directory: the configuration space, version and attach, walking, creating, writing
 * and reading files (checked through the host's own file system), directories, renames,
 * links, attributes, read-only shares, attempts to leave the share ('..', symbolic links,
 * a directory swapped for a link), and malformed or truncated messages, which get an
 * Rlerror and never an exception or a lost request.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  mkdtempSync, mkdirSync, readFileSync, writeFileSync, symlinkSync, rmSync, existsSync, lstatSync, readdirSync, statSync, renameSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIRTIO_ID } from '../../src/hw/virtio/virtio.js';
import { Virtio9p, VIRTIO_9P_MOUNT_TAG } from '../../src/hw/virtio/virtio-9p.js';
import { Fsdev } from '../../src/fsdev/fsdev.js';
import { MAX_MSIZE, MAX_OPEN } from '../../src/fsdev/9p-server.js';
import { P9, E, QT, NOTAG, Reader, Writer, type Qid } from '../../src/fsdev/9p-proto.js';
import type { SecurityModel } from '../../src/system/options.js';
import { FakeGuestRam, MockSplitQueue, activateDevice, VIRTIO_F_VERSION_1_BIT } from './virtio-driver-mock.js';

const MSIZE = 64 * 1024;
const ROOT_FID = 0;
const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_TRUNC = 0o1000, O_CREAT = 0o100, O_EXCL = 0o200;

/** A parsed reply. */
interface Reply {
  type: number;
  tag: number;
  r: Reader;
  /** The errno if it is an Rlerror. */
  errno?: number;
}

/** A temporary host directory and a device sharing it, activated over a mock queue, with a tiny 9P client. */
class Harness {
  readonly ram = new FakeGuestRam(8 << 20);
  readonly q = new MockSplitQueue(this.ram, 128);
  dev!: Virtio9p;
  act!: ReturnType<typeof activateDevice>;
  fsdev!: Fsdev;
  private nextTag = 1;
  private nextFid = 100;
  /** Request and reply areas, reused (one per request in flight). */
  private readonly slots: { req: number; rep: number }[] = [];

  constructor(readonly dir: string, readonly opts: { readOnly?: boolean; model?: SecurityModel } = {}) {
    for (let i = 0; i < 16; i++) this.slots.push({ req: this.ram.alloc(MSIZE + 64, 8), rep: this.ram.alloc(MSIZE + 64, 8) });
  }

  static async create(opts: { readOnly?: boolean; model?: SecurityModel; tag?: string } = {}): Promise<Harness> {
    const h = new Harness(mkdtempSync(join(tmpdir(), 'vireo-9p-')), opts);
    mkdirSync(h.share);
    h.fsdev = await Fsdev.open({ id: 'fs0', path: h.share, securityModel: opts.model ?? 'none', readOnly: opts.readOnly ?? false });
    h.dev = new Virtio9p(h.fsdev, opts.tag ?? 'share');
    h.act = activateDevice(h.dev, h.ram, [h.q], VIRTIO_F_VERSION_1_BIT | h.dev.features);
    return h;
  }

  /** The shared directory; `dir` also holds files outside the share. */
  get share(): string {
    return join(this.dir, 'share');
  }

  host(...names: string[]): string {
    return join(this.share, ...names);
  }

  cleanup(): void {
    this.fsdev.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  fid(): number {
    return this.nextFid++;
  }

  /** Posts raw request bytes with `room` bytes of reply space in slot `slot`; returns the head. */
  post(msg: Uint8Array, room = MSIZE, slot = 0, split = false): number {
    const s = this.slots[slot]!;
    const bufs = [];
    if (msg.length > 0) {
      if (split && msg.length > 3) {
        bufs.push({ readable: msg.subarray(0, 3), addr: s.req }, { readable: msg.subarray(3), addr: s.req + 8 });
      } else bufs.push({ readable: msg, addr: s.req });
    }
    if (room > 0) {
      if (split && room > 11) bufs.push({ writable: 11, addr: s.rep }, { writable: room - 11, addr: s.rep + 16 });
      else bufs.push({ writable: room, addr: s.rep });
    }
    return this.q.addChain(bufs).head;
  }

  /** Waits for `n` used elements. */
  async used(n: number): Promise<{ id: number; len: number }[]> {
    const out: { id: number; len: number }[] = [];
    for (let i = 0; i < 3200 && out.length < n; i++) {
      out.push(...this.q.takeUsed());
      if (out.length < n) await new Promise((r) => (i < 200 ? setImmediate(r) : setTimeout(r, 2)));
    }
    assert.equal(out.length, n, 'used elements');
    return out;
  }

  /** Reads the reply of `slot` (len bytes) and parses its header. */
  reply(len: number, slot = 0, split = false): Reply {
    const s = this.slots[slot]!;
    const bytes = split && len > 11
      ? Buffer.concat([this.ram.read(s.rep, 11), this.ram.read(s.rep + 16, len - 11)])
      : this.ram.read(s.rep, len);
    assert.ok(len >= 7, `reply of ${len} bytes`);
    const r = new Reader(bytes);
    const size = r.u32();
    assert.equal(size, len, 'size field = bytes written');
    const type = r.u8();
    const tag = r.u16();
    const rep: Reply = { type, tag, r };
    if (type === P9.RLERROR) rep.errno = r.u32();
    return rep;
  }

  /** Sends raw bytes, waits for the reply. */
  async raw(msg: Uint8Array, room = MSIZE, split = false): Promise<Reply> {
    const head = this.post(msg, room, 0, split);
    this.dev.queueNotify(0);
    const [u] = await this.used(1);
    assert.equal(u!.id, head);
    return this.reply(u!.len, 0, split);
  }

  /** Builds and sends a T-message; checks the reply's tag and returns it. */
  async rpc(type: number, body: (w: Writer) => void, o: { room?: number; split?: boolean } = {}): Promise<Reply> {
    const tag = this.nextTag++ & 0x7fff;
    const w = new Writer(type, tag);
    body(w);
    const rep = await this.raw(w.finish(), o.room, o.split);
    assert.equal(rep.tag, tag, 'reply tag');
    if (rep.type !== P9.RLERROR) assert.equal(rep.type, type + 1, `reply type to ${type}`);
    return rep;
  }

  /** Like rpc, but the reply must not be an error. */
  async ok(type: number, body: (w: Writer) => void, o: { room?: number; split?: boolean } = {}): Promise<Reader> {
    const rep = await this.rpc(type, body, o);
    assert.equal(rep.errno, undefined, `message ${type} failed with errno ${rep.errno}`);
    return rep.r;
  }

  /** Like rpc, but the reply must be Rlerror `errno`. */
  async fails(errno: number, type: number, body: (w: Writer) => void): Promise<void> {
    const rep = await this.rpc(type, body);
    assert.equal(rep.type, P9.RLERROR, `message ${type} should fail`);
    assert.equal(rep.errno, errno, `message ${type}: errno`);
  }

  async version(msize = MSIZE, ver = '9P2000.L'): Promise<{ msize: number; version: string }> {
    const r = await this.ok(P9.TVERSION, (w) => w.u32(msize).str(ver));
    return { msize: r.u32(), version: r.str().toString() };
  }

  /** Tversion and Tattach of ROOT_FID. */
  async mount(): Promise<Qid> {
    await this.version();
    return qid(await this.ok(P9.TATTACH, (w) => w.u32(ROOT_FID).u32(0xffffffff).str('root').str('').u32(0)));
  }

  /** Walks `names` from `from` to a new fid; returns it and the qids. */
  async walk(names: string[], from = ROOT_FID): Promise<{ fid: number; qids: Qid[] }> {
    const fid = this.fid();
    const r = await this.ok(P9.TWALK, (w) => {
      w.u32(from).u32(fid).u16(names.length);
      for (const n of names) w.str(n);
    });
    const qids = Array.from({ length: r.u16() }, () => qid(r));
    assert.equal(qids.length, names.length, `walk ${names.join('/')}`);
    return { fid, qids };
  }

  walkMsg(from: number, fid: number, names: (string | Uint8Array)[]): (w: Writer) => void {
    return (w) => {
      w.u32(from).u32(fid).u16(names.length);
      for (const n of names) w.str(n);
    };
  }

  async open(names: string[], flags = O_RDONLY): Promise<number> {
    const { fid } = await this.walk(names);
    await this.ok(P9.TLOPEN, (w) => w.u32(fid).u32(flags));
    return fid;
  }

  async create(dirNames: string[], name: string, flags = O_RDWR, mode = 0o644): Promise<number> {
    const { fid } = await this.walk(dirNames);
    await this.ok(P9.TLCREATE, (w) => w.u32(fid).str(name).u32(flags).u32(mode).u32(0));
    return fid;
  }

  async write(fid: number, offset: number, data: Uint8Array | string, split = false): Promise<number> {
    return (await this.ok(P9.TWRITE, (w) => {
      const d = typeof data === 'string' ? Buffer.from(data) : data;
      w.u32(fid).u64(offset).u32(d.length).bytes(d);
    }, { split })).u32();
  }

  async read(fid: number, offset: number, count: number, split = false): Promise<Buffer> {
    const r = await this.ok(P9.TREAD, (w) => w.u32(fid).u64(offset).u32(count), { split });
    return Buffer.from(r.bytes(r.u32()));
  }

  async clunk(fid: number): Promise<void> {
    await this.ok(P9.TCLUNK, (w) => w.u32(fid));
  }

  /** All entries of a directory, in Treaddir calls of `count` bytes. */
  async readdir(names: string[], count = 8192): Promise<{ name: string; type: number; qid: Qid }[]> {
    const fid = await this.open(names);
    const out: { name: string; type: number; qid: Qid }[] = [];
    let offset = 0n;
    for (;;) {
      const r = await this.ok(P9.TREADDIR, (w) => w.u32(fid).u64(offset).u32(count));
      const n = r.u32();
      if (n === 0) break;
      const end = r.remaining - n;
      while (r.remaining > end) {
        const q = qid(r);
        offset = r.u64();
        const type = r.u8();
        out.push({ name: r.str().toString(), type, qid: q });
      }
    }
    await this.clunk(fid);
    return out;
  }

  async getattr(fid: number): Promise<{ qid: Qid; mode: number; uid: number; size: bigint; nlink: bigint; mtime: bigint }> {
    const r = await this.ok(P9.TGETATTR, (w) => w.u32(fid).u64(0x7ffn));
    r.u64();
    const q = qid(r);
    const mode = r.u32(), uid = r.u32();
    r.u32();
    const nlink = r.u64();
    r.u64();
    const size = r.u64();
    r.u64(); r.u64(); r.u64(); r.u64();
    const mtime = r.u64();
    return { qid: q, mode, uid, size, nlink, mtime };
  }
}

function qid(r: Reader): Qid {
  return { type: r.u8(), version: r.u32(), path: r.u64() };
}

async function withHarness(opts: { readOnly?: boolean; model?: SecurityModel; tag?: string }, fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await Harness.create(opts);
  try {
    await fn(h);
    assert.equal(h.act.needsReset(), null);
  } finally {
    h.cleanup();
  }
}

test('identity and configuration space: the mount tag', async () => {
  await withHarness({ tag: 'hostshare' }, async (h) => {
    assert.equal(h.dev.deviceId, VIRTIO_ID.NINEP);
    assert.deepEqual(h.dev.queueMaxSizes, [128]);
    assert.equal(h.dev.features, 1n << VIRTIO_9P_MOUNT_TAG);
    assert.equal(h.dev.configSize, 2 + 9);
    assert.equal(h.dev.readConfig(0, 2), 9);
    const tag = Buffer.from(Array.from({ length: 9 }, (_, i) => h.dev.readConfig(2 + i, 1)));
    assert.equal(tag.toString(), 'hostshare');
    assert.equal(h.dev.readConfig(2, 4), Buffer.from('host').readUInt32LE(0));
    assert.equal(h.dev.readConfig(h.dev.configSize, 1), 0, 'past the end');
    assert.equal(h.dev.readConfig(h.dev.configSize - 1, 2), 0, 'across the end');
    h.dev.writeConfig(0, 2, 1);
    assert.equal(h.dev.readConfig(0, 2), 9, 'read-only');
  });
  const fsdev = await Fsdev.open({ id: 'x', path: tmpdir(), securityModel: 'none', readOnly: false });
  assert.throws(() => new Virtio9p(fsdev, 'x'.repeat(32)), RangeError);
  assert.throws(() => new Virtio9p(fsdev, ''), RangeError);
  fsdev.close();
});

test('Tversion negotiates msize and 9P2000.L; nothing else works before it', async () => {
  await withHarness({}, async (h) => {
    await h.fails(E.EPROTO, P9.TATTACH, (w) => w.u32(0).u32(0xffffffff).str('').str('').u32(0));
    assert.deepEqual(await h.version(4 << 20), { msize: MAX_MSIZE, version: '9P2000.L' });
    assert.deepEqual(await h.version(8192), { msize: 8192, version: '9P2000.L' });
    assert.deepEqual(await h.version(8192, '9P2000.u'), { msize: 8192, version: 'unknown' });
    await h.fails(E.EPROTO, P9.TATTACH, (w) => w.u32(0).u32(0xffffffff).str('').str('').u32(0));
    await h.fails(E.EINVAL, P9.TVERSION, (w) => w.u32(100).str('9P2000.L'));
    // msize bounds the requests: with 8192 negotiated, a larger message is refused.
    await h.version(8192);
    await h.mount();
    await h.version(8192);
    const big = await h.rpc(P9.TWRITE, (w) => w.u32(ROOT_FID).u64(0).u32(9000).bytes(new Uint8Array(9000)));
    assert.equal(big.errno, E.EPROTO);
  });
});

test('attach, walk, getattr; .. stops at the root; bad names and fids', async () => {
  await withHarness({}, async (h) => {
    mkdirSync(h.host('a', 'b'), { recursive: true });
    writeFileSync(h.host('a', 'b', 'f.txt'), 'twelve bytes');
    const root = await h.mount();
    assert.equal(root.type, QT.DIR);
    assert.equal(root.path, statSync(h.share, { bigint: true }).ino);
    const { fid, qids } = await h.walk(['a', 'b', 'f.txt']);
    assert.deepEqual(qids.map((q) => q.type), [QT.DIR, QT.DIR, QT.FILE]);
    assert.equal(qids[2]!.path, statSync(h.host('a', 'b', 'f.txt'), { bigint: true }).ino);
    const st = await h.getattr(fid);
    assert.equal(st.size, 12n);
    assert.equal(st.mode & 0o170000, 0o100000);
    // '..' and '.': the root's parent is the root.
    const up = await h.walk(['..', '..', '..']);
    assert.deepEqual(up.qids.map((q) => q.path), [root.path, root.path, root.path]);
    const back = await h.walk(['a', '..', 'a', 'b', '..', '.']);
    assert.equal(back.qids[5]!.path, statSync(h.host('a'), { bigint: true }).ino);
    // A walk that fails on its first name is an error; a later name, a partial Rwalk and no new fid.
    await h.fails(E.ENOENT, P9.TWALK, h.walkMsg(ROOT_FID, 500, ['nope']));
    const part = await h.ok(P9.TWALK, h.walkMsg(ROOT_FID, 501, ['a', 'nope', 'x']));
    assert.equal(part.u16(), 1);
    await h.fails(E.EBADF, P9.TGETATTR, (w) => w.u32(501).u64(0x7ffn));
    // Through a file.
    const thru = await h.ok(P9.TWALK, h.walkMsg(ROOT_FID, 502, ['a', 'b', 'f.txt', 'x']));
    assert.equal(thru.u16(), 3);
    // Names that are not one component.
    await h.fails(E.EINVAL, P9.TWALK, h.walkMsg(ROOT_FID, 503, ['a/b']));
    await h.fails(E.EINVAL, P9.TWALK, h.walkMsg(ROOT_FID, 503, ['']));
    await h.fails(E.EINVAL, P9.TWALK, h.walkMsg(ROOT_FID, 503, [Uint8Array.of(0x61, 0, 0x62)]));
    await h.fails(E.ENAMETOOLONG, P9.TWALK, h.walkMsg(ROOT_FID, 503, ['x'.repeat(256)]));
    await h.fails(E.EINVAL, P9.TWALK, h.walkMsg(ROOT_FID, 503, Array(17).fill('a')));
    // Fids: unknown, in use.
    await h.fails(E.EBADF, P9.TWALK, h.walkMsg(999, 503, []));
    await h.fails(E.EINVAL, P9.TWALK, h.walkMsg(ROOT_FID, fid, []));
    await h.fails(E.EINVAL, P9.TATTACH, (w) => w.u32(fid).u32(0xffffffff).str('').str('').u32(0));
    await h.fails(E.EBADF, P9.TCLUNK, (w) => w.u32(999));
    // Walking a fid onto itself.
    const self = await h.walk(['a']);
    await h.ok(P9.TWALK, h.walkMsg(self.fid, self.fid, ['b']));
    assert.equal((await h.getattr(self.fid)).qid.path, statSync(h.host('a', 'b'), { bigint: true }).ino);
  });
});

test('create, write and read back through the host file system, and the other way round', async () => {
  await withHarness({}, async (h) => {
    await h.mount();
    const f = await h.create([], 'new.txt', O_RDWR, 0o640);
    assert.equal(await h.write(f, 0, 'hello, '), 7);
    assert.equal(await h.write(f, 7, 'world\n', true), 6);
    await h.ok(P9.TFSYNC, (w) => w.u32(f).u32(0));
    assert.equal((await h.read(f, 0, 100)).toString(), 'hello, world\n');
    assert.equal((await h.read(f, 7, 5, true)).toString(), 'world');
    assert.equal((await h.read(f, 100, 5)).length, 0);
    await h.clunk(f);
    assert.equal(readFileSync(h.host('new.txt'), 'utf8'), 'hello, world\n');
    assert.equal(lstatSync(h.host('new.txt')).mode & 0o777, 0o640, 'the guest\'s mode, not the umask\'s');
    // A big file written by the host, read in msize-sized pieces.
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 9)) & 0xff;
    writeFileSync(h.host('big.bin'), big);
    const g = await h.open(['big.bin']);
    const parts: Buffer[] = [];
    for (let off = 0; ; ) {
      const d = await h.read(g, off, 1 << 20); // asks for more than msize: gets what fits
      if (d.length === 0) break;
      assert.ok(d.length <= MSIZE - 11);
      parts.push(d);
      off += d.length;
    }
    assert.ok(Buffer.concat(parts).equals(big));
    // A read with little reply room gets a short read, never an overflow.
    assert.equal((await h.rpc(P9.TREAD, (w) => w.u32(g).u64(0).u32(4096), { room: 11 + 100 })).r.u32(), 100);
    await h.fails(E.EBADF, P9.TWRITE, (w) => w.u32(g).u64(0).u32(1).u8(0)); // opened read-only
    await h.clunk(g);
    // Truncating open, exclusive create, reading a directory.
    const t = await h.open(['new.txt'], O_WRONLY | O_TRUNC);
    assert.equal(statSync(h.host('new.txt')).size, 0);
    await h.clunk(t);
    const x = (await h.walk([])).fid;
    await h.fails(E.EEXIST, P9.TLCREATE, (w) => w.u32(x).str('new.txt').u32(O_RDWR | O_CREAT | O_EXCL).u32(0o644).u32(0));
    const d = await h.open([]);
    await h.fails(E.EISDIR, P9.TREAD, (w) => w.u32(d).u64(0).u32(10));
    await h.fails(E.EINVAL, P9.TLOPEN, (w) => w.u32(d).u32(0)); // already open
    await h.fails(E.EISDIR, P9.TLOPEN, (w) => w.u32(x).u32(O_RDWR));
  });
});

test('readdir lists everything once across short replies, with dots, types and inode numbers', async () => {
  await withHarness({}, async (h) => {
    const names = Array.from({ length: 150 }, (_, i) => `file-${i}-${'x'.repeat(i % 40)}`);
    for (const n of names) writeFileSync(h.host(n), n);
    mkdirSync(h.host('sub'));
    symlinkSync('file-1-x', h.host('link'));
    await h.mount();
    for (const count of [8192, 300]) {
      const list = await h.readdir([], count);
      assert.deepEqual(list.map((e) => e.name).sort(), ['.', '..', ...names, 'sub', 'link'].sort(), `count ${count}`);
      const by = new Map(list.map((e) => [e.name, e]));
      assert.equal(by.get('sub')!.type, 4);
      assert.equal(by.get('link')!.type, 10);
      assert.equal(by.get('link')!.qid.type, QT.SYMLINK);
      assert.equal(by.get('file-3-xxx')!.type, 8);
      assert.equal(by.get('file-3-xxx')!.qid.path, statSync(h.host('file-3-xxx'), { bigint: true }).ino);
      assert.equal(by.get('..')!.qid.path, statSync(h.share, { bigint: true }).ino, '.. of the root is the root');
    }
    // Going back to an earlier offset (as the client does when its buffer filled) works.
    const fid = await h.open([]);
    const first = await h.ok(P9.TREADDIR, (w) => w.u32(fid).u64(0).u32(400));
    const n1 = first.u32();
    assert.ok(n1 > 0);
    const again = await h.ok(P9.TREADDIR, (w) => w.u32(fid).u64(0).u32(400));
    assert.equal(again.u32(), n1);
    const file = await h.open(['file-0-']);
    await h.fails(E.ENOTDIR, P9.TREADDIR, (w) => w.u32(file).u64(0).u32(100));
    const closed = (await h.walk([])).fid;
    await h.fails(E.EBADF, P9.TREADDIR, (w) => w.u32(closed).u64(0).u32(100));
  });
});

test('mkdir, symlink, readlink, link, rename, renameat, unlinkat, remove, setattr, statfs, xattrs, locks', async () => {
  await withHarness({}, async (h) => {
    await h.mount();
    const root = (await h.walk([])).fid;
    const dq = qid(await h.ok(P9.TMKDIR, (w) => w.u32(root).str('dir').u32(0o750).u32(0)));
    assert.equal(dq.type, QT.DIR);
    assert.equal(statSync(h.host('dir')).mode & 0o777, 0o750);
    const f = await h.create(['dir'], 'a.txt');
    await h.write(f, 0, 'contents');
    // Symbolic links are created and read, never followed.
    const sq = qid(await h.ok(P9.TSYMLINK, (w) => w.u32(root).str('ln').str('dir/a.txt').u32(0)));
    assert.equal(sq.type, QT.SYMLINK);
    const lnw = (await h.walk(['ln'])).fid;
    assert.equal((await h.ok(P9.TREADLINK, (w) => w.u32(lnw))).str().toString(), 'dir/a.txt');
    // Hard link.
    const dir = (await h.walk(['dir'])).fid;
    const a = (await h.walk(['dir', 'a.txt'])).fid;
    await h.ok(P9.TLINK, (w) => w.u32(root).u32(a).str('hard'));
    assert.equal(statSync(h.host('hard')).ino, statSync(h.host('dir', 'a.txt')).ino);
    assert.equal((await h.getattr(a)).nlink, 2n);
    // renameat moves the file; fids on it follow (the open one and the path one).
    await h.ok(P9.TRENAMEAT, (w) => w.u32(dir).str('a.txt').u32(root).str('b.txt'));
    assert.ok(!existsSync(h.host('dir', 'a.txt')));
    assert.equal(readFileSync(h.host('b.txt'), 'utf8'), 'contents');
    assert.equal((await h.getattr(a)).size, 8n);
    await h.write(f, 8, '+more');
    assert.equal(readFileSync(h.host('b.txt'), 'utf8'), 'contents+more');
    // Trename of a directory moves the fids below it.
    const deep = await h.create(['dir'], 'deep.txt');
    await h.clunk(deep);
    const deepFid = (await h.walk(['dir', 'deep.txt'])).fid;
    await h.ok(P9.TRENAME, (w) => w.u32(dir).u32(root).str('dir2'));
    assert.deepEqual(readdirSync(h.share).sort(), ['b.txt', 'dir2', 'hard', 'ln']);
    assert.equal((await h.getattr(deepFid)).size, 0n);
    // setattr: mode, size, times; on an open file and by path.
    await h.ok(P9.TSETATTR, (w) => w.u32(a).u32(0x1 | 0x8 | 0x20 | 0x100).u32(0o600).u32(0).u32(0).u64(3)
      .u64(0).u64(0).u64(1_000_000_000).u64(0));
    assert.equal(statSync(h.host('b.txt')).mode & 0o777, 0o600);
    assert.equal(readFileSync(h.host('b.txt'), 'utf8'), 'con');
    assert.equal(statSync(h.host('b.txt')).mtimeMs, 1e12);
    await h.ok(P9.TSETATTR, (w) => w.u32(f).u32(0x8).u32(0).u32(0).u32(0).u64(1).u64(0).u64(0).u64(0).u64(0));
    assert.equal(readFileSync(h.host('b.txt'), 'utf8'), 'c');
    const lnFid = (await h.walk(['ln'])).fid;
    await h.fails(E.EOPNOTSUPP, P9.TSETATTR, (w) => w.u32(lnFid).u32(0x1).u32(0o777).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0));
    // chown to the host's own owner works under 'none'; to another one it may fail silently.
    await h.ok(P9.TSETATTR, (w) => w.u32(a).u32(0x2 | 0x4).u32(0).u32(process.getuid!()).u32(process.getgid!()).u64(0).u64(0).u64(0).u64(0).u64(0));
    await h.ok(P9.TSETATTR, (w) => w.u32(a).u32(0x2).u32(0).u32(12345).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0));
    // statfs.
    const sf = await h.ok(P9.TSTATFS, (w) => w.u32(root));
    sf.u32();
    assert.ok(sf.u32() > 0, 'bsize');
    assert.ok(sf.u64() > 0n, 'blocks');
    // xattrs: none, and the empty list; setting one is not supported.
    await h.fails(E.ENODATA, P9.TXATTRWALK, (w) => w.u32(a).u32(700).str('security.capability'));
    const xl = await h.ok(P9.TXATTRWALK, (w) => w.u32(a).u32(700).str(''));
    assert.equal(xl.u64(), 0n);
    assert.equal((await h.read(700, 0, 100)).length, 0);
    await h.clunk(700);
    await h.fails(E.EOPNOTSUPP, P9.TXATTRCREATE, (w) => w.u32(a).str('user.x').u64(1).u32(0));
    // Locks are granted; getlock says nothing is locked.
    assert.equal((await h.ok(P9.TLOCK, (w) => w.u32(f).u8(1).u32(0).u64(0).u64(0).u32(42).str('client'))).u8(), 0);
    const gl = await h.ok(P9.TGETLOCK, (w) => w.u32(f).u8(1).u64(5).u64(10).u32(42).str('client'));
    assert.deepEqual([gl.u8(), gl.u64(), gl.u64(), gl.u32(), gl.str().toString()], [2, 5n, 10n, 42, 'client']);
    // mknod: regular files only.
    assert.equal(qid(await h.ok(P9.TMKNOD, (w) => w.u32(root).str('node').u32(0o100644).u32(0).u32(0).u32(0))).type, QT.FILE);
    await h.fails(E.EOPNOTSUPP, P9.TMKNOD, (w) => w.u32(root).str('fifo').u32(0o010644).u32(0).u32(0).u32(0));
    // unlinkat of files and directories; Tremove clunks even when it fails.
    await h.fails(E.ENOTEMPTY, P9.TUNLINKAT, (w) => w.u32(root).str('dir2').u32(0x200));
    await h.fails(E.EISDIR, P9.TUNLINKAT, (w) => w.u32(root).str('dir2').u32(0));
    await h.ok(P9.TUNLINKAT, (w) => w.u32(root).str('node').u32(0));
    const d2 = (await h.walk(['dir2'])).fid;
    await h.fails(E.ENOTEMPTY, P9.TREMOVE, (w) => w.u32(d2));
    await h.fails(E.EBADF, P9.TCLUNK, (w) => w.u32(d2));
    await h.ok(P9.TREMOVE, (w) => w.u32(deepFid));
    await h.ok(P9.TUNLINKAT, (w) => w.u32(root).str('dir2').u32(0x200));
    await h.ok(P9.TUNLINKAT, (w) => w.u32(root).str('ln').u32(0));
    assert.deepEqual(readdirSync(h.share).sort(), ['b.txt', 'hard']);
    // The open file still works after its name is gone.
    await h.ok(P9.TUNLINKAT, (w) => w.u32(root).str('b.txt').u32(0));
    await h.write(f, 0, 'still');
    assert.equal((await h.read(f, 0, 10)).toString(), 'still');
    assert.equal((await h.getattr(f)).size, 5n);
    // New names must be single components.
    for (const bad of ['.', '..', 'a/b', '']) {
      await h.fails(E.EINVAL, P9.TMKDIR, (w) => w.u32(root).str(bad).u32(0o755).u32(0));
      await h.fails(E.EINVAL, P9.TLCREATE, (w) => w.u32((h.fid(), root)).str(bad).u32(O_RDWR).u32(0o644).u32(0));
    }
    await h.fails(E.EBUSY, P9.TREMOVE, (w) => w.u32(root));
    // Tflush of a tag not in flight answers at once.
    await h.ok(P9.TFLUSH, (w) => w.u16(12345));
  });
});

test('security models: passthrough gives new files the guest\'s owner or fails; mapped-* never chowns nor sets set-ID bits', async () => {
  const asRoot = process.getuid?.() === 0;
  await withHarness({ model: 'passthrough' }, async (h) => {
    await h.version();
    await h.ok(P9.TATTACH, (w) => w.u32(ROOT_FID).u32(0xffffffff).str('u').str('').u32(4242));
    const root = (await h.walk([])).fid;
    const rep = await h.rpc(P9.TMKDIR, (w) => w.u32(root).str('d').u32(0o2755).u32(4343));
    if (asRoot) {
      assert.equal(rep.errno, undefined);
      const st = statSync(h.host('d'));
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [4242, 4343, 0o2755]);
    } else {
      assert.equal(rep.errno, E.EPERM);
      assert.ok(!existsSync(h.host('d')), 'undone');
    }
  });
  await withHarness({ model: 'mapped-xattr' }, async (h) => {
    await h.version();
    await h.ok(P9.TATTACH, (w) => w.u32(ROOT_FID).u32(0xffffffff).str('u').str('').u32(4242));
    const f = await h.create([], 'x', O_RDWR, 0o4755);
    const st = statSync(h.host('x'));
    assert.deepEqual([st.uid, st.mode & 0o7777], [process.getuid!(), 0o755]);
    await h.ok(P9.TSETATTR, (w) => w.u32(f).u32(0x1 | 0x2).u32(0o6777).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0));
    assert.deepEqual([statSync(h.host('x')).uid, statSync(h.host('x')).mode & 0o7777], [process.getuid!(), 0o777]);
  });
});

test('a read-only share serves reads and refuses every change with EROFS', async () => {
  await withHarness({ readOnly: true }, async (h) => {
    mkdirSync(h.host('d'));
    writeFileSync(h.host('d', 'f'), 'data');
    await h.mount();
    const f = await h.open(['d', 'f']);
    assert.equal((await h.read(f, 0, 10)).toString(), 'data');
    assert.equal((await h.readdir(['d'])).length, 3);
    const root = (await h.walk([])).fid;
    const df = (await h.walk(['d', 'f'])).fid;
    const ro: [number, (w: Writer) => void][] = [
      [P9.TLOPEN, (w) => w.u32(df).u32(O_RDWR)],
      [P9.TLOPEN, (w) => w.u32(df).u32(O_WRONLY)],
      [P9.TLOPEN, (w) => w.u32(df).u32(O_RDONLY | O_TRUNC)],
      [P9.TLCREATE, (w) => w.u32(root).str('n').u32(O_RDWR).u32(0o644).u32(0)],
      [P9.TMKDIR, (w) => w.u32(root).str('n').u32(0o755).u32(0)],
      [P9.TSYMLINK, (w) => w.u32(root).str('n').str('d').u32(0)],
      [P9.TMKNOD, (w) => w.u32(root).str('n').u32(0o100644).u32(0).u32(0).u32(0)],
      [P9.TLINK, (w) => w.u32(root).u32(df).str('n')],
      [P9.TRENAME, (w) => w.u32(df).u32(root).str('n')],
      [P9.TRENAMEAT, (w) => w.u32(root).str('d').u32(root).str('n')],
      [P9.TUNLINKAT, (w) => w.u32(root).str('d').u32(0x200)],
      [P9.TSETATTR, (w) => w.u32(df).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)],
      [P9.TSETATTR, (w) => w.u32(df).u32(0x1).u32(0o777).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)],
      [P9.TWRITE, (w) => w.u32(f).u64(0).u32(1).u8(0x41)],
      [P9.TXATTRCREATE, (w) => w.u32(df).str('user.a').u64(1).u32(0)],
    ];
    for (const [type, body] of ro) await h.fails(E.EROFS, type, body);
    const victim = (await h.walk(['d', 'f'])).fid;
    await h.fails(E.EROFS, P9.TREMOVE, (w) => w.u32(victim));
    assert.equal(readFileSync(h.host('d', 'f'), 'utf8'), 'data');
    assert.deepEqual(readdirSync(h.share), ['d']);
    assert.equal(statSync(h.host('d', 'f')).mode & 0o777, 0o644);
  });
});

test('nothing leaves the share: .., symbolic links out, and a directory swapped for a link', async () => {
  await withHarness({}, async (h) => {
    const outside = join(h.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'secret');
    symlinkSync(outside, h.host('out'));
    symlinkSync(join(outside, 'secret'), h.host('secret-link'));
    mkdirSync(h.host('d'));
    const root = await h.mount();
    // '..' from the root stays at the root, so the name after it is looked up in the share.
    const esc = await h.ok(P9.TWALK, h.walkMsg(ROOT_FID, 600, ['..', 'outside']));
    assert.equal(esc.u16(), 1, 'partial walk: no fid');
    assert.equal(qid(esc).path, root.path);
    await h.fails(E.EBADF, P9.TGETATTR, (w) => w.u32(600).u64(0x7ffn));
    const up = await h.walk(['..']);
    assert.equal(up.qids[0]!.path, root.path);
    // A link is walked to, not through; opening it fails; its target is only read.
    const l = await h.walk(['out']);
    assert.equal(l.qids[0]!.type, QT.SYMLINK);
    const thru = await h.ok(P9.TWALK, h.walkMsg(ROOT_FID, 601, ['out', 'secret']));
    assert.equal(thru.u16(), 1, 'stops at the link');
    await h.fails(E.ELOOP, P9.TWALK, h.walkMsg(l.fid, 602, ['secret']));
    await h.fails(E.ELOOP, P9.TLOPEN, (w) => w.u32(l.fid).u32(O_RDONLY));
    const sl = (await h.walk(['secret-link'])).fid;
    await h.fails(E.ELOOP, P9.TLOPEN, (w) => w.u32(sl).u32(O_RDONLY));
    await h.fails(E.ELOOP, P9.TLOPEN, (w) => w.u32(sl).u32(O_WRONLY | O_TRUNC));
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
    // Creating in, or truncating through, a link fails.
    await h.fails(E.ELOOP, P9.TLCREATE, (w) => w.u32(l.fid).str('planted').u32(O_RDWR).u32(0o644).u32(0));
    await h.fails(E.ELOOP, P9.TMKDIR, (w) => w.u32(l.fid).str('planted').u32(0o755).u32(0));
    await h.fails(E.EINVAL, P9.TSETATTR, (w) => w.u32(sl).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0));
    // Creating over an existing link does not follow it.
    const r0 = (await h.walk([])).fid;
    await h.fails(E.ELOOP, P9.TLCREATE, (w) => w.u32(r0).str('secret-link').u32(O_RDWR | O_TRUNC).u32(0o644).u32(0));
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
    // A fid on a directory that is then replaced (by the host) with a link to outside.
    const d = (await h.walk(['d'])).fid;
    const df = (await h.walk(['d'])).fid;
    rmSync(h.host('d'), { recursive: true });
    symlinkSync(outside, h.host('d'));
    await h.fails(E.ELOOP, P9.TLCREATE, (w) => w.u32(d).str('planted').u32(O_RDWR).u32(0o644).u32(0));
    await h.fails(E.ELOOP, P9.TWALK, h.walkMsg(df, 603, ['secret']));
    await h.fails(E.ELOOP, P9.TUNLINKAT, (w) => w.u32(df).str('secret').u32(0));
    await h.fails(E.ELOOP, P9.TRENAMEAT, (w) => w.u32(df).str('secret').u32(ROOT_FID).str('stolen'));
    await h.fails(E.ELOOP, P9.TSYMLINK, (w) => w.u32(df).str('planted').str('/').u32(0));
    const sec = (await h.walk(['secret-link'])).fid;
    await h.fails(E.ELOOP, P9.TLINK, (w) => w.u32(df).u32(sec).str('planted'));
    assert.deepEqual(readdirSync(outside), ['secret']);
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
    // The share's root itself swapped for a link.
    renameSync(h.share, join(h.dir, 'moved'));
    symlinkSync(outside, h.share);
    await h.fails(E.ELOOP, P9.TGETATTR, (w) => w.u32(ROOT_FID).u64(0x7ffn));
    await h.fails(E.ELOOP, P9.TWALK, h.walkMsg(ROOT_FID, 604, ['secret']));
    await h.fails(E.ELOOP, P9.TSTATFS, (w) => w.u32(ROOT_FID));
    rmSync(h.share);
    renameSync(join(h.dir, 'moved'), h.share);
  });
});

test('malformed and truncated messages get an Rlerror; chains too short for a reply come back empty', async () => {
  await withHarness({}, async (h) => {
    await h.mount();
    const f = await h.create([], 'file');
    // Every message type, cut short at every length: Rlerror EPROTO (or another errno), never silence.
    const whole: [number, (w: Writer) => void][] = [
      [P9.TWALK, h.walkMsg(ROOT_FID, 800, ['file'])],
      [P9.TGETATTR, (w) => w.u32(f).u64(0x7ffn)],
      [P9.TSETATTR, (w) => w.u32(f).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)],
      [P9.TLCREATE, (w) => w.u32(ROOT_FID).str('n').u32(O_RDWR).u32(0o644).u32(0)],
      [P9.TREAD, (w) => w.u32(f).u64(0).u32(10)],
      [P9.TWRITE, (w) => w.u32(f).u64(0).u32(4).bytes(Buffer.from('abcd'))],
      [P9.TREADDIR, (w) => w.u32(ROOT_FID).u64(0).u32(100)],
      [P9.TMKDIR, (w) => w.u32(ROOT_FID).str('n').u32(0o755).u32(0)],
      [P9.TSYMLINK, (w) => w.u32(ROOT_FID).str('n').str('t').u32(0)],
      [P9.TRENAMEAT, (w) => w.u32(ROOT_FID).str('a').u32(ROOT_FID).str('b')],
      [P9.TUNLINKAT, (w) => w.u32(ROOT_FID).str('n').u32(0)],
      [P9.TLOCK, (w) => w.u32(f).u8(0).u32(0).u64(0).u64(0).u32(0).str('c')],
      [P9.TGETLOCK, (w) => w.u32(f).u8(0).u64(0).u64(0).u32(0).str('c')],
      [P9.TXATTRWALK, (w) => w.u32(f).u32(801).str('x')],
      [P9.TVERSION, (w) => w.u32(MSIZE).str('9P2000.L')],
    ];
    for (const [type, body] of whole) {
      const w = new Writer(type, 77);
      body(w);
      const full = w.finish();
      for (let cut = 7; cut < full.length; cut++) {
        const m = Buffer.from(full.subarray(0, cut));
        m.writeUInt32LE(cut, 0); // a consistent size field for a message too short for its type
        const rep = await h.raw(m);
        assert.equal(rep.type, P9.RLERROR, `type ${type} cut at ${cut}`);
        assert.equal(rep.tag, 77);
        if (type !== P9.TWRITE || cut < 23) assert.equal(rep.errno, E.EPROTO, `type ${type} cut at ${cut}`);
      }
      if (type === P9.TVERSION) await h.mount(); // an Rlerror to a Tversion still ended the session
    }
    assert.equal(readFileSync(h.host('file'), 'utf8'), '', 'no partial write happened');
    // The size field disagreeing with the buffer.
    const g = new Writer(P9.TGETATTR, 78).u32(ROOT_FID).u64(0x7ffn).finish();
    const longer = Buffer.from(g);
    longer.writeUInt32LE(g.length + 10, 0);
    assert.equal((await h.raw(longer)).errno, E.EPROTO);
    for (const size of [0, 6, 0xffffffff]) {
      const m = Buffer.from(g);
      m.writeUInt32LE(size, 0);
      assert.equal((await h.raw(m)).errno, E.EPROTO);
    }
    // Shorter than a header: the tag is unknown, so NOTAG.
    const tiny = await h.raw(Uint8Array.of(1, 2, 3));
    assert.deepEqual([tiny.type, tiny.tag, tiny.errno], [P9.RLERROR, NOTAG, E.EPROTO]);
    // Unknown and legacy message types.
    for (const type of [0, 6, 7, 99, 112, 114, 124, 126, 255]) {
      assert.equal((await h.raw(new Writer(type, 5).u32(0).finish())).errno, E.EOPNOTSUPP, `type ${type}`);
    }
    // No room for a reply: the chain comes back with nothing written.
    for (const [msg, room] of [[g, 0], [g, 10], [new Writer(P9.TREAD, 9).u32(f).u64(0).u32(10).finish(), 10]] as const) {
      const head = h.post(msg, room);
      h.dev.queueNotify(0);
      assert.deepEqual(await h.used(1), [{ id: head, len: 0 }]);
    }
    // A reply that does not fit the room given (Rgetattr is 160 bytes): EMSGSIZE.
    assert.equal((await h.rpc(P9.TGETATTR, (w) => w.u32(ROOT_FID).u64(0x7ffn), { room: 50 })).errno, E.EMSGSIZE);
    // No readable part at all.
    const head = h.q.addChain([{ writable: 64 }]).head;
    h.dev.queueNotify(0);
    const [u] = await h.used(1);
    assert.equal(u!.id, head);
    // Random messages of every type: always a well-formed reply with the right tag.
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8);
    for (let i = 0; i < 1500; i++) {
      const type = [P9.TWALK, P9.TGETATTR, P9.TSETATTR, P9.TLOPEN, P9.TREAD, P9.TREADDIR, P9.TMKDIR, P9.TRENAMEAT, P9.TCLUNK,
        P9.TSTATFS, P9.TXATTRWALK, P9.TLOCK, P9.TUNLINKAT, P9.TLINK, P9.TFLUSH, P9.TREADLINK, P9.TFSYNC, rnd() & 0xff][rnd() % 18]!;
      const body = Buffer.alloc(rnd() % 40);
      for (let j = 0; j < body.length; j++) body[j] = rnd() & 0xff;
      // Small fids and lengths now and then, so that some requests get further.
      if (body.length >= 4 && rnd() % 2) body.writeUInt32LE(rnd() % 4 === 0 ? f : ROOT_FID, 0);
      if (body.length >= 4 && (type === P9.TCLUNK || type === P9.TUNLINKAT || type === P9.TRENAMEAT)) body.writeUInt32LE(999_999, 0);
      const m = new Writer(type, 0x100 + (i & 0xff)).bytes(body).finish();
      const rep = await h.raw(m);
      assert.equal(rep.tag, 0x100 + (i & 0xff));
      assert.ok(rep.type === P9.RLERROR || rep.type === type + 1, `type ${type} got ${rep.type}`);
    }
    // Still serving, and the share is as it was apart from what the fuzzing created.
    assert.equal((await h.getattr(ROOT_FID)).qid.type, QT.DIR);
    assert.ok(existsSync(h.host('file')));
  });
});

test('requests run concurrently and each reply carries its tag; Tflush answers after the flushed request', async () => {
  await withHarness({}, async (h) => {
    const data = Buffer.alloc(40_000, 0x5a);
    writeFileSync(h.host('f'), data);
    await h.mount();
    const f = await h.open(['f']);
    const heads = new Map<number, number>();
    for (let i = 0; i < 12; i++) {
      const w = new Writer(P9.TREAD, 1000 + i).u32(f).u64(i * 1000).u32(2000);
      heads.set(h.post(w.finish(), MSIZE, i), i);
    }
    const fl = h.post(new Writer(P9.TFLUSH, 2000).u16(1011).finish(), 64, 12);
    h.dev.queueNotify(0);
    const used = await h.used(13);
    const order = used.map((u) => u.id);
    assert.ok(order.indexOf(fl) > order.indexOf([...heads].find(([, i]) => i === 11)![0]), 'Rflush after the flushed reply');
    for (const u of used) {
      if (u.id === fl) {
        assert.equal(h.reply(u.len, 12).type, P9.RFLUSH);
        continue;
      }
      const i = heads.get(u.id)!;
      const rep = h.reply(u.len, i);
      assert.equal(rep.tag, 1000 + i);
      assert.equal(rep.r.u32(), 2000);
    }
  });
});

test('reset drops every fid and closes host files; a rebuilt device takes the share over', async () => {
  await withHarness({}, async (h) => {
    writeFileSync(h.host('f'), 'x');
    await h.mount();
    const f = await h.open(['f']);
    // Requests in flight at the reset are dropped without touching guest memory.
    h.post(new Writer(P9.TREAD, 3).u32(f).u64(0).u32(10).finish(), MSIZE, 1);
    const before = h.ram.snapshot();
    h.dev.queueNotify(0);
    h.dev.reset();
    await new Promise((r) => setTimeout(r, 50));
    const changed = h.ram.changedBytes(before).filter((a) => a < h.q.desc || a >= h.q.desc + 16 * 128);
    assert.deepEqual(changed.filter((a) => a < h.q.driver || a > h.q.driver + 4 + 2 * 128 + 2), [], 'only the descriptor table and ring written by the driver');
    const q2 = new MockSplitQueue(h.ram, 128);
    (h as unknown as { q: MockSplitQueue }).q = q2;
    h.act = activateDevice(h.dev, h.ram, [q2], VIRTIO_F_VERSION_1_BIT | h.dev.features);
    await h.fails(E.EPROTO, P9.TGETATTR, (w) => w.u32(f).u64(0x7ffn));
    await h.version();
    await h.fails(E.EBADF, P9.TREAD, (w) => w.u32(f).u64(0).u32(10));
    await h.mount();
    assert.equal((await h.read(await h.open(['f']), 0, 10)).toString(), 'x');
    // Open files are bounded.
    const fids: number[] = [];
    let err: number | undefined;
    for (let i = 0; i < MAX_OPEN + 5 && err === undefined; i++) {
      const { fid } = await h.walk(['f']);
      const rep = await h.rpc(P9.TLOPEN, (w) => w.u32(fid).u32(O_RDONLY));
      err = rep.errno;
      fids.push(fid);
    }
    assert.equal(err, E.EMFILE);
    assert.ok(fids.length >= MAX_OPEN - 2 && fids.length <= MAX_OPEN + 1);
    // Another device on the same fsdev (a rebuilt machine) closes this one's session.
    const other = new Virtio9p(h.fsdev, 'share');
    void other;
    await h.fails(E.EPROTO, P9.TREAD, (w) => w.u32(fids[0]!).u64(0).u32(10));
  });
});

test('Fsdev.open names what is wrong with the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-9p-open-'));
  try {
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(Fsdev.open({ id: 'fs0', path: join(dir, 'nope'), securityModel: 'none', readOnly: false }),
      { message: `-fsdev fs0: path '${join(dir, 'nope')}': No such file or directory` });
    await assert.rejects(Fsdev.open({ id: 'fs0', path: join(dir, 'file'), securityModel: 'none', readOnly: false }),
      { message: `-fsdev fs0: path '${join(dir, 'file')}' is not a directory` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
