/**
 * The human monitor (src/monitor/hmp.ts): commands, memory dumps, the interactive line
 * editor, and C-a c on the stdio terminal switching between the guest and the monitor.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Hmp, HmpSession } from '../../src/monitor/hmp.js';
import { StdioChardev, type StdioInput } from '../../src/chardev/stdio.js';
import { Monitors } from '../../src/monitor/monitor-server.js';
import type { VmOptions } from '../../src/system/options.js';
import { FakeMachine, context } from './qmp-fake.js';

test('info commands, stop/cont and unknown commands', async () => {
  const m = new FakeMachine();
  const h = new Hmp(context(m));
  assert.equal(await h.execute('info status'), 'VM status: running\n');
  assert.equal(await h.execute('info version'), '7.2.0 (vireo-test)\n');
  assert.equal(await h.execute('info cpus'), '* CPU #0: thread_id=4242\n  CPU #1: thread_id=4242\n');
  assert.equal(await h.execute('info block'), 'hd0: /tmp/disk.img (raw, read-only)\n');
  assert.equal(await h.execute('info chardev'), 'serial0: filename=stdio\n');
  assert.match(await h.execute('info mtree'), /address-space: memory\n.*\n    0000000000001000-000000000000103f \(prio 0, i\/o\): ram\n/);
  assert.match(await h.execute('info'), /info registers/);
  assert.match(await h.execute('help'), /^help \[cmd\] -- /);
  assert.match(await h.execute('help xp'), /^xp \/fmt addr -- physical memory dump/);
  assert.equal(await h.execute('stop'), '');
  assert.equal(await h.execute('info status'), 'VM status: paused\n');
  assert.equal(await h.execute('cont'), '');
  assert.equal(m.status(), 'running');
  assert.equal(await h.execute('  '), '');
  assert.equal(await h.execute('frobnicate now'), "unknown command: 'frobnicate'\n");
  assert.equal(await new Hmp(context(new FakeMachine(true))).execute('info status'), 'VM status: paused (prelaunch)\n');
});

test('xp and x: units, formats, counts, line layout, remembered format, bad addresses', async () => {
  const h = new Hmp(context(new FakeMachine()));
  assert.equal(await h.execute('xp /8xw 0x1000'),
    '0000000000001000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c\n0000000000001010: 0x13121110 0x17161514 0x1b1a1918 0x1f1e1d1c\n');
  assert.equal(await h.execute('xp /2xg 0x1008'), '0000000000001008: 0x0f0e0d0c0b0a0908 0x1716151413121110\n');
  assert.equal(await h.execute('xp /3dh 0x1000'), '0000000000001000: 256 770 1284\n');
  assert.equal(await h.execute('xp /2c 0x1020'), "0000000000001020: '\\x20' '!'\n".replace("'\\x20'", "' '"));
  assert.equal(await h.execute('xp 0x1004'), "0000000000001004: '\\x04' '\\x05'\n", 'the last count and format are reused');
  assert.equal(await h.execute('x /1xw 4100'), '0000000000001004: 0x07060504\n', 'x uses the address as physical');
  assert.equal(await h.execute('xp /4xw 0x2000'), 'Cannot access memory at 0x2000\n');
  assert.equal(await h.execute('xp /4xw zork'), "invalid address: 'zork'\n");
});

test('the interactive session: banner, prompt, echo, backspace, CR LF, arrow keys ignored', async () => {
  const out: string[] = [];
  const s = new HmpSession(new Hmp(context(new FakeMachine())), (t) => out.push(t));
  s.greet();
  assert.equal(out.join(''), "QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ");
  out.length = 0;
  s.input('info stat\x1b[Au\x7fus\r\n');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(out.join(''), 'info statu\b \bus\r\nVM status: running\r\n(qemu) ');
});

test('C-a c on the -nographic terminal switches input between the guest and the monitor', async () => {
  const listeners: Array<(b: Buffer) => void> = [];
  const input: StdioInput = {
    on: (ev: string, l: (b: Buffer) => void) => { if (ev === 'data') listeners.push(l); },
    off: () => {}, pause: () => {}, resume: () => {},
  } as unknown as StdioInput;
  const out: string[] = [];
  const term = new StdioChardev({ onQuit: () => {}, input, output: { write: (d) => void out.push(Buffer.from(d).toString()) } });
  const machine = new FakeMachine();
  const opts = { serial: { kind: 'stdio' }, drives: [], chardevs: [] } as unknown as VmOptions;
  const mons = new Monitors({ opts, machine, runState: machine.runState, drives: new Map(), chardevs: new Map(), serial: term });
  mons.attachMux(term, term);
  const send = (s: string) => listeners.forEach((l) => l(Buffer.from(s)));
  send('ls\r');
  assert.equal(Buffer.from(term.read(100)).toString(), 'ls\r');
  send('\x01c');
  term.flush();
  assert.match(out.join(''), /QEMU 7\.2\.0 monitor.*\r\n\(qemu\) $/);
  out.length = 0;
  send('stop\r');
  await new Promise((r) => setTimeout(r, 10));
  term.flush();
  assert.equal(machine.status(), 'paused');
  assert.equal(term.pending, 0, 'monitor input does not reach the guest');
  send('\x01c');
  send('echo hi\r');
  assert.equal(Buffer.from(term.read(100)).toString(), 'echo hi\r');
  await mons.close();
  term.close();
});
