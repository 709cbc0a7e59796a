/**
 * TCP NAT of the user-mode network (src/net/slirp/tcp.ts): a pretend guest connects to
 * servers the test runs on 127.0.0.1 (addressed as 10.0.2.2), and the stack must keep
 * the byte streams exact through windows (scaled or not, down to zero), losses,
 * reordering, duplicates, half-closes and resets.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { Slirp } from '../../src/net/slirp/slirp.js';
import { F, FakeNic, GATEWAY, GUEST_IP, GuestTcp, arpFrame, tcpFrame } from './slirp-guest.js';

function setup() {
  const slirp = new Slirp({ dns: null });
  const nic = new FakeNic(slirp);
  nic.send(arpFrame(1, GUEST_IP, GATEWAY));
  nic.queue.length = 0;
  return { slirp, nic };
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

let nextPort = 40000;

async function httpFetch(body: Buffer, opts: ConstructorParameters<typeof GuestTcp>[4] = {}) {
  const http = createHttpServer((req, res) => {
    res.setHeader('Content-Length', body.length);
    res.end(req.url === '/page' ? body : '');
  });
  const port = await listen(http);
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, port, opts);
  await c.connect();
  assert.ok(c.established);
  await c.write(Buffer.from('GET /page HTTP/1.0\r\nHost: 10.0.2.2\r\n\r\n'));
  await nic.until(() => c.finReceived, 30000, 'the end of the response');
  const response = c.data();
  const split = response.indexOf('\r\n\r\n');
  assert.match(response.subarray(0, split).toString(), /^HTTP\/1.1 200 OK/);
  c.close();
  await nic.until(() => c.sndUna === c.sndNxt, 5000, 'the ACK of our FIN');
  slirp.close();
  http.close();
  return { body: response.subarray(split + 4), c };
}

test('TCP: the guest fetches a small page from an HTTP server on the host, byte-exact', async () => {
  const page = Buffer.from('<html>hello from the host</html>\n');
  const { body, c } = await httpFetch(page);
  assert.deepEqual(body, page);
  assert.equal(c.peerMss, 1460);
});

test('TCP: a 2 MiB page arrives byte-exact through a 64 KiB unscaled window', async () => {
  const page = randomBytes(2 << 20);
  const { body } = await httpFetch(page);
  assert.equal(body.length, page.length);
  assert.ok(body.equals(page));
});

test('TCP: a 3 MiB page arrives byte-exact with window scaling (guest shift 7, 1 MiB buffer)', async () => {
  const page = randomBytes(3 << 20);
  const { body, c } = await httpFetch(page, { wscale: 7, rcvBuf: 1 << 20 });
  assert.ok(body.equals(page));
  assert.equal(c.peerShift, 3, 'the stack offered its own window scale');
});

test('TCP: to a guest with receive offloads, 3 MiB arrive byte-exact in segments of up to 64 KiB with partial checksums', async () => {
  const page = randomBytes(3 << 20);
  const sizes: number[] = [];
  const http = createHttpServer((_req, res) => res.end(page));
  const port = await listen(http);
  const { slirp, nic } = setup();
  slirp.guestOffloads = true;
  nic.addHandler((f) => {
    if (f.tcp && f.tcp.data.length > 0) sizes.push(f.tso === undefined ? -f.tcp.data.length : f.tcp.data.length);
    return false;
  });
  const c = new GuestTcp(nic, nextPort++, GATEWAY, port, { wscale: 7, rcvBuf: 1 << 20, mss: 1400 });
  await c.connect();
  await c.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
  await nic.until(() => c.finReceived, 30000, 'the end of the response');
  const response = c.data();
  assert.ok(response.subarray(response.indexOf('\r\n\r\n') + 4).equals(page));
  assert.ok(sizes.every((n) => n > 0), 'every data segment went with its segmentation size');
  assert.ok(Math.max(...sizes) > 30000, `segments larger than the MSS: ${Math.max(...sizes)}`);
  c.close();
  slirp.close();
  http.close();
});

/** A server that collects what it receives and reports it on end. */
async function sink(): Promise<{ server: Server; port: number; done: Promise<Buffer>; sock: Promise<Socket> }> {
  let gotSock!: (s: Socket) => void;
  let gotAll!: (b: Buffer) => void;
  const sock = new Promise<Socket>((r) => (gotSock = r));
  const done = new Promise<Buffer>((r) => (gotAll = r));
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d) => parts.push(d));
    s.on('end', () => gotAll(Buffer.concat(parts)));
    s.on('error', () => {});
    gotSock(s);
  });
  return { server, port: await listen(server), done, sock };
}

