/**
 * The socket character device (QEMU's `-chardev socket`): a TCP (`host=`,`port=`) or
 * Unix (`path=`) stream socket, as a server (`server=on`: listen and serve one client at
 * a time, the next one once it leaves) or as a client (connect once at start-up; a
 * failure is a one-line error).
 *
 * Host input is held, never dropped: while more than 64 KiB wait for the frontend
 * the socket is paused (Chardev.receiveFrom), so the peer is slowed down by TCP instead.
 * Guest output goes to the client; with no client it is discarded, as in QEMU. A peer
 * that does not read makes {@link SocketChardev.writeBlocked} true, which a frontend that
 * can wait (virtio-serial) honours; past MAX_UNSENT bytes further output is dropped, so
 * a frontend that cannot wait (the UART) never makes the emulator's memory grow.
 *
 * The listen and connect helpers here are shared with the socket network backends.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Chardev } from './chardev.js';
import { UserError, type SocketAddr } from '../system/options.js';

/** Output towards a client that does not read beyond which bytes are dropped. */
const MAX_UNSENT = 1 << 20;

/** The C library's wording for the socket errors a user meets (Node only gives the code). */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ENOENT: 'No such file or directory',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTSOCK: 'Socket operation on non-socket',
  ECONNRESET: 'Connection reset by peer',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  ENOTDIR: 'Not a directory',
  ENAMETOOLONG: 'File name too long',
  ENOTFOUND: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
  EINVAL: 'Invalid argument',
};

/** A socket error as one short phrase ("Connection refused"). */
export function socketErrorText(e: Error): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && SOCKET_ERRORS[code] !== undefined ? SOCKET_ERRORS[code] : e.message;
}

/** `unix:PATH` or `tcp:HOST:PORT`, as QEMU prints socket addresses. */
export function describeAddr(a: SocketAddr): string {
  return a.type === 'unix' ? `unix:${a.path}` : `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/**
 * Listens on `addr`; rejects with a UserError naming `what` when it cannot. A socket file
 * left at a Unix path by an earlier run is replaced (anything else there is an error).
 */
export function listenOn(addr: SocketAddr, what: string): Promise<Server> {
  if (addr.type === 'unix') removeStaleSocket(addr.path);
  const server = createServer({ pauseOnConnect: false });
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => reject(new UserError(`${what}: cannot listen on ${describeAddr(addr)}: ${socketErrorText(e)}`));
    server.once('error', fail);
    const bound = () => {
      server.off('error', fail);
      server.on('error', () => {}); // accept errors (EMFILE) after start-up: the next client is served later
      resolve(server);
    };
    if (addr.type === 'unix') server.listen(addr.path, bound);
    else server.listen(addr.port, addr.host, bound);
  });
}

/** Connects to `addr`; rejects with a UserError naming `what` when refused or unreachable. */
export function connectTo(addr: SocketAddr, what: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = addr.type === 'unix' ? connect(addr.path) : connect(addr.port, addr.host);
    const fail = (e: Error) => {
      s.destroy();
      reject(new UserError(`${what}: cannot connect to ${describeAddr(addr)}: ${socketErrorText(e)}`));
    };
    s.once('error', fail);
    s.once('connect', () => {
      s.off('error', fail);
      resolve(s);
    });
  });
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there (or not ours to remove): listen reports what is wrong.
  }
}

/** Construction options for {@link SocketChardev.open}. */
export interface SocketChardevOptions {
  addr: SocketAddr;
  /** Listen (true) or connect (false). */
  server: boolean;
  /** Server only: resolve only once the first client has connected (QEMU's wait=on). */
  wait?: boolean;
  /** Names the device in error messages (`-chardev socket,id=c0`). */
  what?: string;
  /** Called once the server is listening when it is about to wait for its first client. */
  onWaiting?: (addr: SocketAddr) => void;
}

/** A stream socket as a character device. */
export class SocketChardev extends Chardev {
  /** The address listened on (server) or connected to (client); for TCP with the port actually bound. */
  readonly address: SocketAddr;
  private server: Server | null;
  private client: Socket | null = null;
  /** Clients that connected while another was served: taken in turn, as QEMU accepts one after the other. */
  private readonly waiting: Socket[] = [];
  private closed = false;

  private constructor(address: SocketAddr, server: Server | null) {
    super();
    this.address = address;
    this.server = server;
    server?.on('connection', (s) => {
      if (this.closed) {
        s.destroy();
      } else if (this.client) {
        // One client at a time: the next waits, unread, until this one leaves.
        s.pause();
        this.waiting.push(s);
        s.once('close', () => {
          const i = this.waiting.indexOf(s);
          if (i >= 0) this.waiting.splice(i, 1);
        });
      } else {
        this.attach(s);
      }
    });
  }

  /** Opens the socket; rejects with a UserError when it cannot listen or connect. */
  static async open(o: SocketChardevOptions): Promise<SocketChardev> {
    const what = o.what ?? '-chardev socket';
    if (!o.server) {
      const s = await connectTo(o.addr, what);
      const c = new SocketChardev(o.addr, null);
      c.attach(s);
      return c;
    }
    const server = await listenOn(o.addr, what);
    const bound = server.address();
    const addr: SocketAddr = o.addr.type === 'inet' && typeof bound === 'object' && bound !== null
      ? { type: 'inet', host: o.addr.host, port: bound.port } : o.addr;
    const c = new SocketChardev(addr, server);
    if (o.wait) {
      o.onWaiting?.(addr);
      await new Promise<void>((resolve) => server.once('connection', () => resolve()));
    }
    return c;
  }

  /** Whether a client (server mode) or the server (client mode) is connected. */
  override get connected(): boolean {
    return this.client !== null;
  }

  override get writeBlocked(): boolean {
    return this.client?.writableNeedDrain ?? false;
  }

  /** Guest output: copied, sent to the peer; discarded with no peer or one that stopped reading. */
  override write(data: Uint8Array): void {
    const s = this.client;
    if (!s || s.writableLength > MAX_UNSENT || data.length === 0) return;
    s.write(Buffer.from(data));
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server?.close(); // also removes a Unix socket file
    this.server = null;
    this.client?.destroy();
    this.client = null;
    for (const q of this.waiting.splice(0)) q.destroy();
  }

  private attach(s: Socket): void {
    this.client = s;
    this.forgetPausedSource();
    if (this.address.type === 'inet') s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => {
      if (this.client !== s) return;
      this.receiveFrom(s, chunk);
    });
    s.on('drain', () => {
      if (this.client === s) this.writable();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (this.client !== s) return;
      this.client = null;
      this.forgetPausedSource();
      this.setOpen(false);
      this.writable(); // held output is discarded now instead of waiting for a drain that will not come
      const next = this.waiting.shift();
      if (next && !this.closed) {
        next.resume();
        this.attach(next);
      }
    });
    this.setOpen(true);
  }
}
