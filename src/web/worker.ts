/**
 * The Web Worker that runs a guest for {@link VirtualMachine}: the same virt board, CPU
 * core and round-robin loop as `vireo -accel tcg,thread=single`, or with several harts one
 * Web Worker per hart as `-accel tcg,thread=multi` (mttcg.ts); only the host ends
 * differ (images fetched instead of read from files, the serial port posted to the page,
 * the disk held in memory, entropy from the page's crypto).
 * A worker keeps the page responsive while the guest runs.
 */
import { VirtMachine, VIRT_MEMMAP } from '../hw/riscv/virt.js';
import { layOutBoot, type BootPlan, type ImageSource } from '../hw/riscv/boot-plan.js';
import { runRoundRobin, yieldToEventLoop, type StopReason } from '../accel/tcg/rr.js';
import { runMultiThreaded } from '../accel/tcg/mttcg.js';
import { Chardev } from '../chardev/chardev.js';
import { VirtioBlk } from '../hw/virtio/virtio-blk.js';
import { VirtioInput } from '../hw/virtio/virtio-input.js';
import { VirtioRng } from '../hw/virtio/virtio-rng.js';
import { MemoryBackend } from '../block/memory.js';
import type { PlannedDevice } from '../system/backends.js';
import type { VmOptions } from '../system/options.js';
import { provideCoreModule } from './core-module.js';
import { fetchOk, type FromWorker, type ImageRef, type MachineSettings, type Prefetch, type ToWorker, type VmState } from './protocol.js';
import { isGzip } from '../hw/core/loader.js';
import { readStoredImage } from './image-store.js';

/** The part of the worker's global scope used here (the DOM typings describe a window). */
interface WorkerScope {
  location: { hash: string };
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;
const post = (m: FromWorker, transfer: Transferable[] = []): void => scope.postMessage(m, transfer);

/** The serial port's host end: output goes to the page in batches (one message per turn of the event loop), input comes from it. */
class PageChardev extends Chardev {
  private out: Uint8Array[] = [];
  private outBytes = 0;

  override write(data: Uint8Array): void {
    if (this.outBytes === 0) queueMicrotask(() => this.flush());
    this.out.push(data.slice());
    this.outBytes += data.length;
  }

  input(data: Uint8Array): void {
    this.receive(data);
  }

  private flush(): void {
    const data = new Uint8Array(this.outBytes);
    let n = 0;
    for (const chunk of this.out) {
      data.set(chunk, n);
      n += chunk.length;
    }
    this.out = [];
    this.outBytes = 0;
    post({ type: 'serial', data }, [data.buffer]);
  }
}

const MiB = 1024 * 1024;
const chr = new PageChardev();
let machine: VirtMachine | null = null;
let state: VmState = 'created';
/** What the page asked the running loop to do at its next check. */
let request: 'stop' | 'reset' | null = null;
/** Settings for the next build (null: keep the machine), and the ones the current machine was built with. */
let pendingSettings: MachineSettings | null = null;
let lastSettings: MachineSettings | null = null;
let running = false;
/** Whether the page has started the machine once (a reset before that waits for the start). */
let started = false;
/**
 * The disk the next machine gets, and the one the current (or last) machine has, with
 * its device. A disk outlives the machines built on it: a reset or a guest reboot keeps
 * what the guest wrote.
 */
let attached: MemoryBackend | null = null;
let inUse: { disk: MemoryBackend; device: VirtioBlk } | null = null;

function setState(s: VmState, detail = ''): void {
  state = s;
  post({ type: 'state', state: s, detail });
}

/**
 * Bytes of an image, gunzipped when gzip-compressed (as planBoot() does
 * under Node; `lenient`: an initrd that does not decompress is taken as it is). The dev
 * server (serve.ts) sends the bundled .gz images decompressed already; other servers may not.
 */
async function unpack(bytes: Uint8Array<ArrayBuffer>, lenient: boolean): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    if (lenient) return bytes;
    throw e;
  }
}

