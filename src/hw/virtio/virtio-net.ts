/**
 * virtio network device (Virtio 1.2, section 5.1) connected to a {@link NetBackend}:
 * queue 0 (receiveq1) carries frames to the guest, queue 1 (transmitq1) frames from
 * it. Offered: VIRTIO_NET_F_MAC (the MAC in the configuration space) and
 * VIRTIO_NET_F_STATUS (link always up), and with a backend that takes them (user
 * networking, {@link NetBackend.offloads}) the checksum and TCP segmentation offloads both
 * ways: VIRTIO_NET_F_CSUM and HOST_TSO4, so that the guest sends TCP in segments of up to
 * 64 KiB and leaves checksums to the device, which passes them on as partial (5.1.6.2);
 * GUEST_CSUM and GUEST_TSO4, so that the backend hands the guest segments of up to 64 KiB
 * with partial checksums, which the header describes (5.1.6.4). Per byte, the guest's work
 * is then a copy, not a checksum and a segment per 1460 bytes. No mergeable buffers: every
 * frame travels whole, in one chain (a driver with GUEST_TSO4 posts 64 KiB buffers),
 * behind a virtio_net_hdr (5.1.6) of 12 bytes (10 for a legacy driver without VERSION_1).
 *
 * Frames from the backend go only into receive buffers the driver posted; while there
 * are none, a bounded number is held, after which frames are dropped and the
 * backend is told (canReceive) so that the ones that can wait, wait.
 *
 * Snapshots save the configuration space (MAC and link status; a restored device answers
 * with the saved MAC, as QEMU's). Every chain is used as soon as it is popped, so the
 * device holds none; held frames are not saved (lost, as on a wire), and the backend is
 * told the guest went back in time (user networking drops its TCP connections).
 */
import { MAX_FRAME, type NetBackend, type PartialChecksum, type TcpSegmentOffload } from '../../net/net.js';
import type { GuestMemory } from '../core/guest-memory.js';
import { VIRTIO_F_VERSION_1, VIRTIO_ID, readConfigBytes, type DescriptorChain, type VirtioActivation, type VirtioDevice, type Virtqueue } from './virtio.js';
import { readFromChain, writeToChain } from './virtqueue.js';
import { arrayField, intField, type DeviceState } from '../../migration/vmstate.js';

/** Feature bits (5.1.3). */
export const VIRTIO_NET_F_CSUM = 0n;
export const VIRTIO_NET_F_GUEST_CSUM = 1n;
export const VIRTIO_NET_F_MAC = 5n;
export const VIRTIO_NET_F_GUEST_TSO4 = 7n;
export const VIRTIO_NET_F_HOST_TSO4 = 11n;
export const VIRTIO_NET_F_MRG_RXBUF = 15n;
export const VIRTIO_NET_F_STATUS = 16n;
const VIRTIO_NET_S_LINK_UP = 1;
/** virtio_net_hdr flags and gso_type values (5.1.6). */
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_NONE = 0;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
/** struct virtio_net_config (5.1.4) up to `status`: mac[6], le16 status. */
const CONFIG_SIZE = 8;
/** Frames held while the driver has posted no receive buffer. */
const HOLD_FRAMES = 256;
const HOLD_BYTES = 1 << 20;

/** QEMU's default MAC for the first NIC. */
export const DEFAULT_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

/** Parses a MAC address written as six colon-separated hex bytes; null when malformed. */
export function parseMac(s: string): Uint8Array | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(s);
  return m ? Uint8Array.from(m.slice(1), (h) => parseInt(h, 16)) : null;
}

/**
 * The header of a TCP/IPv4 segment for the guest's receive offloads (5.1.6.4): its checksum
 * is partial (NEEDS_CSUM from the TCP header on, field at byte 16), and one longer than
 * `mss` is a TCPV4 GSO packet of `mss`-byte segments behind hdr_len bytes of headers.
 */
