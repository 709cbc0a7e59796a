/**
 * User-mode networking (src/net/slirp): ARP, DHCP, ICMP echo, UDP NAT, DNS forwarding
 * and the handling of malformed frames, driven with hand-built frames as a guest would
 * send them. Only 127.0.0.1 is ever contacted.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { Slirp } from '../../src/net/slirp/slirp.js';
import { parseResolvConf } from '../../src/net/slirp/resolv.js';
import { checksum } from '../../src/net/slirp/wire.js';
import {
  DNS, FakeNic, GATEWAY, csum, GATEWAY_MAC, GUEST_IP, GUEST_MAC, arpFrame, dhcpMessage, dhcpOptions, eth, icmpEcho, ip, ipFrame,
  tcpFrame, udpFrame, F,
} from './slirp-guest.js';

async function udpServer(reply: (msg: Buffer) => Buffer | null): Promise<{ sock: Socket; port: number; seen: Buffer[] }> {
  const sock = createSocket('udp4');
  const seen: Buffer[] = [];
  sock.on('message', (msg, r) => {
    seen.push(msg);
    const out = reply(msg);
    if (out) sock.send(out, r.port, r.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return { sock, port: sock.address().port, seen };
}

function setup(dns: { address: string; port: number } | null = null) {
  const slirp = new Slirp({ dns });
  const nic = new FakeNic(slirp);
  return { slirp, nic };
}

/** Announces the guest (as any guest's first ARP would), so replies can be addressed to it. */
function announce(nic: FakeNic): void {
  nic.send(arpFrame(1, GUEST_IP, GATEWAY));
  nic.queue.length = 0;
}

test('the Internet checksum matches the RFC 1071 example', () => {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d).
  assert.equal(checksum(Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7), 0, 8), 0x220d);
});

test('ARP: the gateway and DNS addresses are answered with 52:55 MACs; other addresses are not', async () => {
  const { slirp, nic } = setup();
  for (const target of [GATEWAY, DNS]) {
    nic.send(arpFrame(1, GUEST_IP, target));
    const r = await nic.next();
    assert.equal(r.type, 0x0806);
    assert.equal(r.arp!.op, 2);
    assert.equal(r.arp!.senderIp, target);
    assert.deepEqual([...r.arp!.senderMac], [0x52, 0x55, 10, 0, 2, target & 255]);
    assert.equal(r.arp!.targetIp, GUEST_IP);
    assert.deepEqual(r.dstMac, GUEST_MAC);
  }
  nic.send(arpFrame(1, GUEST_IP, ip('10.0.2.99')));
  nic.send(arpFrame(1, 0, GUEST_IP)); // duplicate address detection: must stay unanswered
  await new Promise((r) => setImmediate(r));
  assert.equal(nic.queue.length, 0);
  slirp.close();
});

test('DHCP: DISCOVER/OFFER/REQUEST/ACK leases 10.0.2.15 with router, DNS, mask and lease time', async () => {
  const { slirp, nic } = setup();
  const dhcp = (m: Buffer) => nic.send(udpFrame(0, 68, 0xffffffff, 67, m));
  dhcp(dhcpMessage(1, 0x1234));
  const offer = await nic.next((f) => f.udp?.dport === 68);
  assert.equal(offer.ip!.src, GATEWAY);
  assert.equal(offer.udp!.sport, 67);
  const om = offer.udp!.data;
  assert.equal(om[0], 2); // BOOTREPLY
  assert.equal(om.readUInt32BE(4), 0x1234);
  assert.equal(om.readUInt32BE(16), GUEST_IP); // yiaddr
  assert.ok(om.length >= 300);
  const oo = dhcpOptions(om);
  assert.deepEqual([...oo.get(53)!], [2]);
  assert.deepEqual([...oo.get(54)!], [10, 0, 2, 2]);

  dhcp(dhcpMessage(3, 0x1235, [[50, [10, 0, 2, 15]], [54, [10, 0, 2, 2]]]));
  const ack = await nic.next((f) => f.udp?.dport === 68);
  const am = ack.udp!.data;
  assert.equal(am.readUInt32BE(16), GUEST_IP);
  const ao = dhcpOptions(am);
  assert.deepEqual([...ao.get(53)!], [5]);
  assert.deepEqual([...ao.get(1)!], [255, 255, 255, 0]);
  assert.deepEqual([...ao.get(3)!], [10, 0, 2, 2]);
  assert.deepEqual([...ao.get(6)!], [10, 0, 2, 3]);
  assert.equal(ao.get(51)!.readUInt32BE(0), 86400);
  assert.deepEqual(ack.dstMac, GUEST_MAC);

  // A request for an address outside the pool is refused.
  dhcp(dhcpMessage(3, 0x1236, [[50, [10, 0, 2, 200]]]));
  const nak = await nic.next((f) => f.udp?.dport === 68);
  assert.deepEqual([...dhcpOptions(nak.udp!.data).get(53)!], [6]);
  // A request for another server is ignored.
  dhcp(dhcpMessage(3, 0x1237, [[50, [10, 0, 2, 15]], [54, [10, 0, 2, 9]]]));
  // Renewal, unicast from the leased address.
  nic.send(udpFrame(GUEST_IP, 68, GATEWAY, 67, dhcpMessage(3, 0x1238, [], GUEST_IP)));
  const renew = await nic.next((f) => f.udp?.dport === 68);
  assert.equal(renew.udp!.data.readUInt32BE(4), 0x1238);
  assert.equal(renew.ip!.dst, GUEST_IP);
  assert.deepEqual([...dhcpOptions(renew.udp!.data).get(53)!], [5]);
  slirp.close();
});

