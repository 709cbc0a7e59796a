/**
 * virtio entropy device (Virtio 1.2, section 5.4): one request queue whose
 * device-writable buffers the device fills with random bytes from the host's CSPRNG.
 * No feature bits, no configuration space, and no state of its own for snapshots: each
 * request is served when it is notified.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import { VIRTIO_ID, type VirtioActivation, type VirtioDevice, type Virtqueue } from './virtio.js';
import type { DeviceState } from '../../migration/vmstate.js';

/**
 * Bytes filled per request at most: a huge buffer gets a short fill (the driver sees the length) instead of stalling the host.
 * Also the most crypto.getRandomValues() fills in one call.
 */
export const VIRTIO_RNG_MAX_REQUEST = 64 * 1024;

/** The entropy device (device ID 4). */
export class VirtioRng implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.RNG;
  readonly queueMaxSizes = [256] as const;
  readonly features = 0n;
  readonly configSize = 0;
  private mem: GuestMemory | null = null;
  private queue: Virtqueue | null = null;
  private readonly scratch = new Uint8Array(VIRTIO_RNG_MAX_REQUEST);

  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  activate(a: VirtioActivation): void {
    this.mem = a.mem;
    this.queue = a.queues[0]!;
  }

  queueNotify(index: number): void {
    const { mem, queue } = this;
    if (index !== 0 || !mem || !queue) return;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      let written = 0;
      for (const b of chain.buffers) {
        const n = Math.min(b.len, VIRTIO_RNG_MAX_REQUEST - written);
        if (!b.writable || n === 0) continue;
        const v = mem.view(b.addr, n);
        if (!v) break;
        // Filled apart, then copied: browsers refuse getRandomValues() on shared memory (the guest's RAM is).
        // Web Crypto: node:crypto would load at start-up (~3 ms).
        v.set(crypto.getRandomValues(this.scratch.subarray(0, n)));
        mem.markDirty(b.addr, n);
        written += n;
      }
      queue.pushUsed(chain.head, written);
    }
  }

  reset(): void {
    this.mem = null;
    this.queue = null;
  }

  saveState(): DeviceState {
    return {};
  }

  prepareLoad(): (a: VirtioActivation | null) => void {
    return (a) => {
      if (a) this.activate(a);
    };
  }
}
