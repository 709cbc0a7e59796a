/**
 * QMP on the x86_64 microvm under KVM: negotiation, stop (every vCPU thread parks;
 * registers are readable while stopped), cont (the guest runs commands again) and
 * quit (SHUTDOWN, exit 0). The client is a plain socket speaking JSON lines, since the
 * nested VM that runs tests/kvm on machines without /dev/kvm has Node but no Python.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from '../functional/guest-console.js';

const PROMPT = /~ # (\x1b\[6n)?$/;
const BOOT_TIMEOUT = 300_000;

type Msg = Record<string, any>;

/** A QMP connection: messages in arrival order, requests answered in turn. */
class Qmp {
  private buf = '';
  private readonly queue: Msg[] = [];
  private constructor(private readonly s: Socket) {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString();
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line) this.queue.push(JSON.parse(line) as Msg);
      }
    });
  }

  static async open(path: string): Promise<Qmp> {
    const s = connect(path);
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    return new Qmp(s);
  }

  async next(timeoutMs = 60_000): Promise<Msg> {
    const end = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (Date.now() > end) throw new Error('QMP: no message');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.queue.shift()!;
  }

  /** Sends a command; returns the events seen before its answer, and the answer. */
  async execute(command: string, args?: Msg): Promise<{ events: Msg[]; answer: Msg }> {
    this.s.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\r\n`);
    const events: Msg[] = [];
    for (;;) {
      const m = await this.next();
      if ('return' in m || 'error' in m) return { events, answer: m };
      events.push(m);
    }
  }

  close(): void {
    this.s.destroy();
  }
}

test('QMP under KVM: stop parks the vCPUs, registers read while stopped, cont resumes, quit exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-kvm-qmp-'));
  const sock = join(dir, 'qmp.sock');
  const g = new GuestConsole(['-accel', 'kvm', '-m', '256M', '-smp', '2', '-nographic', '-qmp', `unix:${sock},server=on,wait=off`]);
  let qmp: Qmp | undefined;
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    await g.run('dmesg -n 1', PROMPT);
    qmp = await Qmp.open(sock);
    assert.ok((await qmp.next()).QMP, 'greeting');
    assert.deepEqual((await qmp.execute('qmp_capabilities')).answer, { return: {} });
    assert.deepEqual((await qmp.execute('query-status')).answer.return, { running: true, status: 'running', singlestep: false });
    const cpus = (await qmp.execute('query-cpus-fast')).answer.return as Msg[];
    assert.deepEqual(cpus.map((c) => [c['cpu-index'], c.target]), [[0, 'x86_64'], [1, 'x86_64']]);

    const stop = await qmp.execute('stop');
    const stopEvent = stop.events.find((e) => e.event === 'STOP') ?? await qmp.next();
    assert.equal(stopEvent.event, 'STOP');
    assert.equal((await qmp.execute('query-status')).answer.return.status, 'paused');
    // A command typed while stopped does not run until cont.
    const before = g.output.length;
    g.send('echo ran-after-$((6*7))\n');
    await new Promise((r) => setTimeout(r, 3000));
    assert.doesNotMatch(g.output.slice(before), /ran-after-42/);
    const regs = (await qmp.execute('human-monitor-command', { 'command-line': 'info registers' })).answer.return as string;
    assert.match(regs, /RIP=|rip/i);

    const cont = await qmp.execute('cont');
    assert.ok([...cont.events, ...(cont.events.length ? [] : [await qmp.next()])].some((e) => e.event === 'RESUME'));
    await g.waitFor(/ran-after-42/, 120_000, before);
    await g.waitFor(PROMPT, 120_000, before);

    const quit = await qmp.execute('quit');
    assert.deepEqual(quit.answer, { return: {} });
    assert.equal(await g.exit(60_000), 0, g.tail());
  } finally {
    qmp?.close();
    g.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
