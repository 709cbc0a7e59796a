// Takes the README's screenshot of the page of `npm run web` (docs/web.png): boots the
// bundled guest in headless Chromium, runs `uname -a` at its shell, and saves the page.
// Needs a build (npm run build) and chromium. Usage: node scripts/web-screenshot.mjs [out.png]
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, browserMissing, startWebServer } from '../dist/tests/web/browser.js';

const out = process.argv[2] ?? 'docs/web.png';
const missing = browserMissing();
if (missing !== null) {
  console.error(`web-screenshot: ${missing}`);
  process.exit(1);
}
const { url, server } = await startWebServer();
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 620 } });
  await page.goto(url);
  await page.click('#start');
  await page.waitForFunction(() => /^~ #\s*$/m.test(globalThis.vireo.terminalText()), null, { timeout: 180_000, polling: 200 });
  await page.click('#terminal');
  await page.keyboard.type('uname -a; cat /proc/cpuinfo | head -4\n');
  await page.waitForFunction(() => /isa/.test(globalThis.vireo.terminalText()), null, { timeout: 30_000, polling: 100 });
  await page.waitForTimeout(1500); // a second of the speed figure
  await page.screenshot({ path: out });
  console.log(`web-screenshot: ${out}`);
} finally {
  await browser.close();
  server.kill();
}
