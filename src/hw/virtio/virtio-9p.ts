/**
 * virtio-9p (Virtio 1.2, section 5.11 "File system device" of earlier drafts; QEMU's
 * virtio-9p-device / virtio-9p-pci): a host directory shared with the guest over the
 * 9P2000.L protocol, served by {@link NinePServer}.
 *
 * One request queue. Each chain is a request (the device-readable buffers, one 9P
 * message) and room for its reply (the device-writable buffers). The configuration
 * space is the mount tag: tag_len (u16) then the tag's bytes, offered with feature
 * VIRTIO_9P_MOUNT_TAG; the guest mounts with `mount -t 9p -o trans=virtio TAG DIR`.
 *
 * Requests run concurrently and complete in any order (the reply names its tag). The
 * message is copied out of guest memory when the chain is popped and the reply copied
 * in on completion; as in virtio-blk, a completion from before a reset only drops its
 * reply, and a newly activated device waits for the previous generation's requests to
 * finish before serving, so no stale reply or host write lands after a reset. A chain
 * too short to hold a reply is returned with nothing written.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import type { Fsdev } from '../../fsdev/fsdev.js';
import { MAX_MSIZE, NinePServer } from '../../fsdev/9p-server.js';
import { MAX_TAG_LEN } from '../../fsdev/9p-proto.js';
import { VIRTIO_ID, readConfigBytes, type DescriptorBuffer, type DescriptorChain, type Virtqueue, type VirtioActivation, type VirtioDevice } from './virtio.js';

/** Feature bit: the configuration space holds a mount tag. */
export const VIRTIO_9P_MOUNT_TAG = 0n;
const QUEUE_SIZE = 128;

/** Copies up to `len` bytes of the concatenated buffers out of guest memory; null if RAM refuses. */
function gather(mem: GuestMemory, bufs: DescriptorBuffer[], len: number): Uint8Array | null {
  const out = new Uint8Array(len);
  let done = 0;
  for (const b of bufs) {
    const n = Math.min(b.len, len - done);
    if (n === 0) break;
    if (!mem.read(b.addr, out.subarray(done, done + n))) return null;
    done += n;
  }
  return out;
}

/** Copies `data` into the concatenated buffers; false if RAM refuses. */
function scatter(mem: GuestMemory, bufs: DescriptorBuffer[], data: Uint8Array): boolean {
  let done = 0;
  for (const b of bufs) {
    const n = Math.min(b.len, data.length - done);
    if (n === 0) break;
    if (!mem.write(b.addr, data.subarray(done, done + n))) return false;
    done += n;
  }
  return done === data.length;
}

/** A 9P file system device. */
export class Virtio9p implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.NINEP;
  readonly queueMaxSizes = [QUEUE_SIZE] as const;
  readonly features = 1n << VIRTIO_9P_MOUNT_TAG;
  readonly configSize: number;
  private readonly config: Uint8Array;
  private readonly server: NinePServer;
  private act: VirtioActivation | undefined;
  private gen = 0;
  private inflight = 0;
  /** Requests of earlier generations still running. */
  private stale = 0;

  constructor(fsdev: Fsdev, tag: string) {
    const t = Buffer.from(tag);
    if (t.length === 0 || t.length > MAX_TAG_LEN) throw new RangeError(`virtio-9p: mount tag of ${t.length} bytes`);
    this.configSize = 2 + t.length;
    this.config = new Uint8Array(this.configSize);
    new DataView(this.config.buffer).setUint16(0, t.length, true);
    this.config.set(t, 2);
    this.server = new NinePServer(fsdev);
  }

  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }

  writeConfig(_offset: number, _size: number, _value: number): void {
    // Read-only.
  }

  activate(a: VirtioActivation): void {
    if (this.act) this.reset();
    this.act = a;
    this.kick();
  }

  queueNotify(index: number): void {
    if (index === 0) this.kick();
  }

  reset(): void {
    this.gen++;
    this.stale += this.inflight;
    this.inflight = 0;
    this.act = undefined;
    // Every fid goes and every host file is closed; the driver starts again with Tversion.
    this.server.reset();
  }

  private kick(): void {
    const act = this.act;
    if (!act || this.stale > 0) return;
    const q = act.queues[0];
    if (!q) return;
    for (let chain = q.pop(); chain; chain = q.pop()) this.start(act, q, chain);
  }

  private start(act: VirtioActivation, q: Virtqueue, chain: DescriptorChain): void {
    const readable = chain.buffers.filter((b) => !b.writable);
    const writable = chain.buffers.filter((b) => b.writable);
    // Only as much as the size field claims (the server checks it against what was there),
    // and never more than the largest msize.
    const head = gather(act.mem, readable, Math.min(chain.readableLength, 4));
    const claimed = head && head.length === 4 ? new DataView(head.buffer).getUint32(0, true) : 0;
    const msg = head && gather(act.mem, readable, Math.min(chain.readableLength, MAX_MSIZE, Math.max(claimed, 7)));
    if (!msg) {
      q.pushUsed(chain.head, 0);
      return;
    }
    const gen = this.gen;
    this.inflight++;
    const done = this.server.handle(msg, chain.writableLength).catch(() => new Uint8Array(0));
    void done.then((reply) => {
      if (gen !== this.gen) {
        if (--this.stale === 0) this.kick();
        return;
      }
      this.inflight--;
      const ok = reply.length <= chain.writableLength && scatter(act.mem, writable, reply);
      q.pushUsed(chain.head, ok ? reply.length : 0);
    });
  }
}
