/**
 * HTIF, the Berkeley host-target interface used by bare-metal RISC-V test programs:
 * the guest writes a command to the `tohost` doubleword and the host answers in
 * `fromhost`. Only two commands exist here, as in QEMU: device 0 "exit" (payload
 * `(code << 1) | 1`) and device 1 "console putchar". The host polls tohost between
 * CPU time slices; a program spins after writing it, so polling loses nothing.
 */
import type { Chardev } from '../../chardev/chardev.js';

/** Result of {@link Htif.poll}: the guest asked to exit with this status. */
export interface HtifExit {
  code: number;
}

export class Htif {
  private readonly view: DataView;

  /** `tohost`/`fromhost` are offsets of the two doublewords inside `ram`. */
  constructor(ram: Uint8Array, private readonly tohost: number, private readonly fromhost: number | null,
    private readonly console: Chardev) {
    if (tohost < 0 || tohost + 8 > ram.length) throw new RangeError('tohost outside RAM');
    if (fromhost !== null && (fromhost < 0 || fromhost + 8 > ram.length)) throw new RangeError('fromhost outside RAM');
    this.view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  }

  /** Serves a pending command; returns the exit request if the program finished. */
  poll(): HtifExit | null {
    const lo = this.view.getUint32(this.tohost, true);
    const hi = this.view.getUint32(this.tohost + 4, true);
    if (lo === 0 && hi === 0) return null;
    const device = hi >>> 24;
    const cmd = (hi >>> 16) & 0xff;
    this.view.setBigUint64(this.tohost, 0n, true);
    if (device === 0 && cmd === 0 && (lo & 1) === 1) {
      // The payload is (code << 1) | 1 in the low 48 bits; exit statuses are 8 bits.
      return { code: (lo >>> 1) & 0xff };
    }
    if (device === 1 && cmd === 1) {
      this.console.write(Uint8Array.of(lo & 0xff));
      if (this.fromhost !== null) this.view.setUint32(this.fromhost + 4, (1 << 24) | (1 << 16), true);
    }
    return null;
  }
}
