/**
 * NS16550A UART, as on QEMU's virt board (base 0x10000000, reg-shift 0, IRQ 10),
 * following the National Semiconductor PC16550D datasheet: RBR/THR/DLL, IER/DLM,
 * IIR/FCR, LCR, MCR, LSR, MSR, SCR; 16-byte RX FIFO with trigger levels.
 *
 * Transmission is instantaneous: THR and the shift register are always empty, so
 * the THR-empty interrupt is re-armed after every byte. The character timeout is
 * simplified: while the FIFO holds fewer bytes than the trigger level, a timeout
 * interrupt is reported at once.
 *
 * Host input is held in the chardev, never dropped: bytes move into the RX FIFO
 * only when they fit, and only while the guest has the receive interrupt enabled.
 * A polling guest sees LSR.DR while input waits and gets it byte by byte from RBR.
 * A FIFO reset gives the bytes the guest has not read back to the chardev. Input is only
 * offered once the guest shows it reads: it enabled the receive interrupt, or it
 * polls LSR in a loop (POLLS_TO_OPEN reads with no other register access between),
 * because Linux's 8250 driver reads RBR and throws the byte away while it probes and
 * opens the port, which would eat the start of input typed or piped before the boot.
 */
import type { MmioHandler } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import type { Chardev } from '../../chardev/chardev.js';
import type { FdtBuilder } from '../core/fdt.js';
import { arrayField, boolField, intField, SnapshotError, type DeviceState, type VMStateDevice } from '../../migration/vmstate.js';

/** Input clock of virt's UART ("clock-frequency"), 3.6864 MHz. */
export const SERIAL_CLOCK_FREQ = 0x384000;

const FIFO_SIZE = 16;

const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // transmitter holding register empty
const IER_RLSI = 0x04; // receiver line status
const IER_MASK = 0x0f;
/** LSR reads in a row (nothing else accessed) that show a polling reader: input is offered from then on. */
const POLLS_TO_OPEN = 64;

const IIR_NO_INT = 0x01;
const IIR_RLSI = 0x06;
const IIR_RDI = 0x04;
const IIR_TIMEOUT = 0x0c;
const IIR_THRI = 0x02;
const IIR_FIFO_ENABLED = 0xc0;

const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const FCR_CLEAR_TX = 0x04;
const TRIGGER_LEVELS = [1, 4, 8, 14];

const LCR_DLAB = 0x80;
const MCR_LOOP = 0x10;
const MCR_OUT2 = 0x08;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

/** MSR with CTS, DSR and DCD asserted: a null-modem host connection. */
const MSR_CONNECTED = 0xb0;

/** The 16550A: an {@link MmioHandler} on 8 byte-wide registers. */
export class Serial16550 implements MmioHandler, VMStateDevice {
  private readonly rx = new Uint8Array(FIFO_SIZE);
  private rxHead = 0;
  private rxCount = 0;
  private ier = 0;
  private fcr = 0;
  private lcr = 0;
  private mcr = MCR_OUT2;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  /** Error bits of LSR (overrun), cleared when LSR is read. */
  private lsrErrors = 0;
  /** THR-empty interrupt armed (cleared by reading it from IIR or writing THR). */
  private thrIpending = false;
  private irqLevel = false;
  /** The guest reads input (see the top of the file); false from reset. */
  private inputOpen = false;
  /** LSR reads since the last access to another register. */
  private lsrPolls = 0;

  constructor(private readonly irq: IrqLine, private readonly chr: Chardev) {
    chr.onInput = () => {
      this.refill();
      this.update();
    };
  }

  saveState(): DeviceState {
    const fifo = Array.from({ length: this.rxCount }, (_, i) => this.rx[(this.rxHead + i) % FIFO_SIZE]!);
    return {
      fifo, ier: this.ier, fcr: this.fcr, lcr: this.lcr, mcr: this.mcr, scr: this.scr, dll: this.dll, dlm: this.dlm,
      lsrErrors: this.lsrErrors, thrIpending: this.thrIpending, irqLevel: this.irqLevel,
    };
  }

  /** Loads the registers and the received bytes; the interrupt line's level is restored with the PLIC. */
  loadState(s: DeviceState): void {
    if (!Array.isArray(s.fifo) || s.fifo.length > FIFO_SIZE) throw new SnapshotError("snapshot: bad field 'fifo'");
    const n = s.fifo.length;
    const fifo = new Uint8Array(n);
    arrayField(s, 'fifo', fifo);
    this.rx.set(fifo);
    this.rxHead = 0;
    this.rxCount = n;
    this.ier = intField(s, 'ier', 0, IER_MASK);
    this.fcr = intField(s, 'fcr', 0, 0xff);
    this.lcr = intField(s, 'lcr', 0, 0xff);
    this.mcr = intField(s, 'mcr', 0, 0x1f);
    this.scr = intField(s, 'scr', 0, 0xff);
    this.dll = intField(s, 'dll', 0, 0xff);
    this.dlm = intField(s, 'dlm', 0, 0xff);
    this.lsrErrors = intField(s, 'lsrErrors', 0, 0xff);
    this.thrIpending = boolField(s, 'thrIpending');
    this.irqLevel = boolField(s, 'irqLevel');
    this.inputOpen = (this.ier & IER_RDI) !== 0; // a polling guest opens it again by polling
  }

  read(offset: number, _size: number): number {
    if (offset !== 5) this.lsrPolls = 0;
    switch (offset) {
      case 0: return this.lcr & LCR_DLAB ? this.dll : this.readRbr();
      case 1: return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case 2: return this.readIir();
      case 3: return this.lcr;
      case 4: return this.mcr;
      case 5: return this.readLsr();
      case 6: return this.msr();
      case 7: return this.scr;
      default: return 0;
    }
  }

