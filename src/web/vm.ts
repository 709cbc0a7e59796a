/**
 * Vireo in a web page: `new VirtualMachine({ memoryMiB, kernel, ... })` runs a RISC-V
 * `virt` machine in a Web Worker (vireo-worker.js, next to this module) and reports
 * the guest's serial output and its state changes.
 *
 * The guest RAM is a shared WebAssembly memory, which browsers only allow in a
 * cross-origin isolated page (served with COOP `same-origin` and COEP `require-corp`,
 * as `npm run web` does).
 */
import { fetchOk, type FramebufferView, type FromWorker, type ImageRef, type MachineSettings, type Prefetch, type ToWorker, type VmState } from './protocol.js';
import { memoryDiskProblem } from '../block/memory.js';
import { forgetImage, keepImage, storedImages } from './image-store.js';
import type { InputEvent } from '../ui/input-keys.js';

/** How long after the machine first runs the page starts keeping its downloaded images (ms): about a boot of the bundled guest. */
const KEEP_AFTER_MS = 3000;

export type { FramebufferView, VmState } from './protocol.js';
export type { InputEvent } from '../ui/input-keys.js';

/** An image: a URL (relative to the page) or its bytes. gzip-compressed firmware and kernels are unpacked. */
export type ImageInput = string | URL | ArrayBuffer | Uint8Array;

export interface VirtualMachineOptions {
  /** Guest RAM in MiB, 16 to 3584 (default 512). */
  memoryMiB?: number;
  /** Harts, 1 to 8 (default 1): one runs on the machine's worker, several get a Web Worker each. */
  smp?: number;
  /** Firmware (default: the bundled OpenSBI); null starts the kernel in M-mode. */
  bios?: ImageInput | null;
  /** Linux `Image` or ELF (default: the bundled kernel, with the bundled initramfs). */
  kernel?: ImageInput;
  initrd?: ImageInput | null;
  /** Kernel command line (default `console=ttyS0` for the bundled guest, empty otherwise). */
  append?: string;
  /**
   * A framebuffer (800x600 simple-framebuffer) with a virtio keyboard and tablet
   * (default off); `console=tty0` in the command line puts the guest's console on it.
   */
  framebuffer?: boolean;
  /** Where the bundled images are (default: `images/riscv64/` beside the page). */
  imagesUrl?: string | URL;
  /** Where vireo-worker.js, vireo-hart.js and riscv-core.wasm are (default: beside this module). */
  baseUrl?: string | URL;
  /**
   * A raw disk image, the guest's /dev/vda (virtio-blk on virtio-mmio): at most 1 GiB, a
   * whole number of 512-byte sectors; qcow2 is not supported in the browser. It is copied;
   * {@link VirtualMachine.diskBytes} returns what the guest made of it.
   */
  disk?: ArrayBuffer | Uint8Array | null;
  /**
   * Keep the images fetched from URLs in the browser (its origin private file system; default
   * true), so that the next visit boots from local copies as long as the server's ETag says
   * they are current (image-store.ts).
   */
  storeImages?: boolean;
}

/** A disk image the page cannot use: the message is one line for the user. */
export class DiskError extends Error {}

/** The settings that {@link VirtualMachine.reset} may change. */
export type MachineChanges = Pick<VirtualMachineOptions, 'memoryMiB' | 'smp' | 'append' | 'framebuffer'>;

export class VirtualMachine {
  /** Guest output on the serial console (the UART), as it comes. */
  onSerial: ((data: Uint8Array) => void) | null = null;
  /** The machine's state changed; `detail` says why, for `loading`, `poweroff` and `error`. */
  onState: ((state: VmState, detail: string) => void) | null = null;
  /** Guest instructions retired per second (all harts), about every second while running. */
  onStats: ((instructionsPerSecond: number) => void) | null = null;
  /** A machine was built: where its framebuffer's pixels are (live, in the guest's memory), or null without one. */
  onFramebuffer: ((view: FramebufferView | null) => void) | null = null;