/**
 * Images by URL, kept, because every machine of a page boots the same ones: those its
 * script's URL names ({@link Prefetch}) come from the page, which fetches them from its
 * start (an `image` message), others are fetched here. A failed fetch is forgotten, to be
 * tried again.
 */
const fetched = new Map<string, Promise<Uint8Array>>();
/** Reads of the copies the page kept of its images (image-store.ts), by URL, started with the worker. */
const storedReads = new Map<string, Promise<Uint8Array<ArrayBuffer> | null>>();
/** The lenient flags and settlers of the images the page is fetching. */
const fromPage = new Map<string, { lenient: boolean; resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();

function remember(url: string, bytes: Promise<Uint8Array>): Promise<Uint8Array> {
  bytes.catch(() => fetched.delete(url));
  fetched.set(url, bytes);
  return bytes;
}

// Through a Blob: Chromium delivers a large body so about twice as fast as by arrayBuffer().
const blobBytes = async (blob: Blob, lenient: boolean): Promise<Uint8Array> => unpack(new Uint8Array(await blob.arrayBuffer()), lenient);
/** Downloads `url` here. */
const download = async (url: string, lenient: boolean): Promise<Uint8Array> => blobBytes(await (await fetchOk(url)).blob(), lenient);

function image(ref: ImageRef, lenient: boolean): Promise<Uint8Array> {
  if ('bytes' in ref) return unpack(ref.bytes, lenient);
  const { url } = ref;
  return fetched.get(url) ?? remember(url, download(url, lenient));
}

const imageName = (ref: ImageRef, what: string): string => ('url' in ref ? ref.url : what);

/** The images of `s`, each once: the firmware and kernel gunzipped if need be, the initrd leniently. */
function images(s: MachineSettings): Promise<[Uint8Array | null, Uint8Array, Uint8Array | null]> {
  return Promise.all([s.bios && image(s.bios, false), image(s.kernel, false), s.initrd && image(s.initrd, true)]);
}

/** Lays the images of `s` out in guest memory, once they are there. */
async function planImages(s: MachineSettings): Promise<BootPlan> {
  setState('loading', 'fetching the images');
  const [bios, kernel, initrd] = await images(s);
  const source = (ref: ImageRef | null, data: Uint8Array | null, what: string): ImageSource | null =>
    ref && data && { name: imageName(ref, what), load: () => data };
  return layOutBoot({ bios: source(s.bios, bios, 'firmware'), kernel: source(s.kernel, kernel, 'kernel')!, initrd: source(s.initrd, initrd, 'initrd'), bootargs: s.append },
    VIRT_MEMMAP.dram.base, s.memoryMiB * MiB);
}

/** The compiled core (riscv-core.wasm), which the page fetches and compiles from its start (a `core` message). */
let coreArrived: { resolve: (m: WebAssembly.Module) => void; reject: (e: Error) => void } | null = null;
const core = new Promise<WebAssembly.Module>((resolve, reject) => (coreArrived = { resolve, reject })).then(provideCoreModule);
// Failures are reported by the build that awaits it.
core.catch(() => {});
if (scope.location.hash.length > 1) {
  const p = JSON.parse(decodeURIComponent(scope.location.hash.slice(1))) as Prefetch;
  // Leniency as images() asks for it: only the initrd may be taken as it is.
  for (const [url, lenient] of [[p.bios, false], [p.kernel, false], [p.initrd, true]] as const) {
    if (url !== null && !fromPage.has(url)) remember(url, new Promise((resolve, reject) => fromPage.set(url, { lenient, resolve, reject }))).catch(() => {});
  }
  // Read while the page asks the server whether they are still current.
  for (const [url, kept] of Object.entries(p.stored)) storedReads.set(url, readStoredImage(url, kept));
}

/**
 * The page's kept copy of `url`, which the server says is current; if it cannot be read,
 * the image is downloaded here and the page told to forget the copy.
 */
async function storedBytes(url: string, lenient: boolean): Promise<Uint8Array> {
  // A storage that does not answer within seconds is given up on, as one that fails.
  const bytes = await Promise.race([storedReads.get(url) ?? null, new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000))]);
  storedReads.delete(url);
  if (bytes !== null) return unpack(bytes, lenient);
  post({ type: 'image-stale', url });
  return download(url, lenient);
}