  write(offset: number, _size: number, value: number): void {
    const v = value & 0xff;
    this.lsrPolls = 0;
    switch (offset) {
      case 0:
        if (this.lcr & LCR_DLAB) this.dll = v;
        else this.writeThr(v);
        break;
      case 1:
        if (this.lcr & LCR_DLAB) {
          this.dlm = v;
        } else {
          const changed = this.ier ^ v;
          this.ier = v & IER_MASK;
          if (this.ier & IER_RDI) this.inputOpen = true;
          // Enabling THRI with an empty THR raises the interrupt right away.
          if (changed & IER_THRI) this.thrIpending = (this.ier & IER_THRI) !== 0;
          this.refill();
        }
        break;
      case 2:
        // Toggling the FIFO enable flushes both FIFOs (datasheet, FCR bit 0).
        if (((v ^ this.fcr) & FCR_ENABLE) !== 0 || (v & FCR_CLEAR_RX) !== 0) this.flushRx();
        if (v & FCR_CLEAR_TX) this.thrIpending = true;
        this.fcr = v & 0xc1;
        this.refill();
        break;
      case 3:
        this.lcr = v;
        break;
      case 4:
        this.mcr = v & 0x1f;
        this.refill();
        break;
      case 7:
        this.scr = v;
        break;
      default:
        return; // LSR and MSR writes (factory test) are ignored
    }
    this.update();
  }

  /** Empties the RX FIFO; host bytes the guest has not read go back to the chardev (a driver resetting its FIFO while it opens the port must not eat typed input). */
  private flushRx(): void {
    if (!this.loopback && this.rxCount > 0) {
      this.chr.unread(Uint8Array.from({ length: this.rxCount }, (_, i) => this.rx[(this.rxHead + i) % FIFO_SIZE]!));
    }
    this.rxHead = this.rxCount = 0;
  }

  private get loopback(): boolean {
    return (this.mcr & MCR_LOOP) !== 0;
  }

  private get capacity(): number {
    return this.fcr & FCR_ENABLE ? FIFO_SIZE : 1;
  }

  private push(b: number): void {
    this.rx[(this.rxHead + this.rxCount) % FIFO_SIZE] = b;
    this.rxCount++;
  }

  /** Moves up to `max` waiting host bytes into the FIFO, as far as they fit. */
  private pull(max: number): void {
    if (this.loopback || !this.inputOpen) return; // the receiver is wired to the transmitter, or nobody reads yet
    const n = Math.min(max, this.capacity - this.rxCount, this.chr.pending);
    if (n <= 0) return;
    for (const b of this.chr.read(n)) this.push(b);
  }

  /** Fills the FIFO from the chardev while the guest takes input by interrupt. */
  private refill(): void {
    if (this.ier & IER_RDI) this.pull(FIFO_SIZE);
  }

  private readRbr(): number {
    if (this.rxCount === 0) this.pull(1); // polling guest: LSR.DR promised this byte
    let b = 0;
    if (this.rxCount > 0) {
      b = this.rx[this.rxHead];
      this.rxHead = (this.rxHead + 1) % FIFO_SIZE;
      this.rxCount--;
    }
    this.refill();
    this.update();
    return b;
  }

  private writeThr(b: number): void {
    if (this.loopback) {
      if (this.rxCount < this.capacity) this.push(b);
      else this.lsrErrors |= LSR_OE;
    } else {
      this.chr.write(Uint8Array.of(b));
    }
    // The byte left at once: THR is empty again.
    this.thrIpending = true;
  }

  private readLsr(): number {
    if (!this.inputOpen && ++this.lsrPolls >= POLLS_TO_OPEN) this.inputOpen = true;
    const waiting = this.rxCount > 0 || (!this.loopback && this.inputOpen && this.chr.pending > 0);
    const lsr = (waiting ? LSR_DR : 0) | this.lsrErrors | LSR_THRE | LSR_TEMT;
    if (this.lsrErrors) {
      this.lsrErrors = 0;
      this.update();
    }
    return lsr;
  }

  private readIir(): number {
    const iid = this.interruptId();
    if (iid === IIR_THRI) {
      this.thrIpending = false; // reading IIR acknowledges THR empty
      this.update();
    }
    return iid | (this.fcr & FCR_ENABLE ? IIR_FIFO_ENABLED : 0);
  }

  private msr(): number {
    if (!this.loopback) return MSR_CONNECTED;
    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
    const m = this.mcr;
    return ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
  }

  /** The highest-priority pending interrupt as encoded in IIR bits 3..0. */
  private interruptId(): number {
    if (this.ier & IER_RLSI && this.lsrErrors) return IIR_RLSI;
    if (this.ier & IER_RDI && this.rxCount > 0) {
      const trigger = this.fcr & FCR_ENABLE ? TRIGGER_LEVELS[this.fcr >> 6] : 1;
      return this.rxCount >= trigger ? IIR_RDI : IIR_TIMEOUT;
    }
    if (this.ier & IER_THRI && this.thrIpending) return IIR_THRI;
    return IIR_NO_INT;
  }

  private update(): void {
    const level = this.interruptId() !== IIR_NO_INT;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.set(level);
    }
  }
}

/** Writes the UART node as QEMU virt does, at the current position (inside /soc). */
export function serialFdtNode(f: FdtBuilder, base: number, size: number, irq: number, plicPhandle: number): void {
  f.beginNode(`serial@${base.toString(16)}`);
  f.propU32('interrupts', irq);
  f.propU32('interrupt-parent', plicPhandle);
  f.propU32('clock-frequency', SERIAL_CLOCK_FREQ);
  f.propCells64('reg', [base, size]);
  f.propString('compatible', 'ns16550a');
  f.endNode();
}
