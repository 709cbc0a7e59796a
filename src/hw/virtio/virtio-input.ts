/**
 * virtio input device (Virtio 1.2, section 5.8), as QEMU's virtio-keyboard, virtio-mouse
 * and virtio-tablet: Linux evdev events (type, code, value) go to the driver through the
 * event queue, one 8-byte event per buffer; the status queue brings LED changes back,
 * which are consumed and ignored. The configuration space answers the driver's
 * select/subsel questions (name, ids, which events and axes exist).
 *
 * Events wait here while the driver has posted no buffer, up to a bound; a batch that
 * would not fit is dropped whole, as a real device drops input when nobody reads it.
 * Before the driver is ready (DRIVER_OK) events are dropped, as QEMU does.
 */
import { VIRTIO_ID, readConfigBytes, type VirtioActivation, type VirtioDevice, type Virtqueue } from './virtio.js';
import type { GuestMemory } from '../core/guest-memory.js';
import type { DeviceState } from '../../migration/vmstate.js';
import { ABS, ABS_MAX, BTN, EV, KEYBOARD_CODES, REL, SYN_REPORT, type InputEvent } from '../../ui/input-keys.js';

/** Configuration selectors (5.8.2). */
export const VIRTIO_INPUT_CFG = { UNSET: 0, ID_NAME: 1, ID_SERIAL: 2, ID_DEVIDS: 3, PROP_BITS: 0x10, EV_BITS: 0x11, ABS_INFO: 0x12 } as const;
/** select, subsel, size, 5 reserved bytes, then a 128-byte union. */
const CONFIG_SIZE = 136;
const UNION = 8;
const EVENT_SIZE = 8;
/** Events waiting for buffers at most (a few seconds of fast typing). */
export const VIRTIO_INPUT_MAX_PENDING = 1024;
const BUS_VIRTUAL = 6;
const QEMU_VENDOR = 0x0627;
const INPUT_PROP_POINTER = 0;

export type VirtioInputKind = 'keyboard' | 'mouse' | 'tablet';

/** The kind of input device a -device driver name plugs (`virtio-tablet-pci`: tablet), or null for another driver. */
export function virtioInputKind(driver: string): VirtioInputKind | null {
  const m = /^virtio-(keyboard|mouse|tablet)-/.exec(driver);
  return m ? m[1] as VirtioInputKind : null;
}

/** What a kind of device reports: name, product id, event codes by type, absolute axes. */
interface Profile {
  name: string;
  product: number;
  props: number[];
  events: Map<number, readonly number[]>;
}

const BUTTONS: readonly number[] = [BTN.LEFT, BTN.RIGHT, BTN.MIDDLE, BTN.SIDE, BTN.EXTRA];
const PROFILES: Record<VirtioInputKind, Profile> = {
  keyboard: {
    name: 'QEMU Virtio Keyboard', product: 1, props: [],
    // EV_REP with no codes: the driver only asks whether it is there (autorepeat).
    events: new Map<number, readonly number[]>([[EV.KEY, KEYBOARD_CODES], [EV.REP, []], [EV.LED, [0, 1, 2]]]),
  },
  mouse: {
    name: 'QEMU Virtio Mouse', product: 2, props: [INPUT_PROP_POINTER],
    events: new Map<number, readonly number[]>([[EV.KEY, BUTTONS], [EV.REL, [REL.X, REL.Y, REL.WHEEL]]]),
  },
  tablet: {
    name: 'QEMU Virtio Tablet', product: 3, props: [INPUT_PROP_POINTER],
    events: new Map<number, readonly number[]>([[EV.KEY, BUTTONS], [EV.REL, [REL.WHEEL]], [EV.ABS, [ABS.X, ABS.Y]]]),
  },
};

/** A little-endian bitmap with `bits` set, of the length that holds the highest. */
function bitmap(bits: readonly number[]): Uint8Array {
  const b = new Uint8Array(bits.length === 0 ? 0 : Math.floor(Math.max(...bits) / 8) + 1);
  for (const bit of bits) b[bit >> 3]! |= 1 << (bit & 7);
  return b;
}

