/**
 * The framebuffer (src/hw/display/simplefb.ts), the screendump encoders
 * (src/ui/screendump.ts) and the monitors' display and input commands
 * (src/monitor/display.ts: QMP screendump and input-send-event, HMP screendump and
 * sendkey), with a fake machine.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateSync } from 'node:zlib';
import { SimpleFramebuffer } from '../../src/hw/display/simplefb.js';
import { FdtBuilder } from '../../src/hw/core/fdt.js';
import { encodePng, encodePpm, type Picture } from '../../src/ui/screendump.js';
import { EV, REL, ABS, BTN, type InputEvent } from '../../src/ui/input-keys.js';
import { QmpSession } from '../../src/monitor/qmp.js';
import { Hmp } from '../../src/monitor/hmp.js';
import { FakeMachine, context } from './qmp-fake.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-display-'));

/** A fake machine with a 2x2 screen and input devices that record what they get. */
class DisplayMachine extends FakeMachine {
  sent: InputEvent[][] = [];
  picture: Picture | null = { width: 2, height: 2, rgb: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]) };
  screen() { return this.picture; }
  sendInput(events: readonly InputEvent[]) { this.sent.push([...events]); return true; }
}

async function qmp(machine: FakeMachine, execute: string, args: Record<string, unknown>): Promise<Record<string, any>> {
  const out: string[] = [];
  const s = new QmpSession(context(machine), (t) => out.push(t));
  s.input(JSON.stringify({ execute: 'qmp_capabilities' }));
  s.input(JSON.stringify({ execute, arguments: args }));
  await s.idle();
  return JSON.parse(out.at(-1)!);
}

test('simple-framebuffer: XRGB8888 rows of width * 4 bytes, read back as RGB; its device tree node', () => {
  const fb = new SimpleFramebuffer(3, 2);
  assert.equal(fb.stride, 12);
  assert.equal(fb.bytes, 24);
  const px = new Uint8Array(24);
  px.set([0x30, 0x20, 0x10, 0xff], 4); // pixel (1, 0): B G R X
  assert.deepEqual([...fb.rgb(px).subarray(3, 6)], [0x10, 0x20, 0x30]);
  assert.throws(() => new SimpleFramebuffer(0, 10), RangeError);
  assert.throws(() => new SimpleFramebuffer(5000, 10), RangeError);
  const f = new FdtBuilder();
  f.beginNode('');
  fb.fdtNode(f, 0xa0000000);
  f.endNode();
  const blob = Buffer.from(f.finish());
  for (const s of ['framebuffer@a0000000', 'simple-framebuffer', 'x8r8g8b8', 'stride']) assert.ok(blob.includes(s), s);
});

