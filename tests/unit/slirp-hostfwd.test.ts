/**
 * Host port forwarding of the user-mode network (hostfwd=, src/net/slirp/hostfwd.ts):
 * rule checks, and connections and datagrams from 127.0.0.1 reaching a pretend guest.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { formatHostForward, forwardGuestIp } from '../../src/net/slirp/hostfwd.js';
import { Slirp } from '../../src/net/slirp/slirp.js';
import { UserError, type HostForward } from '../../src/system/options.js';
import { F, FakeNic, GATEWAY, GUEST_IP, GuestTcp, arpFrame, ip, tcpFrame, udpFrame } from './slirp-guest.js';

/** A rule as the command line parses `proto:hostAddr:hostPort-guestAddr:guestPort`. */
function rule(proto: 'tcp' | 'udp', hostAddr: string, hostPort: number, guestAddr: string, guestPort: number): HostForward {
  return { proto, hostAddr, hostPort, guestAddr, guestPort };
}

test('hostfwd: rules print as QEMU writes them; a bad guest address is a UserError naming the rule', async () => {
  assert.equal(formatHostForward(rule('tcp', '', 2222, '', 22)), 'tcp::2222-:22');
  assert.equal(forwardGuestIp(rule('udp', '127.0.0.1', 53, '10.0.2.16', 53), 0), ip('10.0.2.16'));
  assert.equal(forwardGuestIp(rule('tcp', '', 1, '', 2), 42), 42);
  for (const bad of ['10.0.2.300', 'guest', '10.0.2']) {
    await assert.rejects(Slirp.open({ hostfwd: [rule('tcp', '127.0.0.1', 0, bad, 22)], dns: null }),
      (e: Error) => e instanceof UserError && e.message.includes(`tcp:127.0.0.1:0-${bad}:22`), bad);
  }
});

async function forwarded(r: HostForward) {
  const slirp = await Slirp.open({ hostfwd: [r], dns: null });
  const nic = new FakeNic(slirp);
  return { slirp, nic, port: slirp.forwardAddresses[0]!.port };
}

test('hostfwd tcp: a host connection becomes a SYN to the guest port, and data flows both ways', async () => {
  const { slirp, nic, port } = await forwarded(rule('tcp', '127.0.0.1', 0, '', 8080));
  nic.send(arpFrame(1, GUEST_IP, GATEWAY)); // the guest has been seen
  nic.queue.length = 0;
  const client = connect(port, '127.0.0.1');
  const syn = await nic.next((f) => f.tcp !== undefined);
  assert.equal(syn.tcp!.flags, F.SYN);
  assert.equal(syn.ip!.src, GATEWAY);
  assert.equal(syn.ip!.dst, GUEST_IP);
  assert.equal(syn.tcp!.dport, 8080);
  assert.equal(syn.tcp!.mss, 1460);
  const g = new GuestTcp(nic, 8080, GATEWAY, syn.tcp!.sport, { wscale: 5 });
  g.accept(syn);
  await nic.until(() => g.established, 2000, 'the handshake');
  const got: Buffer[] = [];
  client.on('data', (d) => got.push(d));
  client.write('hello guest');
  await nic.until(() => g.receivedLen === 11, 2000, 'the client data');
  assert.equal(g.data().toString(), 'hello guest');
  await g.write(Buffer.from('hello host'));
  await nic.until(() => Buffer.concat(got).toString() === 'hello host', 2000, 'the guest data');
  client.end();
  await nic.until(() => g.finReceived, 2000, 'the FIN');
  g.close();
  await once(client, 'close');
  slirp.close();
});

test('hostfwd tcp: before the guest is known, the stack asks with ARP and retries the SYN', async () => {
  const { slirp, nic, port } = await forwarded(rule('tcp', '127.0.0.1', 0, '', 2222));
  const client = connect(port, '127.0.0.1');
  client.on('error', () => {});
  const who = await nic.next((f) => f.arp !== undefined);
  assert.equal(who.arp!.op, 1);
  assert.equal(who.arp!.targetIp, GUEST_IP);
  nic.send(arpFrame(2, GUEST_IP, GATEWAY, undefined, who.srcMac));
  const syn = await nic.next((f) => f.tcp !== undefined, 3000);
  assert.equal(syn.tcp!.dport, 2222);
  // The guest has nothing on that port: its RST ends the host connection.
  const closed = new Promise((r) => client.on('close', r));
  nic.send(tcpFrame({ sport: 2222, dst: GATEWAY, dport: syn.tcp!.sport, seq: 0, ack: syn.tcp!.seq + 1, flags: F.RST | F.ACK }));
  await closed;
  slirp.close();
});

test('hostfwd udp: datagrams from a host peer reach the guest port, and the replies go back to the peer', async () => {
  const { slirp, nic, port } = await forwarded(rule('udp', '127.0.0.1', 0, '', 5353));
  nic.send(arpFrame(1, GUEST_IP, GATEWAY));
  nic.queue.length = 0;
  const peer = createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  peer.send('question', port, '127.0.0.1');
  const q = await nic.next((f) => f.udp !== undefined);
  assert.equal(q.ip!.src, GATEWAY);
  assert.equal(q.udp!.dport, 5353);
  assert.equal(q.udp!.data.toString(), 'question');
  const answer = once(peer, 'message');
  nic.send(udpFrame(GUEST_IP, 5353, GATEWAY, q.udp!.sport, Buffer.from('answer')));
  const [msg] = (await answer) as [Buffer];
  assert.equal(msg.toString(), 'answer');
  peer.close();
  slirp.close();
});

test('hostfwd: a host port that cannot be bound is a UserError naming the rule', async () => {
  const busy = createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const r = rule('tcp', '127.0.0.1', (busy.address() as { port: number }).port, '', 22);
  await assert.rejects(Slirp.open({ hostfwd: [r], dns: null }),
    (e: Error) => e instanceof UserError && e.message.includes(`'${formatHostForward(r)}'`));
  busy.close();
});

test('hostfwd: closing the network closes the listeners and the forwarded connections', async () => {
  const { slirp, nic, port } = await forwarded(rule('tcp', '127.0.0.1', 0, '', 8080));
  nic.send(arpFrame(1, GUEST_IP, GATEWAY));
  const client: Socket = connect(port, '127.0.0.1');
  client.on('error', () => {});
  await nic.next((f) => f.tcp !== undefined);
  const closed = new Promise((r) => client.on('close', r));
  slirp.close();
  await closed;
  const again = connect(port, '127.0.0.1');
  const [err] = (await once(again, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});
