/**
 * Tests for the NS16550A UART (src/hw/char/serial.ts), qtest style: registers driven
 * through the MmioHandler, IRQ level and chardev bytes checked.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Serial16550, serialFdtNode } from '../../src/hw/char/serial.js';
import { Chardev } from '../../src/chardev/chardev.js';
import { RecordingLine as Line, dtsOfNode } from './device-helpers.js';

class TestChardev extends Chardev {
  out: number[] = [];
  write(data: Uint8Array): void {
    this.out.push(...data);
  }
  feed(s: string): void {
    this.receive(Buffer.from(s));
  }
}

const RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function setup() {
  const irq = new Line();
  const chr = new TestChardev();
  const uart = new Serial16550(irq, chr);
  const rd = (off: number) => uart.read(off, 1);
  const wr = (off: number, v: number) => uart.write(off, 1, v);
  const drain = () => {
    let s = '';
    while (rd(LSR) & 1) s += String.fromCharCode(rd(RBR));
    return s;
  };
  return { irq, chr, uart, rd, wr, drain };
}

test('THR writes go out at once; LSR shows THR and shifter empty', () => {
  const { chr, rd, wr, irq } = setup();
  for (const c of 'hi\n') wr(THR, c.charCodeAt(0));
  assert.equal(Buffer.from(chr.out).toString(), 'hi\n');
  assert.equal(rd(LSR), 0x60);
  assert.equal(rd(IIR), 0x01);
  assert.equal(irq.level, false);
});

test('THR-empty interrupt: raised on enable, acknowledged by IIR read, re-armed by THR write', () => {
  const { rd, wr, irq } = setup();
  wr(FCR, 0x01);
  wr(IER, 0x02);
  assert.equal(irq.level, true);
  assert.equal(rd(IIR), 0xc2);
  assert.equal(irq.level, false);
  assert.equal(rd(IIR), 0xc1);
  wr(THR, 0x41);
  assert.equal(irq.level, true);
  wr(IER, 0);
  assert.equal(irq.level, false);
});

test('input is held in the chardev until the guest reads it (polling)', () => {
  const { chr, rd, wr, irq } = setup();
  chr.feed('abc');
  assert.equal(irq.level, false);
  assert.equal(chr.pending, 3);
  // Probing reads (as Linux's 8250 driver does before it opens the port) get nothing.
  assert.equal(rd(LSR), 0x60);
  assert.equal(rd(RBR), 0);
  wr(FCR, 0x07);
  assert.equal(chr.pending, 3);
  // A polling loop on LSR shows a reader: input is offered.
  for (let i = 0; i < 63; i++) assert.equal(rd(LSR), 0x60);
  assert.equal(rd(LSR), 0x61); // DR while input waits
  assert.equal(chr.pending, 3); // LSR reads do not move data
  assert.equal(rd(RBR), 0x61);
  assert.equal(chr.pending, 2);
  assert.equal(rd(RBR), 0x62);
  assert.equal(rd(RBR), 0x63);
  assert.equal(rd(LSR), 0x60);
  assert.equal(rd(RBR), 0); // empty
});

test('interrupt-driven receive: FIFO fills to 16, trigger level and timeout reporting', () => {
  const { chr, rd, wr, irq } = setup();
  const text = 'abcdefghijklmnopqrst'; // 20 bytes
  wr(FCR, 0x41); // FIFO on, trigger level 4
  chr.feed(text);
  assert.equal(chr.pending, 20);
  wr(IER, 0x01);
  assert.equal(chr.pending, 4); // never more than the FIFO holds
  assert.equal(irq.level, true);
  assert.equal(rd(IIR), 0xc4);
  let got = '';
  for (let i = 0; i < 17; i++) got += String.fromCharCode(rd(RBR)); // each read refills
  assert.equal(chr.pending, 0);
  assert.equal(rd(IIR), 0xcc); // 3 left, below the trigger: timeout
  assert.equal(irq.level, true);
  got += String.fromCharCode(rd(RBR), rd(RBR), rd(RBR));
  assert.equal(got, text);
  assert.equal(rd(IIR), 0xc1);
  assert.equal(irq.level, false);
  chr.feed('z'); // new input with RDI enabled raises the line
  assert.equal(irq.level, true);
  assert.equal(rd(IIR), 0xcc);
  assert.equal(rd(RBR), 0x7a);
  assert.equal(irq.level, false);
});

test('a FIFO reset gives the bytes the guest has not read back to the chardev', () => {
  const { chr, rd, wr, drain } = setup();
  wr(FCR, 0x01);
  chr.feed('0123456789abcdefWXYZ');
  wr(IER, 0x01);
  assert.equal(chr.pending, 4);
  assert.equal(rd(RBR), 0x30); // the guest took '0'
  wr(FCR, 0x03); // clear RX: the 15 unread bytes go back in front of the 4 still queued
  assert.equal(drain(), '123456789abcdefWXYZ');
  wr(FCR, 0x00); // a FIFO toggle too, and then with one byte held
  chr.feed('q');
  wr(FCR, 0x01);
  assert.equal(drain(), 'q');
});

test('without the FIFO the receiver holds one byte', () => {
  const { chr, rd, wr, irq } = setup();
  chr.feed('xy');
  wr(IER, 0x01);
  assert.equal(chr.pending, 1);
  assert.equal(rd(IIR), 0x04); // no FIFO bits
  assert.equal(irq.level, true);
  assert.equal(rd(RBR), 0x78);
  assert.equal(rd(IIR), 0x04);
  assert.equal(rd(RBR), 0x79);
  assert.equal(irq.level, false);
});

test('DLAB selects the divisor latches', () => {
  const { chr, rd, wr } = setup();
  wr(IER, 0x05);
  wr(LCR, 0x83);
  wr(DLL, 0x01);
  wr(DLM, 0x02);
  assert.equal(rd(DLL), 0x01);
  assert.equal(rd(DLM), 0x02);
  wr(LCR, 0x03);
  assert.equal(rd(IER), 0x05);
  assert.equal(rd(LCR), 0x03);
  assert.deepEqual(chr.out, []);
  wr(SCR, 0x5a);
  assert.equal(rd(SCR), 0x5a);
});

test('loopback: THR feeds RX, MSR mirrors MCR, overrun raises a line status interrupt', () => {
  const { chr, rd, wr, irq, drain } = setup();
  assert.equal(rd(MSR), 0xb0);
  chr.feed('host');
  wr(MCR, 0x1f);
  assert.equal(rd(MSR), 0xf0);
  wr(IER, 0x05);
  wr(THR, 0x31);
  wr(THR, 0x32); // no FIFO: one byte fits, this one overruns
  assert.deepEqual(chr.out, []);
  assert.equal(rd(IIR), 0x06);
  assert.equal(irq.level, true);
  assert.equal(rd(LSR), 0x63);
  assert.equal(rd(IIR), 0x04);
  assert.equal(drain(), '1');
  assert.equal(chr.pending, 4); // host input untouched in loopback
  wr(MCR, 0x08);
  assert.equal(drain(), 'host');
});

test('undefined registers read 0 and ignore writes', () => {
  const { rd, wr, uart } = setup();
  for (const off of [8, 0x20, 0xff]) {
    assert.equal(rd(off), 0);
    wr(off, 0xff);
  }
  wr(LSR, 0xff);
  wr(MSR, 0x00);
  assert.equal(rd(LSR), 0x60);
  assert.equal(uart.read(MSR, 4), 0xb0);
});

test('device-tree node matches QEMU virt', (t) => {
  const dts = dtsOfNode(t, (f) => {
    serialFdtNode(f, 0x10000000, 0x100, 10, 3);
  });
  if (dts === undefined) return;
  assert.match(dts, /serial@10000000 \{/);
  assert.match(dts, /interrupts = <0x0a>;/);
  assert.match(dts, /interrupt-parent = <0x03>;/);
  // dtc's guesser prints the cell 0x00384000 as the string "\08@".
  assert.match(dts, /clock-frequency = (<0x384000>|"\\08@");/);
  assert.match(dts, /reg = <0x00 0x10000000 0x00 0x100>;/);
  assert.match(dts, /compatible = "ns16550a";/);
});
