/**
 * bench/net: TCP throughput through virtio-net and user networking (slirp) between the
 * bundled RISC-V guest and a server on the host's loopback run by this benchmark, under
 * Vireo and qemu-system-riscv64 in the same run, with the same options:
 *
 *   -netdev user,id=n0 -device virtio-net-device,netdev=n0
 *
 * The guest gets 10.0.2.15/24 by hand (no DHCP round trip) and reaches the host's
 * 127.0.0.1 as 10.0.2.2, as in both VMMs' user networking.
 *   - guest -> host: `nc 10.0.2.2 PORT </tmp/tx`, an N MiB file written to the guest's RAM
 *     file system beforehand (no pipe: `dd | nc` costs the emulated CPU a pipe copy and a
 *     process, 20-60% of the rate); the host counts the bytes and times them from the first
 *     to the last byte received.
 *   - host -> guest: `wget -q -O /dev/null http://10.0.2.2:PORT/` from a minimal HTTP/1.0
 *     server that answers with N bytes as fast as the socket takes them; timed on the host
 *     from the first body byte written to the guest's close (wget closes once it has read
 *     Content-Length bytes, and exits non-zero on a short body). Not nc: busybox nc exits on
 *     the server's EOF only once its stdin is closed, and closing that half-closes the
 *     connection at once, so the host could not tell when the guest had everything. Not
 *     `| wc -c`: busybox wc counts byte by byte and becomes the bottleneck.
 * Each transfer runs under busybox `timeout` in the guest, so a stalled one fails the run
 * instead of hanging it. Prints the best of `runs` for each direction and VMM (runs
 * alternate between the VMMs) and the ratio Vireo/QEMU of the rates: above 1 Vireo is faster.
 * Usage: npm run bench:net [-- runs [MiB]]   (default 3 16)
 * BENCH_TIMEOUT (seconds, default 600) bounds each boot; BENCH_DEBUG=1 prints the console on failure.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { loadavg, cpus } from 'node:os';
import { benchMain, fmt, riscvPeers, runGuestCommands } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const mib = Number(process.argv[3] ?? 16);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT ?? 600);
const BYTES = mib << 20;
/** Seconds a transfer may take in the guest before `timeout` kills it: 64 KiB/s at least. */
const TRANSFER_S = Math.max(60, mib * 16);

/** What the host saw of one connection. */
interface Transfer {
  bytes: number;
  seconds: number;
  error?: string;
}

/** A one-connection-at-a-time server on 127.0.0.1; `take()` gives the next connection's result. */
class HostEnd {
  readonly server: Server;
  private results: Transfer[] = [];
  private waiting: ((t: Transfer) => void) | null = null;

  constructor(handle: (s: Socket, done: (t: Transfer) => void) => void, allowHalfOpen = false) {
    this.server = createServer({ allowHalfOpen }, (s) => {
      let reported = false;
      handle(s, (t) => {
        if (reported) return;
        reported = true;
        const w = this.waiting;
        this.waiting = null;
        if (w) w(t);
        else this.results.push(t);
      });
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }

  /** The result of the connection that has ended, or of the next one; an error after `ms` without one. */
  take(ms: number): Promise<Transfer> {
    const t = this.results.shift();
    if (t) return Promise.resolve(t);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting = null; resolve({ bytes: 0, seconds: 0, error: 'no connection reached the host' }); }, ms);
      this.waiting = (x) => { clearTimeout(timer); resolve(x); };
    });
  }

  close(): void {
    this.server.close();
  }
}

/** Counts what the guest sends until it closes. */
const sink = new HostEnd((s, done) => {
  let bytes = 0;
  let first = 0;
  let last = 0;
  s.on('data', (d: Buffer) => {
    last = performance.now();
    if (bytes === 0) first = last;
    bytes += d.length;
  });
  s.on('end', () => { s.end(); done({ bytes, seconds: (last - first) / 1000 }); });
  s.on('error', (e) => done({ bytes, seconds: (last - first) / 1000, error: e.message }));
});

/**
 * Serves BYTES over HTTP/1.0 (busybox nc cannot receive: it exits on the server's EOF only once
 * its own stdin is closed, and closing that sends its FIN at once; wget closes only after the
 * body). Times from the first body byte written to the guest's FIN.
 */
