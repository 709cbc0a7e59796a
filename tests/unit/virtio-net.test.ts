/**
 * Tests for the virtio network device (src/hw/virtio/virtio-net.ts, Virtio 1.2 section
 * 5.1), driven through the virtio driver mock with a recording backend, and once end
 * to end with the user-mode network.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { NetBackendBase, type PartialChecksum } from '../../src/net/net.js';
import { Slirp } from '../../src/net/slirp/slirp.js';
import { VIRTIO_ID } from '../../src/hw/virtio/virtio.js';
import { DEFAULT_MAC, VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VirtioNet, parseMac } from '../../src/hw/virtio/virtio-net.js';
import { FakeGuestRam, MockSplitQueue, activateDevice, VIRTIO_F_VERSION_1_BIT } from './virtio-driver-mock.js';

/** A backend that records what the guest sends and lets the test inject frames. */
class RecordingBackend extends NetBackendBase {
  sent: Buffer[] = [];
  readies = 0;
  send(frame: Uint8Array): void {
    this.sent.push(Buffer.from(frame));
  }
  override receiveReady(): void {
    this.readies++;
  }
  close(): void {}
  inject(frame: Uint8Array): void {
    this.deliver(frame);
  }
}

const HDR = 12;

function setup(features = VIRTIO_F_VERSION_1_BIT) {
  const ram = new FakeGuestRam(1 << 21);
  const rxq = new MockSplitQueue(ram, 256);
  const txq = new MockSplitQueue(ram, 64);
  const backend = new RecordingBackend();
  const net = new VirtioNet(backend);
  const act = activateDevice(net, ram, [rxq, txq], features);
  return { ram, rxq, txq, backend, net, ...act };
}

function frame(n: number, seed = 0): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i + seed) & 255));
}

