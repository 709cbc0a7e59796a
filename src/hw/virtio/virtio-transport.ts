/**
 * The device life cycle shared by the virtio transports (Virtio 1.2, sections 2.1, 2.2,
 * 3.1 and 4): device status, feature negotiation, queue configuration and activation.
 * virtio-mmio (4.2) and virtio-pci (4.1) differ only in where these registers sit and
 * in how an interrupt reaches the driver, so each keeps its register layout and hands
 * the rest to a {@link VirtioTransportCore}.
 *
 * The rules: status bits only accumulate until a reset (status 0); features not offered
 * or a missing VERSION_1 leave FEATURES_OK clear (3.1.1) and the driver's features are
 * frozen once it is set; queue registers are frozen while the queue is enabled or the
 * device is live; at DRIVER_OK every enabled queue's layout is checked and the device
 * activated with {@link SplitVirtqueue}s. DRIVER_OK without FEATURES_OK, a bad layout, a
 * malformed ring or a device-detected error put the device in DEVICE_NEEDS_RESET, with
 * a configuration change interrupt once DRIVER_OK is set (2.1.2). A reset detaches the
 * queues, so completions that arrive after it touch neither guest memory nor registers.
 *
 * Snapshots (QEMU's virtio_save/virtio_load): the registers, each queue's layout, where
 * the device is in the rings of a live device, and the device's own state. A live device
 * is saved holding no chain (its requests drained), so none is lost; loading makes it live
 * again on the saved rings without sending anything, then notifies it of every enabled
 * queue once the load is over, as a driver's kick would, to serve what is waiting.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import {
  VIRTIO_STATUS, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
  type VirtioActivation, type VirtioDevice, type VirtioInterrupt, type Virtqueue,
} from './virtio.js';
import {
  SplitVirtqueue, DisabledVirtqueue, splitQueueLayoutError, splitQueuePositionError, type SplitQueueLayout, type SplitQueuePosition,
} from './virtqueue.js';
import {
  SnapshotError, arrayField, bigField, boolField, intField, stateField, stringField, type DeviceState,
} from '../../migration/vmstate.js';

/** Transport features offered on top of the device's own. */
const TRANSPORT_FEATURES = (1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_F_EVENT_IDX) | (1n << VIRTIO_F_INDIRECT_DESC);

/** The three areas of a split queue, each addressed by two 32-bit halves. */
export type QueueArea = 'desc' | 'driver' | 'device';

/** The driver's view of one queue, as written through the transport's queue registers. */
export interface QueueConfig {
  size: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
}

/** What the core needs from its transport: the two interrupts and the transport's own reset. */
export interface VirtioTransportHooks {
  /** A used buffer was added to queue `index` while the device is live. */
  queueInterrupt(index: number): void;
  /** The configuration changed (or the device needs a reset) and DRIVER_OK is set. */
  configInterrupt(): void;
  /** The device was reset: clear the transport's own state (interrupt status, vectors). */
  reset(): void;
}

/** The per-activation objects handed to the device; dead after a reset, so stale calls do nothing. */
interface Live {
  queues: Virtqueue[];
  alive: boolean;
}

const addr64 = ([lo, hi]: [number, number]) => hi * 2 ** 32 + lo;

/** A 32-bit window (select 0 or 1) onto 64 feature bits; higher selects read as 0. */
const featureWindow = (features: bigint, select: number) =>
  select < 2 ? Number((features >> BigInt(32 * select)) & 0xffffffffn) : 0;

/** Status, features, queue configuration and activation of one virtio device on some transport. */
export class VirtioTransportCore {
  /** Device and transport features offered to the driver. */
  readonly offered: bigint;
  /** Which 32 bits of the offered / driver features the feature registers show. */
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  /** The queue the queue registers address. */
  queueSelect = 0;
  private driverFeatures = 0n;
  private queues: QueueConfig[] = [];
  private statusBits = 0;
  private generation = 0;
  private live: Live | null = null;
  private error: string | null = null;

  constructor(readonly device: VirtioDevice, private readonly mem: GuestMemory, private readonly hooks: VirtioTransportHooks) {
    this.offered = device.features | TRANSPORT_FEATURES;
    this.resetState();
  }

