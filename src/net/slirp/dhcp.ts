/**
 * The DHCP server of the virtual network (RFC 2131, options from RFC 2132): leases
 * addresses from the DHCP start address (10.0.2.15) on, one per client MAC, and
 * hands out the subnet mask, the gateway as router, the DNS address and a lease time.
 * Relayed messages (giaddr set) are ignored: there is no other subnet.
 */
import { BROADCAST_MAC, rd16, rd32, wr16, wr32 } from './wire.js';

/** Fixed part of a BOOTP message (RFC 2131 2, figure 1) up to and including the file field. */
const BOOTP_FIXED = 236;
const MAGIC_COOKIE = 0x63825363;
/** RFC 1542 3.3: BOOTP messages are at least 300 bytes; some clients insist. */
const MIN_REPLY = 300;
const MAX_CLIENTS = 16;
export const LEASE_SECONDS = 24 * 3600;

const BOOTREQUEST = 1;
const BOOTREPLY = 2;
const BROADCAST_FLAG = 0x8000;

const DHCPDISCOVER = 1;
const DHCPOFFER = 2;
const DHCPREQUEST = 3;
const DHCPACK = 5;
const DHCPNAK = 6;
const DHCPRELEASE = 7;
const DHCPINFORM = 8;

const OPT_SUBNET_MASK = 1;
const OPT_ROUTER = 3;
const OPT_DNS = 6;
const OPT_REQUESTED_IP = 50;
const OPT_LEASE_TIME = 51;
const OPT_MSG_TYPE = 53;
const OPT_SERVER_ID = 54;

/** Addresses of the virtual network as the DHCP server hands them out. */
export interface DhcpConfig {
  netmask: number;
  /** The server's own address, also the router. */
  server: number;
  dns: number;
  /** The first address leased. */
  start: number;
}

/** A reply to send: the payload of a UDP datagram from port 67 to port 68. */
export interface DhcpReply {
  data: Uint8Array;
  dstIp: number;
  dstMac: Uint8Array;
  /** Set on an ACK: the client's MAC is now known for its address. */
  leased?: { ip: number; mac: Uint8Array };
}

interface Lease {
  ip: number;
  mac: string;
  /** Expiry in ms since the epoch; an offered, not yet requested address expires quickly. */
  expires: number;
}

/** A DHCP server for one virtual subnet. */
export class DhcpServer {
  private readonly leases: Lease[] = [];

  constructor(private readonly cfg: DhcpConfig, private readonly now: () => number = Date.now) {}

  /** Handles a message sent to port 67; returns the reply, or null when there is none or it is malformed. */
  handle(msg: Uint8Array): DhcpReply | null {
    if (msg.length < BOOTP_FIXED + 4 || msg[0] !== BOOTREQUEST || msg[1] !== 1 || msg[2] !== 6) return null;
    if (rd32(msg, BOOTP_FIXED) !== MAGIC_COOKIE || rd32(msg, 24) !== 0) return null; // giaddr: relayed
    const opts = parseOptions(msg, BOOTP_FIXED + 4);
    const type = opts.get(OPT_MSG_TYPE)?.[0];
    const mac = msg.slice(28, 34);
    const macKey = Buffer.from(mac).toString('hex');
    const ciaddr = rd32(msg, 12);
    const requested = optIp(opts.get(OPT_REQUESTED_IP));
    switch (type) {
      case DHCPDISCOVER: {
        const lease = this.allocate(macKey, requested, 60_000);
        return lease ? this.reply(msg, DHCPOFFER, lease.ip, mac) : null;
      }
      case DHCPREQUEST: {
        const server = optIp(opts.get(OPT_SERVER_ID));
        if (server !== null && server !== this.cfg.server) return null; // the client chose another server
        const want = requested ?? ciaddr;
        const lease = want ? this.allocate(macKey, want, LEASE_SECONDS * 1000) : null;
        if (!lease || lease.ip !== want) return this.reply(msg, DHCPNAK, 0, mac);
        const r = this.reply(msg, DHCPACK, lease.ip, mac);
        r.leased = { ip: lease.ip, mac };
        return r;
      }
      case DHCPINFORM:
        return this.reply(msg, DHCPACK, 0, mac);
      case DHCPRELEASE: {
        const i = this.leases.findIndex((l) => l.mac === macKey && l.ip === ciaddr);
        if (i >= 0) this.leases.splice(i, 1);
        return null;
      }
      default:
        return null; // DHCPDECLINE and unknown types
    }
  }

