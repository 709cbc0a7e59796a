/**
 * The parsed command line: what `vl.ts` hands to the machine builder.
 * Spellings follow QEMU (`-M virt -m 512M -smp 2 -bios none -kernel ...`).
 */

/** Bad user input: printed as one line (`vireo: <message>`) with a non-zero exit, never a stack trace. */
export class UserError extends Error {}

export type BiosChoice = { kind: 'default' } | { kind: 'none' } | { kind: 'file'; path: string };
export type SerialChoice = { kind: 'stdio' } | { kind: 'file'; path: string } | { kind: 'null' }
  /** `-serial chardev:ID` (and `-serial tcp:`/`unix:`/`pipe:`, which add a -chardev named serial0). */
  | { kind: 'chardev'; id: string };

/** A socket address: TCP (`host=`/`port=`, `addr.type=inet`) or a Unix socket path (`path=`, `addr.type=unix`). */
export type SocketAddr = { type: 'inet'; host: string; port: number } | { type: 'unix'; path: string };

/** A host character device (`-chardev BACKEND,id=ID,...`), for one frontend (-serial chardev:ID or a virtio-serial port). */
export type ChardevOptions =
  /** signal: Ctrl-C at a terminal quits; mux: the Ctrl-A escape keys (C-a x quits). */
  | { id: string; kind: 'stdio'; signal: boolean; mux: boolean }
  | { id: string; kind: 'file'; path: string; append: boolean }
  | { id: string; kind: 'null' }
  /** PATH.in and PATH.out if both exist, else PATH for both directions (named pipes). */
  | { id: string; kind: 'pipe'; path: string }
  /** server: listen and serve one client at a time; wait: do not start the guest before the first client. */
  | { id: string; kind: 'socket'; addr: SocketAddr; server: boolean; wait: boolean };

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
  /**
   * Accelerators to try in order (QEMU's `-accel kvm:tcg`), the TCG thread mode, and
   * `jit=on|off` (translate hot RISC-V code to WebAssembly; absent: VIREO_JIT=1 turns it on).
   */
  accel: { names: AccelName[]; thread: 'single' | 'multi'; jit?: boolean };
  /** Disk images (-drive, -blockdev), in command-line order. */
  drives: DriveOptions[];
  /** Network back ends (-netdev). */
  netdevs: NetdevOptions[];
  /** Shared host directories (-fsdev, -virtfs); absent means none. */
  fsdevs?: FsdevOptions[];
  /** Character devices (-chardev), in command-line order; absent means none. */
  chardevs?: ChardevOptions[];
  /** Devices (-device, plus one per `-drive if=virtio`), in command-line order. */
  devices: DeviceOptions[];
  /** Monitors (-qmp, -monitor, -mon, and the one -nographic puts on the serial terminal); absent means none. */
  monitors?: MonitorOptions[];
  /** -S: start with the vCPUs stopped (run state prelaunch) until `cont`. */
  startPaused?: boolean;
  /** -name NAME: the VM's name (query-name). */
  name?: string;
  /** -gdb tcp:[HOST]:PORT or -s: where the gdbstub listens; `what` is the option as given, for messages. */
  gdb?: { addr: SocketAddr; what: string };
  /** -snapshot-file PATH: where savevm/loadvm keep their snapshots. */
  snapshotFile?: string;
  /** -loadvm NAME: start from this snapshot instead of booting. */
  loadvm?: string;
  /** -incoming URI|defer: wait for a live migration (docs/migration.md) instead of booting. */
  incoming?: string;
}

/**
 * A monitor: QMP (`control`) or HMP (`readline`) on a -chardev (`chardev`), or on the
 * serial port's terminal, reached with C-a c (`chardev: null`).
 */
export interface MonitorOptions {
  mode: 'control' | 'readline';
  chardev: string | null;
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
  | { id: string; kind: 'socket'; listen?: { host: string; port: number }; connect?: { host: string; port: number } }
  /** `-netdev stream` (QEMU 7.2): a TCP or Unix stream socket, frames with a 4-byte big-endian length. */
  | { id: string; kind: 'stream'; server: boolean; addr: SocketAddr }
  /** `-netdev dgram` (and `-netdev socket,udp=,localaddr=`): one frame per UDP datagram. */
  | { id: string; kind: 'dgram'; local: { host: string; port: number }; remote: { host: string; port: number } };

/** How guest file ownership and modes map onto the host (QEMU's `security_model=`). */
export const SECURITY_MODELS = ['passthrough', 'mapped-xattr', 'mapped-file', 'none'] as const;
export type SecurityModel = (typeof SECURITY_MODELS)[number];

/** A host directory shared with the guest over 9P (`-fsdev local,...`). */
export interface FsdevOptions {
  id: string;
  path: string;
  securityModel: SecurityModel;
  readOnly: boolean;
}

/** Device models `-device` knows. */
export const DEVICE_DRIVERS = [
  'virtio-blk-device', 'virtio-blk-pci', 'virtio-net-device', 'virtio-net-pci',
  'virtio-rng-device', 'virtio-rng-pci', 'virtio-serial-device', 'virtio-serial-pci', 'virtconsole', 'virtserialport',
  'virtio-9p-device', 'virtio-9p-pci',
  'virtio-keyboard-device', 'virtio-keyboard-pci', 'virtio-mouse-device', 'virtio-mouse-pci', 'virtio-tablet-device', 'virtio-tablet-pci',
  'simple-framebuffer',
] as const;
export type DeviceDriver = (typeof DEVICE_DRIVERS)[number];

/** A device and the back end it uses. */
export interface DeviceOptions {
  driver: DeviceDriver;
  id?: string;
  /** For virtio-blk: the drive's id. */
  drive?: string;
  /** For virtio-blk: queue-size= (a power of two, 4 to 1024). */
  queueSize?: number;
  /** For virtio-net: the netdev's id. */
  netdev?: string;
  /** For virtio-net: the MAC address, six bytes. */
  mac?: number[];
  /** For virtio-9p: the fsdev's id and the tag the guest mounts. */
  fsdev?: string;
  mountTag?: string;
  /** For virtio-serial: the number of ports (max_ports=, default 31; 1 means no MULTIPORT). */
  maxPorts?: number;
  /** For virtconsole/virtserialport: the chardev's id (none: a port with nothing behind it). */
  chardev?: string;
  /** For virtconsole/virtserialport: the port's name, as the guest sees it. */
  name?: string;
  /** For virtconsole/virtserialport: the port number (nr=; assigned as QEMU does when not given). */
  nr?: number;
  /** For virtconsole/virtserialport: bus= as given (`ID.0` of a virtio-serial device). */
  bus?: string;
  /** For virtconsole/virtserialport: the index in `devices` of its virtio-serial device (set by the cross-checks). */
  serialBus?: number;
  /** For virtio-keyboard/-mouse/-tablet: serial= (the guest's ID_SERIAL). */
  serial?: string;
  /** For simple-framebuffer: its size in pixels. */
  width?: number;
  height?: number;
}
