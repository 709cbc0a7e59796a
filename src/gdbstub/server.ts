/**
 * The gdbstub's socket (QEMU's `-gdb tcp::PORT`, `-s`): a TCP server for one gdb at a time
 * (another one is turned away while it is connected). As in QEMU, a gdb connecting stops
 * the machine; `D` lets it run on and ends the session; a connection lost without `D`
 * removes the breakpoints and leaves the machine as it is. When the machine ends, gdb is
 * told with a `W` packet (the exit status).
 */
import type { Server, Socket } from 'node:net';
import { listenOn } from '../chardev/socket.js';
import type { SocketAddr } from '../system/options.js';
import { PacketDecoder, encodePacket } from './packet.js';
import { GdbStub, PACKET_SIZE } from './gdbstub.js';
import type { GdbTarget } from './target.js';

/** How long the `W` packet may take to leave when the machine ends (ms). */
const FLUSH_MS = 1000;

/** One gdb on a socket: framing and acknowledgements around a {@link GdbStub}. */
class GdbConnection {
  private readonly decoder = new PacketDecoder(PACKET_SIZE);
  private readonly stub: GdbStub;
  /** Packets are handled one at a time, in order; the first waits for the machine to stop. */
  private queue: Promise<void>;
  private last: Buffer | null = null;
  private closed = false;

  constructor(private readonly socket: Socket, target: GdbTarget, onClose: () => void) {
    this.stub = new GdbStub(target, { send: (p) => this.send(p), detached: () => socket.end() });
    this.queue = target.stop().catch(() => {});
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.input(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.stub.close();
      onClose();
    });
  }

  private input(chunk: Buffer): void {
    for (const inp of this.decoder.push(chunk)) {
      switch (inp.kind) {
        case 'packet': {
          if (!this.stub.noAck) this.socket.write('+');
          const data = inp.data;
          this.queue = this.queue.then(() => (this.closed ? undefined : this.stub.packet(data)));
          break;
        }
        case 'bad':
          if (!this.stub.noAck) this.socket.write('-');
          break;
        case 'nack':
          if (!this.stub.noAck && this.last !== null) this.socket.write(this.last);
          break;
        case 'interrupt':
          // In order with the packets before it: a Ctrl-C right after `c` interrupts that `c`.
          this.queue = this.queue.then(() => this.stub.interrupt());
          break;
        case 'ack':
          break;
      }
    }
  }

  send(payload: string | Uint8Array): void {
    if (this.closed) return;
    this.last = encodePacket(payload);
    this.socket.write(this.last);
  }

  /** Tells gdb the machine ended with `status`, then closes. */
  async end(status: number): Promise<void> {
    this.send(`W${(status & 0xff).toString(16).padStart(2, '0')}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, FLUSH_MS);
      this.socket.end(() => {
        clearTimeout(t);
        resolve();
      });
    });
    this.socket.destroy();
  }
}

/** The listening gdbstub. */
export class GdbServer {
  private conn: GdbConnection | null = null;

  private constructor(private readonly server: Server, private readonly target: GdbTarget) {
    server.on('connection', (s: Socket) => {
      if (this.conn !== null) {
        s.destroy();
        return;
      }
      const c = new GdbConnection(s, target, () => {
        if (this.conn === c) this.conn = null;
      });
      this.conn = c;
    });
  }

  /** Listens on `addr`; rejects with a UserError naming `what` when it cannot. */
  static async listen(target: GdbTarget, addr: SocketAddr, what: string): Promise<GdbServer> {
    return new GdbServer(await listenOn(addr, what), target);
  }

  /** The machine ended with exit status `status`: tells gdb, stops listening. */
  async close(status: number): Promise<void> {
    this.server.close();
    const c = this.conn;
    this.conn = null;
    this.target.onStop = null;
    if (c !== null) await c.end(status);
  }
}
