/**
 * A pretend guest for the slirp tests: a NIC attached to a NetBackend, builders for
 * the frames a guest sends (Ethernet, ARP, IPv4, ICMP, UDP, TCP, DHCP) and a parser for
 * the frames it gets, which checks every checksum on its own (nothing here reuses the
 * stack's code), plus a small TCP endpoint. Not a test file itself.
 */
import type { NetBackend } from '../../src/net/net.js';

export const GUEST_MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
export const BROADCAST = Buffer.alloc(6, 0xff);
export const GUEST_IP = ip('10.0.2.15');
export const GATEWAY = ip('10.0.2.2');
export const DNS = ip('10.0.2.3');
export const GATEWAY_MAC = Buffer.from([0x52, 0x55, 10, 0, 2, 2]);

export function ip(s: string): number {
  return s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}

/** Internet checksum (RFC 1071), written independently of the stack's. */
export function csum(...parts: Buffer[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) sum += (p[i]! << 8) + (i + 1 < p.length ? p[i + 1]! : 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function pseudo(src: number, dst: number, proto: number, len: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(src, 0);
  b.writeUInt32BE(dst, 4);
  b[9] = proto;
  b.writeUInt16BE(len, 10);
  return b;
}

export function eth(dst: Buffer, type: number, payload: Buffer, src: Buffer = GUEST_MAC): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

export function arpFrame(op: number, senderIp: number, targetIp: number, senderMac: Buffer = GUEST_MAC, targetMac: Buffer = Buffer.alloc(6)): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(op, 6);
  senderMac.copy(a, 8);
  a.writeUInt32BE(senderIp, 14);
  targetMac.copy(a, 18);
  a.writeUInt32BE(targetIp, 24);
  return eth(op === 1 ? BROADCAST : targetMac, 0x0806, a, senderMac);
}

let ipId = 100;
/** An IPv4 packet in an Ethernet frame to the gateway's MAC. */
export function ipFrame(src: number, dst: number, proto: number, payload: Buffer, o: { flagsFrag?: number; dstMac?: Buffer } = {}): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(ipId++ & 0xffff, 4);
  h.writeUInt16BE(o.flagsFrag ?? 0x4000, 6);
  h[8] = 64;
  h[9] = proto;
  h.writeUInt32BE(src, 12);
  h.writeUInt32BE(dst, 16);
  h.writeUInt16BE(csum(h), 10);
  return eth(o.dstMac ?? (dst === 0xffffffff ? BROADCAST : GATEWAY_MAC), 0x0800, Buffer.concat([h, payload]));
}

export function udpFrame(src: number, sport: number, dst: number, dport: number, data: Buffer): Buffer {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(8 + data.length, 4);
  const c = csum(pseudo(src, dst, 17, 8 + data.length), u, data);
  u.writeUInt16BE(c || 0xffff, 6);
  return ipFrame(src, dst, 17, Buffer.concat([u, data]));
}

export function icmpEcho(dst: number, id: number, seq: number, data: Buffer, src = GUEST_IP): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 8;
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(seq, 6);
  h.writeUInt16BE(csum(h, data), 2);
  return ipFrame(src, dst, 1, Buffer.concat([h, data]));
}

export const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;

export interface TcpOut {
  src?: number;
  sport: number;
  dst: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  mss?: number;
  wscale?: number;
  data?: Buffer;
  /** Leave the checksum to the NIC, as a transmit offload does: the field holds the pseudo-header's sum only. */
  partial?: boolean;
}

/** Where a TCP checksum left to the NIC is (virtio's csum_start and csum_offset): from the TCP header on, at its byte 16. */
export const TCP_PARTIAL = { start: 14 + 20, offset: 16 };

export function tcpFrame(t: TcpOut): Buffer {
  const opts: number[] = [];
  if (t.mss !== undefined) opts.push(2, 4, t.mss >> 8, t.mss & 255);
  if (t.wscale !== undefined) opts.push(1, 3, 3, t.wscale);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(t.sport, 0);
  h.writeUInt16BE(t.dport, 2);
  h.writeUInt32BE(t.seq >>> 0, 4);
  h.writeUInt32BE((t.ack ?? 0) >>> 0, 8);
  h[12] = (h.length / 4) << 4;
  h[13] = t.flags;
  h.writeUInt16BE(t.window ?? 65535, 14);
  Buffer.from(opts).copy(h, 20);
  const data = t.data ?? Buffer.alloc(0);
  const src = t.src ?? GUEST_IP;
  const ph = pseudo(src, t.dst, 6, h.length + data.length);
  h.writeUInt16BE(t.partial ? ~csum(ph) & 0xffff : csum(ph, h, data), 16);
  return ipFrame(src, t.dst, 6, Buffer.concat([h, data]));
}