  private readonly worker: Worker;
  private readonly base: URL;
  private settings: MachineSettings;
  private current: VmState = 'created';
  /** diskBytes() answers awaited, by request id. */
  private readonly diskReads = new Map<number, (bytes: Uint8Array<ArrayBuffer> | null) => void>();
  private nextDiskRead = 0;
  /** Downloaded images to keep (image-store.ts), written a while after the machine runs, so as not to slow its boot. */
  private toKeep: (() => Promise<void>)[] | null = [];

  constructor(options: VirtualMachineOptions = {}) {
    this.base = new URL(options.baseUrl ?? new URL('.', import.meta.url), location.href);
    const images = new URL(options.imagesUrl ?? 'images/riscv64/', location.href);
    const bundled = options.kernel === undefined;
    const ref = (input: ImageInput): ImageRef => typeof input === 'string' || input instanceof URL
      ? { url: new URL(input, location.href).href }
      // A copy: the caller may change or transfer its buffer, and a shared one would not go into a Blob.
      : { bytes: new Uint8Array(input instanceof Uint8Array ? input : new Uint8Array(input)) };
    this.settings = {
      memoryMiB: 512, smp: 1, append: '', framebuffer: false,
      bios: options.bios === null ? null : ref(options.bios ?? new URL('fw_dynamic.bin.gz', images)),
      kernel: ref(options.kernel ?? new URL('Image.gz', images)),
      initrd: options.initrd != null ? ref(options.initrd) : bundled && options.initrd === undefined ? ref(new URL('initramfs.cpio.gz', images)) : null,
    };
    this.settings = this.changed({ memoryMiB: options.memoryMiB, smp: options.smp, append: options.append ?? (bundled ? 'console=ttyS0' : ''), framebuffer: options.framebuffer });
    const url = (r: ImageRef | null): string | null => (r !== null && 'url' in r ? r.url : null);
    const store = options.storeImages ?? true;
    const kept = store ? storedImages() : {};
    const prefetch: Prefetch = { bios: url(this.settings.bios), kernel: url(this.settings.kernel), initrd: url(this.settings.initrd), stored: {} };
    const urls = new Set([prefetch.bios, prefetch.kernel, prefetch.initrd]);
    for (const u of urls) if (u !== null && kept[u] !== undefined) prefetch.stored[u] = kept[u];
    const script = new URL('vireo-worker.js', this.base);
    script.hash = encodeURIComponent(JSON.stringify(prefetch));
    this.worker = new Worker(script);
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    this.worker.onerror = (e) => this.update('error', e.message);
    const why = (e: unknown): string => (e instanceof Error ? e.message : String(e));
    // Not compileStreaming: that needs the server to send application/wasm.
    const core = new URL('riscv-core.wasm', this.base);
    fetchOk(core).then((res) => res.arrayBuffer()).then((b) => WebAssembly.compile(b)).then((module) => this.send({ type: 'core', module }), (e: unknown) => this.send({ type: 'core', error: why(e) }));
    for (const u of urls) {
      if (u === null) continue;
      // A kept copy is revalidated: 304 Not Modified means the worker's copy is current.
      const etag = prefetch.stored[u]?.etag ?? null;
      fetchOk(u, etag).then(async (res) => {
        if (res.status === 304) {
          this.send({ type: 'image', url: u, stored: true });
          return;
        }
        const blob = await res.blob();
        this.send({ type: 'image', url: u, blob });
        const tag = res.headers.get('ETag');
        if (store && tag !== null) this.keep(() => keepImage(u, blob, tag));
      }).catch((e: unknown) => this.send({ type: 'image', url: u, error: why(e) }));
    }
    if (options.disk != null) this.attachDisk(options.disk);
  }

  get state(): VmState {
    return this.current;
  }

  /** Boots the machine (fetching the images first), or resumes it after {@link stop}. */
  start(): void {
    if (!globalThis.crossOriginIsolated) {
      this.update('error', 'the page is not cross-origin isolated (serve it with COOP same-origin and COEP require-corp)');
      return;
    }
    this.send({ type: 'start', settings: this.settings });
  }

