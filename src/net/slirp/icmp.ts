/**
 * ICMP echo (RFC 792) for the stack's own addresses: a ping to the gateway or the DNS
 * address is answered locally. Echo requests to other hosts are not relayed (that
 * would need ICMP sockets on the host) and are dropped.
 */
import { IPPROTO_ICMP, L4_OFFSET, ipv4Frame, type Ipv4Packet } from './ipv4.js';
import { checksum, wr16 } from './wire.js';

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;

/** The frame answering an echo request addressed to us, or null when `pkt` is not a valid one. */
export function icmpEchoReply(pkt: Ipv4Packet): Uint8Array | null {
  const p = pkt.payload;
  if (p.length < 8 || p[0] !== ICMP_ECHO_REQUEST || p[1] !== 0 || checksum(p, 0, p.length) !== 0) return null;
  const frame = ipv4Frame(pkt.dst, pkt.src, IPPROTO_ICMP, p.length);
  frame.set(p, L4_OFFSET); // identifier, sequence number and data are echoed unchanged
  frame[L4_OFFSET] = ICMP_ECHO_REPLY;
  wr16(frame, L4_OFFSET + 2, 0);
  wr16(frame, L4_OFFSET + 2, checksum(frame, L4_OFFSET, frame.length));
  return frame;
}
