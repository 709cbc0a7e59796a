/**
 * UDP (RFC 768) and its NAT onto node:dgram sockets.
 *
 * Outbound, each flow (guest address and port, destination address and port) gets its
 * own host socket, so a reply is always attributed to the address the guest sent to
 * (10.0.2.2 for the host's loopback, 10.0.2.3:53 for the resolver). Inbound, a
 * forwarded host port (hostfwd=udp:...) relays each host peer through a port of the
 * gateway address, and the guest's answers to that port go back to the peer.
 * Flows expire when idle and their number is capped (least recently used first out),
 * so a guest spraying datagrams cannot exhaust host sockets.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { IPPROTO_UDP, L4_OFFSET, ipv4Frame, type Ipv4Packet } from './ipv4.js';
import { foldSum, parseIpv4, pseudoSum, rd16, sumWords, wr16 } from './wire.js';

const UDP_HLEN = 8;
const MAX_FLOWS = 256;
const IDLE_MS = 60_000;
/** DNS flows see one answer per query; they need not linger. */
export const DNS_IDLE_MS = 10_000;

/** A validated UDP datagram; `data` is a view into its frame. */
export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  data: Uint8Array;
}

/** Parses the UDP datagram in an IPv4 packet; null when truncated or its (non-zero) checksum is wrong. */
export function parseUdp(pkt: Ipv4Packet): UdpDatagram | null {
  const p = pkt.payload;
  if (p.length < UDP_HLEN) return null;
  const len = rd16(p, 4);
  if (len < UDP_HLEN || len > p.length) return null;
  if (!pkt.checksumLeftToNic && rd16(p, 6) !== 0 && foldSum(sumWords(pseudoSum(pkt.src, pkt.dst, IPPROTO_UDP, len), p, 0, len)) !== 0) return null;
  return { srcPort: rd16(p, 0), dstPort: rd16(p, 2), data: p.subarray(UDP_HLEN, len) };
}

/** Builds a frame holding one datagram (possibly larger than the MTU: the stack fragments it). */
export function udpFrame(src: number, sport: number, dst: number, dport: number, data: Uint8Array): Uint8Array {
  const len = UDP_HLEN + data.length;
  const f = ipv4Frame(src, dst, IPPROTO_UDP, len);
  const o = L4_OFFSET;
  wr16(f, o, sport);
  wr16(f, o + 2, dport);
  wr16(f, o + 4, len);
  f.set(data, o + UDP_HLEN);
  // A computed checksum of 0 is sent as all ones: 0 means "no checksum" (RFC 768).
  wr16(f, o + 6, foldSum(sumWords(pseudoSum(src, dst, IPPROTO_UDP, len), f, o, f.length)) || 0xffff);
  return f;
}

/** Sends a datagram to the guest: from `src:sport` (as the guest sees it) to `dst:dport`. */
export type UdpToGuest = (src: number, sport: number, dst: number, dport: number, data: Uint8Array) => void;

/** A host address and port. */
export interface HostAddr {
  address: string;
  port: number;
}

interface OutFlow {
  socket: Socket;
  timer: NodeJS.Timeout;
  guestIp: number;
  guestPort: number;
  /** What the guest addressed, and where that really is. */
  dst: number;
  dport: number;
  target: HostAddr;
}

interface FwdFlow {
  listener: Socket;
  peer: HostAddr;
  guestIp: number;
  guestPort: number;
  /** The gateway port this peer appears from. */
  vport: number;
  timer: NodeJS.Timeout;
}

/** The UDP NAT: outbound flows and forwarded host ports. */
export class UdpNat {
  private readonly out = new Map<string, OutFlow>();
  /** Forwarded flows by the guest's side: `guestIp:guestPort:vport`. */
  private readonly fwd = new Map<string, FwdFlow>();
  /** The same flows by listener and host peer. */
  private readonly fwdByPeer = new Map<Socket, Map<string, FwdFlow>>();

  /**
   * @param toGuest delivers a datagram to the guest
   * @param gatewayIp the address host-loopback peers appear from
   */
  constructor(private readonly toGuest: UdpToGuest, private readonly gatewayIp: number) {}

