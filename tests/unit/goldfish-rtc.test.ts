/**
 * Tests for the Goldfish RTC (src/hw/rtc/goldfish-rtc.ts): time registers, guest-set
 * time, alarm and interrupt, with a fake clock whose timers are fired by hand.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { GoldfishRtc, goldfishRtcFdtNode } from '../../src/hw/rtc/goldfish-rtc.js';
import { Clock } from '../../src/hw/core/clock.js';
import { FakeClock, RecordingLine as Line, dtsOfNode } from './device-helpers.js';

const TIME_LOW = 0x00, TIME_HIGH = 0x04, ALARM_LOW = 0x08, ALARM_HIGH = 0x0c, IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14, ALARM_STATUS = 0x18, CLEAR_INTERRUPT = 0x1c;
const EPOCH = 1_700_000_000_123_456_789n;

function setup() {
  const clock = new FakeClock();
  clock.t = 5000;
  const irq = new Line();
  const rtc = new GoldfishRtc(clock, irq, EPOCH);
  const time = () => {
    const lo = BigInt(rtc.read(TIME_LOW, 4));
    return (BigInt(rtc.read(TIME_HIGH, 4)) << 32n) | lo;
  };
  /** Programs the alarm as Linux does: high half, then low half (which arms). */
  const alarm = (ns: bigint) => {
    rtc.write(ALARM_HIGH, 4, Number(ns >> 32n));
    rtc.write(ALARM_LOW, 4, Number(ns & 0xffffffffn));
  };
  return { clock, irq, rtc, time, alarm };
}

test('time counts nanoseconds from the epoch and TIME_LOW latches TIME_HIGH', () => {
  const { clock, rtc, time } = setup();
  assert.equal(time(), EPOCH);
  clock.t += 1500;
  assert.equal(time(), EPOCH + 1500n);
  const hi = Number(EPOCH >> 32n);
  rtc.read(TIME_LOW, 4);
  clock.t += 2 ** 40; // TIME_HIGH keeps the value latched by the last TIME_LOW read
  assert.equal(rtc.read(TIME_HIGH, 4), hi);
});

test('the guest sets the time by writing TIME_HIGH then TIME_LOW', () => {
  const { clock, rtc, time } = setup();
  rtc.write(TIME_HIGH, 4, 0x1234);
  rtc.write(TIME_LOW, 4, 0x89abcdef);
  assert.equal(time(), 0x1234_89abcdefn);
  clock.t += 10;
  assert.equal(time(), 0x1234_89abcdefn + 10n);
});

test('default time follows the host wall clock', () => {
  const rtc = new GoldfishRtc(new Clock(), new Line());
  const lo = BigInt(rtc.read(TIME_LOW, 4));
  const ns = (BigInt(rtc.read(TIME_HIGH, 4)) << 32n) | lo;
  const diffMs = Number(ns / 1_000_000n) - Date.now();
  assert.ok(Math.abs(diffMs) < 5000, `rtc off by ${diffMs} ms`);
});

test('alarm fires through a clock timer and raises the IRQ while enabled', () => {
  const { clock, irq, rtc, alarm } = setup();
  rtc.write(IRQ_ENABLED, 4, 1);
  assert.equal(rtc.read(IRQ_ENABLED, 4), 1);
  alarm(EPOCH + 1000n);
  assert.equal(rtc.read(ALARM_STATUS, 4), 1);
  assert.equal(rtc.read(ALARM_LOW, 4), Number((EPOCH + 1000n) & 0xffffffffn));
  assert.equal(rtc.read(ALARM_HIGH, 4), Number(EPOCH >> 32n));
  assert.equal(clock.nextDeadline(), 6000);
  clock.t = 5999;
  clock.runExpired();
  assert.equal(irq.level, false);
  clock.t = 6000;
  clock.runExpired();
  assert.equal(irq.level, true);
  assert.equal(rtc.read(ALARM_STATUS, 4), 0);
  rtc.write(CLEAR_INTERRUPT, 4, 1);
  assert.equal(irq.level, false);
});

test('an alarm in the past fires at once; the IRQ waits for IRQ_ENABLED', () => {
  const { irq, rtc, alarm } = setup();
  alarm(EPOCH - 1n);
  assert.equal(rtc.read(ALARM_STATUS, 4), 0);
  assert.equal(irq.level, false);
  rtc.write(IRQ_ENABLED, 4, 1);
  assert.equal(irq.level, true);
  rtc.write(IRQ_ENABLED, 4, 0);
  assert.equal(irq.level, false);
});

test('CLEAR_ALARM cancels a running alarm', () => {
  const { clock, irq, rtc, alarm } = setup();
  rtc.write(IRQ_ENABLED, 4, 1);
  alarm(EPOCH + 10n ** 9n);
  rtc.write(CLEAR_ALARM, 4, 1);
  assert.equal(rtc.read(ALARM_STATUS, 4), 0);
  assert.equal(clock.nextDeadline(), Infinity);
  clock.t += 2e9;
  clock.runExpired();
  assert.equal(irq.level, false);
});

test('undefined registers and widths read 0 and ignore writes', () => {
  const { rtc, time } = setup();
  for (const off of [0x20, 0x3c, 0xffc]) {
    assert.equal(rtc.read(off, 4), 0);
    rtc.write(off, 4, 0xffffffff);
  }
  assert.equal(rtc.read(TIME_LOW, 2), 0);
  rtc.write(TIME_LOW, 1, 0);
  rtc.write(ALARM_STATUS, 4, 1);
  assert.equal(time(), EPOCH);
  assert.equal(rtc.read(ALARM_STATUS, 4), 0);
});

test('device-tree node matches QEMU virt', (t) => {
  const dts = dtsOfNode(t, (f) => {
    goldfishRtcFdtNode(f, 0x101000, 0x1000, 11, 3);
  });
  if (dts === undefined) return;
  assert.match(dts, /rtc@101000 \{/);
  assert.match(dts, /interrupts = <0x0b>;/);
  assert.match(dts, /interrupt-parent = <0x03>;/);
  assert.match(dts, /reg = <0x00 0x101000 0x00 0x1000>;/);
  assert.match(dts, /compatible = "google,goldfish-rtc";/);
});
