/**
 * Shared by tests/web and bench/web: Debian's chromium under playwright-core, and the
 * `npm run web` server started on a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/tests/web). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--headless=new'];

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM)`;
}

/** Starts `npm run web`'s server on a free port; resolves to its base URL and the process. */
export function startWebServer(): Promise<{ url: string; server: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const server = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'web', 'serve.js'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Vireo web: (http:\/\/\S+)\n/.exec(out);
      if (m) resolve({ url: m[1]!, server });
    });
    server.on('exit', (code) => reject(new Error(`the web server exited (${code}): ${out}`)));
  });
}
