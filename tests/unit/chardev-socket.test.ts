/**
 * Character devices with a peer that comes and goes (src/chardev/socket.ts, pipe.ts,
 * open.ts): socket servers (Unix and TCP, one client at a time, the next waiting, wait=on), clients and
 * their one-line errors, held input with flow control, output dropped with no client and
 * held back while the client does not read, named pipes, and opening -chardev options.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { openSync, readSync, writeSync, closeSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocketChardev } from '../../src/chardev/socket.js';
import { PipeChardev } from '../../src/chardev/pipe.js';
import { FileChardev } from '../../src/chardev/file.js';
import { NullChardev } from '../../src/chardev/null.js';
import { openChardevs, closeChardevs, openSerial } from '../../src/chardev/open.js';
import { parseCommandLine } from '../../src/system/cmdline.js';
import { UserError, type VmOptions } from '../../src/system/options.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-chardev-socket-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A host-side client that records what it receives. */
async function client(target: string | number): Promise<{ s: Socket; got: () => string }> {
  const s = typeof target === 'string' ? connect(target) : connect(target, '127.0.0.1');
  let data = '';
  s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
  s.on('error', () => {});
  await once(s, 'connect');
  return { s, got: () => data };
}

function text(d: Uint8Array): string {
  return Buffer.from(d).toString('latin1');
}

test('socket server (Unix): one client at a time, input held, output to the client, events on connect and leave', async () => {
  const path = join(dir, 'a.sock');
  writeFileSync(path, ''); // not a socket: refused, not removed
  await assert.rejects(SocketChardev.open({ addr: { type: 'unix', path }, server: true }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /^-chardev socket: cannot listen on unix:.*a\.sock: Address already in use$/);
    return true;
  });
  rmSync(path);
  const chr = await SocketChardev.open({ addr: { type: 'unix', path }, server: true, what: '-chardev socket,id=c0' });
  const events: boolean[] = [];
  let inputs = 0;
  chr.onOpen = (open) => void events.push(open);
  chr.onInput = () => void inputs++;
  assert.equal(chr.connected, false);
  chr.write(Buffer.from('nobody hears this'));
  const a = await client(path);
  await until(() => chr.connected, 'the accept');
  assert.deepEqual(events, [true]);
  a.s.write('hello from host\n');
  await until(() => chr.pending === 16, 'input');
  assert.ok(inputs >= 1);
  assert.equal(text(chr.read(5)), 'hello');
  chr.write(Buffer.from('guest says hi\n'));
  await until(() => a.got() === 'guest says hi\n', 'output');
  // A second client while the first is connected waits, unserved, until the first leaves
  // (as QEMU, which accepts the next connection then); a third gives up while waiting.
  const b = await client(path);
  const gaveUp = await client(path);
  b.s.write('queued input');
  gaveUp.s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(text(chr.read(100)), ' from host\n');
  assert.equal(chr.pending, 0, 'the waiting client is not read');
  a.s.destroy();
  await until(() => events.length === 3, 'the first client to leave and the next to be served');
  assert.deepEqual(events, [true, false, true]);
  await until(() => chr.pending === 12, 'the waiting client\'s input');
  assert.equal(text(chr.read(100)), 'queued input');
  chr.write(Buffer.from('again'));
  await until(() => b.got() === 'again', 'output to the next client');
  b.s.destroy();
  await until(() => !chr.connected, 'the last client to leave');
  const c = await client(path);
  await until(() => chr.connected, 'a later client');
  c.s.destroy();
  chr.close();
  chr.close();
  await until(() => !existsSync(path), 'the socket file to be removed');
});

test('socket server: a socket file left by an earlier run is replaced', async () => {
  const path = join(dir, 'stale.sock');
  // A process killed while listening leaves its socket file behind.
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.ok(existsSync(path));
  const chr = await SocketChardev.open({ addr: { type: 'unix', path }, server: true });
  const a = await client(path);
  await until(() => chr.connected, 'the accept');
  a.s.destroy();
  chr.close();
});

test('socket server (TCP) with wait=on starts only once a client is there', async () => {
  let waiting = '';
  const opening = SocketChardev.open({
    addr: { type: 'inet', host: '127.0.0.1', port: 0 }, server: true, wait: true,
    onWaiting: (a) => { waiting = a.type === 'inet' ? String(a.port) : ''; },
  });
  await until(() => waiting !== '', 'the server to listen');
  let done = false;
  void opening.then(() => { done = true; });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(done, false, 'still waiting for a client');
  const a = await client(Number(waiting));
  const chr = await opening;
  assert.equal(chr.connected, true);
  a.s.write('x');
  await until(() => chr.pending === 1, 'input');
  a.s.destroy();
  chr.close();
});

