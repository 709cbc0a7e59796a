/**
 * bench/web: boots the bundled guest to its shell prompt in headless Chromium (the page of
 * `npm run web`, in a Web Worker) and in Node (`vireo -nographic`, the same machine:
 * -m 512M -smp 1, thread=single, jit off, a virtio-rng as on the page), in the same run, and
 * prints the times and the ratios browser/node. Each time runs from the start (the page's
 * load in a launched browser once it is idle / the process's spawn: images fetched or read,
 * decompressed, core compiled) to the prompt on the console. The browser boots twice in a
 * fresh profile: a first visit, which downloads the images, and a second, which boots from
 * the copies the first kept (revalidated with the server: src/web/image-store.ts), as Node
 * boots from files on the disk.
 * Usage: npm run bench:web [-- runs] (default 3; best of each). Needs Debian's chromium.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
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

/** Seconds from the page's load to its shell prompt. */
async function pageBoot(page: Page, url: string): Promise<number> {
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
}

/** A first visit and a second one, in a freshly launched browser with a profile of its own. */
async function browserBoots(url: string): Promise<{ first: number; second: number }> {
  const profile = mkdtempSync(join(tmpdir(), 'vireo-bench-web-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await context.newPage();
    const first = await pageBoot(page, url);
    // The page keeps its images once the machine runs.
    await page.waitForFunction(() => Object.keys(JSON.parse(localStorage.getItem('vireo.images') ?? '{}') as object).length === 3, null, { timeout: 30_000 });
    await page.close();
    const second = await pageBoot(await context.newPage(), url);
    return { first, second };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
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
  const first: number[] = [];
  const second: number[] = [];
  const node: number[] = [];
  // Alternate, so that drifting host load hits both.
  for (let i = 0; i < runs; i++) {
    const b = await browserBoots(url);
    first.push(b.first);
    second.push(b.second);
    node.push(await nodeBoot());
  }
  const best = (t: number[]): number => Math.min(...t);
  const all = (t: number[]): string => `best of ${runs}: ${t.map((x) => fmt(x)).join(' ')}`;
  console.log(`browser, first visit (images downloaded):     ${fmt(best(first))} s to the shell (${all(first)})`);
  console.log(`browser, next visit (the images kept locally): ${fmt(best(second))} s to the shell (${all(second)})`);
  console.log(`node (vireo -nographic):                       ${fmt(best(node))} s to the shell (${all(node)})`);
  console.log(`ratio browser/node: first visit ${fmt(best(first) / best(node))}x, next visit ${fmt(best(second) / best(node))}x`);
} finally {
  server.kill();
}
