/**
 * virtio-serial seen from inside the bundled RISC-V guest, as a user attaches it:
 * `-device virtio-serial-device -device virtconsole,chardev=c0 -chardev socket,id=c0,
 * path=SOCK,server=on,wait=off` gives the guest an hvc console whose lines reach a host
 * client of SOCK and back; a named virtserialport on a second socket appears as
 * /dev/vport0p1 with its name in sysfs. The socket server serves the next client once
 * the first leaves.
 *
 * The bundled kernel also has the RISC-V SBI console (CONFIG_HVC_RISCV_SBI), which takes
 * /dev/hvc0 as it would under QEMU; the virtio console is the next hvc, found by writing
 * a probe to each.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';

const PROMPT = /~ # $/;
const BOOT = 120_000;

/** A host client of a chardev socket that collects what the guest sends. */
class HostEnd {
  data = '';
  private constructor(readonly s: Socket) {
    s.on('data', (d: Buffer) => { this.data += d.toString('latin1'); });
    s.on('error', () => {});
  }

  static async open(path: string): Promise<HostEnd> {
    const s = connect(path);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    // Let Vireo's event loop take the connection before the guest writes.
    await new Promise((r) => setTimeout(r, 300));
    return new HostEnd(s);
  }

  async waitFor(re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.data);
      if (m) return m;
      if (Date.now() > end) throw new Error(`host end: timed out waiting for ${re}; got ${JSON.stringify(this.data)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.s.destroy();
  }
}

test('virtconsole and a named virtserialport on socket chardevs: lines both ways', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-vserial-'));
  const sock0 = join(dir, 'console.sock');
  const sock1 = join(dir, 'port.sock');
  const g = new GuestConsole(['-nographic',
    '-device', 'virtio-serial-device', '-device', 'virtconsole,chardev=c0',
    '-chardev', `socket,id=c0,path=${sock0},server=on,wait=off`,
    '-device', 'virtserialport,chardev=c1,name=org.vireo.test',
    '-chardev', `socket,id=c1,path=${sock1},server=on,wait=off`]);
  const ends: HostEnd[] = [];
  try {
    await g.waitFor(PROMPT, BOOT);
    const con = await HostEnd.open(sock0);
    ends.push(con);
    // Which hvc is the virtio console: the one whose probe arrives on the socket.
    await g.run('for t in /dev/hvc*; do (echo "probe:$t" > $t) 2>/dev/null; done', PROMPT);
    const hvc = (await con.waitFor(/probe:(\/dev\/hvc\d+)/))[1]!;

    // Guest to host, then host to guest.
    await g.run(`echo hello-from-guest > ${hvc}`, PROMPT);
    await con.waitFor(/hello-from-guest\r?\n/);
    await g.run(`(head -n1 ${hvc} > /tmp/in0 &) ; sleep 1`, PROMPT);
    con.s.write('hello-from-host\n');
    let got = '';
    for (let i = 0; i < 20 && !got.includes('hello-from-host'); i++) {
      got = await g.run('cat /tmp/in0 2>/dev/null; sleep 0.2', PROMPT);
    }
    assert.match(got, /^hello-from-host\s*$/m);

    // The named port: its name in sysfs, bytes both ways without a tty in between.
    assert.match(await g.run('cat /sys/class/virtio-ports/vport0p1/name', PROMPT), /^org\.vireo\.test\s*$/m);
    const port = await HostEnd.open(sock1);
    ends.push(port);
    await g.run('echo ping-from-guest > /dev/vport0p1', PROMPT);
    await port.waitFor(/^ping-from-guest\n/);
    await g.run('(head -n1 /dev/vport0p1 > /tmp/in1 &) ; sleep 1', PROMPT);
    port.s.write('pong-from-host\n');
    got = '';
    for (let i = 0; i < 20 && !got.includes('pong-from-host'); i++) {
      got = await g.run('cat /tmp/in1 2>/dev/null; sleep 0.2', PROMPT);
    }
    assert.match(got, /^pong-from-host\s*$/m);

    // The console client leaves: guest output is discarded without blocking the guest;
    // the server then serves the next client.
    con.close();
    await new Promise((r) => setTimeout(r, 300));
    await g.run(`echo nobody-listens > ${hvc}`, PROMPT);
    const next = await HostEnd.open(sock0);
    ends.push(next);
    await g.run(`echo second-client > ${hvc}`, PROMPT);
    await next.waitFor(/second-client/);
    assert.doesNotMatch(next.data, /nobody-listens/);

    g.send('poweroff\n');
    assert.equal(await g.exit(60_000), 0, g.tail());
  } finally {
    for (const e of ends) e.close();
    g.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