function tsoHeader(hdr: Uint8Array, frame: Uint8Array, mss: number): void {
  const l4 = 14 + (frame[14]! & 15) * 4;
  const headers = l4 + (frame[l4 + 12]! >> 4) * 4;
  const le16 = (at: number, v: number): void => {
    hdr[at] = v & 0xff;
    hdr[at + 1] = v >> 8;
  };
  hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  if (frame.length - headers > mss) {
    hdr[1] = VIRTIO_NET_HDR_GSO_TCPV4;
    le16(4, mss);
  }
  le16(2, headers);
  le16(6, l4);
  le16(8, 16);
}

/** The network device (device ID 1), one queue pair. */
export class VirtioNet implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.NET;
  readonly queueMaxSizes = [256, 256] as const;
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;
  /** Frames for the guest dropped: no buffer and the hold queue full, or a buffer too small. */
  rxDropped = 0;
  /** Frames from the guest dropped as malformed (shorter than the header, longer than MAX_FRAME). */
  txDropped = 0;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private mem: GuestMemory | null = null;
  private rx: Virtqueue | null = null;
  private tx: Virtqueue | null = null;
  private hdrLen = 12;
  /** The driver accepted VIRTIO_NET_F_CSUM / VIRTIO_NET_F_HOST_TSO4. */
  private csum = false;
  private tso4 = false;
  /** Frames waiting for receive buffers, with what their header is to say. */
  private held: { frame: Uint8Array; tso?: TcpSegmentOffload }[] = [];
  private heldBytes = 0;

  constructor(private readonly backend: NetBackend, mac: Uint8Array = DEFAULT_MAC) {
    const offloads = backend.offloads
      ? (1n << VIRTIO_NET_F_CSUM) | (1n << VIRTIO_NET_F_HOST_TSO4) | (1n << VIRTIO_NET_F_GUEST_CSUM) | (1n << VIRTIO_NET_F_GUEST_TSO4)
      : 0n;
    this.features = (1n << VIRTIO_NET_F_MAC) | (1n << VIRTIO_NET_F_STATUS) | offloads;
    this.config.set(mac.subarray(0, 6));
    this.config[6] = VIRTIO_NET_S_LINK_UP;
    backend.onReceive = (f, tso) => this.receive(f, tso);
    backend.canReceive = () => this.rx !== null && this.held.length < HOLD_FRAMES && this.heldBytes < HOLD_BYTES;
  }

  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }

  /** The configuration space is read-only for a modern driver (5.1.4.2). */
  writeConfig(): void {}

  activate(a: VirtioActivation): void {
    this.attach(a);
    this.transmit();
    this.backend.receiveReady();
  }

  private attach(a: VirtioActivation): void {
    this.mem = a.mem;
    this.rx = a.queues[RECEIVEQ]!;
    this.tx = a.queues[TRANSMITQ]!;
    // 5.1.6: the header has num_buffers with VERSION_1 or MRG_RXBUF, else it is 10 bytes.
    this.hdrLen = a.features & ((1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_NET_F_MRG_RXBUF)) ? 12 : 10;
    this.csum = (a.features & (1n << VIRTIO_NET_F_CSUM)) !== 0n;
    this.tso4 = this.csum && (a.features & (1n << VIRTIO_NET_F_HOST_TSO4)) !== 0n;
    const guest = (1n << VIRTIO_NET_F_GUEST_CSUM) | (1n << VIRTIO_NET_F_GUEST_TSO4);
    this.backend.guestOffloads = this.backend.offloads === true && (a.features & guest) === guest;
  }

  queueNotify(index: number): void {
    if (index === RECEIVEQ) {
      this.flushHeld();
      if (this.backend.canReceive?.()) this.backend.receiveReady();
    } else if (index === TRANSMITQ) {
      this.transmit();
    }
  }

  reset(): void {
    this.backend.guestOffloads = false;
    this.mem = null;
    this.rx = null;
    this.tx = null;
    this.held = [];
    this.heldBytes = 0;
  }

  saveState(): DeviceState {
    return { mac: [...this.config.subarray(0, 6)], status: this.config[6]! | (this.config[7]! << 8) };
  }

  prepareLoad(s: DeviceState): (a: VirtioActivation | null) => void {
    const mac = new Uint8Array(6);
    arrayField(s, 'mac', mac);
    const status = intField(s, 'status', 0, 0xffff);
    return (a) => {
      this.config.set(mac);
      this.config[6] = status & 0xff;
      this.config[7] = status >> 8;
      if (a) this.attach(a);
      this.backend.guestRestored?.();
    };
  }

  /** A frame from the backend: into a posted buffer, else held, else dropped. */
  private receive(frame: Uint8Array, tso?: TcpSegmentOffload): void {
    if (!this.rx) return; // the driver is not running: nobody to receive
    if (this.held.length === 0 && this.put(frame, tso)) return;
    if (this.held.length >= HOLD_FRAMES || this.heldBytes + frame.length > HOLD_BYTES) {
      this.rxDropped++;
      return;
    }
    this.held.push({ frame, tso });
    this.heldBytes += frame.length;
  }

  private flushHeld(): void {
    while (this.held.length > 0 && this.put(this.held[0]!.frame, this.held[0]!.tso)) this.heldBytes -= this.held.shift()!.frame.length;
  }

  /**
   * Writes a frame behind its header into the next posted receive buffer; false when
   * there is none. Without mergeable buffers a frame must fit one chain (5.1.6.3.1):
   * one that does not is dropped and the chain returned empty.
   */
  private put(frame: Uint8Array, tso?: TcpSegmentOffload): boolean {
    const { mem, rx } = this;
    if (!mem || !rx) return false;
    const chain = rx.pop();
    if (!chain) return false;
    if (chain.writableLength < this.hdrLen + frame.length) {
      this.rxDropped++;
      rx.pushUsed(chain.head, 0);
      // A driver whose buffers cannot hold a 64 KiB segment (5.1.6.3.1 asks it for 65562 bytes):
      // the backend's retransmission then comes in MSS-sized frames.
      if (tso) this.backend.guestOffloads = false;
      return true;
    }
    const hdr = new Uint8Array(this.hdrLen); // flags 0, gso_type NONE, no checksum offsets
    if (tso) tsoHeader(hdr, frame, tso.mss);
    if (this.hdrLen === 12) hdr[10] = 1; // num_buffers (le16) is 1 without MRG_RXBUF
    const n = writeToChain(mem, chain, 0, hdr) + writeToChain(mem, chain, this.hdrLen, frame);
    rx.pushUsed(chain.head, n);
    return true;
  }

  /** Sends every posted transmit chain's frame (the part after the header) to the backend. */
  private transmit(): void {
    const { mem, tx } = this;
    if (!mem || !tx) return;
    for (let chain = tx.pop(); chain; chain = tx.pop()) {
      const len = chain.readableLength - this.hdrLen;
      if (len < 0 || len > MAX_FRAME) {
        this.txDropped++;
        tx.pushUsed(chain.head, 0);
        continue;
      }
      const frame = new Uint8Array(len);
      readFromChain(mem, chain, this.hdrLen, frame);
      tx.pushUsed(chain.head, 0);
      // Without offloads negotiated the header asks for nothing (5.1.6.2) and is not read.
      const partial = this.csum ? this.offload(mem, chain, len) : undefined;
      if (partial === null) {
        this.txDropped++;
        continue;
      }
      this.backend.send(frame, partial);
    }
  }

  /**
   * What the header of a transmitted frame of `len` bytes asks for: a checksum to
   * complete (undefined: none); null when it asks for what was not negotiated or points
   * outside the frame.
   */
  private offload(mem: GuestMemory, chain: DescriptorChain, len: number): PartialChecksum | undefined | null {
    const hdr = new Uint8Array(10);
    readFromChain(mem, chain, 0, hdr);
    const gso = hdr[1]!;
    const partial = (hdr[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0
      ? { start: hdr[6]! | (hdr[7]! << 8), offset: hdr[8]! | (hdr[9]! << 8) }
      : undefined;
    if (partial && partial.start + partial.offset + 2 > len) return null;
    // A segmentation request needs TSO4 (without the ECN bit, not offered) and a partial checksum.
    if (gso !== VIRTIO_NET_HDR_GSO_NONE && !(gso === VIRTIO_NET_HDR_GSO_TCPV4 && this.tso4 && partial)) return null;
    return partial;
  }
}
