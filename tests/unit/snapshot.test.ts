/**
 * Snapshots below the machine: the snapshot file (src/migration/snapshot-file.ts) round
 * trip and its checks, and device state (saveState/loadState) of the PLIC, the UART, the
 * RTC and the CLINT, with malformed fields refused as SnapshotError.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSnapshotFile, writeSnapshotFile, packPayload, unpackPayload, checkSnapshotName } from '../../src/migration/snapshot-file.js';
import { SnapshotError } from '../../src/migration/vmstate.js';
import { RiscvPlic } from '../../src/hw/intc/riscv-plic.js';
import { Serial16550 } from '../../src/hw/char/serial.js';
import { GoldfishRtc } from '../../src/hw/rtc/goldfish-rtc.js';
import { RiscvAclint } from '../../src/hw/intc/riscv-aclint.js';
import { Chardev } from '../../src/chardev/chardev.js';
import { FakeClock, RecordingLine as Line } from './device-helpers.js';

/** A chardev fed by the test. */
class TestChardev extends Chardev {
  write(): void {}
  feed(bytes: number[]): void {
    this.receive(Buffer.from(bytes));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'vireo-snapfile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const isSnapshotError = (re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof SnapshotError, String(e));
  assert.match(e.message, re);
  return true;
};

test('snapshot file: entries round trip, a missing file has none, damage is refused', async () => {
  const path = join(dir, 'a.vsnap');
  assert.deepEqual(readSnapshotFile(path), []);
  const one = await packPayload(new TextEncoder().encode('state one'));
  const big = new Uint8Array(9 << 20).map((_, i) => i % 251);
  assert.deepEqual(unpackPayload('big', await packPayload(big)), Buffer.from(big), 'several gzip members decode as one');
  writeSnapshotFile(path, [{ name: 's1', date: 1000, payload: one }, { name: 'zwei ü', date: 2000.5, payload: new Uint8Array(0) }]);
  const got = readSnapshotFile(path);
  assert.deepEqual(got.map((e) => [e.name, e.date, e.payload.length]), [['s1', 1000, one.length], ['zwei ü', 2000.5, 0]]);
  assert.equal(new TextDecoder().decode(unpackPayload('s1', got[0]!.payload)), 'state one');
  assert.throws(() => unpackPayload('s1', Uint8Array.of(1, 2, 3)), isSnapshotError(/snapshot 's1' is corrupt/));

  const bytes = readFileSync(path);
  for (const [name, data, re] of [
    ['short', bytes.subarray(0, bytes.length - 3), /\(truncated\)/],
    ['trailing', Buffer.concat([bytes, Buffer.from('x')]), /\(trailing bytes\)/],
    ['foreign', Buffer.from('QFI\xfb\0\0\0\x03 a qcow2 header, say'), /\(no VIREOSNP header\)/],
    ['version', Buffer.concat([bytes.subarray(0, 8), Buffer.from([2, 0, 0, 0]), bytes.subarray(12)]), /snapshot file version 2, this Vireo reads version 1/],
  ] as const) {
    const p = join(dir, `${name}.vsnap`);
    writeFileSync(p, data);
    assert.throws(() => readSnapshotFile(p), isSnapshotError(re), name);
  }
  for (const bad of ['', 'a b', 'tab\there', 'x'.repeat(300)]) assert.throws(() => checkSnapshotName(bad), isSnapshotError(/invalid snapshot name/));
  checkSnapshotName('vm-20261126');
});

test('PLIC state: registers and output levels come back; bad fields are refused', () => {
  const outs = [new Line(), new Line()];
  const plic = new RiscvPlic(outs, 96);
  plic.write(4 * 10, 4, 3); // priority of source 10
  plic.write(0x2000, 4, 1 << 10); // context 0 enables it
  plic.line(10).set(true);
  assert.equal(outs[0]!.level, true);
  const s = plic.saveState();
  const outs2 = [new Line(), new Line()];
  const copy = new RiscvPlic(outs2, 96);
  copy.loadState(JSON.parse(JSON.stringify(s)));
  assert.equal(outs2[0]!.level, true);
  assert.equal(copy.read(4 * 10, 4), 3);
  assert.equal(copy.read(0x200004, 4), 10, 'the pending source is claimed');
  assert.throws(() => copy.loadState({ ...s, priority: [1, 2, 3] }), isSnapshotError(/bad field 'priority'/));
  assert.throws(() => copy.loadState({ ...s, threshold: 'high' }), isSnapshotError(/bad field 'threshold'/));
});

test('UART state: registers and received bytes come back', () => {
  const chr = new TestChardev();
  const uart = new Serial16550(new Line(), chr);
  uart.write(3, 1, 0x03); // 8N1
  uart.write(2, 1, 0x01); // FIFO on
  uart.write(7, 1, 0x5a);
  uart.write(1, 1, 0x01); // receive interrupt on
  chr.feed([0x41, 0x42]);
  const s = uart.saveState();
  const copy = new Serial16550(new Line(), new TestChardev());
  copy.loadState(JSON.parse(JSON.stringify(s)));
  assert.equal(copy.read(7, 1), 0x5a);
  assert.equal(copy.read(3, 1), 0x03);
  assert.equal(copy.read(0, 1), 0x41);
  assert.equal(copy.read(0, 1), 0x42);
  assert.throws(() => copy.loadState({ ...s, fifo: new Array(17).fill(0) }), isSnapshotError(/bad field 'fifo'/));
  assert.throws(() => copy.loadState({ ...s, lcr: 256 }), isSnapshotError(/bad field 'lcr'/));
});

test('RTC and CLINT state: time, alarm and timers come back on a restored clock', () => {
  const clock = new FakeClock();
  clock.t = 5_000;
  const rtc = new GoldfishRtc(clock, new Line(), 1_000_000_000_000n);
  const copyClock = new FakeClock();
  copyClock.t = 5_000;
  const copy = new GoldfishRtc(copyClock, new Line(), 0n);
  copy.loadState(JSON.parse(JSON.stringify(rtc.saveState())));
  assert.equal(copy.read(0, 4), rtc.read(0, 4)); // TIME_LOW
  assert.throws(() => copy.loadState({ ...rtc.saveState(), offset: '1e9' }), isSnapshotError(/bad field 'offset'/));

  const mtip = [new Line()];
  const clint = new RiscvAclint(clock, [new Line()], mtip);
  clint.write(0x4000, 4, 100); // mtimecmp 100 ticks = 10000 ns
  clint.write(0x4004, 4, 0);
  const mtip2 = [new Line()];
  const msip2 = [new Line()];
  clint.write(0, 4, 1);
  const restored = new RiscvAclint(copyClock, msip2, mtip2);
  restored.loadState(JSON.parse(JSON.stringify(clint.saveState())));
  assert.equal(msip2[0]!.level, true);
  assert.equal(mtip2[0]!.level, false);
  assert.equal(copyClock.nextDeadline(), 10_000);
  copyClock.t = 10_000;
  copyClock.runExpired();
  assert.equal(mtip2[0]!.level, true);
});
