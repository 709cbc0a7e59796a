/**
 * The host's DNS resolver, for forwarding the guest's queries to the DNS address:
 * the first `nameserver` line of /etc/resolv.conf (resolv.conf(5)), as slirp does.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { HostAddr } from './udp.js';

/** The first nameserver in resolv.conf-formatted `text`, or null when there is none. */
export function parseResolvConf(text: string): HostAddr | null {
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // An IPv6 address may carry a zone (fe80::1%eth0): node:dgram takes it as is.
    if (m && isIP(m[1]!.split('%')[0]!)) return { address: m[1]!, port: 53 };
  }
  return null;
}

/** The host's resolver from /etc/resolv.conf, or null when it cannot be read or names none. */
export function hostResolver(path = '/etc/resolv.conf'): HostAddr | null {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}
