/**
 * Opens the network back end a `-netdev` option describes.
 */
import type { NetBackend } from './net.js';
import { Slirp } from './slirp/slirp.js';
import { DgramNetdev, StreamNetdev } from './socket.js';
import type { NetdevOptions } from '../system/options.js';

/**
 * `-netdev user` (user-mode NAT), or a socket to another VM: `-netdev socket` (TCP
 * listen= or connect=, or udp= with localaddr=), `-netdev stream` (TCP or Unix, server
 * or client) or `-netdev dgram` (UDP).
 */
export async function openNetdev(n: NetdevOptions): Promise<NetBackend> {
  switch (n.kind) {
    case 'user': return Slirp.open({ hostfwd: n.hostfwd });
    case 'socket': return n.listen ? StreamNetdev.listen(n.listen) : StreamNetdev.connect(n.connect!);
    case 'stream': {
      const what = `-netdev stream,id=${n.id}`;
      return n.server ? StreamNetdev.listen(n.addr, what) : StreamNetdev.connect(n.addr, what);
    }
    case 'dgram': return DgramNetdev.open(n.local, n.remote, `-netdev dgram,id=${n.id}`);
  }
}