/** A DHCP client message (RFC 2131) from GUEST_MAC with the given options (code → bytes). */
export function dhcpMessage(type: number, xid: number, opts: [number, number[]][] = [], ciaddr = 0): Buffer {
  const m = Buffer.alloc(240);
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  m.writeUInt32BE(xid, 4);
  m.writeUInt32BE(ciaddr, 12);
  GUEST_MAC.copy(m, 28);
  m.writeUInt32BE(0x63825363, 236);
  const o: number[] = [53, 1, type];
  for (const [code, v] of opts) o.push(code, v.length, ...v);
  o.push(255);
  return Buffer.concat([m, Buffer.from(o)]);
}

/** DHCP options of a BOOTP message: code → value. */
export function dhcpOptions(m: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let i = 240; i < m.length && m[i] !== 255;) {
    if (m[i] === 0) {
      i++;
      continue;
    }
    out.set(m[i]!, m.subarray(i + 2, i + 2 + m[i + 1]!));
    i += 2 + m[i + 1]!;
  }
  return out;
}

/** A frame as the guest sees it, decoded and checksum-verified. */
export interface Rx {
  raw: Buffer;
  dstMac: Buffer;
  srcMac: Buffer;
  type: number;
  arp?: { op: number; senderMac: Buffer; senderIp: number; targetIp: number };
  ip?: { src: number; dst: number; proto: number; id: number; fragOff: number; more: boolean; df: boolean; payload: Buffer };
  udp?: { sport: number; dport: number; data: Buffer };
  tcp?: { sport: number; dport: number; seq: number; ack: number; flags: number; window: number; mss?: number; wscale?: number; data: Buffer };
  /** The segmentation size the stack gave a segment for a NIC with receive offloads. */
  tso?: number;
  icmp?: { type: number; id: number; seq: number; data: Buffer };
}

/**
 * Decodes a frame; throws when any checksum or length is wrong (the stack must never send such).
 * A segment for the receive offloads (`tso`) has only its pseudo-header's sum in the TCP
 * checksum field: it is completed first, as the guest's NIC would, then checked.
 */
export function decode(raw: Buffer, tso?: { mss: number }): Rx {
  if (tso && raw.readUInt16BE(12) !== 0x0800) throw new Error('a segmentation offload on a frame that is not IPv4');
  const r: Rx = { raw, dstMac: raw.subarray(0, 6), srcMac: raw.subarray(6, 12), type: raw.readUInt16BE(12) };
  if (r.type === 0x0806) {
    const a = raw.subarray(14);
    r.arp = { op: a.readUInt16BE(6), senderMac: a.subarray(8, 14), senderIp: a.readUInt32BE(14), targetIp: a.readUInt32BE(24) };
  } else if (r.type === 0x0800) {
    const h = raw.subarray(14);
    const hl = (h[0]! & 15) * 4;
    const total = h.readUInt16BE(2);
    if (h[0]! >> 4 !== 4 || total !== h.length) throw new Error(`bad IPv4 length ${total} in a ${h.length}-byte payload`);
    if (csum(h.subarray(0, hl)) !== 0) throw new Error('bad IPv4 header checksum');
    const ff = h.readUInt16BE(6);
    const p = h.subarray(hl, total);
    r.ip = { src: h.readUInt32BE(12), dst: h.readUInt32BE(16), proto: h[9]!, id: h.readUInt16BE(4), fragOff: (ff & 0x1fff) * 8, more: (ff & 0x2000) !== 0, df: (ff & 0x4000) !== 0, payload: p };
    if (r.ip.fragOff !== 0 || r.ip.more) return r; // a fragment: the caller reassembles
    const ps = pseudo(r.ip.src, r.ip.dst, r.ip.proto, p.length);
    if (r.ip.proto === 17) {
      if (p.readUInt16BE(4) !== p.length) throw new Error('bad UDP length');
      if (p.readUInt16BE(6) === 0 || csum(ps, p) !== 0) throw new Error('bad UDP checksum');
      r.udp = { sport: p.readUInt16BE(0), dport: p.readUInt16BE(2), data: p.subarray(8) };
    } else if (r.ip.proto === 6) {
      if (tso) {
        p.writeUInt16BE(csum(p), 16);
        r.tso = tso.mss;
      }
      if (csum(ps, p) !== 0) throw new Error('bad TCP checksum');
      const doff = (p[12]! >> 4) * 4;
      const t: NonNullable<Rx['tcp']> = { sport: p.readUInt16BE(0), dport: p.readUInt16BE(2), seq: p.readUInt32BE(4), ack: p.readUInt32BE(8), flags: p[13]!, window: p.readUInt16BE(14), data: p.subarray(doff) };
      for (let i = 20; i < doff;) {
        if (p[i] === 0) break;
        if (p[i] === 1) {
          i++;
          continue;
        }
        if (p[i] === 2) t.mss = p.readUInt16BE(i + 2);
        if (p[i] === 3) t.wscale = p[i + 2];
        i += p[i + 1]!;
      }
      r.tcp = t;
    } else if (r.ip.proto === 1) {
      if (csum(p) !== 0) throw new Error('bad ICMP checksum');
      r.icmp = { type: p[0]!, id: p.readUInt16BE(4), seq: p.readUInt16BE(6), data: p.subarray(8) };
    }
  }
  return r;
}

