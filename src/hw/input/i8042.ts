/**
 * Intel 8042 keyboard controller (QEMU's hw/input/pckbd.c, much reduced), at I/O
 * ports 0x60 (data) and 0x64 (status/command). Enough for Linux's i8042 driver to
 * find a controller with a keyboard that never types, and for the guest to reset
 * the machine with command 0xFE (pulse the CPU reset line), which is how x86 Linux
 * reboots when nothing better is available. No mouse (AUX) port.
 */
import type { MmioHandler } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';

const STATUS_OBF = 0x01;     // output buffer full
const STATUS_SYS = 0x04;     // system flag: self test passed
const STATUS_CMD = 0x08;     // last write was a command
const STATUS_UNLOCKED = 0x10; // keyboard not inhibited (the keylock switch is open)
const CTR_KBD_INT = 0x01;    // keyboard interrupt enabled
const CTR_SYS = 0x04;
const CTR_KBD_DISABLE = 0x10;
const CTR_XLATE = 0x40;

/** Offsets within the two-port region registered at 0x60 (0x60 = data, 0x64 = command). */
export const I8042_DATA = 0;
export const I8042_COMMAND = 4;

export class I8042 implements MmioHandler {
  private ctr = CTR_KBD_INT | CTR_SYS | CTR_XLATE;
  private out: number[] = [];
  private status = STATUS_SYS | STATUS_UNLOCKED;
  /** The command whose parameter the next data write carries, or 0. */
  private pendingCommand = 0;

  /** @param irq keyboard interrupt (ISA IRQ 1); @param onReset the guest pulsed the reset line. */
  constructor(private readonly irq: IrqLine, private readonly onReset: () => void) {}

  read(offset: number, _size: number): number {
    if (offset === I8042_COMMAND) return this.status | (this.out.length > 0 ? STATUS_OBF : 0);
    if (offset !== I8042_DATA) return 0xff;
    const v = this.out.shift() ?? 0;
    this.update();
    return v;
  }

  write(offset: number, _size: number, value: number): void {
    value &= 0xff;
    if (offset === I8042_COMMAND) {
      this.status |= STATUS_CMD;
      this.command(value);
    } else if (offset === I8042_DATA) {
      this.status &= ~STATUS_CMD;
      this.data(value);
    }
  }

  private command(cmd: number): void {
    switch (cmd) {
      case 0x20: this.reply(this.ctr); break;            // read controller configuration
      case 0x60: case 0xd1: case 0xd2: this.pendingCommand = cmd; break; // a parameter follows
      case 0xaa: this.reply(0x55); break;                // controller self test: passed
      case 0xab: this.reply(0x00); break;                // keyboard interface test: passed
      case 0xad: this.ctr |= CTR_KBD_DISABLE; break;
      case 0xae: this.ctr &= ~CTR_KBD_DISABLE; break;
      case 0xd0: this.reply(0x01); break;                // output port: reset line not asserted
      case 0xfe: this.onReset(); break;                  // pulse the reset line
      default: break;                                    // AUX commands and the rest: no answer
    }
  }

  private data(value: number): void {
    const cmd = this.pendingCommand;
    this.pendingCommand = 0;
    if (cmd === 0x60) {
      this.ctr = value;
      this.update();
    } else if (cmd === 0xd1) {
      if ((value & 1) === 0) this.onReset(); // output port bit 0 low = CPU reset
    } else if (cmd === 0xd2) {
      this.reply(value); // write keyboard output buffer: echo as if typed
    } else {
      // A byte for the keyboard itself: acknowledge; a reset (0xff) also passes its self test.
      this.reply(0xfa);
      if (value === 0xff) this.reply(0xaa);
    }
  }

  private reply(v: number): void {
    if (this.out.length < 16) this.out.push(v);
    this.update();
  }

  private update(): void {
    this.irq.set(this.out.length > 0 && (this.ctr & CTR_KBD_INT) !== 0);
  }
}
