/**
 * Host character devices: stdio (raw mode, Ctrl-A escape keys, held input), file and null.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StdioChardev } from '../../src/chardev/stdio.js';
import { FileChardev } from '../../src/chardev/file.js';
import { NullChardev } from '../../src/chardev/null.js';

/** A stand-in for process.stdin: bytes are pushed with send(), raw mode is recorded. */
class FakeInput extends EventEmitter {
  isRaw = false;
  paused = true;
  constructor(readonly isTTY: boolean) {
    super();
  }
  setRawMode(mode: boolean): void {
    this.isRaw = mode;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  send(bytes: string | number[]): void {
    this.emit('data', Buffer.from(bytes as string));
  }
}

function setup(opts: { tty?: boolean; escapes?: boolean } = {}) {
  const input = new FakeInput(opts.tty ?? true);
  const out: string[] = [];
  let quits = 0;
  const dev = new StdioChardev({
    input,
    output: { write: (d) => void out.push(Buffer.from(d).toString('latin1')) },
    onQuit: () => void quits++,
    ...(opts.escapes !== undefined ? { escapes: opts.escapes } : {}),
  });
  let notified = 0;
  dev.onInput = () => void notified++;
  const guestInput = () => Buffer.from(dev.read(1 << 20)).toString('latin1');
  return { input, dev, out, guestInput, quits: () => quits, notified: () => notified };
}

test('stdio: a terminal goes raw while open and is restored on close', () => {
  const { input, dev } = setup();
  assert.equal(input.isRaw, true);
  assert.equal(input.paused, false);
  const before = process.listenerCount('SIGTERM');
  dev.close();
  assert.equal(input.isRaw, false);
  assert.equal(input.paused, true);
  assert.equal(process.listenerCount('SIGTERM'), before - 1, 'signal handler removed');
  assert.equal(input.listenerCount('data'), 0);
});

test('stdio: a pipe is left alone and installs no signal handlers', () => {
  const before = process.listenerCount('SIGINT');
  const { input, dev } = setup({ tty: false });
  assert.equal(input.isRaw, false);
  assert.equal(process.listenerCount('SIGINT'), before);
  dev.close();
});

test('stdio: guest output goes to stdout unchanged, copied from the caller buffer, batched', async () => {
  const { dev, out } = setup({ tty: false });
  const buf = new Uint8Array([0x68, 0x69, 0x0a]);
  dev.write(buf.subarray(0, 1));
  dev.write(buf.subarray(1));
  buf[0] = 0;
  assert.deepEqual(out, [], 'output waits for the next turn of the event loop');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(out, ['hi\n'], 'one write for both pieces');
  dev.write(Uint8Array.of(0x21));
  dev.close();
  assert.deepEqual(out, ['hi\n', '!'], 'close flushes');
});

test('stdio: an output error (EPIPE: the reader went away) quits once, quietly; later output is dropped', async () => {
  const output = new EventEmitter() as EventEmitter & { write(d: Uint8Array | string): void };
  const out: string[] = [];
  output.write = (d) => void out.push(Buffer.from(d).toString('latin1'));
  let quits = 0;
  const dev = new StdioChardev({ input: new FakeInput(false), output, onQuit: () => void quits++ });
  dev.write(Uint8Array.of(0x61));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(out, ['a']);
  output.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  output.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  assert.equal(quits, 1);
  dev.write(Uint8Array.of(0x62));
  dev.close();
  assert.deepEqual(out, ['a'], 'nothing written after the error');
  assert.equal(output.listenerCount('error'), 0, 'close removes the listener');
});

test('stdio: input is held until the device reads it; bytes are not translated', () => {
  const { input, dev, guestInput, notified } = setup();
  input.send('ls\r');
  input.send([0x1b, 0x5b, 0x41, 0x03]); // an arrow key and Ctrl-C reach the guest
  assert.equal(notified(), 2);
  assert.equal(dev.pending, 7);
  assert.equal(Buffer.from(dev.read(2)).toString(), 'ls');
  assert.equal(guestInput(), '\r\x1b[A\x03');
  dev.close();
});

test('stdio: C-a x quits and drops the rest of the input', () => {
  const { input, dev, out, guestInput, quits } = setup();
  input.send('ab\x01xcd');
  input.send('more');
  assert.equal(quits(), 1);
  assert.equal(guestInput(), 'ab');
  assert.match(out.join(''), /terminated/);
  dev.close();
});

test('stdio: C-a C-a sends one C-a, also when split across reads', () => {
  const { input, dev, guestInput, quits } = setup();
  input.send('a\x01\x01b');
  assert.equal(guestInput(), 'a\x01b');
  input.send('\x01');
  assert.equal(dev.pending, 0, 'a lone C-a waits for the next key');
  input.send('\x01c');
  assert.equal(guestInput(), '\x01c');
  assert.equal(quits(), 0);
  dev.close();
});

test('stdio: C-a h prints the key list, C-a c/s/b/t print a note, unknown keys vanish', () => {
  const { input, dev, out, guestInput, quits } = setup();
  input.send('\x01h');
  const help = out.join('');
  for (const key of ['C-a h', 'C-a x', 'C-a s', 'C-a t', 'C-a b', 'C-a c', 'C-a C-a']) assert.ok(help.includes(key), key);
  out.length = 0;
  input.send('1\x01c2\x01s3\x01b\x01t\x01z4');
  assert.equal(guestInput(), '1234');
  const notes = out.join('');
  assert.match(notes, /C-a c: there is no monitor/);
  for (const k of 'sbt') assert.match(notes, new RegExp(`C-a ${k}: not supported`));
  assert.equal(quits(), 0);
  dev.close();
});

test('stdio: escapes apply to piped input too, and can be turned off', () => {
  const piped = setup({ tty: false });
  piped.input.send('\x01x');
  assert.equal(piped.quits(), 1);
  piped.dev.close();

  const plain = setup({ tty: false, escapes: false });
  plain.input.send('\x01x\x03');
  assert.equal(plain.guestInput(), '\x01x\x03');
  assert.equal(plain.quits(), 0);
  plain.dev.close();
});

test('stdio: without escapes, Ctrl-C typed at a terminal quits', () => {
  const { input, dev, guestInput, quits } = setup({ escapes: false });
  input.send('a\x01b\x03c');
  assert.equal(guestInput(), 'a\x01b');
  assert.equal(quits(), 1);
  dev.close();
});

test('stdio: end of input does not quit; a large backlog pauses the host stream until read', () => {
  const { input, dev, quits } = setup({ tty: false });
  input.emit('end');
  input.emit('error', new Error('EIO'));
  assert.equal(quits(), 0);
  input.send(Buffer.alloc(100 * 1024, 0x41).toString());
  assert.equal(input.paused, true);
  dev.read(20 * 1024);
  assert.equal(input.paused, true, 'still above the low mark');
  dev.read(60 * 1024);
  assert.equal(input.paused, false);
  assert.equal(dev.pending, 20 * 1024, 'nothing was dropped');
  dev.close();
});

test('file: truncates on open, appends guest output, has no input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-chardev-'));
  try {
    const path = join(dir, 'serial.log');
    writeFileSync(path, 'old contents');
    const dev = new FileChardev(path);
    dev.write(Buffer.from('Linux version'));
    dev.write(new Uint8Array([0x0d, 0x0a]));
    assert.equal(readFileSync(path, 'latin1'), 'Linux version\r\n', 'written through at once');
    assert.equal(dev.pending, 0);
    dev.close();
    dev.close();
    dev.write(Buffer.from('late'));
    assert.equal(readFileSync(path, 'latin1'), 'Linux version\r\n');
    assert.throws(() => new FileChardev(join(dir, 'missing', 'x.log')), { code: 'ENOENT' });
    assert.throws(() => new FileChardev(dir), { code: 'EISDIR' });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('null: discards output and never has input', () => {
  const dev = new NullChardev();
  dev.write(Buffer.from('x'));
  assert.equal(dev.pending, 0);
  assert.equal(dev.read(10).length, 0);
});
