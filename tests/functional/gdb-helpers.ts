/**
 * Test helpers for the gdbstub: running the real gdb-multiarch in batch mode against a
 * Vireo, a minimal GDB remote protocol client for what gdb's batch mode cannot do
 * (Ctrl-C at a chosen moment), a free TCP port, and a QMP session.
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { encodePacket, PacketDecoder } from '../../src/gdbstub/packet.js';

export const GDB = 'gdb-multiarch';

/** Why the gdb tests cannot run (gdb-multiarch missing), or false. */
export function gdbSkip(): string | false {
  const r = spawnSync(GDB, ['--version'], { stdio: 'ignore' });
  return r.error || r.status !== 0 ? `${GDB} is not installed (apt-get install gdb-multiarch)` : false;
}

/** A TCP port that was free a moment ago on the loopback address. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/**
 * Runs `gdb-multiarch -batch -nx` for riscv:rv64 connected to `port`, with `file` loaded
 * when given, then each of `commands` (`-ex`); resolves to its output (stdout and stderr).
 */
export function runGdb(port: number, commands: string[], file: string | null, timeoutMs: number): Promise<string> {
  const args = ['-batch', '-nx', '-ex', 'set architecture riscv:rv64', '-ex', 'set pagination off'];
  if (file !== null) args.push('-ex', `file ${file}`);
  args.push('-ex', `target remote 127.0.0.1:${port}`);
  for (const c of commands) args.push('-ex', c);
  return new Promise((resolve, reject) => {
    const child = spawn(GDB, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${GDB} timed out after ${timeoutMs / 1000} s:\n${out}`));
    }, timeoutMs);
    child.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/** Connects to `port` on the loopback address, retrying while nothing listens yet. */
export async function connectRetry(port: number, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A bare GDB remote protocol client: one request at a time, acknowledging every packet. */
export class RspClient {
  private readonly decoder = new PacketDecoder(1 << 16);
  private readonly packets: string[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      for (const inp of this.decoder.push(d)) {
        if (inp.kind !== 'packet') continue;
        socket.write('+');
        this.packets.push(inp.data.toString('latin1'));
      }
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number, timeoutMs = 20_000): Promise<RspClient> {
    return new RspClient(await connectRetry(port, timeoutMs));
  }

  /** The next packet from the stub. */
  async reply(timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length === 0) {
      if (this.closed) throw new Error('the stub closed the connection');
      if (Date.now() > deadline) throw new Error('no reply from the stub');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
    return this.packets.shift()!;
  }

  send(payload: string): void {
    this.socket.write(encodePacket(payload));
  }

  async ask(payload: string): Promise<string> {
    this.send(payload);
    return this.reply();
  }

  interrupt(): void {
    this.socket.write(Buffer.from([3]));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A QMP session on a Unix socket (one for a whole test: the server serves one client at a time). */
export class Qmp {
  private buf = '';
  private readonly lines: Array<Record<string, unknown>> = [];
  private wake: (() => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString();
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        this.lines.push(JSON.parse(this.buf.slice(0, i)) as Record<string, unknown>);
        this.buf = this.buf.slice(i + 1);
      }
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  /** Connects to `path` and negotiates capabilities. */
  static async open(path: string): Promise<Qmp> {
    const q = new Qmp(connect(path));
    await q.next(); // the greeting
    await q.execute('qmp_capabilities');
    return q;
  }

  private async next(): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 20_000;
    while (this.lines.length === 0) {
      if (Date.now() > deadline) throw new Error('no answer from QMP');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
    return this.lines.shift()!;
  }

  /** Runs `command`; resolves to its return value (events before it are skipped). */
  async execute(command: string): Promise<unknown> {
    this.socket.write(`${JSON.stringify({ execute: command })}\n`);
    for (;;) {
      const m = await this.next();
      if ('return' in m) return m.return;
      if ('error' in m) throw new Error(`${command}: ${JSON.stringify(m.error)}`);
    }
  }

  /** query-status: the run state's name. */
  async status(): Promise<string> {
    return ((await this.execute('query-status')) as { status: string }).status;
  }

  close(): void {
    this.socket.destroy();
  }
}
