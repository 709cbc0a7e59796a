/**
 * Host back ends named on the command line (`-drive`/`-blockdev` images, `-netdev`
 * networks, `-chardev` character devices), opened once before the machine is built and
 * kept across guest reboots, and the virtio devices (`-device`) built on them.
 */
import { openBlockBackend, type BlockBackend } from '../block/block.js';
import { ReopenableBackend } from '../block/reopen.js';
import type { NetBackend } from '../net/net.js';
import { openNetdev } from '../net/open.js';
import { VirtioBlk } from '../hw/virtio/virtio-blk.js';
import { VirtioNet } from '../hw/virtio/virtio-net.js';
import { VirtioRng } from '../hw/virtio/virtio-rng.js';
import { VirtioInput, virtioInputKind } from '../hw/virtio/virtio-input.js';
import { VirtioSerial, VIRTIO_SERIAL_DEFAULT_PORTS } from '../hw/virtio/virtio-console.js';
import type { Chardev } from '../chardev/chardev.js';
import { openChardevs, closeChardevs } from '../chardev/open.js';
import type { VirtioDevice } from '../hw/virtio/virtio.js';
import { Virtio9p } from '../hw/virtio/virtio-9p.js';
import { Fsdev } from '../fsdev/fsdev.js';
import type { DeviceOptions, VmOptions } from './options.js';

/** The opened back ends, by id. */
export interface Backends {
  drives: Map<string, BlockBackend>;
  netdevs: Map<string, NetBackend>;
  chardevs: Map<string, Chardev>;
  /** Shared directories (-fsdev, -virtfs). */
  fsdevs: Map<string, Fsdev>;
}

/** Opens every -drive/-blockdev image and -netdev network; on failure closes what was opened. */
export async function openBackends(opts: VmOptions): Promise<Backends> {
  const b: Backends = { drives: new Map(), netdevs: new Map(), chardevs: new Map(), fsdevs: new Map() };
  try {
    for (const f of opts.fsdevs ?? []) b.fsdevs.set(f.id, await Fsdev.open(f));
    // A migration destination opens its images again once the source has stopped writing them.
    for (const d of opts.drives) b.drives.set(d.id, opts.incoming !== undefined ? await ReopenableBackend.open(d) : await openBlockBackend(d));
    for (const n of opts.netdevs) b.netdevs.set(n.id, await openNetdev(n));
    // Last: a socket with wait=on holds the start here, and a stdio chardev makes the terminal raw.
    b.chardevs = await openChardevs(opts);
  } catch (err) {
    await closeBackends(b);
    throw err;
  }
  return b;
}

/** Flushes every image (a live migration's source, before the destination takes them over). */
export async function flushDrives(b: Backends): Promise<void> {
  for (const d of b.drives.values()) await d.flush();
}

/** Opens the images of a live migration's destination again, now that the source has stopped writing them. */
export async function reopenDrives(b: Backends): Promise<void> {
  for (const d of b.drives.values()) if (d instanceof ReopenableBackend) await d.reopen();
}

/** Flushes and closes images, shuts networks down, closes character devices. */
export async function closeBackends(b: Backends): Promise<void> {
  closeChardevs(b.chardevs);
  for (const d of b.drives.values()) await d.close();
  for (const n of b.netdevs.values()) n.close();
  for (const f of b.fsdevs.values()) f.close();
  b.drives.clear();
  b.netdevs.clear();
  b.fsdevs.clear();
}

/** A virtio device as the transport sees it, and whether it goes on PCI or virtio-mmio. */
export interface PlannedDevice {
  device: VirtioDevice;
  pci: boolean;
}

/**
 * Builds the virtio devices for `-device` options (the back ends were checked by the
 * command line). Ports (virtconsole, virtserialport) are not devices of their own: each
 * goes on the virtio-serial device the command line resolved its bus to.
 */
export function createVirtioDevices(devices: readonly DeviceOptions[], b: Backends): PlannedDevice[] {
  const planned: PlannedDevice[] = [];
  devices.forEach((d, index) => {
    // Ports go on their virtio-serial device; the framebuffer is the board's.
    if (d.driver === 'virtconsole' || d.driver === 'virtserialport' || d.driver === 'simple-framebuffer') return;
    const pci = d.driver.endsWith('-pci');
    const inputKind = virtioInputKind(d.driver);
    let device: VirtioDevice;
    if (d.driver.startsWith('virtio-blk')) device = new VirtioBlk(b.drives.get(d.drive!)!, { serial: d.id ?? d.drive, queueSize: d.queueSize });
    else if (d.driver.startsWith('virtio-net')) device = new VirtioNet(b.netdevs.get(d.netdev!)!, d.mac ? Uint8Array.from(d.mac) : undefined);
    else if (d.driver.startsWith('virtio-rng')) device = new VirtioRng();
    else if (d.driver.startsWith('virtio-9p')) device = new Virtio9p(b.fsdevs.get(d.fsdev!)!, d.mountTag!);
    else if (inputKind) device = new VirtioInput(inputKind, d.serial);
    else if (d.driver.startsWith('virtio-serial')) {
      const ports = devices.filter((p) => p.serialBus === index).map((p) => ({
        id: p.nr!,
        chr: p.chardev !== undefined ? b.chardevs.get(p.chardev)! : null,
        console: p.driver === 'virtconsole',
        name: p.name,
      }));
      device = new VirtioSerial({ maxPorts: d.maxPorts ?? VIRTIO_SERIAL_DEFAULT_PORTS, ports });
    } else throw new Error(`${d.driver}: no device model (the board should have refused it)`);
    planned.push({ device, pci });
  });
  return planned;
}
