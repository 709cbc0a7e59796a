/**
 * Generic PCI Express host bridge ("GPEX", as QEMU's riscv virt and arm virt boards have):
 * configuration space through ECAM (PCI Express Base Specification, 7.2.2 "PCI Express
 * Enhanced Configuration Access Mechanism"), CPU windows onto PCI I/O and memory space,
 * the host bridge itself as function 00.0, and four INTx lines.
 *
 * ECAM gives each function 4 KiB at offset bus << 20 | device << 15 | function << 12.
 * Only bus 0 exists (there are no bridges), so every other bus reads as empty.
 *
 * The OS learns all this from the device tree node written by {@link gpexFdtNode}
 * (Documentation/devicetree/bindings/pci/host-generic-pci.yaml and the PCI bus binding,
 * IEEE 1275 "PCI Bus Binding to Open Firmware": 3-cell PCI addresses, ranges, and an
 * interrupt-map for the INTx swizzle).
 */
import { AddressSpace, BUS_ERROR, type MmioHandler, type MmioRegion } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import { cells64, type FdtBuilder } from '../core/fdt.js';
import { PciFunction, PCI_SUBDEVICE_ID_QEMU, PCI_SUBVENDOR_ID_QEMU, allOnes, validAccess, type PciSpaces } from './pci.js';
import { PciBus } from './pci-bus.js';

/** A CPU physical address range. */
export interface AddressRange {
  base: number;
  size: number;
}

/**
 * Where the host bridge sits in CPU physical address space. The I/O window shows PCI
 * I/O addresses from 0; the memory windows show PCI memory at the same addresses (1:1).
 */
export interface GpexLayout {
  ecam: AddressRange;
  pio: AddressRange;
  mmio32: AddressRange;
  mmio64: AddressRange;
}

/** QEMU's IDs for its generic host bridge (docs/specs/pci-ids: 1b36:0008 PCIe host bridge). */
const GPEX_VENDOR_ID = 0x1b36;
const GPEX_DEVICE_ID = 0x0008;
const CLASS_BRIDGE_HOST = 0x060000;

const ECAM_BUS_SHIFT = 20;
const ECAM_DEVFN_SHIFT = 12;
const ECAM_FUNCTION_SIZE = 4096;

/** A CPU window onto a PCI address space: offset 0 of the window is PCI address `pciBase`. */
export class PciWindow implements MmioHandler {
  constructor(private readonly space: AddressSpace, private readonly pciBase: number) {}

  /** Nothing decoding the address is a master abort: all ones. */
  read(offset: number, size: number): number {
    const v = this.space.read(this.pciBase + offset, size);
    return v === BUS_ERROR ? allOnes(size) : v;
  }

  write(offset: number, size: number, value: number): void {
    this.space.write(this.pciBase + offset, size, value);
  }
}

/** The ECAM region: decodes bus/device/function/register and forwards to bus 0. */
class Ecam implements MmioHandler {
  constructor(private readonly bus: PciBus) {}

  read(offset: number, size: number): number {
    const f = this.target(offset, size);
    return f ? f.readConfig(offset % ECAM_FUNCTION_SIZE, size) : allOnes(size);
  }

  write(offset: number, size: number, value: number): void {
    this.target(offset, size)?.writeConfig(offset % ECAM_FUNCTION_SIZE, size, value);
  }

  private target(offset: number, size: number): PciFunction | null {
    if (!validAccess(offset % ECAM_FUNCTION_SIZE, size, ECAM_FUNCTION_SIZE)) return null;
    if (Math.floor(offset / 2 ** ECAM_BUS_SHIFT) !== 0) return null; // only bus 0 exists
    const devfn = (offset >>> ECAM_DEVFN_SHIFT) & 0xff;
    return this.bus.find(devfn >>> 3, devfn & 7);
  }
}

/** The host bridge: bus 0 with the bridge itself as 00.0 (devices go at 1-31), reached through ECAM and the windows. */
export class GpexHost {
  readonly bus: PciBus;
  readonly ecam: MmioHandler;
  /** PCI memory and I/O space, where BARs get mapped. */
  readonly spaces: PciSpaces;
  /** The host bridge function itself (00.0), whose configuration the OS programs too. */
  readonly bridge: PciFunction;

