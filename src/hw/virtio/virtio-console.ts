/**
 * The virtio console device (Virtio 1.2, section 5.3), QEMU's virtio-serial: a bus of
 * ports, each connected to a {@link Chardev}. A port is a console (QEMU's virtconsole,
 * Linux's /dev/hvcN) or a plain serial port (virtserialport, /dev/vportNpM, with a name
 * the guest finds in /sys/class/virtio-ports/vportNpM/name).
 *
 * With more than one port the device offers VIRTIO_CONSOLE_F_MULTIPORT (5.3.6.2): queues
 * 0/1 are port 0's receiveq/transmitq, 2/3 the control receiveq/transmitq, and 2N+2/2N+3
 * those of port N. The driver announces itself with DEVICE_READY; the device answers
 * DEVICE_ADD for every port; the driver's PORT_READY gets CONSOLE_PORT for a console,
 * PORT_NAME for a named port and PORT_OPEN when the host side is connected; the driver's
 * PORT_OPEN opens or closes the port on the guest side. Without MULTIPORT (one port, or a
 * driver that does not take it) port 0 alone works, always open, as in QEMU.
 * EMERG_WRITE is offered: writing emerg_wr outputs one byte on port 0.
 *
 * Host input is held, never dropped: it is pulled from the chardev only when the guest
 * has the port open and has posted a receive buffer. Guest output is discarded while the
 * host side is not connected (a socket without a client), as in QEMU, and held in the
 * transmit queue while the chardev reports {@link Chardev.writeBlocked}.
 *
 * Everything the guest writes is checked: control messages shorter than 8 bytes or for
 * ports that do not exist are ignored, transmitted bytes per chain are capped, and the
 * messages waiting for control buffers are bounded. Nothing a guest does makes the
 * device throw.
 *
 * Snapshots save each port's state (ready, open on the guest side, connected on the host
 * side) and the control messages waiting for buffers; the ports must be the same. A port
 * whose host side connected or left since the snapshot was taken gets a PORT_OPEN for
 * the driver, delivered with the other waiting messages after the load. Every chain is
 * used as soon as it is popped, so the device holds none.
 */
import type { Chardev } from '../../chardev/chardev.js';
import type { GuestMemory } from '../core/guest-memory.js';
import { VIRTIO_ID, readConfigBytes, type VirtioActivation, type VirtioDevice, type Virtqueue } from './virtio.js';
import { readFromChain, writeToChain } from './virtqueue.js';
import { SnapshotError, arrayField, type DeviceState } from '../../migration/vmstate.js';

/** Feature bits (5.3.3). */
export const VIRTIO_CONSOLE_F_SIZE = 0n;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1n;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2n;

/** Control message events (5.3.6.2). */
export const VIRTIO_CONSOLE = {
  DEVICE_READY: 0,
  DEVICE_ADD: 1,
  DEVICE_REMOVE: 2,
  PORT_READY: 3,
  CONSOLE_PORT: 4,
  RESIZE: 5,
  PORT_OPEN: 6,
  PORT_NAME: 7,
} as const;

/** struct virtio_console_control: id (le32), event (le16), value (le16). */
export const VIRTIO_CONSOLE_CONTROL_SIZE = 8;

/** QEMU's default and Vireo's largest max_ports. */
export const VIRTIO_SERIAL_DEFAULT_PORTS = 31;
export const VIRTIO_SERIAL_MAX_PORTS = 31;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
const CONTROL_RECEIVEQ = 2;
const CONTROL_TRANSMITQ = 3;
/** Queue sizes, as QEMU's. */
const PORT_QUEUE_SIZE = 128;
const CONTROL_QUEUE_SIZE = 32;
/** struct virtio_console_config (5.3.4): cols, rows (u16), max_nr_ports, emerg_wr (u32). */
const CONFIG_SIZE = 12;
const EMERG_WR = 8;
/** Output is handed to the chardev in pieces of at most this size (each one a copy it may keep). */
const TX_CHUNK = 64 * 1024;
/**
 * Bytes sent per transmit buffer chain at most; the rest is dropped. Linux sends at most
 * 32 KiB per chain, and without a cap a chain of overlapping buffers could make one
 * notification copy queue size x guest RAM bytes.
 */
