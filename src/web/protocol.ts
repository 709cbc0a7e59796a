/** Messages between {@link VirtualMachine} (the page) and the worker that runs the guest (worker.ts), and the fetch both use. */
import type { InputEvent } from '../ui/input-keys.js';
import type { StoredImage } from './image-store.js';

/** An image for the worker: fetched from a URL (absolute), or given as bytes. */
export type ImageRef = { url: string } | { bytes: Uint8Array<ArrayBuffer> };

/** What a machine is built from; a change applies at the next reset. */
export interface MachineSettings {
  memoryMiB: number;
  smp: number;
  /** Firmware, or null to start the kernel in M-mode (-bios none). */
  bios: ImageRef | null;
  kernel: ImageRef;
  initrd: ImageRef | null;
  append: string;
  /** A simple-framebuffer with a virtio keyboard and tablet. */
  framebuffer: boolean;
}

/**
 * Where the framebuffer's pixels are: XRGB8888 rows of `stride` bytes from `offset` in
 * the guest's shared memory, which the page reads directly.
 */
export interface FramebufferView {
  memory: SharedArrayBuffer;
  offset: number;
  width: number;
  height: number;
  stride: number;
}

/**
 * `created`: nothing has run yet; `loading`: fetching the images; `running`; `stopped`:
 * paused by stop(), start() resumes; `poweroff`: the guest powered off (reset() boots it
 * again); `error`: the machine could not be built (the detail says why).
 */
export type VmState = 'created' | 'loading' | 'running' | 'stopped' | 'poweroff' | 'error';

/**
 * The images the page fetches for the worker from its start (a worker takes a few hundred
 * milliseconds to start in a page that is loading), named in the fragment of the worker
 * script's URL (JSON), so that the worker waits for them instead of fetching them itself.
 */
export interface Prefetch {
  bios: string | null;
  kernel: string | null;
  initrd: string | null;
  /** Those the page kept from an earlier visit (image-store.ts), by URL. The worker starts reading them at once. */
  stored: Record<string, StoredImage>;
}

export type ToWorker =
  | { type: 'start'; settings: MachineSettings }
  | { type: 'stop' }
  | { type: 'reset'; settings: MachineSettings }
  | { type: 'input'; data: Uint8Array }
  /** evdev events for the virtio keyboard and tablet (each list ends with a SYN_REPORT). */
  | { type: 'input-events'; events: InputEvent[] }
  /** A raw disk image (or none) for the machines built from now on; it replaces the attached one. */
  | { type: 'attach-disk'; bytes: Uint8Array<ArrayBuffer> | null }
  /** Asks for the disk's bytes, answered by a `disk` message with the same id. */
  | { type: 'read-disk'; id: number }
  /** The RISC-V core, compiled by the page (or why it could not be): sent once, first. */
  | { type: 'core'; module: WebAssembly.Module }
  | { type: 'core'; error: string }
  /** An image of the {@link Prefetch} list, fetched by the page (or why it could not be). */
  | { type: 'image'; url: string; blob: Blob }
  /** The server still has the image the page kept (304 Not Modified): the worker uses its copy. */
  | { type: 'image'; url: string; stored: true }
  | { type: 'image'; url: string; error: string };

export type FromWorker =
  | { type: 'serial'; data: Uint8Array }
  | { type: 'state'; state: VmState; detail: string }
  /** The new machine's framebuffer, or null without one. */
  | { type: 'framebuffer'; view: FramebufferView | null }
  /** Guest instructions retired per second, over the last second. */
  | { type: 'stats'; instructionsPerSecond: number }
  /** The disk's bytes, taken with no request in flight (null: no disk). */
  | { type: 'disk'; id: number; bytes: Uint8Array<ArrayBuffer> | null }
  /** The kept copy of an image could not be read (the worker downloaded it): the page forgets it. */
  | { type: 'image-stale'; url: string };

/**
 * fetch() of `url` that fails on an HTTP error status, naming the URL and the status; with
 * `etag`, a conditional request that may answer 304 Not Modified (the caller has that version).
 */
export async function fetchOk(url: string | URL, etag: string | null = null): Promise<Response> {
  const res = await fetch(url, etag === null ? undefined : { headers: { 'If-None-Match': etag } });
  if (!res.ok && !(etag !== null && res.status === 304)) throw new Error(`${url}: ${res.status} ${res.statusText}`);
  return res;
}
