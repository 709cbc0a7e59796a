/**
 * bench/gzip: a CPU-bound workload inside the bundled Linux guest. Boots it, writes
 * 4 MiB of random data to /tmp, then times busybox `gzip` and `sha256sum` over that
 * file (from the console: each command's end is seen on the serial line), under
 * Vireo (jit off, on or both) and qemu-system-riscv64 -M virt in the same run, and
 * prints the times and ratios. Usage: npm run bench:gzip [-- runs] [--jit=on|off|both]
 */
import { benchMain, fmt, jitModes, riscvPeers, runGuestCommands, type RunResult } from './common.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => !a.startsWith('--')) ?? 3);
const modes = jitModes(args);
const CMDS = ['dd if=/dev/urandom of=/tmp/f bs=1M count=4 2>/dev/null', 'gzip -c /tmp/f >/dev/null', 'sha256sum /tmp/f >/dev/null'];

interface Times {
  gzip: number;
  sha: number;
}

/** Seconds each timed command took: command k runs from marks[k] to marks[k + 1]. */
function times(r: RunResult): Times {
  return { gzip: r.marks[2]! - r.marks[1]!, sha: r.marks[3]! - r.marks[2]! };
}

async function best(name: string, run: () => Promise<RunResult>): Promise<Times> {
  let b: Times | null = null;
  for (let i = 0; i < runs; i++) {
    const t = times(await run());
    b = b === null ? t : { gzip: Math.min(b.gzip, t.gzip), sha: Math.min(b.sha, t.sha) };
  }
  console.log(`${name}: gzip ${fmt(b!.gzip)} s, sha256sum ${fmt(b!.sha)} s (4 MiB, best of ${runs})`);
  return b!;
}

benchMain('bench/gzip', async () => {
  const [vireo, qemu] = riscvPeers();
  const results = new Map<string, Times>();
  for (const jit of modes) {
    results.set(jit, await best(`vireo jit=${jit}`, () => runGuestCommands(vireo!, ['-accel', `tcg,jit=${jit}`], CMDS, 600)));
  }
  const q = await best('qemu', () => runGuestCommands(qemu!, [], CMDS, 600));
  const on = results.get('on');
  const off = results.get('off');
  if (on && off) console.log(`ratio jit=on/jit=off: gzip ${fmt(on.gzip / off.gzip)}x, sha256sum ${fmt(on.sha / off.sha)}x time`);
  for (const [jit, t] of results) console.log(`ratio vireo/qemu (jit=${jit}): gzip ${fmt(t.gzip / q.gzip)}x, sha256sum ${fmt(t.sha / q.sha)}x time`);
});
