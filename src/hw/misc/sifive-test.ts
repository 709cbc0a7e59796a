/**
 * SiFive test finisher ("sifive,test0"), as on QEMU's virt board (base 0x100000,
 * size 0x1000): writing a status word to offset 0 ends the machine. Low 16 bits:
 * 0x5555 = pass (power off, exit 0), 0x3333 = fail with exit code in bits 31..16,
 * 0x7777 = reset. Linux reaches it through the syscon-poweroff/syscon-reboot nodes.
 * Map the region with valid = {2, 4}.
 */
import type { MmioHandler } from '../core/memory.js';
import type { FdtBuilder } from '../core/fdt.js';

const FINISHER_FAIL = 0x3333;
const FINISHER_PASS = 0x5555;
const FINISHER_RESET = 0x7777;

/** What the guest asked the finisher for. */
export type ShutdownEvent = { kind: 'poweroff'; code: number } | { kind: 'reset' };

/** The finisher: write-only; reads return 0. */
export class SifiveTest implements MmioHandler {
  constructor(private readonly onShutdown: (event: ShutdownEvent) => void) {}

  read(_offset: number, _size: number): number {
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (offset !== 0 || size < 2) return;
    const code = size === 4 ? value >>> 16 : 0;
    switch (value & 0xffff) {
      case FINISHER_PASS: this.onShutdown({ kind: 'poweroff', code: 0 }); break;
      case FINISHER_FAIL: this.onShutdown({ kind: 'poweroff', code }); break;
      case FINISHER_RESET: this.onShutdown({ kind: 'reset' }); break;
      default: break; // other values are ignored
    }
  }
}

/**
 * Writes the finisher node as QEMU virt does, at the current position (inside /soc).
 * It is a syscon: give it a phandle for {@link sifiveTestSysconFdtNodes}.
 */
export function sifiveTestFdtNode(f: FdtBuilder, base: number, size: number, phandle: number): void {
  f.beginNode(`test@${base.toString(16)}`);
  f.propU32('phandle', phandle);
  f.propCells64('reg', [base, size]);
  f.propStrings('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
  f.endNode();
}

/**
 * Writes the "poweroff" (syscon-poweroff, value 0x5555) and "reboot" (syscon-reboot,
 * value 0x7777) nodes pointing at the finisher, at the current position (QEMU 7.2
 * puts them at the root).
 */
export function sifiveTestSysconFdtNodes(f: FdtBuilder, testPhandle: number): void {
  for (const [name, value] of [['poweroff', FINISHER_PASS], ['reboot', FINISHER_RESET]] as const) {
    f.beginNode(name);
    f.propU32('value', value);
    f.propU32('offset', 0);
    f.propU32('regmap', testPhandle);
    f.propString('compatible', `syscon-${name}`);
    f.endNode();
  }
}
