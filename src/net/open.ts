/**
 * Opens the network back end a `-netdev` option describes.
 */
import type { NetBackend } from './net.js';
import { Slirp } from './slirp/slirp.js';
import { StreamNetdev } from './socket.js';
import type { NetdevOptions } from '../system/options.js';

/** `-netdev user` (user-mode NAT) or `-netdev socket` (a stream socket to another VM). */
export async function openNetdev(n: NetdevOptions): Promise<NetBackend> {
  if (n.kind === 'user') return Slirp.open({ hostfwd: n.hostfwd });
  return n.listen ? StreamNetdev.listen(n.listen) : StreamNetdev.connect(n.connect!);
}