  /** Pauses the guest (its clock goes on, as in QEMU); {@link start} resumes it. */
  stop(): void {
    this.send({ type: 'stop' });
  }

  /** Rebuilds and boots the machine, with `changes` applied (a stopped one starts running; before the first start() they wait for it). */
  reset(changes: MachineChanges = {}): void {
    this.settings = this.changed(changes);
    this.send({ type: 'reset', settings: this.settings });
  }

  /** Types into the serial console. */
  sendInput(data: string | Uint8Array): void {
    this.send({ type: 'input', data: typeof data === 'string' ? new TextEncoder().encode(data) : data.slice() });
  }

  /** Sends evdev events to the virtio keyboard and tablet (with the framebuffer on); a SYN_REPORT follows them. */
  sendInputEvents(events: InputEvent[]): void {
    this.send({ type: 'input-events', events });
  }

  /**
   * Attaches a raw disk image (a copy of it), or detaches the disk (null), from the next
   * machine built on: the next boot, {@link reset}, or the guest's own reboot. Throws a
   * {@link DiskError} for an image that cannot be used (empty, over 1 GiB, a partial
   * sector, qcow2).
   */
  attachDisk(disk: ArrayBuffer | Uint8Array | null): void {
    if (disk === null) {
      this.send({ type: 'attach-disk', bytes: null });
      return;
    }
    const view = disk instanceof Uint8Array ? disk : new Uint8Array(disk);
    const problem = memoryDiskProblem(view.length, view.subarray(0, 4));
    if (problem !== null) throw new DiskError(problem);
    const bytes = view.slice();
    this.worker.postMessage({ type: 'attach-disk', bytes } satisfies ToWorker, [bytes.buffer]);
  }

  /**
   * The disk's bytes as the guest left them, once no request is in flight (data the guest
   * still caches is not there: sync first): the current machine's disk, or the attached
   * one before a machine was built on it; null without a disk.
   */
  diskBytes(): Promise<Uint8Array<ArrayBuffer> | null> {
    const id = this.nextDiskRead++;
    return new Promise((resolve) => {
      this.diskReads.set(id, resolve);
      this.send({ type: 'read-disk', id });
    });
  }

  /** Ends the worker and frees the guest's memory; the object is unusable afterwards. */
  terminate(): void {
    this.worker.terminate();
    for (const resolve of this.diskReads.values()) resolve(null);
    this.diskReads.clear();
  }

  private changed(c: MachineChanges): MachineSettings {
    const s = { ...this.settings, ...Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) };
    if (!Number.isInteger(s.memoryMiB) || s.memoryMiB < 16 || s.memoryMiB > 3584) throw new RangeError('memoryMiB: between 16 and 3584');
    if (!Number.isInteger(s.smp) || s.smp < 1 || s.smp > 8) throw new RangeError('smp: between 1 and 8');
    return s;
  }

  private send(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  /** Keeps an image now if the machine has run, else once it does. */
  private keep(write: () => Promise<void>): void {
    if (this.toKeep === null) void write();
    else this.toKeep.push(write);
  }

  private update(state: VmState, detail: string): void {
    this.current = state;
    if (state !== 'created' && state !== 'loading' && this.toKeep !== null) {
      const writes = this.toKeep;
      this.toKeep = null;
      // Not while the guest boots: writing the copies (13 MB for the bundled images) takes the
      // browser's CPU, which on a small host the booting guest's worker is waiting for.
      setTimeout(() => void writes.reduce((done, write) => done.then(write), Promise.resolve()), KEEP_AFTER_MS);
    }
    this.onState?.(state, detail);
  }

  private receive(m: FromWorker): void {
    if (m.type === 'serial') this.onSerial?.(m.data);
    else if (m.type === 'state') this.update(m.state, m.detail);
    else if (m.type === 'stats') this.onStats?.(m.instructionsPerSecond);
    else if (m.type === 'framebuffer') this.onFramebuffer?.(m.view);
    else if (m.type === 'image-stale') forgetImage(m.url);
    else {
      this.diskReads.get(m.id)?.(m.bytes);
      this.diskReads.delete(m.id);
    }
  }
}