test('ICMP: a ping to the gateway is answered with the same identifier, sequence and data', async () => {
  const { slirp, nic } = setup();
  const data = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
  nic.send(icmpEcho(GATEWAY, 0x4242, 7, data));
  const r = await nic.next();
  assert.equal(r.icmp!.type, 0);
  assert.equal(r.icmp!.id, 0x4242);
  assert.equal(r.icmp!.seq, 7);
  assert.deepEqual(r.icmp!.data, data);
  assert.equal(r.ip!.src, GATEWAY);
  assert.equal(r.ip!.dst, GUEST_IP);
  assert.deepEqual(r.srcMac, GATEWAY_MAC);
  assert.deepEqual(r.dstMac, GUEST_MAC);
  slirp.close();
});

test('UDP: a datagram to 10.0.2.2:PORT reaches 127.0.0.1:PORT and the reply comes back from 10.0.2.2', async () => {
  const srv = await udpServer((m) => Buffer.concat([Buffer.from('echo:'), m]));
  const { slirp, nic } = setup();
  announce(nic);
  nic.send(udpFrame(GUEST_IP, 5555, GATEWAY, srv.port, Buffer.from('hello')));
  const r = await nic.next((f) => f.udp !== undefined);
  assert.equal(r.ip!.src, GATEWAY);
  assert.equal(r.udp!.sport, srv.port);
  assert.equal(r.udp!.dport, 5555);
  assert.equal(r.udp!.data.toString(), 'echo:hello');
  slirp.close();
  srv.sock.close();
});

test('UDP: a reply larger than the MTU reaches the guest in IPv4 fragments', async () => {
  const big = Buffer.from(Array.from({ length: 4000 }, (_, i) => i & 255));
  const srv = await udpServer(() => big);
  const { slirp, nic } = setup();
  announce(nic);
  nic.send(udpFrame(GUEST_IP, 5556, GATEWAY, srv.port, Buffer.from('x')));
  const frags = [await nic.next(), await nic.next(), await nic.next()];
  const payload = Buffer.alloc(8 + big.length);
  for (const f of frags) {
    assert.ok(f.raw.length <= 1514);
    f.ip!.payload.copy(payload, f.ip!.fragOff);
  }
  assert.deepEqual(frags.map((f) => f.ip!.more), [true, true, false]);
  assert.deepEqual(payload.subarray(8), big);
  slirp.close();
  srv.sock.close();
});

test('DNS: a query to 10.0.2.3:53 goes to the configured resolver; the answer comes from 10.0.2.3:53', async () => {
  const resolver = await udpServer((q) => Buffer.concat([q.subarray(0, 2), Buffer.from([0x81, 0x80]), q.subarray(4)]));
  const { slirp, nic } = setup({ address: '127.0.0.1', port: resolver.port });
  announce(nic);
  const query = Buffer.from('abcd0100000100000000000007example0000010001', 'hex');
  nic.send(udpFrame(GUEST_IP, 33333, DNS, 53, query));
  const r = await nic.next((f) => f.udp !== undefined);
  assert.deepEqual(resolver.seen, [query]);
  assert.equal(r.ip!.src, DNS);
  assert.equal(r.udp!.sport, 53);
  assert.equal(r.udp!.dport, 33333);
  assert.deepEqual(r.udp!.data.subarray(0, 4), Buffer.from([0xab, 0xcd, 0x81, 0x80]));
  slirp.close();
  resolver.sock.close();
});

