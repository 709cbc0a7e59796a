/**
 * The CMOS RTC: reads the host's time in BCD and binary, 24 and 12 hour modes, and keeps
 * a time the guest sets (through SET mode) as an offset from the host's clock.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Mc146818Rtc } from '../../src/hw/rtc/mc146818rtc.js';

const T0 = Date.UTC(2026, 10, 26, 15, 4, 5); // Thursday 2026-11-26 15:04:05 UTC

function rtc(now = () => T0) {
  const dev = new Mc146818Rtc(now);
  const get = (i: number) => { dev.write(0, 1, i); return dev.read(1, 1); };
  const set = (i: number, v: number) => { dev.write(0, 1, i); dev.write(1, 1, v); };
  return { dev, get, set };
}

test('reads the time in BCD, 24-hour mode by default', () => {
  const { get } = rtc();
  assert.deepEqual([0, 2, 4, 6, 7, 8, 9, 0x32].map(get), [0x05, 0x04, 0x15, 0x05, 0x26, 0x11, 0x26, 0x20]);
  assert.equal(get(0x0d), 0x80, 'register D: valid');
});

test('binary and 12-hour modes', () => {
  const { get, set } = rtc();
  set(0x0b, 0x04); // binary, 12-hour
  assert.equal(get(0), 5);
  assert.equal(get(4), 0x80 | 3, '3 PM');
  assert.equal(get(9), 26);
});

test('a time set by the guest keeps running with the host clock', () => {
  let now = T0;
  const { get, set } = rtc(() => now);
  set(0x0b, 0x82); // SET, 24-hour BCD
  set(9, 0x30);
  set(8, 0x01);
  set(7, 0x02);
  set(4, 0x03);
  set(2, 0x04);
  set(0, 0x05);
  set(0x0b, 0x02); // leave SET mode: the time takes effect
  now += 61_000;
  assert.deepEqual([0, 2, 4, 7, 8, 9].map(get), [0x06, 0x05, 0x03, 0x02, 0x01, 0x30]);
});

test('CMOS storage, read-only registers, and the index port', () => {
  const { dev, get, set } = rtc();
  set(0x40, 0xab);
  assert.equal(get(0x40), 0xab);
  set(0x0d, 0);
  assert.equal(get(0x0d), 0x80);
  assert.equal(dev.read(0, 1), 0xff);
  dev.write(0, 1, 0x80 | 0x40); // NMI mask bit is not part of the index
  assert.equal(dev.read(1, 1), 0xab);
});
