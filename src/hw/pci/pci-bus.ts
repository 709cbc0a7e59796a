/**
 * A PCI bus segment (PCI Local Bus Specification 3.0, 3.2.2.3 and chapter 6): 32 device
 * numbers of up to 8 functions each, configuration access by device/function/offset,
 * BAR decoding into the bus's memory and I/O AddressSpaces, and the INTx wiring.
 *
 * INTx lines are level-triggered and shared (wired-OR, 2.2.6): each of the host's
 * lines is asserted while any function routed to it asserts its pin. Functions on
 * device d with pin p (1 = INTA#) reach host line (d + p - 1) mod 4, the standard
 * swizzle that the host bridge's interrupt-map describes to the OS.
 */
import { NO_IRQ, type IrqLine } from '../core/irq.js';
import { PCI_CFG, allOnes, type PciFunction, type PciSpaces } from './pci.js';

export const PCI_DEVICES_PER_BUS = 32;
export const PCI_FUNCTIONS_PER_DEVICE = 8;

/** A host interrupt line shared by several functions' INTx pins: high while any of them is. */
class SharedIrq {
  private asserted = 0;
  constructor(private readonly out: IrqLine) {}

  /**
   * A separate input for one function: it counts only its own transitions. `restore`
   * counts a level without driving the host line (loading a snapshot).
   */
  input(): IrqLine & { restore(level: boolean): void } {
    let level = false;
    const count = (l: boolean): boolean => {
      if (l === level) return false;
      level = l;
      this.asserted += l ? 1 : -1;
      return true;
    };
    return {
      set: (l: boolean) => {
        if (count(l) && this.asserted === (l ? 1 : 0)) this.out.set(l);
      },
      restore: (l: boolean) => void count(l),
    };
  }
}

/** Bus 0 of a host bridge. */
export class PciBus {
  private readonly functions: (PciFunction | undefined)[] = new Array(PCI_DEVICES_PER_BUS * PCI_FUNCTIONS_PER_DEVICE);
  private readonly intx: SharedIrq[];
  /** Called after BARs moved, appeared or vanished (accelerators re-place what they catch in BARs). */
  onRemap: (() => void) | null = null;

  /**
   * @param spaces where BARs are mapped
   * @param intx the host's INTA-INTD lines (4 lines, after the board's routing)
   */
  constructor(readonly spaces: PciSpaces, intx: readonly IrqLine[]) {
    if (intx.length !== 4) throw new RangeError('pci: a bus needs four INTx lines');
    this.intx = intx.map((l) => new SharedIrq(l));
  }

  /** Plugs `fn` in as `device`.`func`; throws if the address is taken or out of range. */
  plug(fn: PciFunction, device: number, func = 0): void {
    if (!Number.isInteger(device) || device < 0 || device >= PCI_DEVICES_PER_BUS ||
      !Number.isInteger(func) || func < 0 || func >= PCI_FUNCTIONS_PER_DEVICE) {
      throw new RangeError(`pci: bad device address ${device}.${func}`);
    }
    const i = device * PCI_FUNCTIONS_PER_DEVICE + func;
    if (this.functions[i]) throw new Error(`pci: ${device}.${func} is already in use`);
    const pin = fn.config[PCI_CFG.INTERRUPT_PIN]!;
    const intx = pin === 0 ? null : this.intx[(device + pin - 1) % 4]!.input();
    fn.attach({
      spaces: this.spaces,
      intx: intx ?? NO_IRQ,
      restoreIntx: (level) => intx?.restore(level),
      barsChanged: () => this.remap(),
    });
    this.functions[i] = fn;
    // Software scans functions 1-7 only when function 0 says the device has several.
    const first = this.functions[device * PCI_FUNCTIONS_PER_DEVICE];
    if (first && this.functions.slice(i - func + 1, i - func + PCI_FUNCTIONS_PER_DEVICE).some((f) => f)) first.markMultiFunction();
  }

  /**
   * The function at `device`.`func`, or null when there is none. A function other than 0
   * is only visible while function 0 exists (6.2.1: every device implements function 0).
   */
  find(device: number, func: number): PciFunction | null {
    if (device < 0 || device >= PCI_DEVICES_PER_BUS || func < 0 || func >= PCI_FUNCTIONS_PER_DEVICE) return null;
    if (!this.functions[device * PCI_FUNCTIONS_PER_DEVICE]) return null;
    return this.functions[device * PCI_FUNCTIONS_PER_DEVICE + func] ?? null;
  }

  /** A configuration read; an empty address reads as all ones (a master abort, 6.1). */
  readConfig(device: number, func: number, offset: number, size: number): number {
    return this.find(device, func)?.readConfig(offset, size) ?? allOnes(size);
  }

  /** A configuration write; writes to an empty address are dropped. */
  writeConfig(device: number, func: number, offset: number, size: number, value: number): void {
    this.find(device, func)?.writeConfig(offset, size, value);
  }

  /**
   * Brings every BAR's region in line with its registers: first removes the regions
   * that moved or stopped decoding, then maps the ones that should be, so a BAR moved
   * onto a place another BAR just left is mapped in the same pass.
   */
  private remap(): void {
    for (const f of this.functions) f?.unmapStaleBars();
    for (const f of this.functions) f?.mapPendingBars();
    this.onRemap?.();
  }
}
