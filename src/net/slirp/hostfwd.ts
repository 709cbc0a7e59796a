/**
 * Host port forwarding (QEMU's `-netdev user,hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`):
 * opening the host listener of a rule the command line parsed. An empty host address
 * listens on all addresses, as in QEMU; an empty guest address means the first DHCP
 * address.
 */
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { UserError, type HostForward } from '../../system/options.js';
import { parseIpv4 } from './wire.js';
import type { HostAddr } from './udp.js';

/** A rule as QEMU writes it, for messages. */
export function formatHostForward(r: HostForward): string {
  return `${r.proto}:${r.hostAddr}:${r.hostPort}-${r.guestAddr}:${r.guestPort}`;
}

/** The guest address of a rule (`dhcpStart` when empty); throws UserError when it is not an IPv4 address. */
export function forwardGuestIp(r: HostForward, dhcpStart: number): number {
  if (r.guestAddr === '') return dhcpStart;
  const ip = parseIpv4(r.guestAddr);
  if (ip === null) throw new UserError(`hostfwd '${formatHostForward(r)}': bad guest address '${r.guestAddr}'`);
  return ip;
}

/** An open hostfwd listener. */
export interface ForwardListener {
  /** The address and port actually bound (port 0 in the rule picks a free one). */
  address: HostAddr;
  close(): void;
}

/** What a listener hands over: accepted TCP connections, or datagrams with their sender. */
export interface ForwardHandlers {
  tcp(socket: Socket): void;
  udp(listener: DgramSocket, data: Buffer, peer: RemoteInfo): void;
}

/** Opens the listener of `rule`; rejects with a UserError when the address cannot be bound. */
export function listenForward(rule: HostForward, h: ForwardHandlers): Promise<ForwardListener> {
  const host = rule.hostAddr || '0.0.0.0';
  const failed = (e: Error) => new UserError(`could not set up host forwarding rule '${formatHostForward(rule)}': ${e.message}`);
  return new Promise((resolve, reject) => {
    if (rule.proto === 'tcp') {
      // allowHalfOpen: the guest may still send after the host peer shut down its side.
      const server = createServer({ allowHalfOpen: true }, (s) => h.tcp(s));
      server.on('error', (e) => reject(failed(e))); // after listening: nothing to do (a rejection of a settled promise)
      server.listen(rule.hostPort, host, () => {
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : rule.hostPort;
        resolve({ address: { address: host, port }, close: () => server.close() });
      });
    } else {
      const sock = createSocket('udp4');
      // After binding, an error is a send to a vanished peer: that datagram is lost, as UDP allows.
      sock.on('error', (e) => reject(failed(e)));
      sock.on('message', (data, peer) => h.udp(sock, data, peer));
      sock.bind(rule.hostPort, host, () => {
        resolve({ address: { address: host, port: sock.address().port }, close: () => sock.close() });
      });
    }
  });
}
