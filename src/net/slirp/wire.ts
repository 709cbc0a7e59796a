/**
 * Byte-level helpers of the slirp stack: network-order accessors, the Internet
 * checksum (RFC 1071), IPv4 address conversions and the Ethernet header (IEEE 802.3,
 * Ethernet II framing). Every reader takes a bounds-checked position from its caller:
 * callers check lengths before reading, so these never look past a buffer.
 */

export const ETH_HLEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function rd16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function rd32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** Adds b[start, end) as big-endian 16-bit words to a running one's-complement sum (RFC 1071 4.1). */
export function sumWords(sum: number, b: Uint8Array, start: number, end: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8; // an odd trailing byte is padded with zero
  return sum;
}

/** Folds the carries of a running sum and complements it: the value to store in a checksum field. */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The Internet checksum of b[start, end); verifying a block that holds its own checksum gives 0. */
export function checksum(b: Uint8Array, start: number, end: number): number {
  return foldSum(sumWords(0, b, start, end));
}

/** Completes a checksum a NIC offload left partial: adds the bytes from `start` on to the sum already at `start + offset`. */
export function completeChecksum(b: Uint8Array, start: number, offset: number): void {
  const at = start + offset;
  if (at + 2 > b.length) return;
  // The field holds the pseudo-header's sum, not complemented: it is part of the sum.
  wr16(b, at, foldSum(sumWords(0, b, start, b.length)));
}

/** The TCP/UDP pseudo-header sum (RFC 9293 3.1, RFC 768): addresses, protocol and length. */
export function pseudoSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** Dotted-quad text of an address held as an unsigned 32-bit number. */
export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** Parses a dotted-quad IPv4 address; null when `s` is not one. */
export function parseIpv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  let ip = 0;
  for (let i = 1; i <= 4; i++) {
    const n = Number(m[i]);
    if (n > 255) return null;
    ip = ip * 256 + n;
  }
  return ip;
}

/**
 * The MAC address of a virtual host at `ip`: 52:55 followed by the address, as slirp
 * gives its gateway and DNS server (so 10.0.2.2 answers as 52:55:0a:00:02:02).
 */
export function macForIp(ip: number): Uint8Array {
  return new Uint8Array([0x52, 0x55, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]);
}

/** Writes an Ethernet II header at the start of `frame`. */
export function writeEthHeader(frame: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  frame.set(dst, 0);
  frame.set(src, 6);
  wr16(frame, 12, type);
}

/** Whether a MAC address is a group (broadcast or multicast) address. */
export function isGroupMac(mac: Uint8Array): boolean {
  return (mac[0]! & 1) !== 0;
}