/** One Web Worker per hart (vireo-hart.js, mttcg-hart.ts) when there are several and the page may share memory with them. */
const multiThreaded = (s: MachineSettings): boolean => s.smp > 1 && globalThis.crossOriginIsolated;

/**
 * Writes a zero into each 4 KiB page of guest RAM that a Linux boot is sure to use, until
 * `until` settles: the low 32 MiB (firmware, kernel, the kernel's first allocations above
 * it) and the top 16 MiB (memblock allocates top-down: page tables, the struct page array,
 * the device tree). A browser backs guest RAM with 4 KiB pages, each first touch a host
 * page fault (~15 us on a virtualised host, ~5000 of them in the bundled guest's boot);
 * taken here, while the images download, they no longer delay the guest. RAM is all zero
 * until the images are loaded, so the writes change nothing.
 */
async function prefault(ram: Uint8Array, memBytes: number, until: Promise<unknown>): Promise<void> {
  let done = false;
  void until.then(() => (done = true), () => (done = true));
  const low = Math.min(32 * MiB, memBytes);
  const ranges: [number, number][] = [[0, low], [Math.max(low, memBytes - 16 * MiB), memBytes]];
  for (const [from, to] of ranges) {
    for (let page = from; page < to && !done;) {
      // A few milliseconds at a time: the images' messages are handled in between.
      for (const end = Math.min(to, page + 256 * 4096); page < end; page += 4096) ram[page] = 0;
      await yieldToEventLoop();
    }
  }
}

/**
 * Builds the machine once the core is compiled (which goes on while the images are
 * fetched), and loads the images once they are there.
 */
async function build(s: MachineSettings): Promise<VirtMachine> {
  const planned = planImages(s);
  // A failure is reported by the `await planned` below; until then it is not unhandled.
  planned.catch(() => {});
  await core;
  const opts: VmOptions = {
    machine: 'virt', memBytes: s.memoryMiB * MiB, smp: s.smp, bios: s.bios === null ? { kind: 'none' } : { kind: 'default' },
    serial: { kind: 'chardev', id: 'page' }, nographic: false, noReboot: false,
    accel: { names: ['tcg'], thread: multiThreaded(s) ? 'multi' : 'single', jit: false }, drives: [], netdevs: [],
    devices: s.framebuffer ? [{ driver: 'simple-framebuffer' }] : [],
  };
  const devices: PlannedDevice[] = s.framebuffer ? [{ device: new VirtioInput('keyboard'), pci: false }, { device: new VirtioInput('tablet'), pci: false }] : [];
  inUse = null;
  if (attached !== null) {
    inUse = { disk: attached, device: new VirtioBlk(attached) };
    devices.push({ device: inUse.device, pci: false });
  }
  // Entropy from the page's host: the guest kernel's own source, the jitter of its time
  // counter, finds nothing in a browser's clock (coarsened to 5 us), and getrandom() (mkfs's
  // UUIDs) would wait on interrupt timings, for minutes on an idle guest.
  devices.push({ device: new VirtioRng(), pci: false });
  const m = new VirtMachine(opts, chr, devices);
  await prefault(m.cpus.ram, opts.memBytes, planned);
  const plan = await planned;
  m.load(plan, m.fdt(plan.bootargs, plan.initrd));
  const fb = m.framebuffer;
  const memory = m.cpus.memory.buffer as unknown as SharedArrayBuffer;
  post({ type: 'framebuffer', view: fb && { memory, offset: m.cpus.ram.byteOffset + opts.memBytes, width: fb.width, height: fb.height, stride: fb.stride } });
  return m;
}

/** Guest instructions retired per second (all harts, here or in hart workers), posted every second while running. */
let lastInstret = 0;
let lastTime = 0;
const instret = (m: VirtMachine): number => m.cpus.retired();
setInterval(() => {
  if (machine === null || state !== 'running') return;
  const now = performance.now();
  const n = instret(machine);
  post({ type: 'stats', instructionsPerSecond: Math.max(0, (n - lastInstret) / ((now - lastTime) / 1000)) });
  lastInstret = n;
  lastTime = now;
}, 1000);

