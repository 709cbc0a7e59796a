/**
 * Vireo's snapshot file (`-snapshot-file PATH`): named machine snapshots in one file, as
 * QEMU keeps `savevm` snapshots inside a qcow2 image. Layout (docs/snapshot.md):
 *
 *   "VIREOSNP"  u32 version (1)  u32 count
 *   count x { u16 name length, name (UTF-8), f64 date (ms since the epoch),
 *             f64 payload length, payload (gzip) }
 *
 * All numbers little-endian. Saving rewrites the file through a temporary file and a
 * rename, so a crash leaves the old file or the new one, never half of one. Reading checks
 * every length against the file: a truncated or foreign file is a one-line SnapshotError.
 */
import { readFileSync, renameSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { constants, gzip, gunzipSync } from 'node:zlib';
import { SnapshotError } from './vmstate.js';

const MAGIC = 'VIREOSNP';
const VERSION = 1;
const MAX_NAME = 256;

/** One snapshot in the file. */
export interface SnapshotEntry {
  name: string;
  /** When it was taken (ms since the epoch). */
  date: number;
  /** The gzip-compressed machine state. */
  payload: Uint8Array;
}

/** Reads every snapshot of `path`; none if the file does not exist. */
export function readSnapshotFile(path: string): SnapshotEntry[] {
  if (!existsSync(path)) return [];
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new SnapshotError(`${path}: ${(e as Error).message}`);
  }
  const bad = (why: string): SnapshotError => new SnapshotError(`${path}: not a Vireo snapshot file (${why})`);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('no VIREOSNP header');
  const version = buf.readUInt32LE(8);
  if (version !== VERSION) throw new SnapshotError(`${path}: snapshot file version ${version}, this Vireo reads version ${VERSION}`);
  const count = buf.readUInt32LE(12);
  const out: SnapshotEntry[] = [];
  let at = 16;
  for (let i = 0; i < count; i++) {
    if (at + 2 > buf.length) throw bad('truncated');
    const nameLen = buf.readUInt16LE(at);
    at += 2;
    if (nameLen > MAX_NAME || at + nameLen + 16 > buf.length) throw bad('truncated');
    const name = buf.toString('utf8', at, at + nameLen);
    at += nameLen;
    const date = buf.readDoubleLE(at);
    const len = buf.readDoubleLE(at + 8);
    at += 16;
    if (!Number.isSafeInteger(len) || len < 0 || at + len > buf.length) throw bad('truncated');
    out.push({ name, date, payload: buf.subarray(at, at + len) });
    at += len;
  }
  if (at !== buf.length) throw bad('trailing bytes');
  return out;
}

/** Replaces the snapshots of `path` with `entries` (atomically). */
export function writeSnapshotFile(path: string, entries: SnapshotEntry[]): void {
  const parts: Uint8Array[] = [];
  const head = Buffer.alloc(16);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(entries.length, 12);
  parts.push(head);
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const h = Buffer.alloc(2 + name.length + 16);
    h.writeUInt16LE(name.length, 0);
    name.copy(h, 2);
    h.writeDoubleLE(e.date, 2 + name.length);
    h.writeDoubleLE(e.payload.length, 2 + name.length + 8);
    parts.push(h, e.payload);
  }
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, Buffer.concat(parts));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new SnapshotError(`${path}: ${(e as Error).message}`);
  }
}

/** Checks a snapshot name as the monitors take it. */
export function checkSnapshotName(name: string): void {
  if (name === '' || Buffer.byteLength(name) > MAX_NAME || /[\s\x00-\x1f]/.test(name)) {
    throw new SnapshotError(`invalid snapshot name '${name}'`);
  }
}

/** Pieces compressed in parallel (on libuv's thread pool), as members of one gzip stream. */
const PACK_CHUNK = 4 << 20;

/**
 * Compresses a machine state for the file. Zero pages are already left out; Huffman coding
 * alone is 3x faster than LZ77 matching and keeps the gzip CRC that catches damage.
 */
export async function packPayload(state: Uint8Array): Promise<Uint8Array> {
  const parts: Promise<Buffer>[] = [];
  for (let at = 0; at < state.length || at === 0; at += PACK_CHUNK) {
    const piece = state.subarray(at, Math.min(state.length, at + PACK_CHUNK));
    parts.push(new Promise((resolve, reject) => gzip(piece, { level: 1, strategy: constants.Z_HUFFMAN_ONLY }, (e, z) => (e ? reject(e) : resolve(z)))));
  }
  return Buffer.concat(await Promise.all(parts));
}

export function unpackPayload(name: string, payload: Uint8Array): Buffer {
  try {
    return gunzipSync(payload);
  } catch {
    throw new SnapshotError(`snapshot '${name}' is corrupt (its data does not decompress)`);
  }
}
