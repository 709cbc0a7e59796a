/**
 * Socket network backends, wire-compatible with QEMU's, for joining two emulators'
 * NICs into one Ethernet segment:
 *
 * - stream (`-netdev socket,listen=[HOST]:PORT` / `connect=HOST:PORT`, also what
 *   `-netdev stream` speaks over TCP): each frame is preceded by its length as a 4-byte
 *   big-endian number. The listening side serves one peer at a time and accepts the
 *   next one when it leaves.
 * - datagram (`-netdev dgram` with inet local and remote addresses, or
 *   `-netdev socket,udp=HOST:PORT,localaddr=HOST:PORT`): one frame per UDP datagram.
 *
 * The peer is as untrusted as the guest: a length over MAX_FRAME ends the connection,
 * and frames for the peer are dropped while its socket has too much unsent data.
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { UserError } from '../system/options.js';
import { MAX_FRAME, NetBackendBase } from './net.js';

/** A host address and port (as the command line parses listen= and connect=). */
export interface SocketAddress {
  host: string;
  port: number;
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

  /** Listens on `addr` (`listen=`); resolves once bound, rejects with UserError when it cannot be. */
  static listen(addr: SocketAddress): Promise<StreamNetdev> {
    const n = new StreamNetdev();
    return new Promise((resolve, reject) => {
      const server = createServer((s) => {
        if (n.peer) s.destroy(); // one peer at a time, as QEMU
        else n.attach(s);
      });
      n.server = server;
      server.on('error', (e) => reject(new UserError(`-netdev socket: listen ${addr.host}:${addr.port}: ${e.message}`)));
      server.listen(addr.port, addr.host, () => {
        const a = server.address();
        n.address = { host: addr.host, port: typeof a === 'object' && a ? a.port : addr.port };
        resolve(n);
      });
    });
  }

  /** Connects to `addr` (`connect=`); resolves when connected, rejects with UserError when refused. */
  static connect(addr: SocketAddress): Promise<StreamNetdev> {
    const n = new StreamNetdev();
    return new Promise((resolve, reject) => {
      const s = connect(addr.port, addr.host);
      const fail = (e: Error) => reject(new UserError(`-netdev socket: connect ${addr.host}:${addr.port}: ${e.message}`));
      s.once('error', fail);
      s.once('connect', () => {
        s.off('error', fail);
        n.attach(s);
        resolve(n);
      });
    });
  }

  /** Whether a peer is connected. */
  get connected(): boolean {
    return this.peer !== null;
  }

  private attach(s: Socket): void {
    this.peer = s;
    this.buf = Buffer.alloc(0);
    this.paused = false;
    s.setNoDelay(true);
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
 * (`remote.host` is a numeric address: senders are matched against it).
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

  /** Binds `local` and exchanges frames with `remote`; rejects with UserError when `local` cannot be bound. */
  static open(local: SocketAddress, remote: SocketAddress): Promise<DgramNetdev> {
    const sock = createSocket('udp4');
    return new Promise((resolve, reject) => {
      sock.once('error', (e) => reject(new UserError(`-netdev dgram: bind ${local.host}:${local.port}: ${e.message}`)));
      sock.bind(local.port, local.host, () => {
        sock.removeAllListeners('error');
        resolve(new DgramNetdev(sock, remote));
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
