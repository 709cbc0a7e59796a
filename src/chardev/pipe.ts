/**
 * The pipe character device (QEMU's `-chardev pipe,path=P` and `-serial pipe:P`): named
 * pipes made beforehand with mkfifo. As in QEMU, `P.in` (host to guest) and `P.out`
 * (guest to host) are used when both exist, else `P` carries both directions. The pipes
 * are opened read-write, so opening never waits for the other end and a writer that
 * comes and goes is not an end of input.
 *
 * Input is held as with every chardev (and the pipe paused while 64 KiB wait); output
 * towards a reader that does not keep up is dropped past MAX_UNSENT bytes.
 */
import { closeSync, constants, existsSync, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { Chardev } from './chardev.js';
import { UserError } from '../system/options.js';

const MAX_UNSENT = 1 << 20;

function openFifo(path: string, what: string): number {
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  if (!fstatSync(fd).isFIFO()) {
    closeSync(fd);
    throw new UserError(`${what}: ${path} is not a named pipe (create it with mkfifo)`);
  }
  return fd;
}

/** Named pipes as a character device. */
export class PipeChardev extends Chardev {
  private readonly input: Socket;
  private readonly output: Socket;
  private closed = false;

  /** Opens the pipes; throws Node's file-system error (ENOENT, ...) or a UserError. */
  constructor(readonly path: string, what = '-chardev pipe') {
    super();
    const split = existsSync(`${path}.in`) && existsSync(`${path}.out`);
    const inFd = openFifo(split ? `${path}.in` : path, what);
    let outFd = inFd;
    if (split) {
      try {
        outFd = openFifo(`${path}.out`, what);
      } catch (e) {
        closeSync(inFd);
        throw e;
      }
    }
    if (split) {
      this.input = new Socket({ fd: inFd, readable: true, writable: false });
      this.output = new Socket({ fd: outFd, readable: false, writable: true });
    } else {
      this.input = this.output = new Socket({ fd: inFd, readable: true, writable: true });
    }
    this.input.on('data', (chunk: Buffer) => this.receiveFrom(this.input, chunk));
    this.input.on('error', () => {});
    this.output.on('error', () => {});
  }

  override write(data: Uint8Array): void {
    if (this.closed || data.length === 0 || this.output.writableLength > MAX_UNSENT) return;
    this.output.write(Buffer.from(data));
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.destroy();
    if (this.output !== this.input) this.output.destroy();
  }
}
