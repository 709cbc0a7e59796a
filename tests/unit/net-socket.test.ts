/**
 * Socket network backends (src/net/socket.ts): QEMU's stream framing (a 4-byte
 * big-endian length before each frame) between a listening and a connecting netdev on
 * 127.0.0.1, hostile streams, flow control, and the datagram backend; `-netdev stream`
 * (TCP and Unix) and `-netdev dgram` from the command line to frames on the wire.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_FRAME, type NetBackend } from '../../src/net/net.js';
import { DgramNetdev, StreamNetdev } from '../../src/net/socket.js';
import { openNetdev } from '../../src/net/open.js';
import { parseCommandLine } from '../../src/system/cmdline.js';
import { UserError, type NetdevOptions, type VmOptions } from '../../src/system/options.js';

const LOCAL = { host: '127.0.0.1', port: 0 };

/** Attaches a recording NIC to a backend. */
function nic(b: NetBackend, ready = () => true) {
  const got: Buffer[] = [];
  b.onReceive = (f) => void got.push(Buffer.from(f));
  b.canReceive = ready;
  return got;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function frame(n: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255));
}

test('stream: a listening and a connecting netdev exchange frames both ways, in order and byte-exact', async () => {
  const a = await StreamNetdev.listen(LOCAL);
  const b = await StreamNetdev.connect({ host: '127.0.0.1', port: a.address!.port });
  const gotA = nic(a);
  const gotB = nic(b);
  await until(() => a.connected, 'the accept');
  const sizes = [60, 1514, 14, 9000, 65550, 100];
  const sent = sizes.map((n, i) => frame(n, i));
  for (const f of sent) b.send(f);
  for (const f of sent) a.send(Buffer.from(f).reverse());
  await until(() => gotA.length === sizes.length && gotB.length === sizes.length, 'all frames');
  assert.deepEqual(gotA, sent);
  assert.deepEqual(gotB, sent.map((f) => Buffer.from(f).reverse()));
  a.close();
  b.close();
});

test('stream: frames split at any byte boundary are reassembled; an oversized length ends the connection', async () => {
  const a = await StreamNetdev.listen(LOCAL);
  const got = nic(a);
  const s = connect(a.address!.port, '127.0.0.1');
  await once(s, 'connect');
  const wire = Buffer.concat([0, 1, 2].map((i) => {
    const f = frame(100 + i * 300, i);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(f.length);
    return Buffer.concat([h, f]);
  }));
  for (const byte of wire) {
    s.write(Buffer.of(byte));
    await new Promise((r) => setImmediate(r));
  }
  await until(() => got.length === 3, 'three frames');
  assert.deepEqual(got.map((f) => f.length), [100, 400, 700]);
  const hostile = Buffer.alloc(8);
  hostile.writeUInt32BE(MAX_FRAME + 1);
  s.write(hostile);
  await once(s, 'close');
  await until(() => !a.connected, 'the netdev to drop the peer');
  a.close();
});

test('stream: while the NIC cannot take frames they wait in the socket; receiveReady delivers them', async () => {
  const a = await StreamNetdev.listen(LOCAL);
  const b = await StreamNetdev.connect({ host: '127.0.0.1', port: a.address!.port });
  let ready = false;
  const got = nic(a, () => ready);
  await until(() => a.connected, 'the accept');
  for (let i = 0; i < 5; i++) b.send(frame(64, i));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(got.length, 0);
  ready = true;
  a.receiveReady();
  await until(() => got.length === 5, 'the held frames');
  a.close();
  b.close();
});

test('stream: one peer at a time; the next is served when the first leaves', async () => {
  const a = await StreamNetdev.listen(LOCAL);
  const got = nic(a);
  const first = await StreamNetdev.connect({ host: '127.0.0.1', port: a.address!.port });
  await until(() => a.connected, 'the first peer');
  const second = connect(a.address!.port, '127.0.0.1');
  second.on('error', () => {});
  await once(second, 'close');
  first.close();
  await until(() => !a.connected, 'the first peer to leave');
  const third = await StreamNetdev.connect({ host: '127.0.0.1', port: a.address!.port });
  await until(() => a.connected, 'the third peer');
  third.send(frame(60, 3));
  await until(() => got.length === 1, 'its frame');
  a.close();
  third.close();
});

