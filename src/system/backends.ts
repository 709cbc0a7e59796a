/**
 * Host back ends named on the command line (`-drive`/`-blockdev` images, `-netdev`
 * networks), opened once before the machine is built and kept across guest reboots,
 * and the virtio devices (`-device`) built on them.
 */
import { openBlockBackend, type BlockBackend } from '../block/block.js';
import type { NetBackend } from '../net/net.js';
import { openNetdev } from '../net/open.js';
import { VirtioBlk } from '../hw/virtio/virtio-blk.js';
import { VirtioNet } from '../hw/virtio/virtio-net.js';
import { VirtioRng } from '../hw/virtio/virtio-rng.js';
import type { VirtioDevice } from '../hw/virtio/virtio.js';
import type { DeviceOptions, VmOptions } from './options.js';

/** The opened back ends, by id. */
export interface Backends {
  drives: Map<string, BlockBackend>;
  netdevs: Map<string, NetBackend>;
}

/** Opens every -drive/-blockdev image and -netdev network; on failure closes what was opened. */
export async function openBackends(opts: VmOptions): Promise<Backends> {
  const b: Backends = { drives: new Map(), netdevs: new Map() };
  try {
    for (const d of opts.drives) b.drives.set(d.id, await openBlockBackend(d));
    for (const n of opts.netdevs) b.netdevs.set(n.id, await openNetdev(n));
  } catch (err) {
    await closeBackends(b);
    throw err;
  }
  return b;
}

/** Flushes and closes images, shuts networks down. */
export async function closeBackends(b: Backends): Promise<void> {
  for (const d of b.drives.values()) await d.close();
  for (const n of b.netdevs.values()) n.close();
  b.drives.clear();
  b.netdevs.clear();
}

/** A virtio device as the transport sees it, and whether it goes on PCI or virtio-mmio. */
export interface PlannedDevice {
  device: VirtioDevice;
  pci: boolean;
}

/** Builds the virtio devices for `-device` options (the back ends were checked by the command line). */
export function createVirtioDevices(devices: readonly DeviceOptions[], b: Backends): PlannedDevice[] {
  return devices.map((d) => {
    const pci = d.driver.endsWith('-pci');
    let device: VirtioDevice;
    if (d.driver.startsWith('virtio-blk')) device = new VirtioBlk(b.drives.get(d.drive!)!, { serial: d.id ?? d.drive });
    else if (d.driver.startsWith('virtio-net')) device = new VirtioNet(b.netdevs.get(d.netdev!)!, d.mac ? Uint8Array.from(d.mac) : undefined);
    else if (d.driver.startsWith('virtio-rng')) device = new VirtioRng();
    else throw new Error(`${d.driver}: no device model (the board should have refused it)`);
    return { device, pci };
  });
}