test('socket client: connects, exchanges bytes; a refused connection is a one-line UserError', async () => {
  const srv = createServer();
  const peers: Socket[] = [];
  let got = '';
  srv.on('connection', (s) => {
    peers.push(s);
    s.on('data', (d) => { got += d; });
    s.write('welcome');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const chr = await SocketChardev.open({ addr: { type: 'inet', host: '127.0.0.1', port }, server: false });
  assert.equal(chr.connected, true);
  await until(() => chr.pending === 7, 'the greeting');
  chr.write(Buffer.from('thanks'));
  await until(() => got === 'thanks', 'output');
  const closed: boolean[] = [];
  chr.onOpen = (o) => void closed.push(o);
  peers[0]!.destroy();
  await until(() => !chr.connected, 'the server to leave');
  assert.deepEqual(closed, [false]);
  assert.equal(text(chr.read(100)), 'welcome', 'input received before the peer left is kept');
  chr.close();
  await new Promise((r) => srv.close(r));
  await assert.rejects(SocketChardev.open({ addr: { type: 'inet', host: '127.0.0.1', port }, server: false, what: '-chardev socket,id=c1' }),
    (e: unknown) => e instanceof UserError && /^-chardev socket,id=c1: cannot connect to tcp:127\.0\.0\.1:\d+: Connection refused$/.test(e.message));
  await assert.rejects(SocketChardev.open({ addr: { type: 'unix', path: join(dir, 'nothing.sock') }, server: false }),
    (e: unknown) => e instanceof UserError && /cannot connect to unix:.*nothing\.sock: No such file or directory$/.test(e.message));
});

test('socket: input beyond 64 KiB pauses the peer until read; nothing is lost', async () => {
  const path = join(dir, 'flow.sock');
  const chr = await SocketChardev.open({ addr: { type: 'unix', path }, server: true });
  const a = await client(path);
  await until(() => chr.connected, 'the accept');
  const total = 1024 * 1024;
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = (i * 13) & 255;
  a.s.write(data);
  await until(() => chr.pending > 64 * 1024, 'the backlog');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(chr.pending < 512 * 1024, `paused (${chr.pending} held)`);
  const back: Buffer[] = [];
  let n = 0;
  await until(() => {
    const d = chr.read(16 * 1024);
    back.push(Buffer.from(d));
    n += d.length;
    return n === total;
  }, 'all the input', 20_000);
  assert.ok(Buffer.concat(back).equals(data));
  a.s.destroy();
  chr.close();
});

test('socket: a client that does not read makes writeBlocked true; onWritable when it drains', async () => {
  const path = join(dir, 'slow.sock');
  const chr = await SocketChardev.open({ addr: { type: 'unix', path }, server: true });
  const s = connect(path);
  await once(s, 'connect');
  s.pause();
  await until(() => chr.connected, 'the accept');
  let writable = 0;
  chr.onWritable = () => void writable++;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < 64 && !chr.writeBlocked; i++) chr.write(chunk);
  assert.equal(chr.writeBlocked, true);
  let received = 0;
  s.on('data', (d: Buffer) => { received += d.length; });
  s.resume();
  await until(() => writable > 0, 'the drain');
  assert.equal(chr.writeBlocked, false);
  assert.ok(received > 0);
  s.destroy();
  chr.close();
});

test('pipe: PATH.in and PATH.out when both exist, else PATH; a plain file is refused', async () => {
  const base = join(dir, 'pipe');
  execFileSync('mkfifo', [`${base}.in`, `${base}.out`]);
  const chr = new PipeChardev(base);
  const w = openSync(`${base}.in`, constants.O_RDWR);
  writeSync(w, 'to guest');
  await until(() => chr.pending === 8, 'input');
  assert.equal(text(chr.read(100)), 'to guest');
  chr.write(Buffer.from('to host'));
  const r = openSync(`${base}.out`, constants.O_RDWR);
  const buf = Buffer.alloc(64);
  await new Promise((res) => setTimeout(res, 50));
  const n = readSync(r, buf);
  assert.equal(buf.subarray(0, n).toString(), 'to host');
  closeSync(w);
  closeSync(r);
  chr.close();
  chr.close();
  const file = join(dir, 'plain');
  writeFileSync(file, '');
  assert.throws(() => new PipeChardev(file, '-chardev pipe,id=p'), (e: unknown) => e instanceof UserError && /^-chardev pipe,id=p: .*plain is not a named pipe/.test(e.message));
  assert.throws(() => new PipeChardev(join(dir, 'absent')), { code: 'ENOENT' });
});

function options(...argv: string[]): VmOptions {
  const r = parseCommandLine(argv);
  assert.equal(r.kind, 'run');
  return (r as { options: VmOptions }).options;
}

test('openChardevs opens every -chardev; -serial chardev:ID is that device; a failure closes the rest', async () => {
  const log = join(dir, 'serial.log');
  const path = join(dir, 'open.sock');
  const opts = options('-chardev', `file,id=f,path=${log}`, '-chardev', 'null,id=n', '-chardev', `socket,id=s,path=${path},server=on,wait=off`,
    '-serial', 'chardev:f');
  const map = await openChardevs(opts);
  assert.ok(map.get('f') instanceof FileChardev);
  assert.ok(map.get('n') instanceof NullChardev);
  assert.ok(map.get('s') instanceof SocketChardev);
  const serial = openSerial(opts, () => {});
  assert.equal(serial, map.get('f'));
  serial.write(Buffer.from('boot'));
  assert.equal(readFileSync(log, 'latin1'), 'boot');
  closeChardevs(map);
  assert.equal(existsSync(path), false);
  const bad = options('-chardev', `socket,id=s,path=${path},server=on,wait=off`, '-chardev', `socket,id=t,path=${join(dir, 'none.sock')}`);
  await assert.rejects(openChardevs(bad), /-chardev socket,id=t: cannot connect/);
  await until(() => !existsSync(path), 'the first socket to be closed again');
});