type Handler = (f: Rx) => boolean;

/**
 * The guest's NIC: frames from the backend are decoded and offered to the handlers
 * (a TCP endpoint claims its own), the rest queue up for {@link next}. `ready` is
 * what canReceive answers.
 */
export class FakeNic {
  readonly queue: Rx[] = [];
  ready = true;
  private handlers: Handler[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly backend: NetBackend) {
    backend.onReceive = (f, tso) => this.take(decode(Buffer.from(f), tso));
    backend.canReceive = () => this.ready;
  }

  send(frame: Buffer, partial?: { start: number; offset: number }): void {
    this.backend.send(new Uint8Array(frame), partial);
  }

  addHandler(h: Handler): void {
    this.handlers.push(h);
  }

  private take(f: Rx): void {
    for (const h of this.handlers) if (h(f)) return;
    this.queue.push(f);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Removes and returns the first queued frame matching `pred`, waiting up to `ms` for it. */
  async next(pred: (f: Rx) => boolean = () => true, ms = 5000): Promise<Rx> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`FakeNic: no matching frame within ${ms} ms (${this.queue.length} others queued)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when `cond` holds, checking after each frame and every 10 ms. */
  async until(cond: () => boolean, ms = 10000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`FakeNic: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/**
 * A minimal guest TCP endpoint: connects or accepts, sends data in MSS-sized
 * segments within the peer's window, takes in-order data only and acknowledges every
 * segment with the window it has left (`rcvBuf` minus what the test has not read).
 */
export class GuestTcp {
  readonly received: Buffer[] = [];
  /** The ACK field of every segment received. */
  readonly acks: number[] = [];
  receivedLen = 0;
  /** Bytes the "application" has not read yet (they shrink the window). */
  unread = 0;
  /** Drop (without acknowledging) the next n data segments, as a lossy guest would. */
  dropData = 0;
  finReceived = false;
  reset = false;
  established = false;
  segments = 0;
  sndNxt = 1000;
  sndUna = 1000;
  rcvNxt = 0;
  peerWindow = 0;
  peerMss = 536;
  peerShift = 0;

  constructor(readonly nic: FakeNic, readonly local: number, readonly remoteIp: number, public remotePort: number,
    readonly opts: { rcvBuf?: number; wscale?: number; mss?: number; autoRead?: boolean; offload?: boolean } = {}) {
    nic.addHandler((f) => {
      if (!f.tcp || f.ip!.src !== this.remoteIp || f.tcp.dport !== this.local || f.tcp.sport !== this.remotePort) return false;
      this.input(f.tcp);
      return true;
    });
  }

  get rcvBuf(): number {
    return this.opts.rcvBuf ?? 65535;
  }

  /** The window we advertise, unscaled; `ourShift` applies once established. */
  private window(syn = false): number {
    const w = Math.max(0, this.rcvBuf - this.unread);
    const shift = syn || this.opts.wscale === undefined || this.peerShift < 0 ? 0 : this.opts.wscale;
    return Math.min(w >> shift, 65535);
  }

  private out(flags: number, seq: number, data?: Buffer, syn = false): void {
    const partial = this.opts.offload === true && !syn;
    this.nic.send(tcpFrame({
      sport: this.local, dst: this.remoteIp, dport: this.remotePort, seq, ack: flags & F.ACK ? this.rcvNxt : 0, flags,
      window: this.window(syn), data, partial,
      ...(syn ? { mss: this.opts.mss ?? 1460, ...(this.opts.wscale !== undefined ? { wscale: this.opts.wscale } : {}) } : {}),
    }), partial ? TCP_PARTIAL : undefined);
  }

  private input(t: NonNullable<Rx['tcp']>): void {
    this.segments++;
    this.acks.push(t.ack);
    if (t.flags & F.RST) {
      this.reset = true;
      return;
    }
    if (t.flags & F.SYN) {
      this.rcvNxt = (t.seq + 1) >>> 0;
      this.peerMss = t.mss ?? 536;
      // Scaling is on only when both SYNs carried the option.
      this.peerShift = t.wscale !== undefined && this.opts.wscale !== undefined ? t.wscale : -1;
      this.peerWindow = t.window; // never scaled in a SYN
      if (t.flags & F.ACK) {
        this.sndUna = t.ack;
        this.established = true;
        this.out(F.ACK, this.sndNxt);
      } else {
        this.sndNxt++; // first: the answer may come back while the SYN-ACK is being sent
        this.out(F.SYN | F.ACK, this.sndNxt - 1, undefined, true); // accept (hostfwd)
      }
      return;
    }
    if (t.flags & F.ACK) {
      if (!this.established && t.ack === this.sndNxt) this.established = true;
      if (((t.ack - this.sndUna) | 0) > 0) this.sndUna = t.ack;
      this.peerWindow = t.window << Math.max(0, this.peerShift);
    }
    if (t.data.length > 0 && this.dropData > 0) {
      this.dropData--;
      return;
    }
    if (t.data.length > 0 || t.flags & F.FIN) {
      if (t.seq === this.rcvNxt) {
        const room = Math.max(0, this.rcvBuf - this.unread);
        const take = t.data.subarray(0, room);
        if (take.length > 0) {
          this.received.push(Buffer.from(take));
          this.receivedLen += take.length;
          if (this.opts.autoRead === false) this.unread += take.length;
          this.rcvNxt = (this.rcvNxt + take.length) >>> 0;
        }
        if (t.flags & F.FIN && take.length === t.data.length) {
          this.rcvNxt = (this.rcvNxt + 1) >>> 0;
          this.finReceived = true;
        }
      }
      this.out(F.ACK, this.sndNxt);
    }
  }

  /** Passive open: answers `syn` (a frame the NIC queued before this endpoint existed) with a SYN-ACK. */
  accept(syn: Rx): void {
    this.input(syn.tcp!);
  }

  /** Active open: SYN, then waits for the handshake to finish. */
  async connect(): Promise<void> {
    this.sndNxt++;
    this.out(F.SYN, this.sndNxt - 1, undefined, true);
    await this.nic.until(() => this.established || this.reset, 5000, 'SYN-ACK');
  }

  /**
   * Sends `data`, segment by segment as the peer's window allows, and waits for its
   * acknowledgement; with `offload`, in segments of up to 64 KiB whatever the MSS (TSO).
   */
  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const inFlight = (this.sndNxt - this.sndUna) | 0;
      const room = this.peerWindow - inFlight;
      if (room <= 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const n = Math.min(room, this.opts.offload ? 65535 - 40 : this.peerMss, data.length - off);
      this.sndNxt = (this.sndNxt + n) >>> 0;
      this.out(F.ACK | F.PSH, this.sndNxt - n, data.subarray(off, off + n));
      off += n;
    }
    await this.nic.until(() => this.sndUna === this.sndNxt, 10000, 'ACK of written data');
  }

  /** Sends a raw segment at sequence `seq` (for reordering and duplicate tests). */
  sendAt(seq: number, data: Buffer, flags = F.ACK): void {
    this.out(flags, seq, data);
  }

  /** The application reads everything: the window opens and the peer is told. */
  readAll(): void {
    this.unread = 0;
    this.out(F.ACK, this.sndNxt);
  }

  close(): void {
    this.sndNxt++;
    this.out(F.FIN | F.ACK, this.sndNxt - 1);
  }

  sendReset(): void {
    this.out(F.RST | F.ACK, this.sndNxt);
  }

  data(): Buffer {
    return Buffer.concat(this.received);
  }
}
