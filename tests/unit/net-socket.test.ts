/**
 * Socket network backends (src/net/socket.ts): QEMU's stream framing (a 4-byte
 * big-endian length before each frame) between a listening and a connecting netdev on
 * 127.0.0.1, hostile streams, flow control, and the datagram backend.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { MAX_FRAME, type NetBackend } from '../../src/net/net.js';
import { DgramNetdev, StreamNetdev } from '../../src/net/socket.js';
import { UserError } from '../../src/system/options.js';

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
