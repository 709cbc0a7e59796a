/**
 * The x86 board's small legacy devices: the i8042 answers Linux's probe and resets the
 * machine on command 0xFE; the ACPI sleep register powers off on S5 and resets on the
 * FADT's reset value.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { I8042, I8042_COMMAND, I8042_DATA } from '../../src/hw/input/i8042.js';
import { AcpiGed, GED_RESET, GED_SLEEP_CONTROL, RESET_VALUE, SLP_TYP_S5 } from '../../src/hw/acpi/ged.js';

function i8042() {
  const events: string[] = [];
  let level = false;
  const dev = new I8042({ set: (l) => { level = l; } }, () => events.push('reset'));
  return { dev, events, irq: () => level };
}

test('i8042: self test, configuration byte, keyboard reset and interrupts', () => {
  const { dev, irq } = i8042();
  assert.equal(dev.read(I8042_COMMAND, 1) & 1, 0, 'output buffer empty');
  assert.equal(dev.read(I8042_COMMAND, 1) & 0x10, 0x10, 'keyboard not inhibited (no "Keylock active")');
  dev.write(I8042_COMMAND, 1, 0xaa);
  assert.equal(dev.read(I8042_COMMAND, 1) & 1, 1, 'output buffer full');
  assert.equal(irq(), true, 'keyboard interrupt while data waits');
  assert.equal(dev.read(I8042_DATA, 1), 0x55);
  assert.equal(irq(), false);
  dev.write(I8042_COMMAND, 1, 0x60);
  dev.write(I8042_DATA, 1, 0x00); // interrupts off
  dev.write(I8042_COMMAND, 1, 0x20);
  assert.equal(irq(), false, 'interrupt disabled by the configuration byte');
  assert.equal(dev.read(I8042_DATA, 1), 0x00);
  dev.write(I8042_DATA, 1, 0xff); // keyboard reset
  assert.equal(dev.read(I8042_DATA, 1), 0xfa);
  assert.equal(dev.read(I8042_DATA, 1), 0xaa);
});

test('i8042: 0xFE and output-port bit 0 reset the machine; other writes do not', () => {
  const { dev, events } = i8042();
  dev.write(I8042_COMMAND, 1, 0xd1);
  dev.write(I8042_DATA, 1, 0x01);
  assert.deepEqual(events, []);
  dev.write(I8042_COMMAND, 1, 0xfe);
  dev.write(I8042_COMMAND, 1, 0xd1);
  dev.write(I8042_DATA, 1, 0x00);
  assert.deepEqual(events, ['reset', 'reset']);
});

test('ACPI sleep register: S5 with SLP_EN powers off; the reset register resets', () => {
  const events: string[] = [];
  const ged = new AcpiGed(() => events.push('off'), () => events.push('reset'));
  ged.write(GED_SLEEP_CONTROL, 1, SLP_TYP_S5 << 2); // no SLP_EN
  ged.write(GED_SLEEP_CONTROL, 1, (3 << 2) | 0x20); // S3: not supported
  ged.write(GED_RESET, 1, 0x41);
  assert.deepEqual(events, []);
  ged.write(GED_SLEEP_CONTROL, 1, (SLP_TYP_S5 << 2) | 0x20);
  ged.write(GED_RESET, 1, RESET_VALUE);
  assert.deepEqual(events, ['off', 'reset']);
});
