/**
 * The images a page has downloaded, kept in the browser (its origin private file system),
 * so that the next visit boots from local copies as the `vireo` command boots from files:
 * Chromium takes ~0.4 s to hand 13 MB of images from the network to a page, a worker
 * reads them from this store in ~60-160 ms.
 *
 * A copy is used only while the server still has it: the page revalidates each URL with
 * the ETag it was downloaded under (`If-None-Match`; 304 Not Modified: the copy is good),
 * and the worker reads the copy meanwhile. The index (URL -> ETag, size) is in the page's
 * localStorage and names a copy only once it is written whole; a copy that cannot be read
 * or has the wrong size is downloaded again.
 */

/** A kept image: the ETag it was downloaded under and its size in bytes. */
export interface StoredImage {
  etag: string;
  size: number;
}

const INDEX_KEY = 'vireo.images';
const DIRECTORY = 'vireo-images';
/** The most images kept: the least recently downloaded go first (pages whose image URLs change would otherwise fill the store). */
const MAX_KEPT = 16;

/**
 * The file of a copy: a hash (FNV-1a, two ways) of its URL and ETag, so that a new version
 * never overwrites the file another tab may be reading, and names stay short.
 */
function fileName(url: string, etag: string): string {
  const key = `${etag} ${url}`;
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x85ebca6b);
  }
  const hex = (h: number): string => (h >>> 0).toString(16).padStart(8, '0');
  return `image-${hex(h1)}${hex(h2)}`;
}

/** The page's index, or an empty one where the page has no localStorage (an opaque origin, storage off). */
export function storedImages(): Record<string, StoredImage> {
  try {
    const index = JSON.parse(localStorage.getItem(INDEX_KEY) ?? '{}') as unknown;
    return typeof index === 'object' && index !== null ? index as Record<string, StoredImage> : {};
  } catch {
    return {};
  }
}

function setIndex(change: (index: Record<string, StoredImage>) => void): void {
  try {
    const index = storedImages();
    change(index);
    localStorage.setItem(INDEX_KEY, JSON.stringify(index));
  } catch {
    // No localStorage: nothing is kept.
  }
}

/** Forgets the copy of `url` (it is downloaded again next time). */
export function forgetImage(url: string): void {
  setIndex((index) => delete index[url]);
}

async function directory(): Promise<FileSystemDirectoryHandle> {
  return (await navigator.storage.getDirectory()).getDirectoryHandle(DIRECTORY, { create: true });
}

/**
 * Keeps `blob`, downloaded from `url` with ETag `etag` (the page's thread; the browser
 * streams the Blob to the file). The index names it once it is written; failures (no
 * storage, quota) leave it out. Then removes the files the index no longer names (older
 * versions, images past MAX_KEPT; one still being read stays until a later visit).
 */
export async function keepImage(url: string, blob: Blob, etag: string): Promise<void> {
  forgetImage(url);
  try {
    const dir = await directory();
    const out = await (await dir.getFileHandle(fileName(url, etag), { create: true })).createWritable();
    await out.write(blob);
    await out.close();
    setIndex((index) => {
      index[url] = { etag, size: blob.size }; // last in the index's order
      for (const old of Object.keys(index).slice(0, -MAX_KEPT)) delete index[old];
    });
    const named = new Set(Object.entries(storedImages()).map(([u, image]) => fileName(u, image.etag)));
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
      if (!named.has(name)) await dir.removeEntry(name).catch(() => {});
    }
  } catch {
    // Not kept: the next visit downloads it.
  }
}

/** The worker-only part of the origin private file system (not in TypeScript's DOM typings). */
interface SyncAccessHandle {
  getSize(): number;
  read(buffer: Uint8Array, options: { at: number }): number;
  close(): void;
}
type SyncFileHandle = FileSystemFileHandle & { createSyncAccessHandle(options?: { mode: string }): Promise<SyncAccessHandle> };

/**
 * Reads the copy of `url` in a worker (a synchronous access handle, the fastest read
 * there is); null if it is missing, cannot be opened, or does not have the size kept.
 */
export async function readStoredImage(url: string, { etag, size }: StoredImage): Promise<Uint8Array<ArrayBuffer> | null> {
  try {
    const file = await (await directory()).getFileHandle(fileName(url, etag)) as SyncFileHandle;
    // read-only: other tabs may read the same copy at the same time (Chromium 121+; older ones ignore it).
    const handle = await file.createSyncAccessHandle({ mode: 'read-only' });
    try {
      if (handle.getSize() !== size) return null;
      const bytes = new Uint8Array(size);
      return handle.read(bytes, { at: 0 }) === size ? bytes : null;
    } finally {
      handle.close();
    }
  } catch {
    return null;
  }
}