test('TCP: guest data out of order, duplicated or retransmitted reaches the host exactly once, in order', async () => {
  const srv = await sink();
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port);
  await c.connect();
  const a = Buffer.from('first part;');
  const b = Buffer.from('second part;');
  const start = c.sndNxt;
  const seen = c.acks.length;
  c.sendAt(start + a.length, b); // ahead of what the stack expects: not taken, duplicate ACK
  c.sendAt(start, a);
  c.sendAt(start, a); // a duplicate
  c.sendAt(start + 3, a.subarray(3)); // an overlapping retransmission
  c.sendAt(start + a.length, b);
  c.sendAt(start + 4, Buffer.concat([a, b]).subarray(4)); // overlapping the end
  c.sndNxt = start + a.length + b.length;
  await nic.until(() => c.sndUna === c.sndNxt, 5000, 'all data acknowledged');
  assert.equal(c.acks[seen], start, 'the segment ahead of time was answered with a duplicate ACK');
  c.close();
  assert.equal((await srv.done).toString(), 'first part;second part;');
  slirp.close();
  srv.server.close();
});

test('TCP: the guest uploads 1 MiB; the host receives it byte-exact', async () => {
  const srv = await sink();
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port, { wscale: 2 });
  await c.connect();
  const data = randomBytes(1 << 20);
  await c.write(data);
  c.close();
  assert.ok((await srv.done).equals(data));
  slirp.close();
  srv.server.close();
});

test('TCP: with transmit offloads the guest uploads 1 MiB in segments of up to 64 KiB, checksums left to the NIC; the host receives it byte-exact', async () => {
  const srv = await sink();
  const { slirp, nic } = setup();
  assert.equal(slirp.offloads, true);
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port, { wscale: 4, offload: true });
  await c.connect();
  const data = randomBytes(1 << 20);
  await c.write(data);
  c.close();
  assert.ok((await srv.done).equals(data));
  assert.equal(slirp.dropped, 0);
  slirp.close();
  srv.server.close();
});

/** A server that writes `data` to the first client and then half-closes. */
async function source(data: Buffer): Promise<{ server: Server; port: number; sock: Promise<Socket> }> {
  let got!: (s: Socket) => void;
  const sock = new Promise<Socket>((r) => (got = r));
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.end(data);
    got(s);
  });
  return { server, port: await listen(server), sock };
}

test('TCP: a zero window stops the stack, a probe keeps asking, and the rest follows when it opens', async () => {
  const data = randomBytes(20000);
  const srv = await source(data);
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port, { rcvBuf: 4000, autoRead: false });
  await c.connect();
  await nic.until(() => c.receivedLen === 4000, 5000, 'the first window full');
  const before = c.segments;
  await nic.until(() => c.segments > before, 5000, 'a zero-window probe');
  assert.equal(c.receivedLen, 4000, 'nothing beyond the closed window was taken');
  while (!c.finReceived) {
    c.readAll();
    await nic.until(() => c.unread > 0 || c.finReceived, 10000, 'more data');
  }
  assert.ok(c.data().equals(data));
  slirp.close();
  srv.server.close();
});

test('TCP: segments the guest loses are retransmitted', async () => {
  const data = randomBytes(30000);
  const srv = await source(data);
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port);
  c.dropData = 2;
  await c.connect();
  await nic.until(() => c.finReceived, 10000, 'all data after retransmission');
  assert.ok(c.data().equals(data));
  slirp.close();
  srv.server.close();
});

test('TCP: while the NIC cannot take frames nothing is sent; receiveReady resumes the transfer', async () => {
  const data = randomBytes(50000);
  const srv = await source(data);
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port);
  nic.ready = false; // handshake segments are still offered; data must wait
  await c.connect();
  await srv.sock;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.receivedLen, 0, 'nothing was sent while the NIC was full');
  nic.ready = true;
  slirp.receiveReady();
  await nic.until(() => c.finReceived, 5000, 'the rest');
  assert.ok(c.data().equals(data));
  slirp.close();
  srv.server.close();
});

