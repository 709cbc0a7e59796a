/**
 * The live migration stream between two Vireo processes (docs/migration.md): records of
 * one type byte, a little-endian u32 payload length and the payload, sent by the source
 * over one TCP or Unix socket connection. The destination answers once, with one line:
 * `ok` after it loaded the machine state, or `error: WHY`.
 *
 * Everything read from the stream comes from another process and is checked: a record
 * longer than MAX_RECORD, an unknown type or a page outside RAM ends the migration.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export const enum Rec {
  /** JSON: the stream format and the machine configuration, which must match the destination's. */
  Hello = 1,
  /** Pages of RAM: entries of u32 page index, u8 kind (0: all zeros, 1: 4096 bytes follow). */
  Pages = 2,
  /** The machine state without RAM (CPUs, devices, clock), as the board saves it for snapshots. */
  State = 3,
  /** The last record: the destination loads the state and answers. */
  End = 4,
}

export const PAGE = 4096;
/** The largest record accepted (the machine state and a batch of pages fit well below). */
const MAX_RECORD = 64 * 2 ** 20;
/** The destination's answer: at most one short line. */
const MAX_REPLY = 4096;

/** A migration that cannot go on; the message is one line for the user. */
export class MigrationError extends Error {}

/** Where a migration goes: `tcp:HOST:PORT` (HOST may be empty or a bracketed IPv6 address) or `unix:PATH`. */
export type MigrationAddress = { host: string; port: number } | { path: string };

export function parseMigrationUri(uri: string): MigrationAddress {
  if (uri.startsWith('unix:') && uri.length > 5) return { path: uri.slice(5) };
  const m = /^tcp:(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(uri);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new MigrationError(`invalid migration URI '${uri}' (expected tcp:HOST:PORT or unix:PATH)`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '127.0.0.1' : host, port };
}

/** Connects to a destination; rejects with a MigrationError. */
export function connectTo(addr: MigrationAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = 'path' in addr ? connect(addr.path) : connect(addr.port, addr.host);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => reject(new MigrationError(`cannot connect to the destination: ${e.message}`)));
  });
}

/** Listens for the source's connection; resolves once listening, calls `accepted` for the first connection only. */
export function listenAt(addr: MigrationAddress, accepted: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      server.close();
      accepted(s);
    });
    server.once('error', (e) => reject(new MigrationError(`cannot listen for the migration: ${e.message}`)));
    const ready = (): void => {
      server.removeAllListeners('error');
      resolve(server);
    };
    if ('path' in addr) server.listen(addr.path, ready);
    else server.listen(addr.port, addr.host, ready);
  });
}

/** Writes records with back-pressure and counts the bytes. */
export class RecordWriter {
  bytes = 0;
  private failure: Error | null = null;

  constructor(private readonly socket: Socket) {
    socket.on('error', (e) => { this.failure ??= e; });
    socket.on('close', () => { this.failure ??= new Error('the destination closed the connection'); });
  }

  /** Sends one record; resolves when the socket can take more. */
  private check(): void {
    if (this.failure) throw new MigrationError(`migration stream: ${this.failure.message}`);
  }

  async send(type: Rec, payload: Uint8Array = new Uint8Array(0)): Promise<void> {
    this.check();
    const head = Buffer.alloc(5);
    head[0] = type;
    head.writeUInt32LE(payload.length, 1);
    this.bytes += 5 + payload.length;
    this.socket.write(head);
    if (!this.socket.write(payload)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      });
    }
    this.check();
  }
}

/** Reads bytes from a socket as they come: whole records, or the answer line. */
export class StreamReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended: string | null = null;
  private waiter: (() => void) | null = null;

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.wake();
    });
    socket.on('end', () => this.end('the other side closed the connection'));
    socket.on('close', () => this.end('the connection closed'));
    socket.on('error', (e) => this.end(e.message));
  }

  private end(why: string): void {
    this.ended ??= why;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Resolves once `n` bytes are buffered (or throws when the stream ended first). */
  private async want(n: number): Promise<void> {
    while (this.length < n) {
      if (this.ended !== null) throw new MigrationError(`migration stream: ${this.ended}`);
      await new Promise<void>((r) => { this.waiter = r; });
    }
  }

  /** The first `n` buffered bytes (copied only when they span chunks). */
  private take(n: number): Buffer {
    let used = 0;
    let k = 0;
    while (used < n) used += this.chunks[k++]!.length;
    const joined = k === 1 ? this.chunks[0]! : Buffer.concat(this.chunks.slice(0, k), used);
    const rest = joined.subarray(n);
    this.chunks.splice(0, k, ...(rest.length > 0 ? [rest] : []));
    this.length -= n;
    return joined.subarray(0, n);
  }

  async record(): Promise<{ type: number; payload: Buffer }> {
    await this.want(5);
    const head = this.take(5);
    const len = head.readUInt32LE(1);
    if (len > MAX_RECORD) throw new MigrationError(`migration stream: a record of ${len} bytes`);
    await this.want(len);
    return { type: head[0]!, payload: this.take(len) };
  }

  /** The first line, if one has come (without the newline); nothing is consumed. */
  answered(): string | null {
    const all = Buffer.concat(this.chunks, this.length);
    const nl = all.indexOf(10);
    return nl >= 0 ? all.subarray(0, nl).toString('utf8') : null;
  }

  /** The destination's answer line (without the newline). */
  async line(): Promise<string> {
    for (;;) {
      const all = this.chunks.length > 0 ? Buffer.concat(this.chunks, this.length) : Buffer.alloc(0);
      const nl = all.indexOf(10);
      if (nl >= 0) return all.subarray(0, nl).toString('utf8');
      if (all.length > MAX_REPLY) throw new MigrationError('migration stream: the destination answered garbage');
      await this.want(all.length + 1);
    }
  }
}
