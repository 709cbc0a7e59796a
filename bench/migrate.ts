/**
 * bench/migrate: live migration of the bundled RISC-V Linux with 512 MiB of RAM between two
 * processes on this host (tcp:127.0.0.1), Vireo to Vireo and qemu-system-riscv64 to
 * qemu-system-riscv64, in the same run: an idle guest (at its shell prompt), and a busy one
 * (64 MiB of random data in a tmpfs file, copied over and over while it migrates). Reports
 * each VMM's own total time and downtime from query-migrate (QMP), best of `runs` by
 * downtime, and the ratios. Both use the default downtime limit (300 ms); QEMU's bandwidth
 * cap is lifted (max-bandwidth 10 GB/s) since Vireo has none by default.
 * Usage: node dist/bench/migrate.js [runs]
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fmt, tempDir, riscvPeers, RISCV_PROMPT, benchMain, type Peer } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 600) * 1000;

/** A minimal QMP client: one command at a time, events skipped. */
class Qmp {
  private buf = '';
  private waiter: (() => void) | null = null;
  private constructor(private readonly sock: ReturnType<typeof connect>) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString();
      this.waiter?.();
    });
  }

  static async open(path: string): Promise<Qmp> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = connect(path);
      const ok = await new Promise<boolean>((r) => { s.once('connect', () => r(true)); s.once('error', () => r(false)); });
      if (ok) {
        const q = new Qmp(s);
        await q.message(); // greeting
        await q.run('qmp_capabilities');
        return q;
      }
      if (Date.now() > deadline) throw new Error(`no QMP socket at ${path}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async message(): Promise<Record<string, any>> {
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return JSON.parse(line) as Record<string, any>;
      }
      await new Promise<void>((r) => { this.waiter = r; });
    }
  }

  async run(execute: string, args?: Record<string, unknown>): Promise<any> {
    this.sock.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
    for (;;) {
      const m = await this.message();
      if ('error' in m) throw new Error(`${execute}: ${JSON.stringify(m.error)}`);
      if ('return' in m) return m.return;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function start(peer: Peer, extra: string[]): { child: ChildProcessWithoutNullStreams; output: () => string } {
  const child = spawn(peer.cmd, [...peer.args, ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  return { child, output: () => out };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** One migration of `peer`'s guest; `busy` starts the copying loop first. Returns milliseconds. */
async function migrate(peer: Peer, dir: string, tag: string, busy: boolean): Promise<{ total: number; downtime: number }> {
  const srcSock = join(dir, `${tag}-src.sock`);
  const dstSock = join(dir, `${tag}-dst.sock`);
  const port = await freePort();
  const src = start(peer, ['-qmp', `unix:${srcSock},server=on,wait=off`]);
  const dst = start(peer, ['-qmp', `unix:${dstSock},server=on,wait=off`, '-incoming', `tcp:127.0.0.1:${port}`]);
  const timer = setTimeout(() => { src.child.kill('SIGKILL'); dst.child.kill('SIGKILL'); }, TIMEOUT_MS);
  const waitFor = async (re: RegExp): Promise<void> => {
    while (!re.test(src.output())) {
      if (src.child.exitCode !== null || src.child.signalCode !== null) throw new Error(`${peer.name} exited: ${src.output().slice(-500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let q: Qmp | null = null;
  let d: Qmp | null = null;
  try {
    await waitFor(RISCV_PROMPT);
    if (busy) {
      src.child.stdin.write('dd if=/dev/urandom of=/tmp/a bs=1M count=64 2>/dev/null; echo @@$((40+2))@@\n');
      await waitFor(/@@42@@/);
      src.child.stdin.write('while true; do cp /tmp/a /tmp/b; done &\n');
      await new Promise((r) => setTimeout(r, 2000));
    }
    q = await Qmp.open(srcSock);
    d = await Qmp.open(dstSock);
    // Vireo's destination says setup once it listens; QEMU's listens before its monitor answers.
    while (peer.name === 'vireo' && (await d.run('query-migrate')).status !== 'setup') await new Promise((r) => setTimeout(r, 20));
    if (peer.name === 'qemu') await q.run('migrate-set-parameters', { 'max-bandwidth': 10_000_000_000 });
    await q.run('migrate', { uri: `tcp:127.0.0.1:${port}` });
    for (;;) {
      const info = await q.run('query-migrate');
      if (info.status === 'completed') return { total: info['total-time'], downtime: info.downtime };
      if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`${peer.name}: migration ${info.status}: ${info['error-desc'] ?? ''}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    clearTimeout(timer);
    q?.close();
    d?.close();
    await stop(src.child);
    await stop(dst.child);
  }
}

benchMain('migrate', async () => {
  const dir = tempDir();
  const peers = riscvPeers('512M');
  const rows: Array<{ name: string; r: Record<string, { total: number; downtime: number }> }> = [];
  for (const busy of [false, true]) {
    const best: Record<string, { total: number; downtime: number }> = {};
    for (let i = 0; i < runs; i++) {
      // Alternate the peers, so that drifting host load hits both.
      for (const peer of peers) {
        const r = await migrate(peer, dir, `${peer.name}${i}${busy ? 'b' : 'i'}`, busy);
        const b = best[peer.name];
        if (!b || r.downtime < b.downtime) best[peer.name] = r;
      }
    }
    rows.push({ name: busy ? 'busy' : 'idle', r: best });
  }
  console.log(`512 MiB guest over tcp:127.0.0.1, best of ${runs} by downtime; milliseconds as each VMM reports them (query-migrate)`);
  console.log(`${''.padEnd(16)}${'vireo'.padStart(10)}${'qemu'.padStart(10)}${'vireo/qemu'.padStart(12)}`);
  for (const { name, r } of rows) {
    for (const k of ['total', 'downtime'] as const) {
      const v = r.vireo![k];
      const q = r.qemu![k];
      console.log(`${`${name} ${k}`.padEnd(16)}${String(v).padStart(10)}${String(q).padStart(10)}${(q > 0 ? fmt(v / q) : 'n/a').padStart(12)}`);
    }
  }
});
