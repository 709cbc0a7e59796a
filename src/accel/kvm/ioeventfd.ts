/**
 * Virtqueue doorbells caught by KVM (ioeventfd): the guest's notify write completes in the
 * kernel, which signals an eventfd and resumes the vCPU at once; the poller thread then
 * runs the doorbell's handler on the device thread. A kick thus costs no vCPU exit and no
 * round trip through the exit channel. A doorbell can move (a virtio-pci BAR being
 * reprogrammed) or be lifted (the BAR stops decoding); its eventfd stays the same.
 */
import { closeFd, eventfd, EFD_CLOEXEC, EFD_NONBLOCK, SysError, type KvmVm } from './kvm.js';
import { EventfdPoller } from './eventfd-poller.js';
import type { VirtioDoorbell } from '../../hw/virtio/virtio.js';

/** One doorbell: an eventfd and where in guest memory KVM listens for it. */
export class KvmDoorbell {
  private at: VirtioDoorbell | null = null;

  constructor(private readonly vm: KvmVm, readonly fd: number) {}

  /**
   * Listens at `bell` instead of the current place (null: nowhere). Where KVM refuses (the
   * guest put two BARs on one address), the write keeps exiting and is handled as usual.
   */
  move(bell: VirtioDoorbell | null): void {
    const old = this.at;
    if (old === bell || (old && bell && old.addr === bell.addr && old.size === bell.size && old.value === bell.value)) return;
    if (old) this.vm.unregisterIoeventfd(this.fd, old.addr, old.size, { datamatch: old.value });
    this.at = null;
    if (!bell) return;
    try {
      this.vm.registerIoeventfd(this.fd, bell.addr, bell.size, { datamatch: bell.value });
      this.at = bell;
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
    }
  }
}

/** The doorbells of one VM and the thread that hears them. */
export class KvmDoorbells {
  private readonly poller = new EventfdPoller();
  private readonly bells: KvmDoorbell[] = [];

  constructor(private readonly vm: KvmVm) {}

  /** A new doorbell that runs `ring` when the guest writes to it; place it with {@link KvmDoorbell.move}. */
  create(ring: () => void): KvmDoorbell {
    const bell = new KvmDoorbell(this.vm, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    this.bells.push(bell);
    this.poller.add(bell.fd, ring);
    return bell;
  }

  /** Stops the poller thread and closes the eventfds (after the vCPUs stopped). */
  async close(): Promise<void> {
    await this.poller.close();
    for (const b of this.bells) closeFd(b.fd);
    this.bells.length = 0;
  }
}
