/**
 * Picks the board for the parsed options and runs it: the RISC-V `virt` board on the
 * software CPU, or the x86_64 `microvm` board under KVM. Each board is loaded only
 * when chosen, so that the RISC-V path never loads the KVM binding.
 */
import { UserError, type DeviceDriver, type VmOptions } from './options.js';

/** Which -device models each board can build so far. */
const BOARD_DEVICES: Record<VmOptions['machine'], readonly DeviceDriver[]> = {
  virt: ['virtio-blk-device', 'virtio-blk-pci', 'virtio-net-device', 'virtio-net-pci', 'virtio-rng-device', 'virtio-rng-pci',
    'virtio-serial-device', 'virtio-serial-pci', 'virtconsole', 'virtserialport', 'virtio-9p-device', 'virtio-9p-pci',
    'virtio-keyboard-device', 'virtio-keyboard-pci', 'virtio-mouse-device', 'virtio-mouse-pci', 'virtio-tablet-device', 'virtio-tablet-pci',
    'simple-framebuffer'],
  microvm: ['virtio-blk-device', 'virtio-blk-pci', 'virtio-net-device', 'virtio-net-pci', 'virtio-rng-device', 'virtio-rng-pci',
    'virtio-serial-device', 'virtio-serial-pci', 'virtconsole', 'virtserialport', 'virtio-9p-device', 'virtio-9p-pci'],
};

/** Builds and runs the machine; resolves to the process exit status. */
export async function runMachine(opts: VmOptions): Promise<number> {
  for (const d of opts.devices) {
    if (!BOARD_DEVICES[opts.machine].includes(d.driver)) throw new UserError(`-device ${d.driver}: not available on the ${opts.machine} machine yet`);
  }
  if (opts.machine === 'microvm' && opts.gdb !== undefined) throw new UserError(`${opts.gdb.what}: the gdbstub is only available on the virt machine`);
  if (opts.machine === 'microvm' && opts.snapshotFile !== undefined) throw new UserError('-snapshot-file: snapshots are only available on the virt machine');
  if (opts.machine === 'microvm' && opts.incoming !== undefined) throw new UserError('-incoming: live migration is only available on the virt machine');
  if (opts.machine === 'microvm') return (await import('../hw/i386/microvm.js')).runMicrovm(opts);
  return (await import('../hw/riscv/virt-run.js')).runMachine(opts);
}
