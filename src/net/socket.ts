/**
 * Socket network backends, wire-compatible with QEMU's, for joining two emulators'
 * NICs into one Ethernet segment:
 *
 * - stream (`-netdev socket,listen=[HOST]:PORT` / `connect=HOST:PORT`, and
 *   `-netdev stream` over TCP or a Unix socket): each frame is preceded by its length as
 *   a 4-byte big-endian number. The listening side serves one peer at a time and accepts
 *   the next one when it leaves.
 * - datagram (`-netdev dgram` with inet local and remote addresses, or
 *   `-netdev socket,udp=HOST:PORT,localaddr=HOST:PORT`): one frame per UDP datagram.
 *
 * The peer is as untrusted as the guest: a length over MAX_FRAME ends the connection,
 * and frames for the peer are dropped while its socket has too much unsent data.
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, type Server, type Socket } from 'node:net';
import { UserError, type SocketAddr } from '../system/options.js';
import { connectTo, listenOn, socketErrorText } from '../chardev/socket.js';
import { MAX_FRAME, NetBackendBase } from './net.js';

/** A host address and port (as the command line parses listen= and connect=). */
export interface SocketAddress {
  host: string;
  port: number;
}

function toSocketAddr(a: SocketAddress | SocketAddr): SocketAddr {
  return 'type' in a ? a : { type: 'inet', host: a.host, port: a.port };
}

/** Unsent bytes towards the peer beyond which the guest's frames are dropped. */
const MAX_UNSENT = 1 << 20;

/** A stream socket backend: listening for, or connected to, one peer. */
export class StreamNetdev extends NetBackendBase {
  /** The listening address (listen mode), with the port actually bound. */
  address: SocketAddress | null = null;
  private peer: Socket | null = null;
  private server: Server | null = null;
  /** Received bytes not yet delivered: at most one frame plus one socket read. */
  private buf: Buffer = Buffer.alloc(0);
  private paused = false;

  private constructor() {
    super();
  }

  /**
   * Listens on `addr` (`listen=`, `-netdev stream,server=on`): a TCP address, or a Unix
   * socket path (replacing a socket file left there). Resolves once bound, rejects with a
   * UserError naming `what` when it cannot be.
   */
  static async listen(addr: SocketAddress | SocketAddr, what = '-netdev socket'): Promise<StreamNetdev> {
    const a = toSocketAddr(addr);
    const n = new StreamNetdev();
    const server = await listenOn(a, what);
    server.on('connection', (s: Socket) => {
      if (n.peer || !n.server) s.destroy(); // one peer at a time, as QEMU
      else n.attach(s);
    });
    n.server = server;
    const bound = server.address();
    if (a.type === 'inet') n.address = { host: a.host, port: typeof bound === 'object' && bound ? bound.port : a.port };
    return n;
  }

  /** Connects to `addr` (`connect=`, `-netdev stream,server=off`); rejects with a UserError when refused. */
  static async connect(addr: SocketAddress | SocketAddr, what = '-netdev socket'): Promise<StreamNetdev> {
    const s = await connectTo(toSocketAddr(addr), what);
    const n = new StreamNetdev();
    n.attach(s);
    return n;
  }

  /** Whether a peer is connected. */
  get connected(): boolean {
    return this.peer !== null;
  }

  private attach(s: Socket): void {
    this.peer = s;
    this.buf = Buffer.alloc(0);
    this.paused = false;
    if (s.remoteFamily !== undefined) s.setNoDelay(true); // TCP only
    s.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.drain();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (this.peer === s) this.peer = null;
    });
  }

  /** Delivers the whole frames received, while the NIC takes them. */
  private drain(): void {
    const s = this.peer;
    while (s && this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_FRAME) {
        s.destroy(); // a corrupt or hostile stream: the framing cannot be trusted any more
        return;
      }
      if (this.buf.length < 4 + len) return;
      if (this.onReceive && this.canReceive && !this.canReceive()) {
        this.paused = true;
        s.pause();
        return;
      }
      const frame = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      if (len > 0) this.deliver(frame);
    }
  }

  override receiveReady(): void {
    if (!this.paused) return;
    this.paused = false;
    this.peer?.resume();
    this.drain();
  }

  send(frame: Uint8Array): void {
    const s = this.peer;
    if (!s || s.writableLength > MAX_UNSENT) return; // no cable, or a peer not reading: the frame is lost
    const out = Buffer.allocUnsafe(4 + frame.length);
    out.writeUInt32BE(frame.length, 0);
    out.set(frame, 4);
    s.write(out);
  }

  close(): void {
    this.server?.close();
    this.server = null;
    this.peer?.destroy();
    this.peer = null;
  }
}

/**
 * A datagram socket backend: frames go to `remote` as UDP datagrams and come from it
 * (a host name for `remote.host` is looked up when opening: senders are matched against the address).
 */
export class DgramNetdev extends NetBackendBase {
  private closed = false;

  private constructor(private readonly sock: DgramSocket, private readonly remote: SocketAddress) {
    super();
    sock.on('message', (msg, from) => {
      // Only the configured peer may inject frames; datagrams from anyone else are dropped.
      if (from.port === remote.port && from.address === remote.host && msg.length <= MAX_FRAME) this.deliver(msg);
    });
    sock.on('error', () => {}); // a send that failed (peer not there yet): that frame is lost
  }

  /**
   * Binds `local` and exchanges frames with `remote` (a host name is looked up once, here:
   * datagrams are matched against the address); rejects with a UserError naming `what`
   * when `local` cannot be bound.
   */
  static async open(local: SocketAddress, remote: SocketAddress, what = '-netdev dgram'): Promise<DgramNetdev> {
    const numeric = async (a: SocketAddress): Promise<SocketAddress> => {
      if (isIP(a.host) !== 0) return a;
      try {
        const r = await lookup(a.host);
        return { host: r.address, port: a.port };
      } catch (e) {
        throw new UserError(`${what}: ${a.host}: ${socketErrorText(e as Error)}`);
      }
    };
    const peer = await numeric(remote);
    const family = isIP(peer.host);
    const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      sock.once('error', (e) => {
        sock.close();
        reject(new UserError(`${what}: cannot bind ${local.host}:${local.port}: ${socketErrorText(e)}`));
      });
      sock.bind(local.port, local.host, () => {
        sock.removeAllListeners('error');
        resolve(new DgramNetdev(sock, peer));
      });
    });
  }

  /** The bound local port. */
  get port(): number {
    return this.sock.address().port;
  }

  send(frame: Uint8Array): void {
    if (!this.closed) this.sock.send(frame, this.remote.port, this.remote.host);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}
