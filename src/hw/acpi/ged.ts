/**
 * ACPI hardware-reduced sleep registers (ACPI 6.4, section 4.8.3.7), as QEMU's
 * microvm machine exposes them: the guest powers off by writing SLP_EN (bit 5) with
 * SLP_TYP = 5 (the value the DSDT's \_S5 object gives) to the sleep control register,
 * and resets by writing the FADT's reset value to the reset register.
 */
import type { MmioHandler } from '../core/memory.js';

/** Register offsets within the region. */
export const GED_SLEEP_CONTROL = 0;
export const GED_SLEEP_STATUS = 1;
export const GED_RESET = 2;
/** Size of the region (one byte each). */
export const GED_SIZE = 3;
/** SLP_TYP of the S5 (soft off) state, as the DSDT's \_S5 package says. */
export const SLP_TYP_S5 = 5;
/** The value the FADT tells the guest to write to the reset register. */
export const RESET_VALUE = 0x42;

const SLP_EN = 1 << 5;

export class AcpiGed implements MmioHandler {
  constructor(private readonly onPowerOff: () => void, private readonly onReset: () => void) {}

  read(_offset: number, _size: number): number {
    return 0; // no wake status to report
  }

  write(offset: number, _size: number, value: number): void {
    if (offset === GED_SLEEP_CONTROL && (value & SLP_EN) !== 0 && ((value >> 2) & 7) === SLP_TYP_S5) this.onPowerOff();
    else if (offset === GED_RESET && (value & 0xff) === RESET_VALUE) this.onReset();
  }
}
