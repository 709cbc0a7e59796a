/**
 * virtio console device (Virtio 1.2, section 5.3) with a single port, connected to a
 * {@link Chardev}: queue 0 (receiveq) carries host input to the guest, queue 1
 * (transmitq) guest output to the host. MULTIPORT is not offered; EMERG_WRITE is
 * (writing emerg_wr outputs one byte, usable before the queues are up).
 *
 * Host input is held, never dropped, as the UART does: it is pulled from the chardev
 * only when the driver has posted a receive buffer to put it in.
 */
import type { Chardev } from '../../chardev/chardev.js';
import type { GuestMemory } from '../core/guest-memory.js';
import { VIRTIO_ID, type VirtioActivation, type VirtioDevice, type Virtqueue } from './virtio.js';
import { writeToChain } from './virtqueue.js';

/** Feature bits (5.3.3). */
export const VIRTIO_CONSOLE_F_SIZE = 0n;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1n;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2n;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
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

/** The console device (device ID 3), one port. */
export class VirtioConsole implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.CONSOLE;
  readonly queueMaxSizes = [128, 128] as const;
  readonly features = 1n << VIRTIO_CONSOLE_F_EMERG_WRITE;
  readonly configSize = CONFIG_SIZE;
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));
  private mem: GuestMemory | null = null;
  private rx: Virtqueue | null = null;
  private tx: Virtqueue | null = null;

  constructor(private readonly chr: Chardev) {
    // cols and rows stay 0: VIRTIO_CONSOLE_F_SIZE is not offered.
    this.config.setUint32(4, 1, true); // max_nr_ports
    chr.onInput = () => this.receive();
  }

  readConfig(offset: number, size: number): number {
    if (offset < 0 || offset + size > CONFIG_SIZE || offset >= EMERG_WR) return 0; // emerg_wr is write-only
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config.getUint8(offset + i);
    return v;
  }

  writeConfig(offset: number, _size: number, value: number): void {
    if (offset === EMERG_WR) this.chr.write(Uint8Array.of(value & 0xff));
  }

  activate(a: VirtioActivation): void {
    this.mem = a.mem;
    this.rx = a.queues[RECEIVEQ]!;
    this.tx = a.queues[TRANSMITQ]!;
    this.receive();
    this.transmit();
  }

  queueNotify(index: number): void {
    if (index === RECEIVEQ) this.receive();
    else if (index === TRANSMITQ) this.transmit();
  }

  reset(): void {
    this.mem = null;
    this.rx = null;
    this.tx = null;
  }

  /** Moves waiting host input into posted receive buffers, one buffer per chunk of input. */
  private receive(): void {
    const { mem, rx, chr } = this;
    if (!mem || !rx) return;
    while (chr.pending > 0) {
      const chain = rx.pop();
      if (!chain) return;
      const n = writeToChain(mem, chain, 0, chr.read(chain.writableLength));
      rx.pushUsed(chain.head, n);
    }
  }

  /** Sends every posted transmit buffer to the chardev. */
  private transmit(): void {
    const { mem, tx, chr } = this;
    if (!mem || !tx) return;
    for (let chain = tx.pop(); chain; chain = tx.pop()) {
      let budget = VIRTIO_CONSOLE_MAX_TX;
      for (const b of chain.buffers) {
        if (b.writable) break;
        for (let off = 0; off < b.len && budget > 0; off += TX_CHUNK) {
          const n = Math.min(TX_CHUNK, b.len - off, budget);
          const v = mem.view(b.addr + off, n);
          if (v) chr.write(v.slice());
          budget -= n;
        }
      }
      tx.pushUsed(chain.head, 0);
    }
  }
}
