/**
 * User-mode networking (QEMU's `-netdev user`): a virtual Ethernet segment on which
 * this stack plays gateway, DNS and DHCP server, and NATs the guest's TCP and UDP
 * onto host sockets. Addresses are QEMU's defaults: network 10.0.2.0/24, gateway
 * (and the host's loopback) 10.0.2.2, DNS 10.0.2.3, DHCP leases from 10.0.2.15.
 *
 * The guest's frames are parsed defensively: anything truncated, inconsistent or
 * failing a checksum is dropped (counted in `dropped`), never thrown about. What
 * the stack sends is addressed through a small ARP cache learnt from the guest's
 * own frames (the protocols are in the files beside this one).
 */
import { connect, type Socket } from 'node:net';
import type { RemoteInfo, Socket as DgramSocket } from 'node:dgram';
import { NetBackendBase, type PartialChecksum, type TcpSegmentOffload } from '../net.js';
import { ARP_REPLY, ARP_REQUEST, buildArp, parseArp } from './arp.js';
import { DhcpServer } from './dhcp.js';
import type { HostForward } from '../../system/options.js';
import { forwardGuestIp, listenForward, type ForwardListener } from './hostfwd.js';
import { icmpEchoReply } from './icmp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, fragmentIpv4, parseIpv4Packet, type Ipv4Packet } from './ipv4.js';
import { hostResolver } from './resolv.js';
import { TcpConnection, type TcpHooks } from './tcp.js';
import { ACK, RST, SYN, FIN, parseTcp, seqAdd, tcpFrame, type TcpSegment } from './tcp-wire.js';
import { DNS_IDLE_MS, UdpNat, parseUdp, udpFrame, type HostAddr } from './udp.js';
import {
  BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HLEN, completeChecksum, isGroupMac, ipToString, macForIp, rd16, rd32, writeEthHeader,
} from './wire.js';

const NETWORK = 0x0a000200; // 10.0.2.0
const NETMASK = 0xffffff00; // /24
/** The gateway, which is also how the guest reaches the host's loopback. */
export const GATEWAY_IP = 0x0a000202; // 10.0.2.2
export const DNS_IP = 0x0a000203; // 10.0.2.3
export const DHCP_START_IP = 0x0a00020f; // 10.0.2.15
const LIMITED_BROADCAST = 0xffffffff;
const GATEWAY_MAC = macForIp(GATEWAY_IP);
const ZERO_MAC = new Uint8Array(6);
/** Guest MACs remembered (one guest, a few aliases at most). */
const MAX_ARP = 16;
const MAX_TCP = 256;
/** Gateway ports that forwarded host peers appear from (the IANA dynamic range). */
const FWD_PORT_FIRST = 49152;
const FWD_PORT_COUNT = 16384;

/** Options of a user-mode network. */
export interface SlirpOptions {
  /** Forwarded host ports (hostfwd=, as the command line parsed them). */
  hostfwd?: readonly HostForward[];
  /** Where queries to 10.0.2.3:53 go; default: the first nameserver of /etc/resolv.conf; null: nowhere. */
  dns?: HostAddr | null;
}

/** A user-mode network backend. */
export class Slirp extends NetBackendBase {
  /** Guest frames dropped as malformed or unroutable. */
  dropped = 0;
  /** The bound address of each hostfwd rule, in rule order. */
  forwardAddresses: HostAddr[] = [];
  private readonly arp = new Map<number, Uint8Array>();
  private readonly tcp = new Map<string, TcpConnection>();
  /** Connections waiting for the NIC to take frames again. */
  private readonly blocked = new Set<TcpConnection>();
  private readonly udp = new UdpNat((src, sport, dst, dport, data) => this.outputIp(udpFrame(src, sport, dst, dport, data)), GATEWAY_IP);
  private readonly dhcp = new DhcpServer({ netmask: NETMASK, server: GATEWAY_IP, dns: DNS_IP, start: DHCP_START_IP });
  private readonly dns: HostAddr | null;
  private listeners: ForwardListener[] = [];
  private nextPort = 0;
  private closed = false;