  /**
   * The client's lease, renewed for `ms`: its existing one, else the requested
   * address if it is in the pool and free, else the first free address.
   */
  private allocate(mac: string, requested: number | null, ms: number): Lease | null {
    const now = this.now();
    let lease = this.leases.find((l) => l.mac === mac);
    if (lease && requested !== null && requested !== lease.ip && this.free(requested, now)) lease.ip = requested;
    if (!lease) {
      const pick = requested !== null && this.free(requested, now) ? requested : this.firstFree(now);
      if (pick === null) return null;
      const stale = this.leases.findIndex((l) => l.ip === pick);
      if (stale >= 0) this.leases.splice(stale, 1);
      lease = { ip: pick, mac, expires: 0 };
      this.leases.push(lease);
    }
    lease.expires = Math.max(lease.expires, now + ms);
    return lease;
  }

  private inPool(ip: number): boolean {
    return ip >= this.cfg.start && ip < this.cfg.start + MAX_CLIENTS;
  }

  private free(ip: number, now: number): boolean {
    return this.inPool(ip) && !this.leases.some((l) => l.ip === ip && l.expires > now);
  }

  private firstFree(now: number): number | null {
    for (let ip = this.cfg.start; ip < this.cfg.start + MAX_CLIENTS; ip++) if (this.free(ip, now)) return ip;
    return null;
  }

  /** Builds a reply to `req` and picks its destination (RFC 2131 4.1). */
  private reply(req: Uint8Array, type: number, yiaddr: number, mac: Uint8Array): DhcpReply {
    const opts: number[] = [OPT_MSG_TYPE, 1, type, OPT_SERVER_ID, 4, ...bytes(this.cfg.server)];
    if (type !== DHCPNAK) {
      if (type !== DHCPACK || yiaddr !== 0) opts.push(OPT_LEASE_TIME, 4, ...bytes(LEASE_SECONDS));
      opts.push(OPT_SUBNET_MASK, 4, ...bytes(this.cfg.netmask), OPT_ROUTER, 4, ...bytes(this.cfg.server),
        OPT_DNS, 4, ...bytes(this.cfg.dns));
    }
    opts.push(255);
    const out = new Uint8Array(Math.max(MIN_REPLY, BOOTP_FIXED + 4 + opts.length));
    out[0] = BOOTREPLY;
    out[1] = 1;
    out[2] = 6;
    out.set(req.subarray(4, 8), 4); // xid
    const flags = rd16(req, 10);
    wr16(out, 10, flags);
    const ciaddr = rd32(req, 12);
    if (type !== DHCPNAK) wr32(out, 12, ciaddr);
    wr32(out, 16, yiaddr);
    wr32(out, 20, this.cfg.server); // siaddr
    out.set(req.subarray(28, 44), 28); // chaddr
    wr32(out, BOOTP_FIXED, MAGIC_COOKIE);
    out.set(opts, BOOTP_FIXED + 4);
    const dstIp = ciaddr || yiaddr;
    if (type === DHCPNAK || dstIp === 0 || (ciaddr === 0 && flags & BROADCAST_FLAG)) {
      return { data: out, dstIp: 0xffffffff, dstMac: BROADCAST_MAC };
    }
    return { data: out, dstIp, dstMac: mac };
  }
}

/** The options field (RFC 2131 4.1, RFC 2132 2): code to value; malformed tails are ignored. */
function parseOptions(msg: Uint8Array, start: number): Map<number, Uint8Array> {
  const opts = new Map<number, Uint8Array>();
  let i = start;
  while (i < msg.length) {
    const code = msg[i]!;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    if (i + 1 >= msg.length) break;
    const len = msg[i + 1]!;
    if (i + 2 + len > msg.length) break;
    if (!opts.has(code)) opts.set(code, msg.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return opts;
}

function optIp(v: Uint8Array | undefined): number | null {
  return v && v.length === 4 ? rd32(v, 0) : null;
}

function bytes(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}
