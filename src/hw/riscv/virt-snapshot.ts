/**
 * The virt board's machine state for snapshots (QEMU's savevm/loadvm): the harts, guest
 * RAM (pages of zeros left out), the boot ROM, the machine clock and the devices outside
 * RAM (CLINT, PLIC, UART, RTC, the PCIe host bridge and the virtio devices with their
 * transports). Taken and restored while the harts are stopped, the virtio devices drained
 * (VirtMachine.drain). The back ends are not in it: disk contents, and the user network's
 * connections, which a load drops.
 *
 * Layout (before compression, see snapshot-file.ts): u32 header length, the header
 * (JSON), then each hart's bytes, the ROM, and unless the header says `ram: false` (live
 * migration sends RAM on its own, see src/migration/migration.ts) a bitmap of the RAM
 * pages that follow (bit set: the 4 KiB page is stored), and those pages in order.
 *
 * A machine with a virtio-9p device is refused: the files its guest has open are host
 * state that cannot be saved.
 */
import { virtioKind, type VirtMachine } from './virt.js';
import { SnapshotError, type DeviceState, type StagedVMStateDevice } from '../../migration/vmstate.js';
import { zeroFill } from '../../system/host-memory.js';

const FORMAT = 'vireo-virt-3';
const PAGE = 4096;
const DEVICES = ['clint', 'plic', 'uart', 'rtc', 'pcie'] as const;

interface Header {
  format: string;
  smp: number;
  ramBytes: number;
  romBytes: number;
  clockNs: number;
  /** Whether RAM follows the ROM. */
  ram: boolean;
  harts: number[];
  devices: Record<typeof DEVICES[number], DeviceState>;
  /** Each virtio device's transport state (holding the device's), by VirtioSlot name. */
  virtio: Record<string, DeviceState>;
}

/** Throws SnapshotError when the machine has state snapshots cannot hold (and live migration cannot move). */
export function checkSnapshottable(m: VirtMachine): void {
  // Only virtio-9p has no state to save: the files its guest has open are host state.
  const device = m.virtio.map((v) => v.transport.device).find((d) => d && !d.saveState);
  if (device) throw new SnapshotError(`snapshots of machines with ${virtioKind(device)} are not supported (the files it has open on the host cannot be saved)`);
}

/**
 * The machine's state as bytes (the harts must be stopped, their state on this thread),
 * with guest RAM unless `withRam` is false.
 */
