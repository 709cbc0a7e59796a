/**
 * A host directory shared with the guest (QEMU's `-fsdev local,...`): where it is, how
 * the guest's credentials are mapped, whether it is read-only, and the one place that
 * turns a guest path into a host path.
 *
 * Guest paths are lists of components (raw bytes, never containing '/', '.' or '..')
 * below the share's root, whose real path is taken once when the fsdev is opened. Before
 * touching a host path, {@link Fsdev.resolve} checks that the real path of its parent
 * directory is exactly the root plus those components: if any of them was replaced by a
 * symbolic link (to anywhere, inside or outside the share), the check fails with ELOOP.
 * The final component is then only ever used with operations that do not follow symbolic
 * links (lstat, lchown, lutimes, O_NOFOLLOW opens, rename, unlink, link, readlink).
 *
 * The check and the use are separate system calls, so they must not be interleaved with
 * a guest request that changes the name space: requests that use paths hold
 * {@link Fsdev.lock} shared, those that create, remove or rename hold it exclusively.
 * (Another host process changing the shared directory at the same moment is not
 * covered: Node has no openat(); see the README.)
 */
import { promises as fsp } from 'node:fs';
import type { FsdevOptions, SecurityModel } from '../system/options.js';
import { UserError } from '../system/options.js';
import { E, NineError } from './9p-proto.js';

/** A readers-writer lock for async sections, granted in arrival order. */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: { exclusive: boolean; go: () => void }[] = [];

  /** Runs `fn` alongside other shared holders, never during an exclusive one. */
  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(false, fn);
  }

  /** Runs `fn` alone. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(true, fn);
  }

  private async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    if (this.waiting.length > 0 || !this.canGo(exclusive)) {
      // wake() takes the lock on our behalf before resuming us.
      await new Promise<void>((go) => this.waiting.push({ exclusive, go }));
    } else if (exclusive) this.writer = true;
    else this.readers++;
    try {
      return await fn();
    } finally {
      if (exclusive) this.writer = false;
      else this.readers--;
      this.wake();
    }
  }

  private canGo(exclusive: boolean): boolean {
    return exclusive ? !this.writer && this.readers === 0 : !this.writer;
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.canGo(this.waiting[0]!.exclusive)) {
      const w = this.waiting.shift()!;
      if (w.exclusive) this.writer = true;
      else this.readers++;
      w.go();
    }
  }
}

/** Something using the share (a 9P server) that can be told to let go of it. */
export interface FsdevUser {
  close(): void;
}

const SLASH = Buffer.from('/');

/** An opened `-fsdev local` share. */
export class Fsdev {
  readonly lock = new RwLock();
  private user: FsdevUser | null = null;

  private constructor(
    readonly id: string,
    /** Real path of the shared directory (raw bytes). */
    readonly root: Buffer,
    readonly rootDev: bigint,
    readonly securityModel: SecurityModel,
    readonly readOnly: boolean,
  ) {}

  /** Checks that the directory exists and takes its real path. */
  static async open(o: FsdevOptions): Promise<Fsdev> {
    const what = `-fsdev ${o.id}`;
    let st;
    try {
      st = await fsp.stat(o.path, { bigint: true });
    } catch (err) {
      const code = (err as { code?: string }).code;
      const text = code === 'ENOENT' ? 'No such file or directory' : code === 'EACCES' ? 'Permission denied' : String(code ?? err);
      throw new UserError(`${what}: path '${o.path}': ${text}`);
    }
    if (!st.isDirectory()) throw new UserError(`${what}: path '${o.path}' is not a directory`);
    const root = await fsp.realpath(o.path, { encoding: 'buffer' });
    return new Fsdev(o.id, root, st.dev, o.securityModel, o.readOnly);
  }

  /** The host path of guest path `comps` (not checked: see {@link resolve}). */
  hostPath(comps: readonly Buffer[]): Buffer {
    if (comps.length === 0) return this.root;
    const parts: Buffer[] = [this.root];
    for (const c of comps) parts.push(SLASH, c);
    return Buffer.concat(parts);
  }

  /** Fails with ELOOP unless `comps` names a real directory of the share, reached without symbolic links. */
  async checkDir(comps: readonly Buffer[]): Promise<Buffer> {
    const host = this.hostPath(comps);
    const real = await fsp.realpath(host, { encoding: 'buffer' });
    if (!real.equals(host)) throw new NineError(E.ELOOP, 'path leaves the share or crosses a symbolic link');
    return host;
  }

  /** The host path of `comps` once its parent directory passed {@link checkDir}. */
  async resolve(comps: readonly Buffer[]): Promise<Buffer> {
    if (comps.length === 0) return this.checkDir(comps);
    await this.checkDir(comps.slice(0, -1));
    return this.hostPath(comps);
  }

  /** Makes `u` the share's only user: the previous one (a device of a machine that was rebuilt) is closed. */
  claim(u: FsdevUser): void {
    if (this.user && this.user !== u) this.user.close();
    this.user = u;
  }

  /** Closes the current user (at exit). */
  close(): void {
    this.user?.close();
    this.user = null;
  }
}