  /** The device status byte (2.1). */
  get status(): number {
    return this.statusBits;
  }

  /** Bumped on every configuration change (2.5.1); transports show as many bits as their register has. */
  get configGeneration(): number {
    return this.generation;
  }

  /** Why the device entered DEVICE_NEEDS_RESET (null if it has not since the last reset). */
  get needsResetReason(): string | null {
    return this.error;
  }

  get queueCount(): number {
    return this.queues.length;
  }

  /** Queue `index`'s configuration, or undefined if the device has no such queue. */
  queue(index: number): Readonly<QueueConfig> | undefined {
    return this.queues[index];
  }

  /** The selected 32 bits of the offered features. */
  deviceFeatureWindow(): number {
    return featureWindow(this.offered, this.deviceFeatureSelect);
  }

  /** The selected 32 bits of the driver's features. */
  driverFeatureWindow(): number {
    return featureWindow(this.driverFeatures, this.driverFeatureSelect);
  }

  writeDriverFeatures(v: number): void {
    // Frozen once FEATURES_OK is accepted (3.1.1 step 5); only 64 feature bits exist.
    if (this.statusBits & VIRTIO_STATUS.FEATURES_OK || this.driverFeatureSelect > 1) return;
    const shift = BigInt(32 * this.driverFeatureSelect);
    this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(v) << shift);
  }

  /** Enables or disables the selected queue; ignored once DRIVER_OK is set. */
  setQueueReady(ready: boolean): void {
    const q = this.queues[this.queueSelect];
    if (q && !(this.statusBits & VIRTIO_STATUS.DRIVER_OK)) q.ready = ready;
  }

  /** Sets the selected queue's size; ignored while the queue is enabled or DRIVER_OK is set. */
  setQueueSize(size: number): void {
    const q = this.configurableQueue();
    if (q) q.size = size;
  }

  /** Sets half (0 low, 1 high) of an area's address of the selected queue, under the same rule. */
  setQueueAddress(area: QueueArea, half: 0 | 1, v: number): void {
    const q = this.configurableQueue();
    if (q) q[area][half] = v;
  }

  private configurableQueue(): QueueConfig | null {
    const q = this.queues[this.queueSelect];
    return q && !(this.statusBits & VIRTIO_STATUS.DRIVER_OK) && !q.ready ? q : null;
  }

  /** A driver write of the device status: 0 resets, other bits accumulate (2.1). */
  writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    // Bits only accumulate until a reset; DEVICE_NEEDS_RESET belongs to the device.
    const requested = v & ~this.statusBits & ~VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    let add = requested & ~VIRTIO_STATUS.FEATURES_OK;
    if (requested & VIRTIO_STATUS.FEATURES_OK && this.featuresAcceptable()) add |= VIRTIO_STATUS.FEATURES_OK;
    this.statusBits |= add;
    if (requested & VIRTIO_STATUS.DRIVER_OK) this.activate();
  }

  /** The driver notified queue `index`: passed on if the device is live and the queue enabled. */
  notify(index: number): void {
    if (this.live && this.queues[index]?.ready) this.device.queueNotify(index);
  }

  /** Only offered features, and VERSION_1 among them: this is a modern-only device (6.1). */
  private featuresAcceptable(features = this.driverFeatures): boolean {
    return (features & ~this.offered) === 0n && (features >> VIRTIO_F_VERSION_1 & 1n) === 1n;
  }

  private activate(): void {
    if (!(this.statusBits & VIRTIO_STATUS.FEATURES_OK)) {
      this.setNeedsReset('DRIVER_OK without FEATURES_OK');
      return;
    }
    for (const [i, q] of this.queues.entries()) {
      if (!q.ready) continue;
      const err = splitQueueLayoutError(this.mem, layout(q), this.device.queueMaxSizes[i]);
      if (err) {
        this.setNeedsReset(`queue ${i}: ${err}`);
        return;
      }
    }
    this.device.activate(this.goLive());
  }

  /**
   * Makes the device live on the enabled queues (their layouts checked), continuing at
   * `positions` when restoring a snapshot; returns the activation to hand the device.
   */
  private goLive(positions: readonly (SplitQueuePosition | undefined)[] = []): VirtioActivation {
    const live: Live = { queues: [], alive: true };
    const features = this.driverFeatures;
    live.queues = this.queues.map((q, i) => q.ready
      ? new SplitVirtqueue(this.mem, i, layout(q), features, {
        interrupt: () => {
          if (live.alive) this.hooks.queueInterrupt(i);
        },
        malformed: (reason) => {
          if (live.alive) this.setNeedsReset(reason);
        },
      }, positions[i])
      : new DisabledVirtqueue(i));
    const interrupt: VirtioInterrupt = {
      queue: (i) => {
        if (live.alive) this.hooks.queueInterrupt(i);
      },
      config: () => {
        if (live.alive) this.configChanged();
      },
    };
    this.live = live;
    return {
      mem: this.mem,
      queues: live.queues,
      interrupt,
      features,
      needsReset: () => {
        if (live.alive) this.setNeedsReset('reported by the device');
      },
    };
  }

  private setNeedsReset(reason: string): void {
    if (this.statusBits & VIRTIO_STATUS.DEVICE_NEEDS_RESET) return;
    this.error = reason;
    this.statusBits |= VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    this.configChanged();
  }

  /** A configuration change: a new generation, and the interrupt once the driver is ready for it. */
  private configChanged(): void {
    this.generation = (this.generation + 1) >>> 0;
    if (this.statusBits & VIRTIO_STATUS.DRIVER_OK) this.hooks.configInterrupt();
  }

  /** Device reset: the device drops its queues, which stop touching guest memory. */
  private reset(): void {
    this.detach();
    this.device.reset();
    this.resetState();
    this.hooks.reset();
  }

  private detach(): void {
    if (!this.live) return;
    this.live.alive = false;
    for (const q of this.live.queues) if (q instanceof SplitVirtqueue) q.detach();
    this.live = null;
  }

  /**
   * The state outside guest RAM. A live device must hold no chain (the machine drained
   * its requests) unless it needs a reset anyway: the restored device would not know it.
   */
  saveState(): DeviceState {
    const live = this.live;
    const positions = this.queues.map((_, i) => {
      const q = live?.queues[i];
      return q instanceof SplitVirtqueue ? q.position : undefined;
    });
    const held = positions.findIndex((p) => p && p.nextAvail !== p.nextUsed);
    if (held >= 0 && !(this.statusBits & VIRTIO_STATUS.DEVICE_NEEDS_RESET)) {
      throw new SnapshotError(`snapshot: virtio device ${this.device.deviceId} holds buffers of queue ${held} (requests in flight)`);
    }
    if (!this.device.saveState) throw new SnapshotError(`snapshot: virtio device ${this.device.deviceId} cannot be saved`);
    return {
      status: this.statusBits,
      generation: this.generation,
      deviceFeatureSelect: this.deviceFeatureSelect,
      driverFeatureSelect: this.driverFeatureSelect,
      queueSelect: this.queueSelect,
      driverFeatures: this.driverFeatures.toString(),
      needsReset: this.error ?? '',
      live: live !== null,
      queueSize: this.queues.map((q) => q.size),
      queueReady: this.queues.map((q) => (q.ready ? 1 : 0)),
      queueAddr: this.queues.flatMap((q) => [...q.desc, ...q.driver, ...q.device]),
      nextAvail: positions.map((p) => p?.nextAvail ?? 0),
      nextUsed: positions.map((p) => p?.nextUsed ?? 0),
      broken: positions.map((p) => (p?.broken ? 1 : 0)),
      device: this.device.saveState(),
    };
  }

  /**
   * Checks a saveState() result against this device (SnapshotError, nothing changed) and
   * returns what restores it: no interrupt is sent and nothing popped or used; the device
   * is notified of its enabled queues once the load is over (a microtask later).
   */
  prepareLoad(s: DeviceState): () => void {
    // The device first: it tells a configuration that differs (another disk size, other ports) best.
    if (!this.device.prepareLoad) throw new SnapshotError(`snapshot: virtio device ${this.device.deviceId} cannot be restored`);
    const restoreDevice = this.device.prepareLoad(stateField(s, 'device'));
    const n = this.queues.length;
    const bad = (name: string, why = '') => new SnapshotError(`snapshot: bad field '${name}'${why}`);
    const status = intField(s, 'status', 0, 0xff);
    const generation = intField(s, 'generation');
    const deviceFeatureSelect = intField(s, 'deviceFeatureSelect');
    const driverFeatureSelect = intField(s, 'driverFeatureSelect');
    const queueSelect = intField(s, 'queueSelect');
    const driverFeatures = bigField(s, 'driverFeatures');
    if (driverFeatures < 0n || driverFeatures >> 64n !== 0n) throw bad('driverFeatures');
    if (status & VIRTIO_STATUS.FEATURES_OK && !this.featuresAcceptable(driverFeatures)) {
      throw bad('driverFeatures', ' (features this device does not offer)');
    }
    const error = stringField(s, 'needsReset');
    const needsReset = (status & VIRTIO_STATUS.DEVICE_NEEDS_RESET) !== 0;
    if ((error !== '') !== needsReset) throw bad('needsReset');
    const live = boolField(s, 'live');
    if (live && (status & (VIRTIO_STATUS.FEATURES_OK | VIRTIO_STATUS.DRIVER_OK)) !== (VIRTIO_STATUS.FEATURES_OK | VIRTIO_STATUS.DRIVER_OK)) throw bad('live');
    const sizes = new Uint32Array(n);
    const ready = new Uint8Array(n);
    const addr = new Uint32Array(6 * n);
    const nextAvail = new Uint16Array(n);
    const nextUsed = new Uint16Array(n);
    const broken = new Uint8Array(n);
    arrayField(s, 'queueSize', sizes);
    arrayField(s, 'queueReady', ready);
    arrayField(s, 'queueAddr', addr);
    arrayField(s, 'nextAvail', nextAvail);
    arrayField(s, 'nextUsed', nextUsed);
    arrayField(s, 'broken', broken);
    if (ready.some((r) => r > 1)) throw bad('queueReady');
    if (broken.some((b) => b > 1)) throw bad('broken');
    const queues: QueueConfig[] = [...sizes].map((size, i) => ({
      size, ready: ready[i] === 1, desc: [addr[6 * i]!, addr[6 * i + 1]!], driver: [addr[6 * i + 2]!, addr[6 * i + 3]!], device: [addr[6 * i + 4]!, addr[6 * i + 5]!],
    }));
    const positions = queues.map((q, i) => {
      if (!live || !q.ready) return undefined;
      const p = { nextAvail: nextAvail[i]!, nextUsed: nextUsed[i]!, broken: broken[i] === 1 };
      const err = splitQueueLayoutError(this.mem, layout(q), this.device.queueMaxSizes[i]) ?? splitQueuePositionError(p, q.size);
      if (err) throw new SnapshotError(`snapshot: virtio queue ${i}: ${err}`);
      if (p.nextAvail !== p.nextUsed && !needsReset) throw bad('nextAvail', ` (queue ${i} holds buffers)`);
      return p;
    });
    return () => {
      this.detach();
      this.device.reset();
      this.statusBits = status;
      this.generation = generation;
      this.deviceFeatureSelect = deviceFeatureSelect;
      this.driverFeatureSelect = driverFeatureSelect;
      this.queueSelect = queueSelect;
      this.driverFeatures = driverFeatures;
      this.error = error === '' ? null : error;
      this.queues = queues;
      if (!live) {
        restoreDevice(null);
        return;
      }
      restoreDevice(this.goLive(positions));
      const restored = this.live;
      queueMicrotask(() => {
        if (this.live !== restored) return; // reset or loaded again meanwhile
        this.queues.forEach((q, i) => {
          if (q.ready) this.device.queueNotify(i);
        });
      });
    };
  }

  private resetState(): void {
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
    this.driverFeatures = 0n;
    this.statusBits = 0;
    this.error = null;
    // The size starts at the maximum, as in QEMU, for drivers that never write it.
    this.queues = this.device.queueMaxSizes.map((max) => ({
      size: max, ready: false, desc: [0, 0], driver: [0, 0], device: [0, 0],
    }));
  }
}

function layout(q: QueueConfig): SplitQueueLayout {
  return { size: q.size, desc: addr64(q.desc), driver: addr64(q.driver), device: addr64(q.device) };
}
