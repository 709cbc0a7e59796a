/**
 * The user-mode network against a real TCP/IP stack: the host kernel's own, on a TAP
 * device in a network namespace this test creates (`unshare -n`), plays the guest.
 * busybox udhcpc, ping and nslookup and curl run as guest programs; the host services
 * (HTTP, a hashing sink, a fake resolver) listen on that namespace's 127.0.0.1, and a
 * hostfwd rule leads back to a server on the TAP address. Needs root, unshare,
 * /dev/net/tun, busybox and curl; skipped (saying why) otherwise.
 *
 * The file runs twice: as the test, and (with VIREO_SLIRP_NETNS set) as the program
 * inside the namespace, which prints its observations as JSON.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { exec, execSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, openSync, read, writeSync, closeSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { Slirp } from '../../src/net/slirp/slirp.js';

const CHILD_ENV = 'VIREO_SLIRP_NETNS';
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;

interface Observed {
  dhcp: string;
  ping: string;
  dns: string;
  download: { status: string; sha: string; expected: string };
  upload: { reply: string; expected: string };
  hostfwd: string;
}

/** The guest side, inside the namespace. */
async function child(): Promise<void> {
  const ioctl = koffi.load('libc.so.6').func('int ioctl(int fd, unsigned long request, uint8_t *arg)');
  const fd = openSync('/dev/net/tun', 'r+');
  const ifr = Buffer.alloc(40); // struct ifreq: the name, then the flags
  ifr.write('tap0');
  ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI, 16);
  if (ioctl(fd, TUNSETIFF, ifr) !== 0) throw new Error('TUNSETIFF failed');
  execSync('ip link set lo up && ip link set tap0 address 52:54:00:12:34:56 && ip link set tap0 up');

  const page = randomBytes(3 << 20);
  const http = createHttpServer((_req, res) => res.end(page)).listen(8000, '127.0.0.1');
  const upload = Buffer.from(randomBytes(2 << 20));
  const sink = createServer((s) => {
    const h = createHash('sha256');
    s.on('data', (d) => h.update(d));
    s.on('end', () => s.end(h.digest('hex')));
  }).listen(8001, '127.0.0.1');
  const resolver = createSocket('udp4').bind(5353, '127.0.0.1');
  resolver.on('message', (q, r) => {
    // Any query gets one A record, 192.0.2.7, naming the question by pointer.
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    resolver.send(Buffer.concat([q.subarray(0, 2), Buffer.from([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]), q.subarray(12), answer]), r.port, r.address);
  });
  const guestService = createServer((s) => s.end('hello from the guest side'));

  const slirp = await Slirp.open({
    hostfwd: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 7022, guestAddr: '', guestPort: 2222 }],
    dns: { address: '127.0.0.1', port: 5353 },
  });
  slirp.onReceive = (f) => void writeSync(fd, f);
  const buf = Buffer.alloc(65536);
  let running = true;
  const pump = (): void => read(fd, buf, 0, buf.length, null, (err, n) => {
    if (err || !running) return;
    slirp.send(buf.slice(0, n));
    pump();
  });
  pump();

  const run = (cmd: string, input?: Buffer) => new Promise<string>((resolve) => {
    const p = exec(cmd, { timeout: 30000, encoding: 'buffer', maxBuffer: 16 << 20 }, (e, out, errOut) =>
      resolve(e ? `FAILED ${e.message} ${errOut.toString()}` : out.toString()));
    p.stdin!.end(input);
  });
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  const dhcp = await run('busybox udhcpc -i tap0 -f -q -n -t 3 -s /bin/true 2>&1');
  execSync('ip addr add 10.0.2.15/24 dev tap0 && ip route add default via 10.0.2.2');
  guestService.listen(2222, '10.0.2.15');
  const got = await new Promise<Buffer>((resolve) => exec('curl -s --max-time 30 http://10.0.2.2:8000/',
    { encoding: 'buffer', maxBuffer: 16 << 20 }, (_e, out) => resolve(out)));
  const out: Observed = {
    dhcp,
    ping: await run('busybox ping -c 2 -W 2 10.0.2.2'),
    dns: await run('busybox nslookup example.com 10.0.2.3'),
    download: { status: `${got.length}`, sha: sha(got), expected: sha(page) },
    upload: { reply: await run('busybox nc 10.0.2.2 8001', upload), expected: sha(upload) },
    hostfwd: await run('curl -s --max-time 10 telnet://127.0.0.1:7022'),
  };
  running = false;
  slirp.close();
  http.close();
  sink.close();
  resolver.close();
  guestService.close();
  closeSync(fd);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

/** Why the namespace test cannot run here, or null when it can. */
function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (for unshare -n and a TAP device)';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  for (const [cmd, pkg] of [['busybox', 'busybox'], ['curl', 'curl'], ['ip', 'iproute2']] as const) {
    if (spawnSync(cmd, ['--help'], { stdio: 'ignore' }).error) return `${cmd} not installed (apt-get install ${pkg})`;
  }
  if (spawnSync('unshare', ['-n', 'true']).status !== 0) return 'unshare -n is not permitted here';
  return null;
}

if (process.env[CHILD_ENV]) {
  await child();
} else {
  test('the host kernel as guest: DHCP, ping, DNS, a 3 MiB download, a 2 MiB upload and hostfwd work', (t) => {
    const why = unavailable();
    if (why) {
      t.skip(why);
      return;
    }
    const r = spawnSync('unshare', ['-n', process.execPath, fileURLToPath(import.meta.url)],
      { env: { ...process.env, [CHILD_ENV]: '1' }, encoding: 'utf8', timeout: 120000 });
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as Observed;
    assert.match(o.dhcp, /lease of 10\.0\.2\.15 obtained from 10\.0\.2\.2/);
    assert.match(o.ping, /2 packets transmitted, 2 packets received/);
    assert.match(o.dns, /Address:\s+192\.0\.2\.7/);
    assert.equal(o.download.status, `${3 << 20}`);
    assert.equal(o.download.sha, o.download.expected);
    assert.equal(o.upload.reply, o.upload.expected);
    assert.equal(o.hostfwd, 'hello from the guest side');
  });
}
