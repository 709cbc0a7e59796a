/**
 * The file character device (QEMU's `-serial file:PATH`, `-chardev file,path=PATH`): guest
 * output is written to a file, created or truncated when the device opens, as QEMU does
 * (appended to with `append=on`). There is no input.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Chardev } from './chardev.js';

/** Guest output to a host file; opening throws Node's file-system error (ENOENT, EACCES, ...). */
export class FileChardev extends Chardev {
  private fd: number | null;

  constructor(readonly path: string, opts: { append?: boolean } = {}) {
    super();
    this.fd = openSync(path, opts.append === true ? 'a' : 'w');
  }

  /** Written synchronously, so nothing is lost if the emulator exits right after. */
  override write(data: Uint8Array): void {
    if (this.fd === null) return;
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done);
  }

  override close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}