  /** A datagram from the guest's `guestIp:guestPort` to `dst:dport`, which is `target` on the host. */
  outbound(guestIp: number, guestPort: number, dst: number, dport: number, target: HostAddr, data: Uint8Array,
    idleMs = IDLE_MS): void {
    const key = `${guestIp}:${guestPort}>${dst}:${dport}`;
    let flow = this.out.get(key);
    if (flow) {
      this.out.delete(key); // re-inserted below: the map's order is least recently used first
      flow.timer.refresh();
    } else {
      this.evict(this.out);
      const socket = createSocket(isIPv4(target.address) ? 'udp4' : 'udp6');
      const f: OutFlow = {
        socket, guestIp, guestPort, dst, dport, target,
        timer: setTimeout(() => this.closeOut(key, f), idleMs),
      };
      socket.on('message', (msg, rinfo) => this.fromHost(f, msg, rinfo));
      socket.on('error', () => this.closeOut(key, f));
      flow = f;
    }
    this.out.set(key, flow);
    flow.socket.send(data, target.port, target.address);
  }

  /** A datagram arriving on the host socket of an outbound flow. */
  private fromHost(f: OutFlow, msg: Buffer, rinfo: RemoteInfo): void {
    f.timer.refresh();
    let src: number | null;
    let sport = rinfo.port;
    if (rinfo.address === f.target.address && rinfo.port === f.target.port) {
      src = f.dst;
      sport = f.dport;
    } else if (rinfo.address.startsWith('127.') || rinfo.address === '::1') {
      src = this.gatewayIp;
    } else {
      src = parseIpv4(rinfo.address);
    }
    if (src !== null) this.toGuest(src, sport, f.guestIp, f.guestPort, msg);
  }

  /** A datagram from a host peer on a forwarded port's `listener`, for the guest's `guestIp:guestPort`. */
  forwardIn(listener: Socket, peer: RemoteInfo, guestIp: number, guestPort: number, data: Uint8Array,
    allocPort: (taken: (p: number) => boolean) => number): void {
    let byPeer = this.fwdByPeer.get(listener);
    if (!byPeer) this.fwdByPeer.set(listener, byPeer = new Map());
    const peerKey = `${peer.address}|${peer.port}`;
    let f = byPeer.get(peerKey);
    if (f) {
      f.timer.refresh();
    } else {
      if (this.fwd.size >= MAX_FLOWS) return;
      const vport = allocPort((p) => this.fwd.has(`${guestIp}:${guestPort}:${p}`));
      const flow: FwdFlow = {
        listener, peer: { address: peer.address, port: peer.port }, guestIp, guestPort, vport,
        timer: setTimeout(() => this.closeFwd(flow), IDLE_MS),
      };
      byPeer.set(peerKey, flow);
      this.fwd.set(`${guestIp}:${guestPort}:${vport}`, flow);
      f = flow;
    }
    this.toGuest(this.gatewayIp, f.vport, guestIp, guestPort, data);
  }

  /** The guest's answer to a forwarded peer; false when `vport` is not one of ours. */
  forwardOut(guestIp: number, guestPort: number, vport: number, data: Uint8Array): boolean {
    const f = this.fwd.get(`${guestIp}:${guestPort}:${vport}`);
    if (!f) return false;
    f.timer.refresh();
    f.listener.send(data, f.peer.port, f.peer.address);
    return true;
  }

  private evict(map: Map<string, OutFlow>): void {
    if (map.size < MAX_FLOWS) return;
    const [key, f] = map.entries().next().value as [string, OutFlow];
    this.closeOut(key, f);
  }

  private closeOut(key: string, f: OutFlow): void {
    if (this.out.get(key) !== f) return; // already closed (an error, then its timer)
    this.out.delete(key);
    clearTimeout(f.timer);
    f.socket.close();
  }

  private closeFwd(f: FwdFlow): void {
    clearTimeout(f.timer);
    this.fwd.delete(`${f.guestIp}:${f.guestPort}:${f.vport}`);
    this.fwdByPeer.get(f.listener)?.delete(`${f.peer.address}|${f.peer.port}`);
  }

  /** Closes every flow's socket and timer (listeners belong to their owner). */
  close(): void {
    for (const [k, f] of [...this.out]) this.closeOut(k, f);
    for (const f of [...this.fwd.values()]) this.closeFwd(f);
  }
}
