/**
 * The framebuffer and virtio input on the bundled RISC-V Linux: with
 * `-device simple-framebuffer` and `console=tty0`, Linux's simplefb and fbcon draw the
 * boot log, so QMP/HMP screendump is not blank; keys sent with QMP input-send-event
 * reach the virtual terminal through virtio-keyboard, and an absolute position the
 * tablet's evdev device.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole, ROOT } from './guest-console.js';
import { QmpClient } from './qmp-client.js';

const PROMPT = /~ # $/;
const BOOT_TIMEOUT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-fb-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** QMP events that type `text` (lower-case letters, digits, space, Enter as \n), each key pressed and released. */
function typing(text: string): Array<Array<Record<string, unknown>>> {
  const qcode = (c: string) => (c === '\n' ? 'ret' : c === ' ' ? 'spc' : c);
  return [...text].map((c) => [true, false].map((down) => ({ type: 'key', data: { down, key: { type: 'qcode', data: qcode(c) } } })));
}

test('simple-framebuffer: fbcon draws the boot log (screendump is not blank); virtio-keyboard types into tty1; the tablet reports a position', async () => {
  const sock = join(dir, 'qmp.sock');
  const g = new GuestConsole(['-nographic', '-qmp', `unix:${sock},server=on,wait=off`,
    '-device', 'simple-framebuffer,width=640,height=480', '-device', 'virtio-keyboard-device', '-device', 'virtio-tablet-pci',
    // The shell stays on the serial port (the last console=); kernel messages go to both.
    '-kernel', join(ROOT, 'images', 'riscv64', 'Image.gz'), '-initrd', join(ROOT, 'images', 'riscv64', 'initramfs.cpio.gz'),
    '-append', 'console=tty0 console=ttyS0']);
  let q: QmpClient | null = null;
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    const devices = await g.run('cat /proc/fb /sys/class/input/input*/name', PROMPT);
    assert.match(devices, /^0 simple\r?$/m);
    assert.match(devices, /^QEMU Virtio Keyboard\r?$/m);
    assert.match(devices, /^QEMU Virtio Tablet\r?$/m);
    q = new QmpClient(sock);
    await q.next();
    await q.next();

    const ppm = join(dir, 'screen.ppm');
    assert.deepEqual(await q.execute('screendump', { filename: ppm }), {});
    const data = readFileSync(ppm);
    const header = 'P6\n640 480\n255\n';
    assert.equal(data.subarray(0, header.length).toString(), header);
    assert.equal(data.length, header.length + 640 * 480 * 3);
    let lit = 0;
    for (let i = header.length; i < data.length; i += 3) if (data[i]! | data[i + 1]! | data[i + 2]!) lit++;
    assert.ok(lit > 2000, `only ${lit} lit pixels: fbcon drew nothing`);
    const png = join(dir, 'screen.png');
    assert.equal(await q.execute('human-monitor-command', { 'command-line': `screendump ${png} -f png` }), '');
    assert.equal(readFileSync(png).subarray(1, 4).toString(), 'PNG');

    // A line typed on the keyboard reaches a reader of the first virtual terminal.
    g.send('read line < /dev/tty1; echo got-$line\n');
    await new Promise((r) => setTimeout(r, 1000));
    for (const key of typing('vireo 42\n')) assert.deepEqual(await q.execute('input-send-event', { events: key }), {});
    await g.waitFor(/got-vireo 42/, 30_000);

    // The tablet's absolute position, as evdev gives it to a reader (struct input_event: 16 bytes of time, type, code, value).
    const from = g.output.length;
    g.send('for e in /sys/class/input/event*; do grep -q Tablet $e/device/name && T=/dev/input/${e##*/}; done; ' +
      'dd if=$T bs=24 count=2 2>/dev/null | od -An -tx1 | tr -d " \\n"; echo; echo read-$((1+1))\n');
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await q.execute('input-send-event', { events: [{ type: 'abs', data: { axis: 'x', value: 0x1234 } }] }), {});
    await g.waitFor(/read-2/, 30_000, from);
    assert.match(g.output.slice(from), /[0-9a-f]{32}0300000034120000[0-9a-f]{32}0000000000000000/, 'ABS_X 0x1234, then SYN_REPORT');
  } finally {
    q?.kill();
    g.kill();
  }
});
