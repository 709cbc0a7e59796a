/**
 * The PC's CMOS real-time clock (Motorola MC146818A, as QEMU's hw/rtc/mc146818rtc.c),
 * at I/O ports 0x70 (index; bit 7 masks NMIs) and 0x71 (data). The time follows the
 * host's wall clock plus whatever offset the guest sets; BCD or binary and 12 or 24
 * hour formats follow register B. The other CMOS bytes are plain storage. No alarm or
 * periodic interrupts: Linux only reads and sets the time through it.
 */
import type { MmioHandler } from '../core/memory.js';

const SECONDS = 0x00;
const MINUTES = 0x02;
const HOURS = 0x04;
const WEEKDAY = 0x06;
const DAY = 0x07;
const MONTH = 0x08;
const YEAR = 0x09;
const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
const CENTURY = 0x32;
const B_SET = 0x80;   // updates frozen while the guest sets the time
const B_BINARY = 0x04;
const B_24H = 0x02;

const toBcd = (v: number): number => ((Math.floor(v / 10) << 4) | (v % 10)) & 0xff;
const fromBcd = (v: number): number => (v >> 4) * 10 + (v & 0x0f);

export class Mc146818Rtc implements MmioHandler {
  private index = 0;
  private readonly cmos = new Uint8Array(128);
  /** Guest time minus host time, in milliseconds. */
  private offsetMs = 0;

  /** @param now host wall-clock time in ms since the epoch (injectable for tests). */
  constructor(private readonly now: () => number = Date.now) {
    this.cmos[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz rate
    this.cmos[REG_B] = B_24H;
    this.cmos[REG_D] = 0x80; // battery good
  }

  read(offset: number, _size: number): number {
    if (offset === 0) return 0xff; // the index register is write-only
    const i = this.index;
    if (i <= YEAR || i === CENTURY) return this.timeField(i);
    if (i === REG_C) {
      const v = this.cmos[REG_C]!;
      this.cmos[REG_C] = 0;
      return v;
    }
    return this.cmos[i]!;
  }

  write(offset: number, _size: number, value: number): void {
    value &= 0xff;
    if (offset === 0) {
      this.index = value & 0x7f;
      return;
    }
    const i = this.index;
    if (i === REG_C || i === REG_D) return; // read-only
    if (i <= YEAR || i === CENTURY) {
      if (i === SECONDS || i === MINUTES || i === HOURS || i === DAY || i === MONTH || i === YEAR || i === CENTURY) {
        this.cmos[i] = value;
        // Only take the new time once the guest leaves SET mode, or now if it never entered it.
        if ((this.cmos[REG_B]! & B_SET) === 0) this.setTimeFromRegisters();
      }
      return;
    }
    const wasSet = (this.cmos[REG_B]! & B_SET) !== 0;
    this.cmos[i] = value;
    if (i === REG_B && wasSet && (value & B_SET) === 0) this.setTimeFromRegisters();
  }

  private date(): Date {
    return new Date(this.now() + this.offsetMs);
  }

  private encode(v: number): number {
    return (this.cmos[REG_B]! & B_BINARY) !== 0 ? v : toBcd(v);
  }

  private decode(v: number): number {
    return (this.cmos[REG_B]! & B_BINARY) !== 0 ? v : fromBcd(v);
  }

  private timeField(i: number): number {
    if ((this.cmos[REG_B]! & B_SET) !== 0 && i !== WEEKDAY) return this.cmos[i]!;
    const d = this.date();
    switch (i) {
      case SECONDS: return this.encode(d.getUTCSeconds());
      case MINUTES: return this.encode(d.getUTCMinutes());
      case HOURS: {
        const h = d.getUTCHours();
        if ((this.cmos[REG_B]! & B_24H) !== 0) return this.encode(h);
        return this.encode(h % 12 === 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0);
      }
      case WEEKDAY: return this.encode(d.getUTCDay() + 1);
      case DAY: return this.encode(d.getUTCDate());
      case MONTH: return this.encode(d.getUTCMonth() + 1);
      case YEAR: return this.encode(d.getUTCFullYear() % 100);
      case CENTURY: return this.encode(Math.floor(d.getUTCFullYear() / 100));
      default: return this.cmos[i]!; // alarm registers: storage
    }
  }

  private setTimeFromRegisters(): void {
    const c = this.cmos;
    let hours = c[HOURS]!;
    if ((c[REG_B]! & B_24H) === 0) {
      const pm = (hours & 0x80) !== 0;
      hours = this.decode(hours & 0x7f) % 12 + (pm ? 12 : 0);
    } else {
      hours = this.decode(hours);
    }
    const century = c[CENTURY] ? this.decode(c[CENTURY]!) : 20;
    const t = Date.UTC(century * 100 + this.decode(c[YEAR]!), this.decode(c[MONTH]!) - 1, this.decode(c[DAY]!),
      hours, this.decode(c[MINUTES]!), this.decode(c[SECONDS]!));
    if (Number.isFinite(t)) this.offsetMs = t - this.now();
  }
}