test('identity: device ID 1, two queues, MAC and STATUS offered; config holds the MAC and LINK_UP', () => {
  const net = new VirtioNet(new RecordingBackend(), parseMac('52:54:00:ab:cd:ef')!);
  assert.equal(net.deviceId, VIRTIO_ID.NET);
  assert.equal(net.queueMaxSizes.length, 2);
  assert.equal(net.features, (1n << VIRTIO_NET_F_MAC) | (1n << VIRTIO_NET_F_STATUS));
  assert.equal(net.configSize, 8);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => net.readConfig(i, 1)), [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
  assert.equal(net.readConfig(0, 4), 0xab005452);
  assert.equal(net.readConfig(6, 2), 1); // VIRTIO_NET_S_LINK_UP
  assert.equal(net.readConfig(8, 2), 0);
  assert.equal(net.readConfig(7, 4), 0);
  net.writeConfig();
  assert.equal(net.readConfig(0, 1), 0x52);
  assert.deepEqual([...DEFAULT_MAC], [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  assert.equal(parseMac('52:54:00:12:34'), null);
  assert.equal(parseMac('52:54:00:12:34:zz'), null);
});

test('transmit: the frame after the 12-byte header goes to the backend, however the chain is split', () => {
  const { txq, net, backend, interrupt, needsReset } = setup();
  const f1 = frame(60, 1);
  const f2 = frame(1514, 2);
  const a = txq.addChain([{ readable: Buffer.concat([Buffer.alloc(HDR), f1]) }]);
  const b = txq.addChain([{ readable: Buffer.alloc(5) }, { readable: Buffer.concat([Buffer.alloc(HDR - 5), f2.subarray(0, 100)]) },
    { readable: f2.subarray(100) }]);
  net.queueNotify(1);
  assert.deepEqual(backend.sent, [f1, f2]);
  assert.deepEqual(txq.takeUsed(), [{ id: a.head, len: 0 }, { id: b.head, len: 0 }]);
  assert.ok(interrupt.count(1) >= 1);
  assert.equal(needsReset(), null);
});

/** A backend that takes the transmit offloads, recording the partial checksum of each frame. */
class OffloadBackend extends RecordingBackend {
  override readonly offloads = true;
  partials: (PartialChecksum | undefined)[] = [];
  override send(frame: Uint8Array, partial?: PartialChecksum): void {
    super.send(frame);
    this.partials.push(partial);
  }
  injectSegment(frame: Uint8Array, mss: number): void {
    this.deliver(frame, { mss });
  }
}

/** A TCP/IPv4 frame of `data` bytes behind 14 + 20 + 32 bytes of headers (a TCP header with 12 option bytes). */
function tcpIpFrame(data: number): Buffer {
  const f = frame(14 + 20 + 32 + data, 7);
  f[14] = 0x45;
  f[14 + 20 + 12] = 8 << 4;
  return f;
}

/** A virtio_net_hdr: flags, gso_type, csum_start, csum_offset (hdr_len and gso_size as a driver would set them). */
function netHdr(flags: number, gso: number, start = 0, offset = 0): Buffer {
  const h = Buffer.alloc(HDR);
  h[0] = flags;
  h[1] = gso;
  h.writeUInt16LE(54, 2);
  h.writeUInt16LE(gso ? 1448 : 0, 4);
  h.writeUInt16LE(start, 6);
  h.writeUInt16LE(offset, 8);
  return h;
}

test('receive offloads: with GUEST_CSUM and GUEST_TSO4 negotiated the backend may send segments, which the header describes', () => {
  const backend = new OffloadBackend();
  const net = new VirtioNet(backend);
  const ram = new FakeGuestRam(1 << 21);
  const rxq = new MockSplitQueue(ram, 64);
  const GUEST = (1n << VIRTIO_NET_F_GUEST_CSUM) | (1n << VIRTIO_NET_F_GUEST_TSO4);
  activateDevice(net, ram, [rxq, new MockSplitQueue(ram, 64)], VIRTIO_F_VERSION_1_BIT | (1n << VIRTIO_NET_F_GUEST_CSUM));
  assert.equal(backend.guestOffloads, false, 'GUEST_CSUM alone is not enough');
  net.reset();
  activateDevice(net, ram, [rxq, new MockSplitQueue(ram, 64)], VIRTIO_F_VERSION_1_BIT | GUEST);
  assert.equal(backend.guestOffloads, true);
  const big = tcpIpFrame(40000);
  const small = tcpIpFrame(1000);
  const a = rxq.addChain([{ writable: 65536 }]);
  const b = rxq.addChain([{ writable: 2048 }]);
  net.queueNotify(0);
  backend.injectSegment(big, 1460);
  backend.injectSegment(small, 1460);
  assert.deepEqual(Buffer.from(rxq.readBuffer(a.buffers[0]!, HDR + big.length).subarray(HDR)), big);
  const used = rxq.takeUsed();
  assert.deepEqual(used, [{ id: a.head, len: HDR + big.length }, { id: b.head, len: HDR + small.length }]);
  const hdrOf = (c: typeof a) => rxq.readBuffer(c.buffers[0]!, HDR);
  // NEEDS_CSUM, GSO TCPV4, hdr_len 66, gso_size 1460, csum_start 34, csum_offset 16, num_buffers 1
  assert.deepEqual([...hdrOf(a)], [1, 1, 66, 0, 0xb4, 0x05, 34, 0, 16, 0, 1, 0]);
  // Not longer than the MSS: a partial checksum, no segmentation.
  assert.deepEqual([...hdrOf(b)], [1, 0, 66, 0, 0, 0, 34, 0, 16, 0, 1, 0]);
  // A driver posting buffers too small for a segment loses the offloads; the segment is dropped.
  const c = rxq.addChain([{ writable: 4096 }]);
  backend.injectSegment(big, 1460);
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 0 }]);
  assert.equal(backend.guestOffloads, false);
  activateDevice(net, ram, [rxq, new MockSplitQueue(ram, 64)], VIRTIO_F_VERSION_1_BIT | GUEST);
  assert.equal(backend.guestOffloads, true, 'a new activation offers them again');
  net.reset();
  assert.equal(backend.guestOffloads, false, 'a reset takes them back');
});

