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
 * In the guest, bench/guest/iobench (a small static program sent through the console before
 * the rows: busybox has no tool for random-offset I/O), with O_DIRECT (no guest page cache),
 * one request at a time (queue depth 1), from and to one buffer filled once, as fio does:
 *   - seq write / seq read: 1 MiB requests over the whole disk: MiB/s
 *   - rand read / rand write: MiB*32 4 KiB requests at random 4 KiB-aligned offsets (the same
 *     fixed-seed sequence in every run and VMM): IOPS
 * Times come from iobench itself (the guest's monotonic clock, which follows the host clock in
 * both VMMs), so boot and console traffic are excluded.
 *
 * Each boot runs the four rows twice, the same requests each time. The first pass includes
 * what a VMM pays once: translating the guest's I/O path (TCG translates as it goes; Vireo's
 * JIT waits for code to get hot, then compiles it), and the host's page cache growing to
 * hold the image, which on a virtual machine host that reclaims freed memory (free page
 * reporting) costs a host page fault per 4 KiB; the second pass is the steady state (as
 * fio's ramp_time measures). Both are printed.
 *
 * Prints the best of `runs` for every row, pass and VMM (runs alternate between the VMMs) and
 * the ratio Vireo/QEMU of the rates: above 1 Vireo is faster.
 * Usage: npm run bench:blk [-- runs [MiB [formats]]] [--jit=on|off|both]   (default 3 128 raw,qcow2, jit off)
 * BENCH_TIMEOUT (seconds, default 600) bounds each boot; BENCH_DEBUG=1 prints the console on failure.
 */
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createQcow2 } from '../src/block/qcow2.js';
import { benchMain, fmt, jitModes, riscvPeers, ROOT, runGuestCommands, tempDir } from './common.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const runs = Number(positional[0] ?? 3);
const mib = Number(positional[1] ?? 128);
const formats = (positional[2] ?? 'raw,qcow2').split(',');
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT ?? 600);

interface Row {
  name: string;
  unit: 'MiB/s' | 'IOPS';
  /** iobench's mode, request size and count. */
  mode: 'write' | 'read' | 'randread' | 'randwrite';
  bs: number;
  ops: number;
}

const rows: Row[] = [
  { name: 'seq write 1M', unit: 'MiB/s', mode: 'write', bs: 1 << 20, ops: mib },
  { name: 'seq read 1M', unit: 'MiB/s', mode: 'read', bs: 1 << 20, ops: mib },
  { name: 'rand read 4k', unit: 'IOPS', mode: 'randread', bs: 4096, ops: mib * 32 },
  { name: 'rand write 4k', unit: 'IOPS', mode: 'randwrite', bs: 4096, ops: mib * 32 },
];

const IOBENCH = '/tmp/iobench';
const IOBENCH_ELF = readFileSync(join(ROOT, 'bench', 'guest', 'iobench.elf'));
/**
 * Guest commands that write bench/guest/iobench.elf to IOBENCH: its base64 in lines that fit,
 * with the command around them, in busybox's line editor (1024 bytes), decoded, and its size.
 */
const UPLOAD: string[] = (() => {
  const text = IOBENCH_ELF.toString('base64');
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += 768) parts.push(`echo ${text.slice(i, i + 768)} >> ${IOBENCH}.b64`);
  return [...parts, `base64 -d ${IOBENCH}.b64 > ${IOBENCH} && chmod +x ${IOBENCH} && echo IOBENCH-SIZE $(wc -c < ${IOBENCH})`];
})();

const PASSES = ['first pass', 'second pass'];
/** Row i of pass p is test i + p * rows.length. */
const tests = PASSES.flatMap(() => rows);

/** The guest prints `ROW<i>` and iobench's report (or its error) on one line. */
const cmd = (r: Row, i: number) => `echo ROW$((${i})) $(${IOBENCH} ${r.mode} ${r.bs} ${r.ops} /dev/vda 2>&1)`;

/** Parses each test's result from the console; throws if iobench did not do exactly what was asked. */
function parse(peer: string, output: string): number[] {
  return tests.map((r, i) => {
    const m = new RegExp(`ROW${i} (.*)`).exec(output);
    const line = m?.[1]?.trim() ?? '(no output)';
    const d = /^iobench (\w+) bs=(\d+) ops=(\d+) bytes=(\d+) ns=(\d+)$/.exec(line);
    if (!d || d[1] !== r.mode || Number(d[2]) !== r.bs || Number(d[3]) !== r.ops || Number(d[4]) !== r.bs * r.ops || !(Number(d[5]) > 0)) {
      throw new Error(`${peer}: '${cmd(r, i)}' in the guest did not complete: ${line.slice(0, 160)}`);
    }
    const seconds = Number(d[5]) / 1e9;
    return r.unit === 'IOPS' ? r.ops / seconds : r.ops * r.bs / seconds / (1 << 20);
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
  console.log(`bench:blk: bundled riscv64 guest (-m 512M, 1 hart), virtio-blk-device, cache=writeback, ${mib} MiB disk, iobench O_DIRECT QD1, best of ${runs}`);
  // best[format][peer][row]
  const best = new Map<string, number[][]>();
  for (let run = 0; run < runs; run++) {
    for (const format of formats) {
      for (const [p, peer] of peers.entries()) {
        const img = await image(dir, format, peer.name);
        const drive = ['-drive', `file=${img},format=${format},if=none,id=d0,cache=writeback`, '-device', 'virtio-blk-device,drive=d0'];
        const r = await runGuestCommands(peer, drive, [...UPLOAD, ...tests.map(cmd)], TIMEOUT_S);
        if (!r.output.includes(`IOBENCH-SIZE ${IOBENCH_ELF.length}`)) {
          throw new Error(`${peer.name}: iobench did not reach the guest whole`);
        }
        const rates = parse(peer.name, r.output);
        const b = best.get(format) ?? peers.map(() => tests.map(() => 0));
        best.set(format, b);
        b[p] = b[p]!.map((x, i) => Math.max(x, rates[i]!));
        process.stderr.write(`  run ${run + 1} ${format} ${peer.name}: ${rates.map((x) => fmt(x, 0)).join(' ')}\n`);
      }
    }
  }
  console.log(`host: ${cpus().length} CPUs, load average ${fmt(load0, 1)} at start, ${fmt(loadavg()[0]!, 1)} at end`);
  const vireos = peers.slice(0, -1);
  console.log(`${'format'.padEnd(7)}${'test'.padEnd(14)}${peers.map((p) => p.name.padStart(16)).join('')}   ${vireos.map((p) => `${p.name}/qemu`).join('   ')}`);
  PASSES.forEach((pass, p) => {
    console.log(`${pass}:`);
    for (const format of formats) {
      const b = best.get(format)!;
      const q = b[b.length - 1]!;
      rows.forEach((r, k) => {
        const i = k + p * rows.length;
        const cell = (x: number) => `${fmt(x, r.unit === 'IOPS' ? 0 : 1)} ${r.unit}`.padStart(16);
        console.log(`${format.padEnd(7)}${r.name.padEnd(14)}${b.map((v) => cell(v[i]!)).join('')}   ${vireos.map((v, n) => fmt(b[n]![i]! / q[i]!).padStart(v.name.length + 5)).join('   ')}`);
      });
    }
  });
});