test('TCP: after the host half-closes, the guest can still send; then both sides close', async () => {
  let hostSock!: Socket;
  const got: Buffer[] = [];
  const ended = new Promise<void>((resolve) => {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      hostSock = s;
      s.on('data', (d) => got.push(d));
      s.on('end', () => resolve());
      s.end('bye');
    });
    void listen(server).then(async (port) => {
      const { slirp, nic } = setup();
      const c = new GuestTcp(nic, nextPort++, GATEWAY, port);
      await c.connect();
      await nic.until(() => c.finReceived, 5000, 'the host FIN');
      assert.equal(c.data().toString(), 'bye');
      await c.write(Buffer.from('still talking'));
      c.close();
      await ended;
      slirp.close();
      server.close();
    });
  });
  await ended;
  assert.equal(Buffer.concat(got).toString(), 'still talking');
  assert.ok(hostSock);
});

test('TCP: a SYN to a closed host port is refused with RST; a stray segment gets a RST', async () => {
  const tmp = createServer();
  const port = await listen(tmp);
  await new Promise((r) => tmp.close(r));
  const { slirp, nic } = setup();
  nic.send(tcpFrame({ sport: 1234, dst: GATEWAY, dport: port, seq: 5000, flags: F.SYN, mss: 1460 }));
  const rst = await nic.next((f) => f.tcp !== undefined);
  assert.equal(rst.tcp!.flags, F.RST | F.ACK);
  assert.equal(rst.tcp!.ack, 5001);
  nic.send(tcpFrame({ sport: 1235, dst: GATEWAY, dport: 80, seq: 1, ack: 777, flags: F.ACK }));
  const rst2 = await nic.next((f) => f.tcp !== undefined);
  assert.equal(rst2.tcp!.flags, F.RST);
  assert.equal(rst2.tcp!.seq, 777);
  // Addresses that lead nowhere are refused at once.
  nic.send(tcpFrame({ sport: 1236, dst: 0x0a000263, dport: 80, seq: 1, flags: F.SYN }));
  assert.equal((await nic.next((f) => f.tcp !== undefined)).tcp!.flags, F.RST | F.ACK);
  slirp.close();
});

test('TCP: a RST from the guest resets the host connection', async () => {
  const srv = await sink();
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port);
  await c.connect();
  const s = await srv.sock;
  const closed = new Promise((r) => s.on('close', r)); // after an ECONNRESET error
  c.sendReset();
  await closed;
  slirp.close();
  srv.server.close();
});

test('TCP: after the guest was restored from a snapshot, its connections are reset on both sides and new ones work', async () => {
  const srv = await sink();
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port);
  await c.connect();
  await c.write(Buffer.from('before'));
  const s = await srv.sock;
  // The host peer sees its connection end (a reset, or a FIN if it comes first).
  const ended = new Promise((r) => {
    s.on('end', r);
    s.on('close', r);
  });
  slirp.guestRestored();
  await ended;
  assert.equal(c.reset, false, 'nothing sent to the guest by the load itself');
  c.sendAt(c.sndNxt, Buffer.from('after')); // the restored guest goes on with its old connection
  await nic.until(() => c.reset, 5000, 'a RST for the forgotten connection');
  const srv2 = await sink();
  const c2 = new GuestTcp(nic, nextPort++, GATEWAY, srv2.port);
  await c2.connect();
  await c2.write(Buffer.from('new connection'));
  c2.close();
  assert.equal((await srv2.done).toString(), 'new connection');
  slirp.close();
  srv.server.close();
  srv2.server.close();
});

test('TCP: a RST with a wrong sequence number only earns a challenge ACK', async () => {
  const srv = await sink();
  const { slirp, nic } = setup();
  const c = new GuestTcp(nic, nextPort++, GATEWAY, srv.port);
  await c.connect();
  const seen = c.segments;
  nic.send(tcpFrame({ sport: c.local, dst: GATEWAY, dport: srv.port, seq: c.sndNxt + 10, ack: c.rcvNxt, flags: F.RST }));
  await nic.until(() => c.segments > seen, 2000, 'the challenge ACK');
  await c.write(Buffer.from('alive'));
  c.close();
  assert.equal((await srv.done).toString(), 'alive');
  slirp.close();
  srv.server.close();
});
