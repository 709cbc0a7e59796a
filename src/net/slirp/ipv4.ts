/**
 * IPv4 (RFC 791): validating the guest's packets and building the stack's own.
 *
 * Input is checked field by field (version, header length, total length against the
 * frame, header checksum); fragments are dropped, since slirp's peers are sockets and
 * a guest on a 1500-byte MTU link fragments only oversized UDP. Output builds
 * whole frames with room for the Ethernet header, which the stack fills in once it
 * knows the next hop's MAC, and fragments packets larger than the link MTU.
 */
import { ETH_HLEN, checksum, rd16, rd32, wr16, wr32 } from './wire.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPV4_HLEN = 20;
/** The link MTU slirp assumes for the guest (Ethernet's). */
export const MTU = 1500;

/** A validated IPv4 packet inside a frame. */
export interface Ipv4Packet {
  src: number;
  dst: number;
  proto: number;
  /** The payload (transport header and data), a view into the frame, trailing padding cut off. */
  payload: Uint8Array;
  /**
   * The TCP or UDP checksum was left to the NIC (a partial checksum from a transmit offload):
   * the bytes come from the guest's memory, not from a wire, so it is not checked.
   */
  checksumLeftToNic?: boolean;
}

/** Parses the IPv4 packet carried by an Ethernet frame; null when anything is malformed. */
export function parseIpv4Packet(frame: Uint8Array): Ipv4Packet | null {
  if (frame.length < ETH_HLEN + IPV4_HLEN) return null;
  const o = ETH_HLEN;
  const vihl = frame[o]!;
  const hlen = (vihl & 15) * 4;
  const total = rd16(frame, o + 2);
  if (vihl >> 4 !== 4 || hlen < IPV4_HLEN || total < hlen || o + total > frame.length) return null;
  if (checksum(frame, o, o + hlen) !== 0) return null;
  // More-fragments set or a non-zero offset: a fragment (the DF bit, 0x4000, is fine).
  if ((rd16(frame, o + 6) & 0x3fff) !== 0) return null;
  return {
    src: rd32(frame, o + 12),
    dst: rd32(frame, o + 16),
    proto: frame[o + 9]!,
    payload: frame.subarray(o + hlen, o + total),
  };
}

let nextId = 1;

/**
 * A new frame carrying an IPv4 packet from `src` to `dst` with `l4Len` payload bytes:
 * the IPv4 header is complete, the Ethernet header and the payload are the caller's
 * (the payload starts at {@link L4_OFFSET}).
 */
export function ipv4Frame(src: number, dst: number, proto: number, l4Len: number, dontFragment = false): Uint8Array {
  const frame = new Uint8Array(ETH_HLEN + IPV4_HLEN + l4Len);
  const o = ETH_HLEN;
  frame[o] = 0x45;
  wr16(frame, o + 2, IPV4_HLEN + l4Len);
  wr16(frame, o + 4, nextId);
  nextId = (nextId + 1) & 0xffff;
  wr16(frame, o + 6, dontFragment ? 0x4000 : 0);
  frame[o + 8] = 64; // TTL
  frame[o + 9] = proto;
  wr32(frame, o + 12, src);
  wr32(frame, o + 16, dst);
  wr16(frame, o + 10, checksum(frame, o, o + IPV4_HLEN));
  return frame;
}

/** Where the transport header starts in a frame from {@link ipv4Frame}. */
export const L4_OFFSET = ETH_HLEN + IPV4_HLEN;

/**
 * Splits a frame from {@link ipv4Frame} into frames that fit the MTU (RFC 791 3.2,
 * fragmentation): every fragment but the last carries a multiple of 8 payload bytes
 * and the more-fragments flag. A frame that fits is returned as is.
 */
export function fragmentIpv4(frame: Uint8Array, mtu = MTU): Uint8Array[] {
  const payload = frame.subarray(L4_OFFSET);
  if (IPV4_HLEN + payload.length <= mtu) return [frame];
  const chunk = (mtu - IPV4_HLEN) & ~7;
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const len = Math.min(chunk, payload.length - off);
    const f = new Uint8Array(L4_OFFSET + len);
    f.set(frame.subarray(0, L4_OFFSET));
    f.set(payload.subarray(off, off + len), L4_OFFSET);
    const o = ETH_HLEN;
    wr16(f, o + 2, IPV4_HLEN + len);
    wr16(f, o + 6, (off + len < payload.length ? 0x2000 : 0) | (off >>> 3));
    wr16(f, o + 10, 0);
    wr16(f, o + 10, checksum(f, o, o + IPV4_HLEN));
    out.push(f);
  }
  return out;
}