export const VIRTIO_CONSOLE_MAX_TX = 1024 * 1024;
/** Control messages held for want of control receive buffers; beyond, new ones are dropped. */
export const VIRTIO_CONSOLE_MAX_PENDING_CONTROL = 1024;
/** Longest port name sent to the guest (the command line refuses longer ones). */
export const VIRTIO_SERIAL_MAX_NAME = 255;

/** One port of a {@link VirtioSerial}. */
export interface VirtioSerialPortConfig {
  /** The port number (QEMU's nr=), below maxPorts; 0 is where a console goes. */
  id: number;
  /** The host side; null for a port with nothing behind it (never connected). */
  chr: Chardev | null;
  /** A console (virtconsole) rather than a serial port (virtserialport). */
  console: boolean;
  /** The name the guest sees (virtserialport name=). */
  name?: string;
}

/** Construction options for {@link VirtioSerial}. */
export interface VirtioSerialOptions {
  /** Number of ports the guest may see (QEMU's max_ports, 1 to 31); more than 1 offers MULTIPORT. */
  maxPorts: number;
  ports: readonly VirtioSerialPortConfig[];
}

/** A port's state. */
class Port {
  /** The driver sent PORT_READY: it knows the port and gets its events. */
  ready = false;
  /** The guest has the port open (always, without MULTIPORT). */
  guestOpen = false;

  constructor(readonly id: number, readonly chr: Chardev | null, readonly console: boolean, readonly name: string | undefined) {}

  get hostConnected(): boolean {
    return this.chr?.connected ?? false;
  }
}

