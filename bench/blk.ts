/**
 * bench/blk: virtio-blk throughput and per-request cost seen from inside the bundled RISC-V
 * guest, under Vireo and qemu-system-riscv64 in the same run, with the same disk options:
 *
 *   -drive file=IMG,format=FMT,if=none,id=d0,cache=writeback -device virtio-blk-device,drive=d0
 *
 * (virtio-mmio; cache=writeback, the default of both, because Vireo treats cache=none as
 * writeback: Node cannot do O_DIRECT, so QEMU with cache=none would be measured on another
 * host path.) Each VMM gets a fresh image of the same size per run (raw: a sparse file; qcow2:
 * an empty image with 64 KiB clusters), so both start from the same state and the reads read
 * back what the writes wrote, from the host page cache.
 *
 * In the guest, with busybox dd and O_DIRECT (iflag/oflag=direct: no guest page cache):
 *   - seq write: bs=1M, the whole disk, from /dev/zero
 *   - seq read:  bs=1M, the whole disk, to /dev/null
 *   - 4k read / 4k write: bs=4k, MiB*32 requests one at a time (queue depth 1): IOPS
 * Times come from dd itself (the guest's monotonic clock, which follows the host clock in both
 * VMMs), so boot and console traffic are excluded. The 4 KiB rows use consecutive offsets:
 * busybox has no tool issuing random-offset I/O from one process, and a dd per request costs a
 * process start (13-30 ms emulated) per 4 KiB I/O (0.1-0.3 ms), i.e. measures fork/exec. With a
 * page-cached host file the offset order changes nothing on the host; the rows measure the
 * per-request path (notify, host pread/pwrite, completion interrupt), which is what random
 * IOPS on such a disk is made of.
 *
 * Prints the best of `runs` for every row and VMM (runs alternate between the VMMs) and the
 * ratio Vireo/QEMU of the rates: above 1 Vireo is faster.
 * Usage: npm run bench:blk [-- runs [MiB [formats]]] [--jit=on|off|both]   (default 3 128 raw,qcow2, jit off)
 * BENCH_TIMEOUT (seconds, default 600) bounds each boot; BENCH_DEBUG=1 prints the console on failure.
 */
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createQcow2 } from '../src/block/qcow2.js';
import { benchMain, fmt, jitModes, riscvPeers, runGuestCommands, tempDir } from './common.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const runs = Number(positional[0] ?? 3);
const mib = Number(positional[1] ?? 128);
const formats = (positional[2] ?? 'raw,qcow2').split(',');
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT ?? 600);

interface Row {
  name: string;
  unit: 'MiB/s' | 'IOPS';
  /** The dd command run in the guest. */
  dd: string;
  /** Requests (dd records) and bytes it must report. */
  records: number;
  bytes: number;
}

const small = mib * 32;
const rows: Row[] = [
  { name: 'seq write 1M', unit: 'MiB/s', dd: `dd if=/dev/zero of=/dev/vda bs=1M count=${mib} oflag=direct conv=notrunc`, records: mib, bytes: mib << 20 },
  { name: 'seq read 1M', unit: 'MiB/s', dd: `dd if=/dev/vda of=/dev/null bs=1M count=${mib} iflag=direct`, records: mib, bytes: mib << 20 },
  { name: '4k read QD1', unit: 'IOPS', dd: `dd if=/dev/vda of=/dev/null bs=4k count=${small} iflag=direct`, records: small, bytes: small * 4096 },
  { name: '4k write QD1', unit: 'IOPS', dd: `dd if=/dev/zero of=/dev/vda bs=4k count=${small} oflag=direct conv=notrunc`, records: small, bytes: small * 4096 },
];

/** The guest prints `ROW<i>` and dd's report on one line (the shell's word splitting joins its lines). */
const cmd = (r: Row, i: number) => `echo ROW$((${i})) $(${r.dd} 2>&1)`;

function rate(r: Row, seconds: number): number {
  return r.unit === 'IOPS' ? r.records / seconds : r.bytes / seconds / (1 << 20);
}

