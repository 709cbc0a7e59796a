/**
 * Network backends (QEMU's -netdev): what sits behind a guest NIC. The NIC hands the
 * backend each Ethernet frame the guest transmits; the backend delivers frames for the
 * guest through the callbacks the NIC installs. Frames are whole Ethernet frames
 * without FCS and without any virtio header.
 *
 * Flow control follows QEMU's net queue: a NIC that cannot take more frames (no posted
 * receive buffers and its hold queue full) answers false from canReceive; backends that
 * can wait (a TCP connection in slirp, a stream socket) stop producing until the NIC
 * calls receiveReady. Frames that cannot wait (ARP, UDP) are simply offered and may be
 * dropped, as on a real wire.
 */

/**
 * A frame whose transport checksum the guest left to the NIC (virtio's NEEDS_CSUM): the
 * 16-bit field at `start + offset` holds only the pseudo-header's sum, and the sum of the
 * bytes from `start` to the frame's end is still to be added.
 */
export interface PartialChecksum {
  start: number;
  offset: number;
}

/**
 * A TCP segment over IPv4 for a guest that took the receive offloads: it may be larger than
 * the MTU (up to 64 KiB), the guest's stack sees it as segments of `mss` bytes, and its TCP
 * checksum field holds only the pseudo-header's sum (the bytes never cross a wire).
 */
export interface TcpSegmentOffload {
  mss: number;
}

/** A host-side network backend connected to one guest NIC. */
export interface NetBackend {
  /**
   * A frame the guest transmitted. The backend owns `frame` from now on: the NIC must
   * pass a buffer it will not reuse. `partial` only comes to a backend with {@link offloads}.
   */
  send(frame: Uint8Array, partial?: PartialChecksum): void;
  /**
   * The backend takes what a NIC's transmit offloads produce: frames with a partial
   * checksum, and TCP segments over IPv4 larger than the MTU (up to {@link MAX_FRAME}),
   * which it takes whole rather than cut to the MSS. User networking does, since it ends
   * the guest's TCP connections itself; a backend that puts frames on a wire does not.
   */
  readonly offloads?: boolean;
  /** Installed by the NIC: takes one frame for the guest (the NIC owns it from then on). */
  onReceive: ((frame: Uint8Array, tso?: TcpSegmentOffload) => void) | null;
  /**
   * Set by the NIC of a backend with {@link offloads}: the guest takes frames with a
   * {@link TcpSegmentOffload} now (it negotiated the receive offloads).
   */
  guestOffloads: boolean;
  /** Installed by the NIC: false while it would drop frames offered to it. */
  canReceive: (() => boolean) | null;
  /** Called by the NIC when it can take frames again after canReceive returned false. */
  receiveReady(): void;
  /**
   * Called by the NIC when the guest was restored from a snapshot (loadvm): state kept
   * for the guest's connections no longer matches the guest's own and is dropped.
   */
  guestRestored?(): void;
  /** Releases host resources (sockets, listeners, timers). */
  close(): void;
}

/** Shared plumbing of the backends: the NIC's callbacks and helpers to use them. */
export abstract class NetBackendBase implements NetBackend {
  readonly offloads: boolean = false;
  guestOffloads = false;
  onReceive: ((frame: Uint8Array, tso?: TcpSegmentOffload) => void) | null = null;
  canReceive: (() => boolean) | null = null;

  abstract send(frame: Uint8Array, partial?: PartialChecksum): void;
  abstract close(): void;
  receiveReady(): void {}

  /** Whether the NIC would take a frame now (no NIC attached: it would be lost). */
  protected nicReady(): boolean {
    return this.onReceive !== null && (this.canReceive?.() ?? true);
  }

  /** Offers a frame to the NIC; without a NIC the frame is dropped, as on an unplugged cable. */
  protected deliver(frame: Uint8Array, tso?: TcpSegmentOffload): void {
    this.onReceive?.(frame, tso);
  }
}

/** Largest Ethernet frame (without FCS) any backend passes on: a 64 KiB IP packet plus headers. */
export const MAX_FRAME = 65536 + 14;