test('stream: connecting to a port nobody listens on is a UserError', async () => {
  const tmp = createServer().listen(0, '127.0.0.1');
  await once(tmp, 'listening');
  const port = (tmp.address() as { port: number }).port;
  await new Promise((r) => tmp.close(r));
  await assert.rejects(StreamNetdev.connect({ host: '127.0.0.1', port }), UserError);
});

test('dgram: two netdevs exchange one frame per datagram; strangers are ignored', async () => {
  const probe = createSocket('udp4').bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const portB = probe.address().port; // a free port for y, which x must know in advance
  probe.close();
  const x = await DgramNetdev.open(LOCAL, { host: '127.0.0.1', port: portB });
  const y = await DgramNetdev.open({ host: '127.0.0.1', port: portB }, { host: '127.0.0.1', port: x.port });
  const gotX = nic(x);
  const gotY = nic(y);
  x.send(frame(1514, 1));
  y.send(frame(60, 2));
  const stranger = createSocket('udp4');
  stranger.send(frame(60, 9), x.port, '127.0.0.1');
  await until(() => gotX.length === 1 && gotY.length === 1, 'one frame each');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(gotY, [frame(1514, 1)]);
  assert.deepEqual(gotX, [frame(60, 2)]);
  stranger.close();
  x.close();
  y.close();
});

// ---- -netdev stream and -netdev dgram (QEMU 7.2 spellings), through the command line ----

async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4').bind(0, '127.0.0.1');
    await once(s, 'listening');
    const port = s.address().port;
    s.close();
    return port;
  }
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function netdevOptions(...spec: string[]): NetdevOptions[] {
  const r = parseCommandLine(spec.flatMap((s) => ['-netdev', s]));
  assert.equal(r.kind, 'run');
  return (r as { options: VmOptions }).options.netdevs;
}

/** Two netdevs pass frames both ways, byte-exact and in order. */
async function exchange(a: NetBackend, b: NetBackend, ready: () => boolean = () => true): Promise<void> {
  const gotA = nic(a);
  const gotB = nic(b);
  await until(ready, 'the connection');
  const sizes = [60, 1514, 342, 9000];
  const sent = sizes.map((n, i) => frame(n, i + 20));
  for (const f of sent) a.send(f);
  for (const f of sent) b.send(Buffer.from(f).reverse());
  await until(() => gotA.length === sizes.length && gotB.length === sizes.length, 'all frames');
  assert.deepEqual(gotB, sent);
  assert.deepEqual(gotA, sent.map((f) => Buffer.from(f).reverse()));
}

test('-netdev stream over TCP: server=on and server=off exchange frames both ways', async () => {
  const port = await freePort('tcp');
  const [srvOpts, cliOpts] = netdevOptions(
    `stream,id=s0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`,
    `stream,id=s1,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`);
  assert.deepEqual(srvOpts, { id: 's0', kind: 'stream', server: true, addr: { type: 'inet', host: '127.0.0.1', port } });
  assert.deepEqual(cliOpts, { id: 's1', kind: 'stream', server: false, addr: { type: 'inet', host: '127.0.0.1', port } });
  const a = await openNetdev(srvOpts!) as StreamNetdev;
  const b = await openNetdev(cliOpts!);
  await exchange(a, b, () => a.connected);
  a.close();
  b.close();
});