  constructor(opts: Pick<SlirpOptions, 'dns'> = {}) {
    super();
    this.dns = opts.dns === undefined ? hostResolver() : opts.dns;
  }

  /** A user-mode network with its hostfwd listeners bound; throws UserError for a bad or unbindable rule. */
  static async open(opts: SlirpOptions = {}): Promise<Slirp> {
    const rules = (opts.hostfwd ?? []).map((rule) => ({ rule, guestIp: forwardGuestIp(rule, DHCP_START_IP) }));
    const s = new Slirp(opts);
    try {
      for (const { rule, guestIp } of rules) {
        const l = await listenForward(rule, {
          tcp: (sock) => s.forwardTcp(sock, guestIp, rule.guestPort),
          udp: (listener, data, peer) => s.forwardUdp(listener, data, peer, guestIp, rule.guestPort),
        });
        s.listeners.push(l);
        s.forwardAddresses.push(l.address);
      }
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  /** Takes frames with partial checksums and TCP segments of up to 64 KiB, and gives them to a guest that takes them: see {@link NetBackendBase.offloads}. */
  override readonly offloads = true;

  send(frame: Uint8Array, partial?: PartialChecksum): void {
    if (this.closed) return;
    if (frame.length < ETH_HLEN) {
      this.dropped++;
      return;
    }
    const type = rd16(frame, 12);
    if (type === ETHERTYPE_ARP) this.arpInput(frame);
    else if (type === ETHERTYPE_IPV4) this.ipInput(frame, partial);
    else this.dropped++; // IPv6, VLANs and the rest are not served
  }

  override receiveReady(): void {
    const waiting = [...this.blocked];
    this.blocked.clear();
    for (const c of waiting) c.pump(); // each re-registers if the NIC fills up again
  }

  /**
   * The guest went back to a snapshot: its TCP connections are not the ones kept here.
   * They are dropped (the host peers get a reset); the guest's next segment on one of
   * them is answered with a reset, and new connections work at once. DHCP leases and
   * the ARP cache stay, so the guest keeps its address.
   */
  guestRestored(): void {
    for (const c of [...this.tcp.values()]) c.close(true);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners) l.close();
    for (const c of [...this.tcp.values()]) c.close(false);
    this.udp.close();
  }

  private arpInput(frame: Uint8Array): void {
    const a = parseArp(frame);
    if (!a) {
      this.dropped++;
      return;
    }
    this.learn(a.senderIp, a.senderMac);
    if (a.op === ARP_REQUEST && (a.targetIp === GATEWAY_IP || a.targetIp === DNS_IP)) {
      this.deliver(buildArp(ARP_REPLY, macForIp(a.targetIp), a.targetIp, a.senderMac, a.senderIp));
    }
  }

  private ipInput(frame: Uint8Array, partial?: PartialChecksum): void {
    const pkt = parseIpv4Packet(frame);
    if (!pkt) {
      this.dropped++;
      return;
    }
    if (partial) {
      // A TCP or UDP checksum in its usual place is not needed; any other is completed, then checked as usual.
      const l4 = pkt.payload.byteOffset - frame.byteOffset;
      const field = pkt.proto === IPPROTO_TCP ? 16 : pkt.proto === IPPROTO_UDP ? 6 : -1;
      if (partial.start === l4 && partial.offset === field) pkt.checksumLeftToNic = true;
      else completeChecksum(frame, partial.start, partial.offset);
    }
    if (pkt.proto === IPPROTO_UDP && pkt.src === 0) {
      this.dhcpInput(pkt); // a client without an address yet
      return;
    }
    if (!isGuestAddress(pkt.src)) {
      this.dropped++;
      return;
    }
    this.learn(pkt.src, frame.subarray(6, 12));
    if (pkt.proto === IPPROTO_TCP) this.tcpInput(pkt);
    else if (pkt.proto === IPPROTO_UDP) this.udpInput(pkt);
    else if (pkt.proto === IPPROTO_ICMP) this.icmpInput(pkt);
    else this.dropped++;
  }

  private icmpInput(pkt: Ipv4Packet): void {
    const reply = pkt.dst === GATEWAY_IP || pkt.dst === DNS_IP ? icmpEchoReply(pkt) : null;
    if (reply) this.outputIp(reply);
    else this.dropped++;
  }

  private dhcpInput(pkt: Ipv4Packet): void {
    const d = parseUdp(pkt);
    if (!d || d.dstPort !== 67 || (pkt.dst !== GATEWAY_IP && pkt.dst !== LIMITED_BROADCAST)) {
      this.dropped++;
      return;
    }
    const r = this.dhcp.handle(d.data);
    if (!r) return;
    if (r.leased) this.learn(r.leased.ip, r.leased.mac);
    const f = udpFrame(GATEWAY_IP, 67, r.dstIp, 68, r.data);
    writeEthHeader(f, r.dstMac, GATEWAY_MAC, ETHERTYPE_IPV4);
    for (const frag of fragmentIpv4(f)) this.deliver(frag);
  }

  private udpInput(pkt: Ipv4Packet): void {
    const d = parseUdp(pkt);
    if (!d) {
      this.dropped++;
      return;
    }
    if (d.dstPort === 67) {
      this.dhcpInput(pkt); // a renewal, sent from the leased address
      return;
    }
    if (pkt.dst === GATEWAY_IP && this.udp.forwardOut(pkt.src, d.srcPort, d.dstPort, d.data)) return;
    const target = this.hostTarget(pkt.dst, d.dstPort);
    if (!target) {
      this.dropped++;
      return;
    }
    this.udp.outbound(pkt.src, d.srcPort, pkt.dst, d.dstPort, target, d.data, pkt.dst === DNS_IP ? DNS_IDLE_MS : undefined);
  }

  private tcpInput(pkt: Ipv4Packet): void {
    const seg = parseTcp(pkt);
    if (!seg) {
      this.dropped++;
      return;
    }
    const key = tcpKey(pkt.src, seg.srcPort, pkt.dst, seg.dstPort);
    const conn = this.tcp.get(key);
    const isSyn = (seg.flags & (SYN | ACK | RST)) === SYN;
    if (conn && !(isSyn && conn.reusable)) {
      conn.input(seg);
      return;
    }
    conn?.close(false);
    const target = isSyn && this.tcp.size < MAX_TCP ? this.hostTarget(pkt.dst, seg.dstPort) : null;
    if (!target) {
      this.resetFor(pkt, seg);
      return;
    }
    // allowHalfOpen: after the host's EOF the guest may still send, and vice versa.
    const socket = connect({ host: target.address, port: target.port, allowHalfOpen: true });
    socket.setNoDelay(true); // the guest already chose its segment sizes
    const addrs = { src: pkt.dst, sport: seg.dstPort, dst: pkt.src, dport: seg.srcPort };
    this.tcp.set(key, TcpConnection.fromGuest(this.hooks(key), addrs, seg, socket));
  }

  /** RFC 9293 3.10.7.1: the answer to a segment for no connection (never to a RST). */
  private resetFor(pkt: Ipv4Packet, seg: TcpSegment): void {
    if (seg.flags & RST) return;
    const addrs = { src: pkt.dst, sport: seg.dstPort, dst: pkt.src, dport: seg.srcPort };
    const len = seg.data.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
    this.outputIp(seg.flags & ACK
      ? tcpFrame(addrs, seg.ack, 0, RST, 0, null)
      : tcpFrame(addrs, 0, seqAdd(seg.seq, len), RST | ACK, 0, null));
  }

  /** A connection accepted on a hostfwd port: it becomes a connection from the gateway to the guest. */
  private forwardTcp(socket: Socket, guestIp: number, guestPort: number): void {
    if (this.closed || this.tcp.size >= MAX_TCP) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const vport = this.allocPort((p) => this.tcp.has(tcpKey(guestIp, guestPort, GATEWAY_IP, p)));
    const key = tcpKey(guestIp, guestPort, GATEWAY_IP, vport);
    const addrs = { src: GATEWAY_IP, sport: vport, dst: guestIp, dport: guestPort };
    this.tcp.set(key, TcpConnection.toGuest(this.hooks(key), addrs, socket));
  }

  private forwardUdp(listener: DgramSocket, data: Buffer, peer: RemoteInfo, guestIp: number, guestPort: number): void {
    if (!this.closed) this.udp.forwardIn(listener, peer, guestIp, guestPort, data, (taken) => this.allocPort(taken));
  }

  /** A gateway port for a forwarded peer, not `taken` already. */
  private allocPort(taken: (p: number) => boolean): number {
    for (let i = 0; i < FWD_PORT_COUNT; i++) {
      const p = FWD_PORT_FIRST + (this.nextPort++ % FWD_PORT_COUNT);
      if (!taken(p)) return p;
    }
    return FWD_PORT_FIRST; // unreachable: flows and connections are capped far below the range
  }

  private hooks(key: string): TcpHooks {
    return {
      output: (f, tso) => this.outputIp(f, tso),
      guestOffloads: () => this.guestOffloads,
      canOutput: () => this.nicReady(),
      waitOutput: (c) => void this.blocked.add(c),
      closed: (c) => {
        if (this.tcp.get(key) === c) this.tcp.delete(key);
        this.blocked.delete(c);
      },
    };
  }

  /** Where a guest's packet to `dst:port` goes on the host, or null when nowhere. */
  private hostTarget(dst: number, port: number): HostAddr | null {
    if (port === 0) return null;
    if (dst === GATEWAY_IP) return { address: '127.0.0.1', port };
    if (dst === DNS_IP) return port === 53 ? this.dns : null;
    const first = dst >>> 24;
    // The virtual network's other addresses, "this network", loopback, multicast and broadcast.
    if ((dst & NETMASK) === NETWORK || first === 0 || first === 127 || first >= 224) return null;
    return { address: ipToString(dst), port };
  }

  /** Addresses an IPv4 frame to its next hop and offers it to the NIC (in fragments if needed; a `tso` segment whole). */
  private outputIp(frame: Uint8Array, tso?: TcpSegmentOffload): void {
    if (this.closed) return;
    const src = rd32(frame, ETH_HLEN + 12);
    const dst = rd32(frame, ETH_HLEN + 16);
    const mac = dst === LIMITED_BROADCAST ? BROADCAST_MAC : this.arp.get(dst);
    if (!mac) {
      // Unknown guest address: ask, and drop this packet (TCP retransmits; UDP may be lost).
      this.deliver(buildArp(ARP_REQUEST, GATEWAY_MAC, GATEWAY_IP, ZERO_MAC, dst));
      return;
    }
    writeEthHeader(frame, mac, (src & NETMASK) === NETWORK ? macForIp(src) : GATEWAY_MAC, ETHERTYPE_IPV4);
    if (tso) this.deliver(frame, tso);
    else for (const f of fragmentIpv4(frame)) this.deliver(f);
  }

  /** Remembers that the guest's address `ip` is at `mac`. */
  private learn(ip: number, mac: Uint8Array): void {
    if (!isGuestAddress(ip) || isGroupMac(mac)) return;
    const known = this.arp.get(ip);
    if (known && known.every((b, i) => b === mac[i])) return;
    this.arp.delete(ip);
    this.arp.set(ip, mac.slice());
    if (this.arp.size > MAX_ARP) this.arp.delete(this.arp.keys().next().value as number);
  }
}

/** Whether `ip` may be the guest's: in the virtual network and none of the stack's own addresses. */
function isGuestAddress(ip: number): boolean {
  const host = ip & ~NETMASK;
  return (ip & NETMASK) === NETWORK && ip !== GATEWAY_IP && ip !== DNS_IP && host !== 0 && host !== (~NETMASK >>> 0);
}

function tcpKey(guestIp: number, guestPort: number, remoteIp: number, remotePort: number): string {
  return `${guestIp}:${guestPort}-${remoteIp}:${remotePort}`;
}
