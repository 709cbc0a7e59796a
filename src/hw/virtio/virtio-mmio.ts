/**
 * virtio-mmio transport (Virtio 1.2, section 4.2.2), version 2 register layout.
 *
 * For now a slot holds no device: it answers with DeviceID 0, which drivers skip
 * (section 4.2.3.1.1), exactly like an unused slot on QEMU's virt board.
 */
import type { MmioHandler } from '../core/memory.js';
import type { FdtBuilder } from '../core/fdt.js';

const MAGIC = 0x74726976; // "virt"
const VERSION = 2;
const VENDOR_ID = 0x554d4551; // "QEMU", as on QEMU's virt board

/** An empty virtio-mmio slot. */
export class VirtioMmioSlot implements MmioHandler {
  read(offset: number, size: number): number {
    if (size !== 4) return 0;
    switch (offset) {
      case 0x000: return MAGIC;
      case 0x004: return VERSION;
      case 0x008: return 0; // DeviceID: no device
      case 0x00c: return VENDOR_ID;
      default: return 0;
    }
  }

  write(_offset: number, _size: number, _value: number): void {}
}

/** Writes a virtio-mmio node as QEMU virt does, at the current position (inside /soc). */
export function virtioMmioFdtNode(f: FdtBuilder, base: number, size: number, irq: number, plicPhandle: number): void {
  f.beginNode(`virtio_mmio@${base.toString(16)}`);
  f.propU32('interrupts', irq);
  f.propU32('interrupt-parent', plicPhandle);
  f.propCells64('reg', [base, size]);
  f.propString('compatible', 'virtio,mmio');
  f.endNode();
}
