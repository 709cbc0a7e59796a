/**
 * bench/web: boots the bundled guest to its shell prompt in headless Chromium (the page of
 * `npm run web`, in a Web Worker) and in Node (`vireo -nographic`, the same machine:
 * -m 512M -smp 1, thread=single, jit off, a virtio-rng as on the page), in the same run, and
 * prints both times and the ratio browser/node. Each time runs from the start (the page's
 * load in a launched browser once it is idle / the process's spawn: images fetched or read,
 * decompressed, core compiled) to the prompt on the console.
 * Usage: npm run bench:web [-- runs] (default 3; best of each). Needs Debian's chromium.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, browserMissing, startWebServer } from '../tests/web/browser.js';
import { VIREO, fmt, runDriven } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const missing = browserMissing();
if (missing !== null) {
  console.log(`bench/web: ${missing}`);
  process.exit(1);
}

/** CPU time (clock ticks) used so far by every Chromium process (Linux /proc). */
function chromiumTicks(): number {
  let sum = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0]!.includes('chromium')) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // The process ended meanwhile.
    }
  }
  return sum;
}

/**
 * Waits (at most 20 s) until a freshly launched browser has done its own start-up work:
 * Chromium 156 builds its omnibox popup's WebUI then, some 3 s of CPU that would compete
 * with the page's boot on a 2-core host, where a user opens the page in a running browser.
 */
async function browserSettled(): Promise<void> {
  let last = chromiumTicks();
  for (let waited = 0; waited < 20_000; waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    const now = chromiumTicks();
    if (now - last <= 5) return; // under a tenth of a core over the half second (10 ms ticks)
    last = now;
  }
}

async function browserBoot(url: string): Promise<number> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    await browserSettled();
    const start = performance.now();
    await page.goto(`${url}?autostart`);
    // The progress line of src/web/page.ts says so when the prompt has appeared. Watched
    // from inside the page: polling it over the DevTools protocol took CPU from the boot.
    await page.evaluate(() => new Promise<void>((resolve, reject) => {
      setTimeout(() => reject(new Error('no shell prompt within 120 s')), 120_000);
      const progress = document.getElementById('progress')!;
      const ready = (): void => {
        if (progress.textContent === 'shell ready') resolve();
      };
      new MutationObserver(ready).observe(progress, { childList: true, characterData: true, subtree: true });
      ready();
    }));
    return (performance.now() - start) / 1000;
  } finally {
    await browser.close();
  }
}

async function nodeBoot(): Promise<number> {
  const r = await runDriven(VIREO, ['-nographic', '-m', '512M', '-smp', '1', '-accel', 'tcg,thread=single,jit=off', '-device', 'virtio-rng-device'],
    [{ expect: /~ # $/, send: 'poweroff\n' }], 120);
  if (r.status !== 0 || r.marks.length === 0) throw new Error(`vireo exited with ${r.status}:\n${r.output.slice(-2000)}\n${r.stderr}`);
  return r.marks[0]!;
}

const { url, server } = await startWebServer();
try {
  const web: number[] = [];
  const node: number[] = [];
  // Alternate, so that drifting host load hits both.
  for (let i = 0; i < runs; i++) {
    web.push(await browserBoot(url));
    node.push(await nodeBoot());
  }
  const b = Math.min(...web);
  const n = Math.min(...node);
  console.log(`browser (headless Chromium): ${fmt(b)} s to the shell (best of ${runs}: ${web.map((t) => fmt(t)).join(' ')})`);
  console.log(`node (vireo -nographic):     ${fmt(n)} s to the shell (best of ${runs}: ${node.map((t) => fmt(t)).join(' ')})`);
  console.log(`ratio browser/node: ${fmt(b / n)}x`);
} finally {
  server.kill();
}