/** The input device (device ID 18). */
export class VirtioInput implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.INPUT;
  readonly queueMaxSizes = [64, 64] as const;
  readonly features = 0n;
  readonly configSize = CONFIG_SIZE;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly profile: Profile;
  private mem: GuestMemory | null = null;
  private queues: Virtqueue[] = [];
  private pending: InputEvent[] = [];

  constructor(readonly kind: VirtioInputKind, private readonly serial = '') {
    this.profile = PROFILES[kind];
  }

  /** Whether this device reports events of `type` with `code` (others are not sent to it). */
  handles(type: number, code: number): boolean {
    return this.profile.events.get(type)?.includes(code) ?? false;
  }

  /**
   * Queues `events` (those this device reports), followed by a SYN_REPORT, and passes on
   * what the driver has buffers for. False if they were dropped (no driver, too much waiting).
   */
  send(events: readonly InputEvent[]): boolean {
    const mine = events.filter((e) => this.handles(e.type, e.code));
    if (mine.length === 0) return true;
    if (!this.mem) return false;
    if (this.pending.length + mine.length + 1 > VIRTIO_INPUT_MAX_PENDING) return false;
    this.pending.push(...mine, { type: EV.SYN, code: SYN_REPORT, value: 0 });
    this.deliver();
    return true;
  }

  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }

  writeConfig(offset: number, size: number, value: number): void {
    // Only select (0) and subsel (1) are writable; a wider write covers both.
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      if (o === 0 || o === 1) this.config[o] = (value >>> (8 * i)) & 0xff;
    }
    if (offset <= 1) this.select(this.config[0]!, this.config[1]!);
  }

  /** Fills size and the union for selector `sel`/`subsel`; size 0 for what the device does not have. */
  private select(sel: number, subsel: number): void {
    const c = this.config;
    c.fill(0, 2);
    const u = c.subarray(UNION);
    let data: Uint8Array | null = null;
    const p = this.profile;
    if (sel === VIRTIO_INPUT_CFG.ID_NAME && subsel === 0) data = new TextEncoder().encode(p.name);
    else if (sel === VIRTIO_INPUT_CFG.ID_SERIAL && subsel === 0 && this.serial !== '') data = new TextEncoder().encode(this.serial).subarray(0, 128);
    else if (sel === VIRTIO_INPUT_CFG.ID_DEVIDS && subsel === 0) {
      data = new Uint8Array(8);
      const v = new DataView(data.buffer);
      [BUS_VIRTUAL, QEMU_VENDOR, p.product, 1].forEach((x, i) => v.setUint16(2 * i, x, true));
    } else if (sel === VIRTIO_INPUT_CFG.PROP_BITS && subsel === 0) data = bitmap(p.props);
    else if (sel === VIRTIO_INPUT_CFG.EV_BITS && p.events.has(subsel)) {
      const codes = p.events.get(subsel)!;
      // A type without codes (EV_REP) still answers with one (empty) byte: size 0 means "absent".
      data = codes.length === 0 ? new Uint8Array(1) : bitmap(codes);
    } else if (sel === VIRTIO_INPUT_CFG.ABS_INFO && this.handles(EV.ABS, subsel)) {
      data = new Uint8Array(20);
      new DataView(data.buffer).setUint32(4, ABS_MAX, true);
    }
    if (data === null || data.length === 0) return;
    u.set(data);
    c[2] = data.length;
  }

  activate(a: VirtioActivation): void {
    this.mem = a.mem;
    this.queues = a.queues;
  }

  queueNotify(index: number): void {
    if (index === 0) this.deliver();
    else if (index === 1) this.consumeStatus();
  }

  /** Writes waiting events into the driver's buffers, one event per chain, while both last. */
  private deliver(): void {
    const { mem } = this;
    const q = this.queues[0];
    if (!mem || !q) return;
    let n = 0;
    const bytes = new Uint8Array(EVENT_SIZE);
    const dv = new DataView(bytes.buffer);
    while (n < this.pending.length) {
      const chain = q.pop();
      if (!chain) break;
      const e = this.pending[n++]!;
      dv.setUint16(0, e.type, true);
      dv.setUint16(2, e.code, true);
      dv.setInt32(4, e.value, true);
      let written = 0;
      for (const b of chain.buffers) {
        if (!b.writable || written === EVENT_SIZE) continue;
        const len = Math.min(b.len, EVENT_SIZE - written);
        if (!mem.write(b.addr, bytes.subarray(written, written + len))) break;
        written += len;
      }
      q.pushUsed(chain.head, written);
    }
    this.pending.splice(0, n);
  }

  /** Status events (LEDs) are acknowledged and otherwise ignored. */
  private consumeStatus(): void {
    const q = this.queues[1];
    if (!q) return;
    for (let chain = q.pop(); chain; chain = q.pop()) q.pushUsed(chain.head, 0);
  }

  reset(): void {
    this.mem = null;
    this.queues = [];
    this.pending = [];
    this.config.fill(0);
  }

  saveState(): DeviceState {
    return { select: this.config[0]!, subsel: this.config[1]! };
  }

  prepareLoad(s: DeviceState): (a: VirtioActivation | null) => void {
    const sel = Number(s.select ?? 0) & 0xff;
    const subsel = Number(s.subsel ?? 0) & 0xff;
    return (a) => {
      this.config[0] = sel;
      this.config[1] = subsel;
      this.select(sel, subsel);
      if (a) {
        this.mem = a.mem;
        this.queues = a.queues;
      }
    };
  }
}