export function saveVirtState(m: VirtMachine, withRam = true): Uint8Array {
  checkSnapshottable(m);
  const { cpus } = m;
  const harts = cpus.harts.map((h) => h.snapshot());
  const ram = withRam ? cpus.ram : new Uint8Array(0);
  const pages = Math.ceil(ram.length / PAGE);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  const stored: Uint8Array[] = [];
  const words = new Uint32Array(ram.buffer, ram.byteOffset, Math.floor(ram.length / 4));
  for (let p = 0; p < pages; p++) {
    let zero = true;
    for (let w = p * (PAGE / 4), end = Math.min(words.length, w + PAGE / 4); w < end; w++) {
      if (words[w] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) continue;
    bitmap[p >> 3]! |= 1 << (p & 7);
    stored.push(ram.subarray(p * PAGE, Math.min(ram.length, (p + 1) * PAGE)));
  }
  const header: Header = {
    format: FORMAT,
    smp: cpus.harts.length,
    ramBytes: cpus.ram.length,
    romBytes: cpus.rom.length,
    clockNs: m.clock.now(),
    ram: withRam,
    harts: harts.map((h) => h.length),
    devices: { clint: m.clint.saveState(), plic: m.plic.saveState(), uart: m.uart.saveState(), rtc: m.rtc.saveState(), pcie: m.pcie.bridge.saveState() },
    virtio: Object.fromEntries(m.virtio.map((v) => [v.name, v.transport.saveState()])),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, json.length, true);
  return Buffer.concat([len, json, ...harts, cpus.rom, ...(withRam ? [bitmap, ...stored] : [])]);
}

/**
 * Restores a state saveVirtState() made on a machine of the same configuration (the harts
 * must be stopped, the virtio devices drained). The configuration, every size and the
 * state of the PCIe bus and the virtio devices are checked before the machine is touched
 * (the gzip CRC has already caught damaged data); the other devices' fields as they load.
 */
export function loadVirtState(m: VirtMachine, name: string, data: Uint8Array): void {
  checkSnapshottable(m);
  const { cpus } = m;
  const corrupt = (): SnapshotError => new SnapshotError(`snapshot '${name}' is corrupt`);
  if (data.length < 4) throw corrupt();
  const jsonLen = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
  if (4 + jsonLen > data.length) throw corrupt();
  let h: Header;
  try {
    h = JSON.parse(new TextDecoder().decode(data.subarray(4, 4 + jsonLen))) as Header;
  } catch {
    throw corrupt();
  }
  if (!isObject(h) || h.format !== FORMAT) throw new SnapshotError(`snapshot '${name}' is not a virt machine snapshot of this Vireo version`);
  const mib = (n: number): string => `${Math.round(n / 2 ** 20)}M`;
  if (h.smp !== cpus.harts.length || h.ramBytes !== cpus.ram.length) {
    throw new SnapshotError(`snapshot '${name}' was taken with -smp ${h.smp} -m ${mib(h.ramBytes)}; this machine has -smp ${cpus.harts.length} -m ${mib(cpus.ram.length)}`);
  }
  if (h.romBytes !== cpus.rom.length || typeof h.ram !== 'boolean' || !Array.isArray(h.harts) || h.harts.length !== h.smp || !Number.isSafeInteger(h.clockNs) ||
    !isObject(h.devices) || !DEVICES.every((k) => isObject(h.devices[k])) || !isObject(h.virtio) || !Object.values(h.virtio).every(isObject)) throw corrupt();
  const list = (names: string[]): string => names.join(', ') || 'none';
  const saved = Object.keys(h.virtio);
  const here = m.virtio.map((v) => v.name);
  if (saved.length !== here.length || here.some((n) => !(n in h.virtio))) {
    throw new SnapshotError(`snapshot '${name}' was taken with virtio devices ${list(saved)}; this machine has ${list(here)}`);
  }
  /** Checks the state of the device called `what` (naming it in the error) and returns what restores it. */
  const prepare = (what: string, dev: StagedVMStateDevice, s: DeviceState): (() => void) => {
    try {
      return dev.prepareLoad(s);
    } catch (e) {
      throw e instanceof SnapshotError ? new SnapshotError(`snapshot '${name}': ${what}: ${e.message.replace(/^snapshot: /, '')}`) : e;
    }
  };
  const restore = [prepare('pcie', m.pcie.bridge, h.devices.pcie), ...m.virtio.map((v) => prepare(v.name, v.transport, h.virtio[v.name]!))];
  let at = 4 + jsonLen;
  const take = (n: number): Uint8Array => {
    if (!Number.isSafeInteger(n) || n < 0 || at + n > data.length) throw corrupt();
    const s = data.subarray(at, at + n);
    at += n;
    return s;
  };
  const harts = h.harts.map((n) => take(n));
  const rom = take(h.romBytes);
  const pages = h.ram ? Math.ceil(h.ramBytes / PAGE) : 0;
  const bitmap = take(Math.ceil(pages / 8));
  const isStored = (p: number): boolean => (bitmap[p >> 3]! & (1 << (p & 7))) !== 0;
  const pageBytes = (p: number): number => Math.min(PAGE, h.ramBytes - p * PAGE);
  let storedBytes = 0;
  for (let p = 0; p < pages; p++) if (isStored(p)) storedBytes += pageBytes(p);
  if (at + storedBytes !== data.length) throw corrupt();
  if (harts.some((b, i) => b.length !== cpus.harts[i]!.snapshotBytes)) throw corrupt();

  // From here on the machine changes.
  cpus.rom.set(rom);
  const ram = cpus.ram;
  for (let p = 0; p < pages; p++) {
    const len = pageBytes(p);
    if (isStored(p)) ram.set(take(len), p * PAGE);
    else zeroFill(ram.subarray(p * PAGE, p * PAGE + len));
  }
  cpus.jit?.flushAll();
  cpus.harts.forEach((hart, i) => hart.restore(harts[i]!));
  m.clock.warp(h.clockNs);
  const d = h.devices;
  m.clint.loadState(d.clint);
  m.plic.loadState(d.plic);
  m.uart.loadState(d.uart);
  m.rtc.loadState(d.rtc);
  for (const r of restore) r();
}

function isObject(v: unknown): v is DeviceState {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