test('transmit offloads: CSUM and HOST_TSO4 only with a backend that takes them; partial checksums go on; TSO4 segments go whole', () => {
  const OFFLOADS = (1n << VIRTIO_NET_F_CSUM) | (1n << VIRTIO_NET_F_HOST_TSO4);
  const ALL = OFFLOADS | (1n << VIRTIO_NET_F_GUEST_CSUM) | (1n << VIRTIO_NET_F_GUEST_TSO4);
  assert.equal(new VirtioNet(new RecordingBackend()).features & ALL, 0n);
  const backend = new OffloadBackend();
  const net = new VirtioNet(backend);
  assert.equal(net.features & ALL, ALL);
  const ram = new FakeGuestRam(1 << 21);
  const txq = new MockSplitQueue(ram, 64);
  activateDevice(net, ram, [new MockSplitQueue(ram, 64), txq], VIRTIO_F_VERSION_1_BIT | OFFLOADS);
  const big = frame(14 + 20 + 20 + 30000, 3);
  txq.addChain([{ readable: Buffer.concat([netHdr(1, 1, 34, 16), big]) }]); // NEEDS_CSUM, GSO TCPV4: sent whole
  txq.addChain([{ readable: Buffer.concat([netHdr(1, 0, 34, 6), frame(80, 4)]) }]); // a partial UDP checksum
  txq.addChain([{ readable: Buffer.concat([netHdr(0, 0), frame(60, 5)]) }]); // complete: nothing asked
  txq.addChain([{ readable: Buffer.concat([netHdr(0, 1), frame(200, 6)]) }]); // TSO without NEEDS_CSUM
  txq.addChain([{ readable: Buffer.concat([netHdr(1, 3, 34, 6), frame(200, 7)]) }]); // UFO: not offered
  txq.addChain([{ readable: Buffer.concat([netHdr(1, 0x81, 34, 16), frame(200, 8)]) }]); // ECN: not offered
  txq.addChain([{ readable: Buffer.concat([netHdr(1, 0, 60, 0), frame(61, 9)]) }]); // the field past the end
  net.queueNotify(1);
  assert.deepEqual(backend.sent, [big, frame(80, 4), frame(60, 5)]);
  assert.deepEqual(backend.partials, [{ start: 34, offset: 16 }, { start: 34, offset: 6 }, undefined]);
  assert.equal(net.txDropped, 4);
  assert.equal(txq.takeUsed().length, 7);
});

test('transmit: without CSUM negotiated the header is not read, even where the backend takes offloads', () => {
  const backend = new OffloadBackend();
  const net = new VirtioNet(backend);
  const ram = new FakeGuestRam(1 << 21);
  const txq = new MockSplitQueue(ram, 64);
  activateDevice(net, ram, [new MockSplitQueue(ram, 64), txq], VIRTIO_F_VERSION_1_BIT);
  txq.addChain([{ readable: Buffer.concat([netHdr(1, 1, 34, 16), frame(100, 1)]) }]);
  net.queueNotify(1);
  assert.deepEqual(backend.sent, [frame(100, 1)]);
  assert.deepEqual(backend.partials, [undefined]);
});

test('transmit: chains shorter than the header or without readable data are dropped', () => {
  const { txq, net, backend } = setup();
  txq.addChain([{ readable: Buffer.alloc(HDR - 1) }]);
  txq.addChain([{ writable: 100 }]);
  net.queueNotify(1);
  assert.equal(backend.sent.length, 0);
  assert.equal(net.txDropped, 2);
  assert.equal(txq.takeUsed().length, 2);
});

test('receive: a frame goes into a posted buffer behind a header with num_buffers 1', () => {
  const { rxq, net, backend, interrupt } = setup();
  const c = rxq.addChain([{ writable: 1526 }]);
  net.queueNotify(0);
  const f = frame(98, 5);
  backend.inject(f);
  const [used] = rxq.takeUsed();
  assert.deepEqual(used, { id: c.head, len: HDR + f.length });
  const buf = rxq.readBuffer(c.buffers[0]!, HDR + f.length);
  assert.deepEqual([...buf.subarray(0, HDR)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  assert.deepEqual(Buffer.from(buf.subarray(HDR)), f);
  assert.ok(interrupt.count(0) >= 1);
});

test('receive: the header and frame may span several writable buffers', () => {
  const { rxq, backend } = setup();
  const c = rxq.addChain([{ writable: 10 }, { writable: 50 }, { writable: 2000 }]);
  const f = frame(1000, 9);
  backend.inject(f);
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: HDR + 1000 }]);
  const all = Buffer.concat(c.buffers.map((b) => rxq.readBuffer(b)));
  assert.deepEqual(all.subarray(HDR, HDR + 1000), f);
});