const source = new HostEnd((s, done) => {
  let request = '';
  let start = 0;
  let sent = 0;
  const chunk = Buffer.alloc(64 << 10, 0x5a);
  const pump = (): void => {
    while (sent < BYTES) {
      const n = Math.min(chunk.length, BYTES - sent);
      sent += n;
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  s.on('data', (d: Buffer) => {
    if (start) return;
    request += d.toString('latin1');
    if (!request.includes('\r\n\r\n')) return;
    s.write(`HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BYTES}\r\n\r\n`);
    start = performance.now();
    pump();
  });
  s.on('end', () => done({ bytes: sent, seconds: (performance.now() - start) / 1000, error: sent < BYTES ? 'the guest closed early' : undefined }));
  s.on('error', (e) => done({ bytes: sent, seconds: 0, error: e.message }));
}, true);

benchMain('bench:net', async () => {
  if (!(runs >= 1) || !(mib >= 1 && mib <= 256)) throw new Error('usage: npm run bench:net -- [runs >= 1] [1 <= MiB <= 256]');
  const peers = riscvPeers();
  const [up, down] = [await sink.listen(), await source.listen()];
  const load0 = loadavg()[0]!;
  console.log(`bench:net: bundled riscv64 guest (-m 512M, 1 hart), virtio-net-device + -netdev user, TCP to/from 127.0.0.1, ${mib} MiB each way, best of ${runs}`);
  const cmds = [
    'ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2',
    `dd if=/dev/zero of=/tmp/tx bs=64k count=${mib * 16} 2>/dev/null`,
    `timeout ${TRANSFER_S} nc 10.0.2.2 ${up} </tmp/tx; echo TX$((1)) $?`,
    `timeout ${TRANSFER_S} wget -q -O /dev/null http://10.0.2.2:${down}/; echo RX$((1)) $?`,
  ];
  const best = peers.map(() => [0, 0]);
  try {
    for (let run = 0; run < runs; run++) {
      for (const [p, peer] of peers.entries()) {
        const r = await runGuestCommands(peer, ['-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0'], cmds, TIMEOUT_S);
        const tx = await sink.take(1000);
        const rx = await source.take(1000);
        // Exit statuses: 143 is busybox timeout's kill (TRANSFER_S); wget fails on a short body.
        const txStatus = /TX1 (\d+)/.exec(r.output)?.[1] ?? '?';
        const rxStatus = /RX1 (\d+)/.exec(r.output)?.[1] ?? '?';
        if (tx.error || tx.bytes !== BYTES || txStatus !== '0') {
          throw new Error(`${peer.name}: guest -> host: host received ${tx.bytes} of ${BYTES} bytes, guest nc exit status ${txStatus}${tx.error ? `, ${tx.error}` : ''}`);
        }
        if (rx.error || rx.bytes !== BYTES || rxStatus !== '0') {
          throw new Error(`${peer.name}: host -> guest: host sent ${rx.bytes} of ${BYTES} bytes, guest wget exit status ${rxStatus}${rx.error ? `, ${rx.error}` : ''}`);
        }
        const rates = [tx.bytes / tx.seconds / (1 << 20), rx.bytes / rx.seconds / (1 << 20)];
        best[p] = best[p]!.map((x, i) => Math.max(x, rates[i]!));
        process.stderr.write(`  run ${run + 1} ${peer.name}: ${rates.map((x) => fmt(x)).join(' ')} MiB/s\n`);
      }
    }
  } finally {
    sink.close();
    source.close();
  }
  console.log(`host: ${cpus().length} CPUs, load average ${fmt(load0, 1)} at start, ${fmt(loadavg()[0]!, 1)} at end`);
  console.log(`${'direction'.padEnd(16)}${'vireo'.padStart(14)}${'qemu'.padStart(14)}   vireo/qemu`);
  ['guest -> host', 'host -> guest'].forEach((name, i) => {
    const [v, q] = [best[0]![i]!, best[1]![i]!];
    console.log(`${name.padEnd(16)}${`${fmt(v)} MiB/s`.padStart(14)}${`${fmt(q)} MiB/s`.padStart(14)}   ${fmt(v / q)}`);
  });
});
