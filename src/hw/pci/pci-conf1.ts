/**
 * PCI configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): the PC's
 * CONFIG_ADDRESS register at I/O port 0xcf8 and CONFIG_DATA at 0xcfc-0xcff. A 32-bit
 * write to 0xcf8 selects enable (bit 31), bus (23:16), device (15:11), function (10:8)
 * and dword register (7:2); accesses of 1, 2 or 4 bytes to 0xcfc + n then reach that
 * register plus n. x86 kernels use it for the first 256 bytes of every function.
 *
 * The handler covers ports 0xcf8-0xcff. Only 32-bit accesses reach CONFIG_ADDRESS:
 * narrower ones at 0xcf8-0xcfb belong to other chipset registers (0xcf9 is the PIIX
 * reset control register), which this board does not have, so they read as all ones.
 */
import type { MmioHandler } from '../core/memory.js';
import { allOnes } from './pci.js';
import type { PciBus } from './pci-bus.js';

/** The I/O ports the handler decodes: CONFIG_ADDRESS then CONFIG_DATA. */
export const PCI_CONF1_PORT = 0xcf8;
export const PCI_CONF1_SIZE = 8;

const ENABLE = 0x8000_0000;
const DATA = 4;

export class PciConf1 implements MmioHandler {
  private address = 0;

  /** @param bus bus 0: the only bus; addresses of other buses read as absent */
  constructor(private readonly bus: PciBus) {}

  read(offset: number, size: number): number {
    if (offset < DATA) return offset === 0 && size === 4 ? this.address : allOnes(size);
    const target = this.target(offset, size);
    return target ? this.bus.readConfig(target.device, target.func, target.reg, size) : allOnes(size);
  }

  write(offset: number, size: number, value: number): void {
    if (offset < DATA) {
      // Bits 1:0 are reserved and read as 0 (3.2.2.3.2).
      if (offset === 0 && size === 4) this.address = (value & ~3) >>> 0;
      return;
    }
    const target = this.target(offset, size);
    if (target) this.bus.writeConfig(target.device, target.func, target.reg, size, value);
  }

  /** The function and register CONFIG_ADDRESS selects for a data access, or null when disabled or elsewhere. */
  private target(offset: number, size: number): { device: number; func: number; reg: number } | null {
    const a = this.address;
    const byte = offset - DATA;
    if (!(a & ENABLE) || ((a >>> 16) & 0xff) !== 0 || byte % size !== 0 || byte + size > 4) return null;
    return { device: (a >>> 11) & 0x1f, func: (a >>> 8) & 7, reg: (a & 0xfc) + byte };
  }
}
