/** Messages between {@link VirtualMachine} (the page) and the worker that runs the guest (worker.ts). */

/** An image for the worker: fetched from a URL (absolute), or given as bytes. */
export type ImageRef = { url: string } | { bytes: Uint8Array<ArrayBuffer> };

/** What a machine is built from; a change applies at the next reset. */
export interface MachineSettings {
  memoryMiB: number;
  smp: number;
  /** Firmware, or null to start the kernel in M-mode (-bios none). */
  bios: ImageRef | null;
  kernel: ImageRef;
  initrd: ImageRef | null;
  append: string;
}

/**
 * `created`: nothing has run yet; `loading`: fetching the images; `running`; `stopped`:
 * paused by stop(), start() resumes; `poweroff`: the guest powered off (reset() boots it
 * again); `error`: the machine could not be built (the detail says why).
 */
export type VmState = 'created' | 'loading' | 'running' | 'stopped' | 'poweroff' | 'error';

export type ToWorker =
  | { type: 'start'; settings: MachineSettings; coreUrl: string }
  | { type: 'stop' }
  | { type: 'reset'; settings: MachineSettings }
  | { type: 'input'; data: Uint8Array }
  /** A raw disk image (or none) for the machines built from now on; it replaces the attached one. */
  | { type: 'attach-disk'; bytes: Uint8Array<ArrayBuffer> | null }
  /** Asks for the disk's bytes, answered by a `disk` message with the same id. */
  | { type: 'read-disk'; id: number };

export type FromWorker =
  | { type: 'serial'; data: Uint8Array }
  | { type: 'state'; state: VmState; detail: string }
  /** Guest instructions retired per second, over the last second. */
  | { type: 'stats'; instructionsPerSecond: number }
  /** The disk's bytes, taken with no request in flight (null: no disk). */
  | { type: 'disk'; id: number; bytes: Uint8Array<ArrayBuffer> | null };
