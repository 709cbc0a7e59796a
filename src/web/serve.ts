/**
 * `npm run web`: serves the browser build (dist/web) and the bundled images (images/,
 * decompressed) on 127.0.0.1 and prints the page's URL. Every response carries COOP/COEP, because the
 * guest RAM is a shared WebAssembly memory, which needs a cross-origin isolated page.
 *
 *   npm run web [-- --port N]      (or VIREO_WEB_PORT=N; 0 picks a free port; default 8080)
 */
import { createServer } from 'node:http';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { gunzipOptions } from '../hw/riscv/boot.js';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/src/web/serve.js -> the package root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** URL prefix -> directory. */
const MOUNTS: [string, string][] = [['/images/', join(root, 'images')], ['/', join(root, 'dist', 'web')]];
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm', '.gz': 'application/octet-stream', '.png': 'image/png',
};

function parsePort(argv: string[]): number {
  const i = argv.indexOf('--port');
  const text = i >= 0 ? argv[i + 1] : process.env.VIREO_WEB_PORT ?? '8080';
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`vireo web: bad port ${JSON.stringify(text)}\n`);
    process.exit(1);
  }
  return port;
}

/** The file a URL path names, or null; paths never leave their directory. */
function resolve(pathname: string): string | null {
  for (const [prefix, dir] of MOUNTS) {
    if (!pathname.startsWith(prefix)) continue;
    const rel = normalize(decodeURIComponent(pathname.slice(prefix.length)) || 'index.html');
    if (rel.startsWith('..') || rel.split(sep).includes('..')) return null;
    return join(dir, rel);
  }
  return null;
}

const unpacked = new Map<string, { mtimeMs: number; body: Promise<Uint8Array> }>();

/**
 * The content of the gzip file `file`, decompressed on libuv's thread pool, so that other
 * requests are served meanwhile (kept until the file changes); the file itself if it is not
 * valid gzip.
 */
function decompressed(file: string): Promise<Uint8Array> {
  const mtimeMs = statSync(file).mtimeMs;
  const hit = unpacked.get(file);
  if (hit?.mtimeMs === mtimeMs) return hit.body;
  const body = readFile(file).then((raw) => new Promise<Uint8Array>((resolve) => gunzip(raw, gunzipOptions(raw), (e, out) => resolve(e ? raw : out))));
  body.catch(() => unpacked.delete(file));
  unpacked.set(file, { mtimeMs, body });
  return body;
}

const server = createServer((req, res) => {
  const headers: Record<string, string> = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-cache',
  };
  let file: string | null = null;
  try {
    file = resolve(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    // A malformed escape in the path: treated as not found.
  }
  let size = -1;
  let etag = '';
  try {
    const st = file === null ? null : statSync(file);
    if (st?.isFile()) {
      size = st.size;
      // The file's version (a decompressed image's too: it follows its file), for the page's kept images.
      etag = `"${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`;
    }
  } catch {
    // Missing: not found below.
  }
  if (file === null || size < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(file === null || size < 0 ? 404 : 405, { ...headers, 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  headers.ETag = etag;
  if (req.headers['if-none-match']?.split(/\s*,\s*/).includes(etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  if (extname(file) === '.gz') {
    // The bundled images go out decompressed (once, kept): over the loopback the bytes
    // cost less than the page's gunzip of them. The page takes either form. Not stored in
    // the browser's HTTP cache (no-store): the page keeps its own copies (image-store.ts),
    // and the cache's writes of 20 MB would compete with the first visit's boot.
    decompressed(file).then((body) => {
      res.writeHead(200, { ...headers, 'Cache-Control': 'no-store', 'Content-Type': type, 'Content-Length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    }, () => res.writeHead(500, { ...headers, 'Content-Type': 'text/plain' }).end('cannot read the image\n'));
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': size });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
});

server.listen(parsePort(process.argv.slice(2)), '127.0.0.1', () => {
  const addr = server.address();
  if (addr !== null && typeof addr === 'object') process.stdout.write(`Vireo web: http://127.0.0.1:${addr.port}/\n`);
  // The page's images, unpacked before it asks for them.
  const bundled = join(root, 'images', 'riscv64');
  for (const name of readdirSync(bundled)) if (name.endsWith('.gz')) decompressed(join(bundled, name)).catch(() => {});
});
