/**
 * The contract between virtio devices and virtio transports (Virtio 1.2, sections 2
 * and 4): a device knows its ID, features, configuration space and what to do with
 * its queues; a transport (virtio-mmio, virtio-pci) owns the registers, feature
 * negotiation, device status and the virtqueue addresses, and hands the device
 * ready-made {@link Virtqueue}s and an interrupt when the driver sets DRIVER_OK.
 * A device never knows which transport, board or accelerator it is on.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import type { DeviceState } from '../../migration/vmstate.js';

/** Device status bits (2.1). */
export const VIRTIO_STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** Transport-level feature bits (6). */
export const VIRTIO_F_INDIRECT_DESC = 28n;
export const VIRTIO_F_EVENT_IDX = 29n;
export const VIRTIO_F_VERSION_1 = 32n;
export const VIRTIO_F_ACCESS_PLATFORM = 33n;

/** Device IDs (5). */
export const VIRTIO_ID = { NET: 1, BLOCK: 2, CONSOLE: 3, RNG: 4, NINEP: 9, INPUT: 18 } as const;

/**
 * A little-endian read of `size` (1-4) bytes at `offset` of a device's configuration
 * space; 0 outside it, so a driver's stray read never faults.
 */
export function readConfigBytes(config: Uint8Array, offset: number, size: number): number {
  if (!Number.isInteger(offset) || offset < 0 || size < 1 || size > 4 || offset + size > config.length) return 0;
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + config[offset + i]!;
  return v;
}

/** How a device tells the driver something happened. */
export interface VirtioInterrupt {
  /** A used buffer was added to queue `index` (honouring the driver's suppression wishes is the queue's job). */
  queue(index: number): void;
  /** The configuration space changed. */
  config(): void;
}

/**
 * Where a driver notifies a queue: a write of `size` bytes to guest-physical `addr`
 * (of `value` only, when given). An accelerator may catch such writes itself (KVM's
 * ioeventfd) and pass them on with the transport's notifyQueue().
 */
export interface VirtioDoorbell {
  addr: number;
  size: number;
  value?: number;
}

/** One buffer of a descriptor chain: a guest-physical range the device may read or write. */
export interface DescriptorBuffer {
  addr: number;
  len: number;
  /** True for device-writable (driver-readable) buffers. */
  writable: boolean;
}

/** A popped request: its head index (for pushUsed) and its buffers in order, readable ones first. */
export interface DescriptorChain {
  head: number;
  buffers: DescriptorBuffer[];
  /** Sum of the lengths of the readable / writable buffers. */
  readableLength: number;
  writableLength: number;
}

/** A split virtqueue (2.7) as a device uses it. */
export interface Virtqueue {
  readonly index: number;
  readonly size: number;
  /**
   * The next available chain, or null when there is none. A malformed chain (a loop,
   * more descriptors than the queue size, a buffer outside guest RAM, a readable buffer
   * after a writable one, an indirect table of bad length) puts the device in
   * DEVICE_NEEDS_RESET and returns null.
   */
  pop(): DescriptorChain | null;
  /** Returns a chain to the driver with `written` bytes written; raises the interrupt if the driver wants one. */
  pushUsed(head: number, written: number): void;
}

/** What a device gets at DRIVER_OK. */
export interface VirtioActivation {
  mem: GuestMemory;
  queues: Virtqueue[];
  interrupt: VirtioInterrupt;
  /** The features the driver accepted (device and transport bits). */
  features: bigint;
  /** Puts the device into DEVICE_NEEDS_RESET (for device-detected errors). */
  needsReset(): void;
}

/** A virtio device, independent of its transport. */
export interface VirtioDevice {
  readonly deviceId: number;
  /** Maximum size of each queue; the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Device-specific feature bits offered (the transport adds VERSION_1, EVENT_IDX, INDIRECT_DESC). */
  readonly features: bigint;
  /** Size of the device-specific configuration space in bytes. */
  readonly configSize: number;
  readConfig(offset: number, size: number): number;
  writeConfig(offset: number, size: number, value: number): void;
  /** The driver set DRIVER_OK: start serving the queues. */
  activate(a: VirtioActivation): void;
  /** The driver notified queue `index` (called on the device thread). */
  queueNotify(index: number): void;
  /** The driver reset the device: drop every reference to the queues and guest memory. */
  reset(): void;
  /**
   * Resolves once no request is in flight, for a device that completes them
   * asynchronously (the driver must not be adding requests: the vCPUs are stopped).
   */
  drain?(): Promise<void>;
  /**
   * Snapshots (QEMU's VMState): the device's state outside guest RAM and its rings. A
   * device without it makes the machine refuse snapshots. Called with nothing in flight.
   */
  saveState?(): DeviceState;
  /**
   * Checks a saveState() result (SnapshotError, nothing changed) and returns what restores
   * it into the freshly reset device, with its activation if the driver had set DRIVER_OK.
   * Unlike activate(), restoring starts nothing: no chain is popped or used and no
   * interrupt sent until the next queueNotify().
   */
  prepareLoad?(s: DeviceState): (a: VirtioActivation | null) => void;
}