test('resolv.conf: the first nameserver line counts', () => {
  assert.deepEqual(parseResolvConf('# x\nsearch lan\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n'), { address: '192.0.2.53', port: 53 });
  assert.deepEqual(parseResolvConf('nameserver fe80::1%eth0\n'), { address: 'fe80::1%eth0', port: 53 });
  assert.equal(parseResolvConf('nameserver bogus\n'), null);
  assert.equal(parseResolvConf(''), null);
});

test('malformed frames are dropped without exceptions and without replies', async () => {
  const { slirp, nic } = setup();
  announce(nic);
  const goodPing = icmpEcho(GATEWAY, 1, 1, Buffer.from('ping'));
  const goodUdp = udpFrame(GUEST_IP, 1000, GATEWAY, 9, Buffer.from('data'));
  const goodSyn = tcpFrame({ sport: 1000, dst: GATEWAY, dport: 9, seq: 1, flags: F.SYN });
  const mutate = (f: Buffer, at: number, v: number) => {
    const c = Buffer.from(f);
    c[at] = v;
    return c;
  };
  /** Like mutate, with the IPv4 header checksum made right again, so that the check under test is the one failing. */
  const mutateIp = (f: Buffer, at: number, v: number) => {
    const c = mutate(f, at, v);
    c.writeUInt16BE(0, 24);
    c.writeUInt16BE(csum(c.subarray(14, 34)), 24);
    return c;
  };
  const bad: Buffer[] = [
    Buffer.alloc(0), Buffer.alloc(13), eth(GATEWAY_MAC, 0x0800, Buffer.alloc(10)), eth(GATEWAY_MAC, 0x0806, Buffer.alloc(27)),
    eth(GATEWAY_MAC, 0x86dd, Buffer.alloc(60)),
    goodPing.subarray(0, 30), // truncated IPv4 header
    mutateIp(goodPing, 14, 0x65), // version 6
    mutateIp(goodPing, 14, 0x44), // header length 16
    mutateIp(goodPing, 16, 0xff), // total length beyond the frame
    mutate(goodPing, 24, 0x00), // bad header checksum
    mutateIp(goodPing, 20, 0x20), // a fragment (more fragments set)
    mutate(goodPing, 40, 0x99), // bad ICMP checksum
    goodUdp.subarray(0, 38), // truncated UDP header
    mutate(goodUdp, 39, 0xff), // UDP length beyond the packet
    mutate(goodUdp, 39, 0x03), // UDP length below the header
    mutate(goodUdp, 42, 0x00), // bad UDP checksum
    mutate(goodSyn, 46, 0xf0), // TCP data offset beyond the segment
    mutate(goodSyn, 46, 0x30), // TCP data offset below 20
    mutate(goodSyn, 50, 0x77), // bad TCP checksum
    ipFrame(GUEST_IP, GATEWAY, 99, Buffer.alloc(8)), // unknown protocol
    icmpEcho(GATEWAY, 1, 1, Buffer.from('ping'), ip('192.168.1.5')), // source outside the virtual network
    icmpEcho(ip('10.0.2.9'), 1, 1, Buffer.from('ping')), // a ping to nobody
  ];
  for (const f of bad) assert.doesNotThrow(() => nic.send(f));
  // Random corruption of valid frames must not throw either.
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 3000; i++) {
    const base = [goodPing, goodUdp, goodSyn][i % 3]!;
    const f = Buffer.from(base.subarray(0, 14 + (rnd() % (base.length - 13))));
    // One changed byte: the checksums catch every such change, so nothing may be answered.
    f[14 + (rnd() % (f.length - 14 || 1))] ^= 1 + (rnd() % 255);
    assert.doesNotThrow(() => nic.send(f));
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(slirp.dropped >= bad.length);
  assert.equal(nic.queue.length, 0, 'nothing was answered');
  slirp.close();
});