/** The virtio-serial device (device ID 3): a console and serial ports. */
export class VirtioSerial implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.CONSOLE;
  readonly queueMaxSizes: readonly number[];
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));
  private readonly ports = new Map<number, Port>();
  private mem: GuestMemory | null = null;
  private queues: Virtqueue[] | null = null;
  private multiport = false;
  private control: Uint8Array[] = [];

  constructor(opts: VirtioSerialOptions) {
    const max = opts.maxPorts;
    if (!Number.isInteger(max) || max < 1 || max > VIRTIO_SERIAL_MAX_PORTS) throw new RangeError(`virtio-serial: max_ports ${max} out of range`);
    for (const p of opts.ports) {
      if (!Number.isInteger(p.id) || p.id < 0 || p.id >= max) throw new RangeError(`virtio-serial: port ${p.id} out of range`);
      if (this.ports.has(p.id)) throw new RangeError(`virtio-serial: port ${p.id} given twice`);
      const port = new Port(p.id, p.chr, p.console, p.name?.slice(0, VIRTIO_SERIAL_MAX_NAME));
      this.ports.set(p.id, port);
      if (p.chr) {
        p.chr.onInput = () => this.receive(port);
        p.chr.onWritable = () => this.transmit(port);
        p.chr.onOpen = (open) => this.hostOpenChanged(port, open);
      }
    }
    const multiport = max > 1;
    // QEMU's layout: port 0's pair, the control pair, then a pair per further port.
    this.queueMaxSizes = multiport
      ? Array.from({ length: 2 * (max + 1) }, (_, i) => (i === CONTROL_RECEIVEQ || i === CONTROL_TRANSMITQ ? CONTROL_QUEUE_SIZE : PORT_QUEUE_SIZE))
      : [PORT_QUEUE_SIZE, PORT_QUEUE_SIZE];
    this.features = (1n << VIRTIO_CONSOLE_F_EMERG_WRITE) | (multiport ? 1n << VIRTIO_CONSOLE_F_MULTIPORT : 0n);
    // cols and rows stay 0: VIRTIO_CONSOLE_F_SIZE is not offered.
    this.config.setUint32(4, max, true); // max_nr_ports
  }

  readConfig(offset: number, size: number): number {
    if (offset >= EMERG_WR) return 0; // emerg_wr is write-only
    return readConfigBytes(new Uint8Array(this.config.buffer), offset, size);
  }

  writeConfig(offset: number, _size: number, value: number): void {
    if (offset !== EMERG_WR) return;
    const port = this.ports.get(0);
    if (port?.chr && port.hostConnected) port.chr.write(Uint8Array.of(value & 0xff));
  }

  activate(a: VirtioActivation): void {
    this.attach(a);
    this.control = [];
    for (const p of this.ports.values()) {
      p.ready = false;
      // Without MULTIPORT there are no open/close messages: port 0 is simply open.
      p.guestOpen = !this.multiport && p.id === 0;
    }
    for (const p of this.ports.values()) {
      this.receive(p);
      this.transmit(p);
    }
  }

  queueNotify(index: number): void {
    if (!this.queues || !Number.isInteger(index) || index < 0 || index >= this.queues.length) return;
    if (index === CONTROL_RECEIVEQ || index === CONTROL_TRANSMITQ) {
      if (!this.multiport) return;
      if (index === CONTROL_RECEIVEQ) this.flushControl();
      else this.handleControl();
      return;
    }
    const id = index < 2 ? 0 : (index >> 1) - 1;
    const port = this.ports.get(id);
    const transmit = (index & 1) === 1;
    if (port) {
      if (transmit) this.transmit(port);
      else this.receive(port);
    } else if (transmit) {
      this.discard(this.queues[index]!); // output to a port that does not exist goes nowhere
    }
  }

  reset(): void {
    this.mem = null;
    this.queues = null;
    this.multiport = false;
    this.control = [];
    for (const p of this.ports.values()) {
      p.ready = false;
      p.guestOpen = false;
    }
  }

  saveState(): DeviceState {
    const ports = [...this.ports.values()];
    const flag = (f: (p: Port) => boolean) => ports.map((p) => (f(p) ? 1 : 0));
    return {
      maxPorts: this.config.getUint32(4, true),
      ports: ports.map((p) => p.id),
      consoles: flag((p) => p.console),
      ready: flag((p) => p.ready),
      guestOpen: flag((p) => p.guestOpen),
      hostConnected: flag((p) => p.hostConnected),
      control: this.control.flatMap((m) => [m.length, ...m]),
    };
  }

  prepareLoad(s: DeviceState): (a: VirtioActivation | null) => void {
    const ports = [...this.ports.values()];
    const n = ports.length;
    const saved = s.ports;
    if (s.maxPorts !== this.config.getUint32(4, true) || !Array.isArray(saved) || saved.length !== n || ports.some((p, i) => saved[i] !== p.id)) {
      throw new SnapshotError('snapshot: its virtio-serial ports (max_ports, nr=) are not this machine\'s');
    }
    const flags = (name: string) => {
      const v = new Uint8Array(n);
      arrayField(s, name, v);
      if (v.some((b) => b > 1)) throw new SnapshotError(`snapshot: bad field '${name}'`);
      return v;
    };
    const consoles = flags('consoles');
    if (ports.some((p, i) => (consoles[i] === 1) !== p.console)) throw new SnapshotError('snapshot: its virtio-serial consoles are not this machine\'s');
    const ready = flags('ready');
    const guestOpen = flags('guestOpen');
    const hostConnected = flags('hostConnected');
    const control = parseControl(s.control);
    return (a) => {
      if (!a) return;
      this.attach(a);
      this.control = control;
      ports.forEach((p, i) => {
        p.ready = ready[i] === 1;
        p.guestOpen = guestOpen[i] === 1;
        // The driver was told of the host side as it was: tell it again if that changed.
        if (this.multiport && p.ready && p.hostConnected !== (hostConnected[i] === 1)) {
          this.queueControl(p.id, VIRTIO_CONSOLE.PORT_OPEN, p.hostConnected ? 1 : 0);
        }
      });
    };
  }

  private attach(a: VirtioActivation): void {
    this.mem = a.mem;
    this.queues = a.queues;
    this.multiport = (a.features >> VIRTIO_CONSOLE_F_MULTIPORT & 1n) === 1n && this.queueMaxSizes.length > 2;
  }

  /** The receive and transmit queue of a port (null while the device is not live or the port unusable). */
  private portQueues(port: Port): { rx: Virtqueue; tx: Virtqueue } | null {
    const q = this.queues;
    if (!q || (!this.multiport && port.id !== 0)) return null;
    const rx = port.id === 0 ? RECEIVEQ : 2 * port.id + 2;
    if (rx + 1 >= q.length) return null;
    return { rx: q[rx]!, tx: q[rx + TRANSMITQ]! };
  }

  /** Moves waiting host input into posted receive buffers of an open port, one buffer per chunk of input. */
  private receive(port: Port): void {
    const mem = this.mem;
    const chr = port.chr;
    const qs = this.portQueues(port);
    if (!mem || !qs || !chr || !port.guestOpen) return;
    while (chr.pending > 0) {
      const chain = qs.rx.pop();
      if (!chain) return;
      const n = chain.writableLength > 0 ? writeToChain(mem, chain, 0, chr.read(chain.writableLength)) : 0;
      qs.rx.pushUsed(chain.head, n);
    }
  }

  /** Sends every posted transmit buffer to the chardev (or discards it with no host side), unless the chardev is blocked. */
  private transmit(port: Port): void {
    const mem = this.mem;
    const qs = this.portQueues(port);
    if (!mem || !qs) return;
    const chr = port.chr;
    for (;;) {
      if (chr?.writeBlocked === true) return; // resumed by onWritable
      const chain = qs.tx.pop();
      if (!chain) return;
      if (chr && port.hostConnected) {
        let budget = VIRTIO_CONSOLE_MAX_TX;
        for (const b of chain.buffers) {
          if (b.writable) break;
          for (let off = 0; off < b.len && budget > 0; off += TX_CHUNK) {
            const n = Math.min(TX_CHUNK, b.len - off, budget);
            const v = mem.readView(b.addr + off, n);
            if (v) chr.write(v.slice());
            budget -= n;
          }
        }
      }
      qs.tx.pushUsed(chain.head, 0);
    }
  }

  private discard(q: Virtqueue): void {
    for (let chain = q.pop(); chain; chain = q.pop()) q.pushUsed(chain.head, 0);
  }

  /** Queues a control message for the driver and delivers what fits. */
  private sendControl(id: number, event: number, value: number, extra?: Uint8Array): void {
    this.queueControl(id, event, value, extra);
    this.flushControl();
  }

  /** Queues a control message until flushControl() (dropped beyond the bound). */
  private queueControl(id: number, event: number, value: number, extra?: Uint8Array): void {
    if (this.control.length >= VIRTIO_CONSOLE_MAX_PENDING_CONTROL) return;
    const msg = new Uint8Array(VIRTIO_CONSOLE_CONTROL_SIZE + (extra?.length ?? 0));
    const v = new DataView(msg.buffer);
    v.setUint32(0, id, true);
    v.setUint16(4, event, true);
    v.setUint16(6, value, true);
    if (extra) msg.set(extra, VIRTIO_CONSOLE_CONTROL_SIZE);
    this.control.push(msg);
  }

  /** Puts held control messages into the driver's control receive buffers, one message per buffer. */
  private flushControl(): void {
    const mem = this.mem;
    const q = this.queues?.[CONTROL_RECEIVEQ];
    if (!mem || !q || !this.multiport) return;
    while (this.control.length > 0) {
      const chain = q.pop();
      if (!chain) return;
      const msg = this.control.shift()!;
      q.pushUsed(chain.head, writeToChain(mem, chain, 0, msg));
    }
  }

  /** Handles the driver's control messages (5.3.6.2.1). */
  private handleControl(): void {
    const mem = this.mem;
    const q = this.queues?.[CONTROL_TRANSMITQ];
    if (!mem || !q) return;
    const msg = new Uint8Array(VIRTIO_CONSOLE_CONTROL_SIZE);
    const v = new DataView(msg.buffer);
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const n = readFromChain(mem, chain, 0, msg);
      q.pushUsed(chain.head, 0);
      if (n < VIRTIO_CONSOLE_CONTROL_SIZE) continue; // too short to be a message: ignored, as QEMU does
      this.controlMessage(v.getUint32(0, true), v.getUint16(4, true), v.getUint16(6, true));
      if (!this.queues) return; // the device was reset meanwhile
    }
  }

  private controlMessage(id: number, event: number, value: number): void {
    const E = VIRTIO_CONSOLE;
    if (event === E.DEVICE_READY) {
      if (value === 0) return; // the driver failed to initialise
      for (const p of this.ports.values()) this.sendControl(p.id, E.DEVICE_ADD, 1);
      return;
    }
    const port = this.ports.get(id);
    if (!port) return; // unknown port (or VIRTIO_CONSOLE_BAD_ID)
    if (event === E.PORT_READY) {
      if (value === 0) return; // the driver failed to add the port
      port.ready = true;
      if (port.console) this.sendControl(port.id, E.CONSOLE_PORT, 1);
      if (port.name !== undefined) this.sendControl(port.id, E.PORT_NAME, 1, Buffer.from(`${port.name}\0`));
      if (port.hostConnected) this.sendControl(port.id, E.PORT_OPEN, 1);
    } else if (event === E.PORT_OPEN) {
      port.guestOpen = value !== 0;
      if (port.guestOpen) {
        this.receive(port);
        this.transmit(port);
      }
    }
    // RESIZE, DEVICE_ADD/REMOVE and CONSOLE_PORT are the device's to send: ignored from the driver.
  }

  /** The host side of a port connected or left: the driver is told (with MULTIPORT, once it knows the port). */
  private hostOpenChanged(port: Port, open: boolean): void {
    if (this.multiport && port.ready) this.sendControl(port.id, VIRTIO_CONSOLE.PORT_OPEN, open ? 1 : 0);
    this.transmit(port);
  }
}