test('-netdev stream over a Unix socket: frames both ways; QEMU framing on the wire; refused connects are UserErrors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-netdev-'));
  try {
    const path = join(dir, 'net.sock');
    const [srvOpts, cliOpts] = netdevOptions(`stream,id=u0,server=on,addr.type=unix,addr.path=${path}`, `stream,id=u1,addr.type=unix,addr.path=${path}`);
    assert.deepEqual(srvOpts, { id: 'u0', kind: 'stream', server: true, addr: { type: 'unix', path } });
    assert.equal(cliOpts!.kind === 'stream' && cliOpts!.server, false, 'server defaults to off');
    const a = await openNetdev(srvOpts!) as StreamNetdev;
    const b = await openNetdev(cliOpts!);
    await exchange(a, b, () => a.connected);
    b.close();
    await until(() => !a.connected, 'the client to leave');
    // A raw peer speaking QEMU's framing: 4-byte big-endian length, then the frame.
    const got = nic(a);
    const s = connect(path);
    await once(s, 'connect');
    const f = frame(98, 7);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(f.length);
    s.write(Buffer.concat([h, f]));
    await until(() => got.length === 1, 'the raw frame');
    assert.deepEqual(got[0], f);
    s.destroy();
    a.close();
    await assert.rejects(openNetdev(cliOpts!), (e: unknown) => e instanceof UserError
      && /^-netdev stream,id=u1: cannot connect to unix:.*net\.sock: No such file or directory$/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-netdev dgram: two netdevs exchange frames over UDP; a host name for the remote is looked up', async () => {
  const [pa, pb] = [await freePort('udp'), await freePort('udp')];
  const [x, y] = netdevOptions(
    `dgram,id=d0,local.type=inet,local.host=127.0.0.1,local.port=${pa},remote.type=inet,remote.host=127.0.0.1,remote.port=${pb}`,
    `dgram,id=d1,local.type=inet,local.host=127.0.0.1,local.port=${pb},remote.type=inet,remote.host=localhost,remote.port=${pa}`);
  assert.deepEqual(x, { id: 'd0', kind: 'dgram', local: { host: '127.0.0.1', port: pa }, remote: { host: '127.0.0.1', port: pb } });
  const a = await openNetdev(x!);
  const b = await openNetdev(y!);
  await exchange(a, b);
  a.close();
  b.close();
  // The legacy spelling of the same thing.
  const [legacy] = netdevOptions(`socket,id=l,udp=127.0.0.1:${pb},localaddr=127.0.0.1:${pa}`);
  assert.deepEqual(legacy, { id: 'l', kind: 'dgram', local: { host: '127.0.0.1', port: pa }, remote: { host: '127.0.0.1', port: pb } });
  // A local address already in use.
  const c = await openNetdev(x!);
  await assert.rejects(openNetdev(x!), (e: unknown) => e instanceof UserError
    && /^-netdev dgram,id=d0: cannot bind 127\.0\.0\.1:\d+: Address already in use$/.test(e.message));
  c.close();
});

test('-netdev stream/dgram: bad options are one-line errors', () => {
  const bad: Array<[string, RegExp]> = [
    ['stream,id=s', /needs addr\.type=inet,addr\.host=HOST,addr\.port=PORT or addr\.type=unix,addr\.path=PATH$/],
    ['stream,server=on,addr.type=inet,addr.host=h,addr.port=1', /needs id=$/],
    ['stream,id=s,addr.type=inet,addr.port=1', /addr\.type=inet needs addr\.host= and addr\.port=$/],
    ['stream,id=s,addr.type=inet,addr.host=h,addr.port=99999', /'h:99999' is not \[HOST\]:PORT$/],
    ['stream,id=s,addr.type=unix', /addr\.type=unix needs addr\.path=$/],
    ['stream,id=s,addr.type=unix,addr.path=p,addr.port=3', /'addr\.port' does not go with addr\.type=unix$/],
    ['stream,id=s,addr.type=fd,addr.str=3', /netdev property 'addr\.str' is not supported$/],
    ['stream,id=s,addr.type=vsock,addr.path=p', /addr\.type=vsock is not supported \(inet or unix\)$/],
    ['stream,id=s,addr.host=h,addr.port=1', /needs addr\.type=inet or unix$/],
    ['stream,id=s,server=maybe,addr.type=unix,addr.path=p', /'maybe' is not on or off$/],
    ['stream,id=s,reconnect=1,addr.type=unix,addr.path=p', /netdev property 'reconnect' is not supported$/],
    ['dgram,id=d,remote.type=inet,remote.host=127.0.0.1,remote.port=5', /needs local\.type=inet,local\.host=HOST,local\.port=PORT$/],
    ['dgram,id=d,local.type=inet,local.host=127.0.0.1,local.port=5', /needs remote\.type=inet,remote\.host=HOST,remote\.port=PORT$/],
    ['dgram,id=d,local.type=unix,local.path=a,remote.type=unix,remote.path=b', /local\.type=unix is not supported for dgram \(use inet\)$/],
    ['dgram,id=d,local.type=inet,local.host=0.0.0.0,local.port=5,remote.type=inet,remote.host=230.0.0.1,remote.port=5', /multicast remote addresses are not supported$/],
    ['dgram,id=d,server=on', /netdev property 'server' is not supported$/],
    ['socket,id=l,udp=127.0.0.1:5', /udp= needs localaddr=/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(() => parseCommandLine(['-netdev', spec]), (e: unknown) => {
      assert.ok(e instanceof UserError, `${spec}: ${String(e)}`);
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.ok(e.message.startsWith(`-netdev ${spec}: `), e.message);
      assert.match(e.message, re);
      return true;
    });
  }
});