/** Runs the machine until stop(), a power-off, or an error; rebuilds it on a reset (from the guest or the page). */
async function run(): Promise<void> {
  running = true;
  try {
    for (;;) {
      if (machine === null || pendingSettings !== null) {
        const s = pendingSettings!;
        pendingSettings = null;
        machine = null;
        machine = await build(s);
        if (request === 'stop') break;
      }
      const m = machine;
      lastInstret = instret(m);
      lastTime = performance.now();
      setState('running', m.opts.accel.thread === 'multi' ? `one Web Worker per hart (${m.cpus.harts.length})` : '');
      const check = (): StopReason | null => {
        if (request === 'stop') return { kind: 'quit' };
        if (request === 'reset') return { kind: 'reset' };
        return m.shutdown;
      };
      const reason = m.opts.accel.thread === 'multi'
        ? await runMultiThreaded(m.clock, m.cpus, m.bus, { ...VIRT_MEMMAP.clint, device: m.clint }, check)
        : await runRoundRobin(m.clock, m.cpus.harts, check);
      if (reason.kind === 'quit') break;
      if (reason.kind === 'reset') {
        // A reset from the page brings new settings; the guest's own reboot keeps the current ones.
        if (request !== 'reset') pendingSettings = lastSettings;
        request = null;
        continue;
      }
      machine = null;
      setState('poweroff', `exit status ${reason.code}`);
      return;
    }
    request = null;
    setState('stopped');
  } catch (e) {
    machine = null;
    setState('error', e instanceof Error ? e.message : String(e));
  } finally {
    running = false;
    request = null;
  }
}

/**
 * Posts the disk's bytes: the current machine's disk once its requests are over, else the
 * attached one. A request starts only from an MMIO access served on this thread in a turn
 * of the event loop of its own (from the round-robin loop or a hart worker's exit channel),
 * so none starts between the drain and the copy.
 */
async function readDisk(id: number): Promise<void> {
  const current = inUse;
  if (current !== null) await current.device.drain();
  const bytes = (current?.disk ?? attached)?.bytes() ?? null;
  post({ type: 'disk', id, bytes }, bytes === null ? [] : [bytes.buffer]);
}

scope.onmessage = (e) => {
  const msg = e.data;
  switch (msg.type) {
    case 'start':
      if (running) return;
      started = true;
      if (machine === null && pendingSettings === null) {
        lastSettings = msg.settings;
        pendingSettings = msg.settings;
      }
      void run();
      return;
    case 'stop':
      if (running) request = 'stop';
      return;
    case 'reset':
      lastSettings = msg.settings;
      pendingSettings = msg.settings;
      // Before the first start() the new settings wait for it.
      if (running) request = 'reset';
      else if (started) void run();
      return;
    case 'input':
      chr.input(msg.data);
      return;
    case 'input-events':
      for (const v of machine?.virtio ?? []) if (v.transport.device instanceof VirtioInput) v.transport.device.send(msg.events);
      return;
    case 'attach-disk':
      attached = msg.bytes === null ? null : new MemoryBackend(msg.bytes);
      return;
    case 'read-disk':
      void readDisk(msg.id);
      return;
    case 'core':
      if ('module' in msg) coreArrived?.resolve(msg.module);
      else coreArrived?.reject(new Error(msg.error));
      return;
    case 'image': {
      const wanted = fromPage.get(msg.url);
      fromPage.delete(msg.url);
      if (wanted === undefined) return;
      if ('stored' in msg) {
        storedBytes(msg.url, wanted.lenient).then(wanted.resolve, wanted.reject);
        return;
      }
      storedReads.delete(msg.url); // the copy is out of date (or the server unreachable)
      if ('blob' in msg) blobBytes(msg.blob, wanted.lenient).then(wanted.resolve, wanted.reject);
      else wanted.reject(new Error(msg.error));
      return;
    }
  }
};
