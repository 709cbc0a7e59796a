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
}
