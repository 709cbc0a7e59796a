/**
 * Goldfish RTC, as on QEMU's virt board (base 0x101000, IRQ 11), following the
 * Android emulator's GOLDFISH-VIRTUAL-HARDWARE.TXT: a 64-bit nanosecond counter since
 * the Unix epoch (TIME_LOW latches TIME_HIGH), a one-shot alarm and its interrupt.
 *
 * Time is the host wall clock at creation advanced by the virtual clock, plus the
 * offset the guest sets by writing TIME_LOW/HIGH; so it stands still with the machine
 * and alarms run on the same virtual clock. Nanoseconds since 1970 exceed 2^53, so the
 * arithmetic is done in BigInt (register values stay plain 32-bit numbers).
 * Registers are 32-bit: map the region with valid = impl = {4, 4}.
 */
import type { MmioHandler } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import type { Clock, Timer } from '../core/clock.js';
import type { FdtBuilder } from '../core/fdt.js';
import { bigField, boolField, intField, type DeviceState, type VMStateDevice } from '../../migration/vmstate.js';

const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;

const LOW32 = 0xffffffffn;

/** The Goldfish real-time clock. */
export class GoldfishRtc implements MmioHandler, VMStateDevice {
  /** Guest time minus virtual clock time, in ns. */
  private offset: bigint;
  private timeHigh = 0;
  private alarmNext = 0n;
  private alarmRunning = false;
  private irqPending = false;
  private irqEnabled = false;
  private readonly timer: Timer;

  /** @param epochNs the guest time at creation, in ns since the Unix epoch (default: host wall clock). */
  constructor(private readonly clock: Clock, private readonly irq: IrqLine, epochNs = BigInt(Date.now()) * 1_000_000n) {
    this.offset = epochNs - BigInt(clock.now());
    this.timer = clock.newTimer(() => {
      this.alarmRunning = false;
      this.raise();
    });
  }

  saveState(): DeviceState {
    return {
      offset: this.offset.toString(), timeHigh: this.timeHigh, alarmNext: this.alarmNext.toString(),
      alarmRunning: this.alarmRunning, irqPending: this.irqPending, irqEnabled: this.irqEnabled,
    };
  }

  /** Loads the registers and re-arms a running alarm on the (already restored) clock. */
  loadState(s: DeviceState): void {
    this.offset = bigField(s, 'offset');
    this.timeHigh = intField(s, 'timeHigh');
    this.alarmNext = BigInt.asUintN(64, bigField(s, 'alarmNext'));
    this.irqPending = boolField(s, 'irqPending');
    this.irqEnabled = boolField(s, 'irqEnabled');
    this.clearAlarm();
    if (boolField(s, 'alarmRunning')) this.setAlarm();
  }

  read(offset: number, size: number): number {
    if (size !== 4) return 0;
    switch (offset) {
      case TIME_LOW: {
        const t = this.count();
        this.timeHigh = Number(t >> 32n);
        return Number(t & LOW32);
      }
      case TIME_HIGH: return this.timeHigh;
      case ALARM_LOW: return Number(this.alarmNext & LOW32);
      case ALARM_HIGH: return Number(this.alarmNext >> 32n);
      case IRQ_ENABLED: return this.irqEnabled ? 1 : 0;
      case ALARM_STATUS: return this.alarmRunning ? 1 : 0;
      default: return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4) return;
    const v = BigInt(value >>> 0);
    switch (offset) {
      case TIME_LOW:
      case TIME_HIGH: {
        const cur = this.count();
        const next = offset === TIME_LOW ? (cur & ~LOW32) | v : (v << 32n) | (cur & LOW32);
        this.offset += next - cur;
        break;
      }
      case ALARM_LOW:
        this.alarmNext = (this.alarmNext & ~LOW32) | v;
        this.setAlarm();
        break;
      case ALARM_HIGH:
        this.alarmNext = (v << 32n) | (this.alarmNext & LOW32);
        break;
      case IRQ_ENABLED:
        this.irqEnabled = (value & 1) !== 0;
        this.update();
        break;
      case CLEAR_ALARM:
        this.clearAlarm();
        break;
      case CLEAR_INTERRUPT:
        this.irqPending = false;
        this.update();
        break;
      default:
        break;
    }
  }

  /** Guest time in ns since the epoch, as an unsigned 64-bit value. */
  private count(): bigint {
    return BigInt.asUintN(64, BigInt(this.clock.now()) + this.offset);
  }

  /** Arms the alarm for alarmNext, or fires it now if that time has passed. */
  private setAlarm(): void {
    const now = this.count();
    if (this.alarmNext <= now) {
      this.clearAlarm();
      this.raise();
    } else {
      this.timer.mod(this.clock.now() + Number(this.alarmNext - now));
      this.alarmRunning = true;
    }
  }

  private clearAlarm(): void {
    this.timer.del();
    this.alarmRunning = false;
  }

  private raise(): void {
    this.irqPending = true;
    this.update();
  }

  private update(): void {
    this.irq.set(this.irqPending && this.irqEnabled);
  }
}

/** Writes the RTC node as QEMU virt does, at the current position (inside /soc). */
export function goldfishRtcFdtNode(f: FdtBuilder, base: number, size: number, irq: number, plicPhandle: number): void {
  f.beginNode(`rtc@${base.toString(16)}`);
  f.propU32('interrupts', irq);
  f.propU32('interrupt-parent', plicPhandle);
  f.propCells64('reg', [base, size]);
  f.propString('compatible', 'google,goldfish-rtc');
  f.endNode();
}