/** Parses each row's result from the console; throws if dd did not do exactly what was asked. */
function parse(peer: string, output: string): number[] {
  return rows.map((r, i) => {
    const m = new RegExp(`ROW${i} (.*)`).exec(output);
    const line = m?.[1]?.trim() ?? '(no output)';
    const d = /(\d+)\+0 records in (\d+)\+0 records out (\d+) bytes \(.*\) copied, ([\d.]+) seconds/.exec(line);
    if (!d || Number(d[1]) !== r.records || Number(d[2]) !== r.records || Number(d[3]) !== r.bytes) {
      throw new Error(`${peer}: '${r.dd}' in the guest did not complete: ${line.slice(0, 160)}`);
    }
    return rate(r, Number(d[4]));
  });
}

async function image(dir: string, format: string, name: string): Promise<string> {
  const path = join(dir, `${name}.${format}`);
  rmSync(path, { force: true });
  if (format === 'raw') {
    writeFileSync(path, '');
    truncateSync(path, mib << 20);
  } else {
    await createQcow2(path, { size: mib << 20 });
  }
  return path;
}

benchMain('bench:blk', async () => {
  if (!(runs >= 1) || !(mib >= 1) || !formats.every((f) => f === 'raw' || f === 'qcow2')) {
    throw new Error('usage: npm run bench:blk -- [runs >= 1] [MiB >= 1] [raw,qcow2 or one of them]');
  }
  const [vireo, qemu] = riscvPeers();
  // One Vireo per JIT mode asked for, then QEMU (the last peer).
  const peers = [...jitModes(args).map((jit) => ({ ...vireo!, name: `vireo jit=${jit}`, args: [...vireo!.args, '-accel', `tcg,jit=${jit}`] })), qemu!];
  const dir = tempDir();
  const load0 = loadavg()[0]!;
  console.log(`bench:blk: bundled riscv64 guest (-m 512M, 1 hart), virtio-blk-device, cache=writeback, ${mib} MiB disk, busybox dd O_DIRECT, best of ${runs}`);
  // best[format][peer][row]
  const best = new Map<string, number[][]>();
  for (let run = 0; run < runs; run++) {
    for (const format of formats) {
      for (const [p, peer] of peers.entries()) {
        const img = await image(dir, format, peer.name);
        const drive = ['-drive', `file=${img},format=${format},if=none,id=d0,cache=writeback`, '-device', 'virtio-blk-device,drive=d0'];
        const r = await runGuestCommands(peer, drive, rows.map(cmd), TIMEOUT_S);
        const rates = parse(peer.name, r.output);
        const b = best.get(format) ?? peers.map(() => rows.map(() => 0));
        best.set(format, b);
        b[p] = b[p]!.map((x, i) => Math.max(x, rates[i]!));
        process.stderr.write(`  run ${run + 1} ${format} ${peer.name}: ${rates.map((x) => fmt(x, 0)).join(' ')}\n`);
      }
    }
  }
  console.log(`host: ${cpus().length} CPUs, load average ${fmt(load0, 1)} at start, ${fmt(loadavg()[0]!, 1)} at end`);
  const vireos = peers.slice(0, -1);
  console.log(`${'format'.padEnd(7)}${'test'.padEnd(14)}${peers.map((p) => p.name.padStart(16)).join('')}   ${vireos.map((p) => `${p.name}/qemu`).join('   ')}`);
  for (const format of formats) {
    const b = best.get(format)!;
    const q = b[b.length - 1]!;
    rows.forEach((r, i) => {
      const cell = (x: number) => `${fmt(x, r.unit === 'IOPS' ? 0 : 1)} ${r.unit}`.padStart(16);
      console.log(`${format.padEnd(7)}${r.name.padEnd(14)}${b.map((v) => cell(v[i]!)).join('')}   ${vireos.map((p, k) => fmt(b[k]![i]! / q[i]!).padStart(p.name.length + 5)).join('   ')}`);
    });
  }
});
