/**
 * TCP segments (RFC 9293 3.1) and sequence-number arithmetic (RFC 9293 3.4): parsing
 * the guest's segments, checksum included, and building the stack's own. The options
 * understood are MSS (RFC 9293 3.7.1) and window scale (RFC 7323 2); others are
 * skipped, and the stack never offers SACK or timestamps, so the guest never uses them.
 */
import { IPPROTO_TCP, L4_OFFSET, ipv4Frame, type Ipv4Packet } from './ipv4.js';
import { foldSum, pseudoSum, rd16, rd32, sumWords, wr16, wr32 } from './wire.js';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

const TCP_HLEN = 20;
/** Largest window scale shift (RFC 7323 2.3). */
const MAX_WSCALE = 14;

/** A validated TCP segment; `data` is a view into the frame it came in. */
export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** MSS option (SYN segments only), if present. */
  mss?: number;
  /** Window scale option (SYN segments only), if present, capped at 14. */
  wscale?: number;
  data: Uint8Array;
}

/** Parses the TCP segment in an IPv4 packet; null when truncated, inconsistent or its checksum is wrong. */
export function parseTcp(pkt: Ipv4Packet): TcpSegment | null {
  const p = pkt.payload;
  if (p.length < TCP_HLEN) return null;
  const doff = (p[12]! >> 4) * 4;
  if (doff < TCP_HLEN || doff > p.length) return null;
  if (!pkt.checksumLeftToNic && foldSum(sumWords(pseudoSum(pkt.src, pkt.dst, IPPROTO_TCP, p.length), p, 0, p.length)) !== 0) return null;
  const seg: TcpSegment = {
    srcPort: rd16(p, 0),
    dstPort: rd16(p, 2),
    seq: rd32(p, 4),
    ack: rd32(p, 8),
    flags: p[13]! & 0x3f,
    window: rd16(p, 14),
    data: p.subarray(doff),
  };
  if (seg.flags & SYN) parseOptions(p, doff, seg);
  return seg;
}

function parseOptions(p: Uint8Array, end: number, seg: TcpSegment): void {
  let i = TCP_HLEN;
  while (i < end) {
    const kind = p[i]!;
    if (kind === 0) return; // end of option list
    if (kind === 1) {
      i++; // no-operation
      continue;
    }
    if (i + 1 >= end) return;
    const len = p[i + 1]!;
    if (len < 2 || i + len > end) return; // malformed: ignore the rest
    if (kind === 2 && len === 4) seg.mss = rd16(p, i + 2);
    else if (kind === 3 && len === 3) seg.wscale = Math.min(p[i + 2]!, MAX_WSCALE);
    i += len;
  }
}

/** Addresses and ports of a segment the stack sends: from `src:sport` to `dst:dport`. */
export interface TcpAddrs {
  src: number;
  sport: number;
  dst: number;
  dport: number;
}

/**
 * Builds a frame holding one segment; `mss`/`wscale` add those options (SYN segments). With
 * `partial` the checksum field gets only the pseudo-header's sum (for a guest NIC with
 * receive offloads, {@link TcpSegmentOffload}).
 */
export function tcpFrame(a: TcpAddrs, seq: number, ack: number, flags: number, window: number,
  data: Uint8Array | null, mss?: number, wscale?: number, partial = false): Uint8Array {
  const optLen = (mss !== undefined ? 4 : 0) + (wscale !== undefined ? 4 : 0);
  const dataLen = data?.length ?? 0;
  const segLen = TCP_HLEN + optLen + dataLen;
  const f = ipv4Frame(a.src, a.dst, IPPROTO_TCP, segLen, true);
  const o = L4_OFFSET;
  wr16(f, o, a.sport);
  wr16(f, o + 2, a.dport);
  wr32(f, o + 4, seq);
  wr32(f, o + 8, ack);
  f[o + 12] = ((TCP_HLEN + optLen) / 4) << 4;
  f[o + 13] = flags;
  wr16(f, o + 14, window);
  let i = o + TCP_HLEN;
  if (mss !== undefined) {
    f[i] = 2;
    f[i + 1] = 4;
    wr16(f, i + 2, mss);
    i += 4;
  }
  if (wscale !== undefined) {
    f[i] = 1; // NOP keeps the next options 32-bit aligned
    f[i + 1] = 3;
    f[i + 2] = 3;
    f[i + 3] = wscale;
    i += 4;
  }
  if (data) f.set(data, i);
  const pseudo = pseudoSum(a.src, a.dst, IPPROTO_TCP, segLen);
  wr16(f, o + 16, partial ? ~foldSum(pseudo) & 0xffff : foldSum(sumWords(pseudo, f, o, f.length)));
  return f;
}

/** a - b in sequence space, as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** a + n in sequence space. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