/** The longest control message: PORT_NAME with the longest name and its NUL. */
const MAX_CONTROL = VIRTIO_CONSOLE_CONTROL_SIZE + VIRTIO_SERIAL_MAX_NAME + 1;

/** The waiting control messages of a snapshot: each its length, then its bytes. */
function parseControl(v: DeviceState[string] | undefined): Uint8Array[] {
  const bad = () => new SnapshotError("snapshot: bad field 'control'");
  if (!Array.isArray(v)) throw bad();
  const out: Uint8Array[] = [];
  for (let at = 0; at < v.length;) {
    const len = v[at]!;
    if (!Number.isInteger(len) || len < VIRTIO_CONSOLE_CONTROL_SIZE || len > MAX_CONTROL || at + 1 + len > v.length ||
      out.length === VIRTIO_CONSOLE_MAX_PENDING_CONTROL) throw bad();
    const msg = v.slice(at + 1, at + 1 + len);
    if (!msg.every((b) => Number.isInteger(b) && b >= 0 && b <= 0xff)) throw bad();
    out.push(Uint8Array.from(msg));
    at += 1 + len;
  }
  return out;
}

/** A console device with a single port (no MULTIPORT): port 0, a console, on `chr`. */
export class VirtioConsole extends VirtioSerial {
  constructor(chr: Chardev) {
    super({ maxPorts: 1, ports: [{ id: 0, chr, console: true }] });
  }
}