test('receive: without posted buffers frames are held (bounded), then delivered in order when buffers come', () => {
  const { rxq, net, backend } = setup();
  assert.equal(backend.canReceive!(), true);
  for (let i = 0; i < 300; i++) backend.inject(frame(60, i));
  assert.equal(net.rxDropped, 300 - 256);
  assert.equal(backend.canReceive!(), false, 'the hold queue is full');
  const chains = Array.from({ length: 200 }, () => rxq.addChain([{ writable: 1526 }]));
  const readies = backend.readies;
  net.queueNotify(0);
  const used = rxq.takeUsed();
  assert.equal(used.length, 200);
  assert.deepEqual(Buffer.from(rxq.readBuffer(chains[0]!.buffers[0]!, HDR + 60).subarray(HDR)), frame(60, 0));
  assert.deepEqual(Buffer.from(rxq.readBuffer(chains[199]!.buffers[0]!, HDR + 60).subarray(HDR)), frame(60, 199));
  assert.equal(backend.canReceive!(), true);
  assert.equal(backend.readies, readies + 1, 'the backend was told it may send again');
});

test('receive: a frame too big for the posted buffer is dropped and the buffer returned empty', () => {
  const { rxq, net, backend } = setup();
  const c = rxq.addChain([{ writable: 100 }]);
  backend.inject(frame(200));
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 0 }]);
  assert.equal(net.rxDropped, 1);
});

test('a legacy driver (no VERSION_1) gets the 10-byte header', () => {
  const { rxq, txq, net, backend } = setup(0n);
  const c = rxq.addChain([{ writable: 200 }]);
  backend.inject(frame(50));
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 60 }]);
  txq.addChain([{ readable: Buffer.concat([Buffer.alloc(10), frame(42)]) }]);
  net.queueNotify(1);
  assert.deepEqual(backend.sent, [frame(42)]);
});

test('before activation and after reset frames are dropped and the backend is told to wait', () => {
  const backend = new RecordingBackend();
  const net = new VirtioNet(backend);
  assert.equal(backend.canReceive!(), false);
  backend.inject(frame(60));
  const ram = new FakeGuestRam(1 << 20);
  const rxq = new MockSplitQueue(ram, 16);
  const txq = new MockSplitQueue(ram, 16);
  activateDevice(net, ram, [rxq, txq], VIRTIO_F_VERSION_1_BIT);
  assert.equal(backend.readies, 1, 'activation invites the backend to send');
  rxq.addChain([{ writable: 100 }]);
  net.reset();
  backend.inject(frame(60));
  assert.equal(rxq.usedIdx(), 0);
  assert.equal(backend.canReceive!(), false);
  net.queueNotify(0);
  net.queueNotify(1);
});

test('end to end: an ARP request through virtio-net is answered by the user-mode network', () => {
  const ram = new FakeGuestRam(1 << 20);
  const rxq = new MockSplitQueue(ram, 16);
  const txq = new MockSplitQueue(ram, 16);
  const slirp = new Slirp({ dns: null });
  const net = new VirtioNet(slirp);
  activateDevice(net, ram, [rxq, txq], VIRTIO_F_VERSION_1_BIT);
  const c = rxq.addChain([{ writable: 1526 }]);
  const arp = Buffer.from('ffffffffffff525400123456080600010800060400015254001234560a00020f0000000000000a000202', 'hex');
  txq.addChain([{ readable: Buffer.concat([Buffer.alloc(HDR), arp]) }]);
  net.queueNotify(1);
  const [used] = rxq.takeUsed();
  assert.equal(used!.len, HDR + 42);
  const reply = rxq.readBuffer(c.buffers[0]!, HDR + 42).subarray(HDR);
  assert.equal(Buffer.from(reply.subarray(12, 14)).toString('hex'), '0806');
  assert.equal(Buffer.from(reply.subarray(20, 22)).toString('hex'), '0002'); // ARP reply
  assert.equal(Buffer.from(reply.subarray(22, 28)).toString('hex'), '52550a000202');
  slirp.close();
});