  /** @param intx the four interrupt controller inputs INTA-INTD are routed to, in order */
  constructor(intx: readonly IrqLine[]) {
    this.spaces = { mem: new AddressSpace(), io: new AddressSpace() };
    this.bus = new PciBus(this.spaces, intx);
    this.ecam = new Ecam(this.bus);
    this.bridge = new PciFunction({
      vendorId: GPEX_VENDOR_ID, deviceId: GPEX_DEVICE_ID, classCode: CLASS_BRIDGE_HOST,
      subsystemVendorId: PCI_SUBVENDOR_ID_QEMU, subsystemId: PCI_SUBDEVICE_ID_QEMU,
    });
    this.bus.plug(this.bridge, 0);
  }

  /** The regions a board adds to its system AddressSpace: ECAM and the three windows. */
  regions(layout: GpexLayout): MmioRegion[] {
    const impl = { min: 1, max: 4 };
    return [
      { name: 'pcie-ecam', ...layout.ecam, handler: this.ecam, valid: { min: 1, max: 4 }, impl },
      { name: 'pcie-pio', ...layout.pio, handler: new PciWindow(this.spaces.io, 0), impl },
      { name: 'pcie-mmio', ...layout.mmio32, handler: new PciWindow(this.spaces.mem, layout.mmio32.base), impl },
      { name: 'pcie-mmio-high', ...layout.mmio64, handler: new PciWindow(this.spaces.mem, layout.mmio64.base), impl },
    ];
  }
}

/** PCI address space codes in the first cell of a 3-cell PCI address (PCI Bus Binding, 2.2.1.1). */
const PCI_SPACE_IO = 0x01000000;
const PCI_SPACE_MEM32 = 0x02000000;
const PCI_SPACE_MEM64 = 0x03000000;

/**
 * Writes the host bridge node as QEMU virt does (inside /soc): ECAM registers, the three
 * windows in `ranges`, and an interrupt-map routing INTA-INTD of devices 0-3 (the mask
 * repeats it for every device) to interrupt-controller inputs `irqBase`..`irqBase + 3`
 * with the standard swizzle. The interrupt controller has #address-cells = 0 and
 * #interrupt-cells = 1, like the PLIC.
 */
export function gpexFdtNode(f: FdtBuilder, layout: GpexLayout, irqBase: number, intcPhandle: number): void {
  const { ecam, pio, mmio32, mmio64 } = layout;
  const map: number[] = [];
  for (let device = 0; device < 4; device++) {
    for (let pin = 1; pin <= 4; pin++) {
      map.push(device << 11, 0, 0, pin, intcPhandle, irqBase + (device + pin - 1) % 4);
    }
  }
  f.beginNode(`pci@${ecam.base.toString(16)}`);
  // Match only the low two bits of the device number and the pin.
  f.propCells('interrupt-map-mask', [0x1800, 0, 0, 7]);
  f.propCells('interrupt-map', map);
  f.propCells('ranges', [
    PCI_SPACE_IO, 0, 0, ...cells64(pio.base), ...cells64(pio.size),
    PCI_SPACE_MEM32, ...cells64(mmio32.base), ...cells64(mmio32.base), ...cells64(mmio32.size),
    PCI_SPACE_MEM64, ...cells64(mmio64.base), ...cells64(mmio64.base), ...cells64(mmio64.size),
  ]);
  f.propCells64('reg', [ecam.base, ecam.size]);
  f.propEmpty('dma-coherent');
  f.propCells('bus-range', [0, Math.min(ecam.size / 2 ** ECAM_BUS_SHIFT, 256) - 1]);
  f.propU32('linux,pci-domain', 0);
  f.propString('device_type', 'pci');
  f.propString('compatible', 'pci-host-ecam-generic');
  f.propU32('#size-cells', 2);
  f.propU32('#interrupt-cells', 1);
  f.propU32('#address-cells', 3);
  f.endNode();
}
