/**
 * ARP for Ethernet and IPv4 (RFC 826): parsing the guest's requests and replies, and
 * building the stack's own. The stack answers for its virtual hosts (gateway, DNS)
 * and asks for the guest's MAC when it has to reach an address it has not seen.
 */
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HLEN, rd16, rd32, wr16, wr32, writeEthHeader } from './wire.js';

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const ARP_LEN = 28;

/** A validated Ethernet/IPv4 ARP packet. */
export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetIp: number;
}

/** Parses the ARP packet in an Ethernet frame; null unless it is Ethernet/IPv4 with a known operation. */
export function parseArp(frame: Uint8Array): ArpPacket | null {
  if (frame.length < ETH_HLEN + ARP_LEN) return null;
  const o = ETH_HLEN;
  if (rd16(frame, o) !== 1 || rd16(frame, o + 2) !== ETHERTYPE_IPV4 || frame[o + 4] !== 6 || frame[o + 5] !== 4) return null;
  const op = rd16(frame, o + 6);
  if (op !== ARP_REQUEST && op !== ARP_REPLY) return null;
  return {
    op,
    senderMac: frame.slice(o + 8, o + 14),
    senderIp: rd32(frame, o + 14),
    targetIp: rd32(frame, o + 24),
  };
}

/**
 * Builds an ARP frame. A request goes to the broadcast address with an all-zero
 * target MAC; a reply goes to the asker.
 */
export function buildArp(op: number, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + ARP_LEN);
  writeEthHeader(f, op === ARP_REQUEST ? BROADCAST_MAC : targetMac, senderMac, ETHERTYPE_ARP);
  const o = ETH_HLEN;
  wr16(f, o, 1);
  wr16(f, o + 2, ETHERTYPE_IPV4);
  f[o + 4] = 6;
  f[o + 5] = 4;
  wr16(f, o + 6, op);
  f.set(senderMac, o + 8);
  wr32(f, o + 14, senderIp);
  if (op === ARP_REPLY) f.set(targetMac, o + 18);
  wr32(f, o + 24, targetIp);
  return f;
}
