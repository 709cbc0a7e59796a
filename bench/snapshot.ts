/**
 * bench/snapshot: how long `savevm` and `loadvm` take on the bundled RISC-V Linux with 512
 * MiB of RAM, of which the guest has filled 64 MiB with random data (a tmpfs file), on
 * Vireo (-snapshot-file) and on qemu-system-riscv64 (a qcow2 drive holds its snapshot), in
 * the same run. Times are HMP round trips on a Unix socket, best of `runs`. Prints the
 * times, the snapshot sizes and the ratios. Usage: node dist/bench/snapshot.js [runs]
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, tempDir, riscvPeers, RISCV_PROMPT, benchMain, type Peer } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 600) * 1000;

/** Seconds an HMP command takes, from sending it to the next prompt. */
async function hmpSeconds(sock: string, cmd: string): Promise<number> {
  const s = connect(sock);
  let buf = '';
  s.on('data', (d: Buffer) => { buf += d.toString(); });
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  const prompt = async (from: number): Promise<void> => {
    const deadline = Date.now() + TIMEOUT_MS;
    while (!buf.slice(from).includes('(qemu) ')) {
      if (Date.now() > deadline) throw new Error(`${cmd}: no monitor prompt`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await prompt(0);
  const from = buf.length;
  const t0 = performance.now();
  s.write(`${cmd}\n`);
  await prompt(from);
  const seconds = (performance.now() - t0) / 1000;
  s.destroy();
  // QEMU's monitor echoes the line with terminal escapes; an error names itself.
  const out = buf.slice(from);
  if (/error/i.test(out)) throw new Error(`${cmd}: ${out.slice(-300)}`);
  return seconds;
}

/** Boots `peer`, fills guest memory, then times savevm and loadvm. */
async function measure(peer: Peer, extra: string[], sock: string): Promise<{ save: number; load: number }> {
  const child = spawn(peer.cmd, [...peer.args, ...extra, '-monitor', `unix:${sock},server=on,wait=off`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const waitFor = async (re: RegExp): Promise<void> => {
    while (!re.test(out)) {
      if (child.exitCode !== null) throw new Error(`${peer.name} exited: ${out.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await waitFor(RISCV_PROMPT);
    child.stdin.write('dd if=/dev/urandom of=/tmp/fill bs=1M count=64 2>/dev/null; echo @@$((40+2))@@\n');
    await waitFor(/@@42@@/);
    const save = await hmpSeconds(sock, 'savevm bench');
    const load = await hmpSeconds(sock, 'loadvm bench');
    return { save, load };
  } finally {
    clearTimeout(timer);
    // Gone before the next run reuses its files (QEMU locks its image).
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  }
}

benchMain('snapshot', async () => {
  const dir = tempDir();
  const [vireo, qemu] = riscvPeers('512M') as [Peer, Peer];
  const qcow2 = join(dir, 'snap.qcow2');
  const vsnap = join(dir, 'snap.vsnap');
  const best = { vireo: { save: Infinity, load: Infinity }, qemu: { save: Infinity, load: Infinity } };
  for (let i = 0; i < runs; i++) {
    const img = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '64M']);
    if (img.status !== 0) throw new Error('qemu-img create failed (apt-get install qemu-utils)');
    const v = await measure(vireo, ['-snapshot-file', vsnap], join(dir, `v${i}.sock`));
    const q = await measure(qemu, ['-drive', `file=${qcow2},format=qcow2,if=none,id=snap`], join(dir, `q${i}.sock`));
    for (const [k, r] of [['vireo', v], ['qemu', q]] as const) {
      best[k].save = Math.min(best[k].save, r.save);
      best[k].load = Math.min(best[k].load, r.load);
    }
  }
  const mib = (f: string): string => `${fmt(statSync(f).size / 2 ** 20, 1)} MiB`;
  console.log(`512 MiB guest, 64 MiB of it random data; best of ${runs}; seconds (HMP round trip)`);
  console.log(`${''.padEnd(10)}${'vireo'.padStart(10)}${'qemu'.padStart(10)}${'vireo/qemu'.padStart(12)}`);
  for (const k of ['save', 'load'] as const) {
    console.log(`${k.padEnd(10)}${fmt(best.vireo[k]).padStart(10)}${fmt(best.qemu[k]).padStart(10)}${fmt(best.vireo[k] / best.qemu[k]).padStart(12)}`);
  }
  console.log(`snapshot size: vireo ${mib(vsnap)} (-snapshot-file), qemu ${mib(qcow2)} (qcow2 image with the snapshot)`);
});