test('screendump encoders: PPM P6 and a PNG whose pixels inflate back', () => {
  const p: Picture = { width: 2, height: 1, rgb: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
  assert.deepEqual(encodePpm(p), Buffer.concat([Buffer.from('P6\n2 1\n255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]));
  const png = encodePng(p);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.readUInt32BE(16), 2);
  assert.equal(png.readUInt32BE(20), 1);
  const idat = png.indexOf('IDAT');
  const len = png.readUInt32BE(idat - 4);
  assert.deepEqual([...inflateSync(png.subarray(idat + 4, idat + 4 + len))], [0, 1, 2, 3, 4, 5, 6]);
  // Every chunk's CRC (type and data), as PNG readers check them.
  for (let o = 8; o < png.length; o += 12 + png.readUInt32BE(o)) {
    const n = png.readUInt32BE(o);
    assert.equal(png.readUInt32BE(o + 8 + n), crc32(png.subarray(o + 4, o + 8 + n)));
  }
});

test('QMP screendump: PPM by default, PNG with format=png; an error without a display', async () => {
  const m = new DisplayMachine();
  assert.deepEqual(await qmp(m, 'screendump', { filename: join(dir, 'a.ppm') }), { return: {} });
  assert.deepEqual(readFileSync(join(dir, 'a.ppm')), encodePpm(m.picture!));
  assert.deepEqual(await qmp(m, 'screendump', { filename: join(dir, 'a.png'), format: 'png' }), { return: {} });
  assert.deepEqual(readFileSync(join(dir, 'a.png')), encodePng(m.picture!));
  assert.equal((await qmp(m, 'screendump', { filename: join(dir, 'b'), format: 'bmp' })).error.desc, "Parameter 'format' does not accept value 'bmp'");
  assert.match((await qmp(m, 'screendump', { filename: join(dir, 'no/such/dir') })).error.desc, /failed to write/);
  m.picture = null;
  assert.deepEqual(await qmp(m, 'screendump', { filename: join(dir, 'c') }),
    { error: { class: 'GenericError', desc: 'There is no QemuConsole I can screendump from.' } });
  assert.match((await qmp(new FakeMachine(), 'screendump', { filename: join(dir, 'c') })).error.desc, /no QemuConsole/);
});

test('QMP input-send-event: keys by qcode, buttons, wheel, relative and absolute axes as evdev events', async () => {
  const m = new DisplayMachine();
  const r = await qmp(m, 'input-send-event', { events: [
    { type: 'key', data: { down: true, key: { type: 'qcode', data: 'shift' } } },
    { type: 'key', data: { down: false, key: { type: 'qcode', data: 'a' } } },
    { type: 'btn', data: { down: true, button: 'left' } },
    { type: 'btn', data: { down: true, button: 'wheel-down' } },
    { type: 'btn', data: { down: false, button: 'wheel-down' } },
    { type: 'rel', data: { axis: 'x', value: -5 } },
    { type: 'abs', data: { axis: 'y', value: 0x4000 } },
  ] });
  assert.deepEqual(r, { return: {} });
  assert.deepEqual(m.sent, [[
    { type: EV.KEY, code: 42, value: 1 }, { type: EV.KEY, code: 30, value: 0 }, { type: EV.KEY, code: BTN.LEFT, value: 1 },
    { type: EV.REL, code: REL.WHEEL, value: -1 }, { type: EV.REL, code: REL.X, value: -5 }, { type: EV.ABS, code: ABS.Y, value: 0x4000 },
  ]]);
  const bad = async (ev: unknown) => (await qmp(m, 'input-send-event', { events: [ev] })).error.desc as string;
  assert.equal(await bad({ type: 'key', data: { down: true, key: { type: 'qcode', data: 'nope' } } }), "Parameter 'key' does not accept value 'nope'");
  assert.match(await bad({ type: 'key', data: { down: true, key: { type: 'number', data: 30 } } }), /qcode/);
  assert.equal(await bad({ type: 'rel', data: { axis: 'z', value: 1 } }), "Parameter 'axis' does not accept value 'z'");
  assert.equal(await bad({ type: 'abs', data: { axis: 'x', value: 1.5 } }), "Invalid parameter type for 'value', expected: integer");
  assert.equal(await bad({ type: 'touch', data: {} }), "Parameter 'type' does not accept value 'touch'");
  assert.equal(await bad('key'), "Invalid parameter type for 'events', expected: object");
  assert.equal(m.sent.length, 1, 'nothing sent for a bad list');
  assert.match((await qmp(new FakeMachine(), 'input-send-event', { events: [] })).error.desc, /No input device/);
});

test('HMP screendump FILE [-f png] and sendkey ctrl-alt-f1', async () => {
  const m = new DisplayMachine();
  const hmp = new Hmp(context(m));
  assert.equal(await hmp.execute(`screendump ${join(dir, 'h.ppm')}`), '');
  assert.deepEqual(readFileSync(join(dir, 'h.ppm')), encodePpm(m.picture!));
  assert.equal(await hmp.execute(`screendump ${join(dir, 'h.png')} -f png`), '');
  assert.deepEqual(readFileSync(join(dir, 'h.png')), encodePng(m.picture!));
  assert.match(await hmp.execute('screendump'), /^Usage/);
  assert.equal(await hmp.execute('sendkey ctrl-alt-f1'), '');
  assert.deepEqual(m.sent, [
    [29, 56, 59].map((code) => ({ type: EV.KEY, code, value: 1 })),
    [59, 56, 29].map((code) => ({ type: EV.KEY, code, value: 0 })),
  ]);
  assert.equal(await hmp.execute('sendkey ctrl-foo'), "Error: Parameter 'key' does not accept value 'foo'\n");
});
