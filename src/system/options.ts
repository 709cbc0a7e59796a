/**
 * The parsed command line: what `vl.ts` hands to the machine builder.
 * Spellings follow QEMU (`-M virt -m 512M -smp 2 -bios none -kernel ...`).
 */

/** Bad user input: printed as one line (`vireo: <message>`) with a non-zero exit, never a stack trace. */
export class UserError extends Error {}

export type BiosChoice = { kind: 'default' } | { kind: 'none' } | { kind: 'file'; path: string };
export type SerialChoice = { kind: 'stdio' } | { kind: 'file'; path: string } | { kind: 'null' };

/** An accelerator: the software CPU, or the host kernel's KVM. */
export type AccelName = 'tcg' | 'kvm';

export interface VmOptions {
  /** `virt` (RISC-V, software CPU) or `microvm` (x86_64 under KVM). */
  machine: 'virt' | 'microvm';
  /** -machine dumpdtb=FILE: write the generated device tree and exit. */
  dumpdtb?: string;
  /** Guest RAM in bytes (-m; QEMU's default is 128 MiB, Vireo's 512 MiB). */
  memBytes: number;
  /** -smp N: number of harts. */
  smp: number;
  bios: BiosChoice;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** -dtb FILE: a device tree blob to pass instead of the generated one. */
  dtb?: string;
  serial: SerialChoice;
  nographic: boolean;
  noReboot: boolean;
  /** Accelerators to try in order (QEMU's `-accel kvm:tcg`), and the TCG thread mode. */
  accel: { names: AccelName[]; thread: 'single' | 'multi' };
  /** Disk images (-drive, -blockdev), in command-line order. */
  drives: DriveOptions[];
  /** Network back ends (-netdev). */
  netdevs: NetdevOptions[];
  /** Devices (-device, plus one per `-drive if=virtio`), in command-line order. */
  devices: DeviceOptions[];
}

/** A disk image and how to open it. */
export interface DriveOptions {
  /** `id=` of -drive or `node-name=` of -blockdev. */
  id: string;
  file: string;
  /** Image format; probed when not given (as QEMU does, with a warning there). */
  format?: 'raw' | 'qcow2';
  readOnly: boolean;
  cache: 'writeback' | 'none' | 'unsafe';
}

/** A port forwarded from the host into the guest (QEMU's `hostfwd=tcp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT`). */
export interface HostForward {
  proto: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number;
  /** Empty: the guest's DHCP address. */
  guestAddr: string;
  guestPort: number;
}

/** A network back end. */
export type NetdevOptions =
  | { id: string; kind: 'user'; hostfwd: HostForward[] }
  | { id: string; kind: 'socket'; listen?: { host: string; port: number }; connect?: { host: string; port: number } };

/** Device models `-device` knows. */
export const DEVICE_DRIVERS = [
  'virtio-blk-device', 'virtio-blk-pci', 'virtio-net-device', 'virtio-net-pci',
  'virtio-rng-device', 'virtio-rng-pci', 'virtio-serial-device', 'virtio-serial-pci',
] as const;
export type DeviceDriver = (typeof DEVICE_DRIVERS)[number];

/** A device and the back end it uses. */
export interface DeviceOptions {
  driver: DeviceDriver;
  id?: string;
  /** For virtio-blk: the drive's id. */
  drive?: string;
  /** For virtio-net: the netdev's id. */
  netdev?: string;
  /** For virtio-net: the MAC address, six bytes. */
  mac?: number[];
}
