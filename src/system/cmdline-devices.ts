/**
 * The device part of the command line, in QEMU's spellings: `-drive`, `-blockdev`,
 * `-netdev` and `-device`, and the cross-checks between them (every device names an
 * existing back end, no back end is used twice, no id is given twice).
 */
import { keyval } from './keyval.js';
import { SIMPLEFB_MAX } from '../hw/display/simplefb.js';
import { virtioInputKind } from '../hw/virtio/virtio-input.js';
import { check9pDevice, checkFsdevs, parse9pProperty } from '../fsdev/cmdline.js';
import { UserError, DEVICE_DRIVERS, type DeviceDriver, type DriveOptions, type HostForward, type NetdevOptions, type SocketAddr, type VmOptions } from './options.js';

const onOff = (v: string, what: string): boolean => {
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw new UserError(`${what}: '${v}' is not on or off`);
};

function cacheMode(v: string, what: string): DriveOptions['cache'] {
  // writethrough/directsync behave as writeback + flush-on-every-write in QEMU; Vireo honours guest flushes only.
  if (v === 'writeback' || v === 'none' || v === 'unsafe') return v;
  throw new UserError(`${what}: cache mode '${v}' is not supported (writeback, none or unsafe)`);
}

function format(v: string, what: string): 'raw' | 'qcow2' {
  if (v === 'raw' || v === 'qcow2') return v;
  throw new UserError(`${what}: unknown format '${v}' (raw or qcow2)`);
}

/** `-drive file=F[,format=raw|qcow2][,if=virtio|none][,id=ID][,readonly=on][,cache=...]` */
export function parseDrive(o: VmOptions, value: string, opt: string): void {
  const what = `${opt} ${value}`;
  let file: string | undefined;
  let fmt: DriveOptions['format'];
  let iface = 'virtio';
  let id: string | undefined;
  let readOnly = false;
  let cache: DriveOptions['cache'] = 'writeback';
  for (const [k, v] of keyval(value, 'file', opt)) {
    if (k === 'file') file = v;
    else if (k === 'format') fmt = format(v, what);
    else if (k === 'if') iface = v;
    else if (k === 'id') id = v;
    else if (k === 'readonly') readOnly = onOff(v, what);
    else if (k === 'cache') cache = cacheMode(v, what);
    else if (k === 'media' && v === 'disk') continue;
    else throw new UserError(`${what}: drive property '${k}' is not supported`);
  }
  if (file === undefined) throw new UserError(`${what}: needs file=`);
  if (iface !== 'virtio' && iface !== 'none') throw new UserError(`${what}: if=${iface} is not supported (virtio or none)`);
  const driveId = id ?? `drive${o.drives.length}`;
  o.drives.push({ id: driveId, file, format: fmt, readOnly, cache });
  // if=virtio plugs a virtio-blk into the board's virtio-mmio transport, as QEMU does on virt and microvm.
  if (iface === 'virtio') o.devices.push({ driver: 'virtio-blk-device', drive: driveId });
}

/** `-blockdev driver=raw|qcow2,node-name=N,file=F|file.filename=F[,read-only=on][,cache.direct=on]` */
export function parseBlockdev(o: VmOptions, value: string, opt: string): void {
  const what = `${opt} ${value}`;
  let fmt: DriveOptions['format'];
  let id: string | undefined;
  let file: string | undefined;
  let readOnly = false;
  let cache: DriveOptions['cache'] = 'writeback';
  for (const [k, v] of keyval(value, 'driver', opt)) {
    if (k === 'driver') fmt = v === 'file' ? 'raw' : format(v, what);
    else if (k === 'node-name') id = v;
    else if (k === 'file' || k === 'filename' || k === 'file.filename') file = v;
    else if (k === 'file.driver' && v === 'file') continue;
    else if (k === 'read-only') readOnly = onOff(v, what);
    else if (k === 'cache.direct') cache = onOff(v, what) ? 'none' : 'writeback';
    else throw new UserError(`${what}: blockdev property '${k}' is not supported`);
  }
  if (id === undefined) throw new UserError(`${what}: needs node-name=`);
  if (file === undefined) throw new UserError(`${what}: needs file= (or file.filename=)`);
  o.drives.push({ id, file, format: fmt, readOnly, cache });
}

/** `hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` */
function parseHostfwd(v: string, what: string): HostForward {
  const m = /^(tcp|udp)?:([^:]*):(\d+)-([^:]*):(\d+)$/.exec(v);
  const port = (s: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`${what}: bad port ${s} in hostfwd`);
    return n;
  };
  if (!m) throw new UserError(`${what}: bad hostfwd '${v}' (expected tcp:[hostaddr]:hostport-[guestaddr]:guestport)`);
  return { proto: (m[1] ?? 'tcp') as 'tcp' | 'udp', hostAddr: m[2]!, hostPort: port(m[3]!), guestAddr: m[4]!, guestPort: port(m[5]!) };
}

function hostPort(v: string, what: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  const port = Number(v.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`${what}: '${v}' is not [HOST]:PORT`);
  return { host: v.slice(0, i) || '127.0.0.1', port };
}

/** `-netdev user,id=ID[,hostfwd=...]...` or `-netdev socket,id=ID,listen=[HOST]:PORT|connect=HOST:PORT` */
export function parseNetdev(o: VmOptions, value: string, opt: string): void {
  const what = `${opt} ${value}`;
  const pairs = keyval(value, 'type', opt);
  const type = pairs[0]![0] === 'type' ? pairs[0]![1] : undefined;
  if (type === 'stream' || type === 'dgram') {
    o.netdevs.push(parseSocketNetdev(type, pairs.slice(1), what));
    return;
  }
  let id: string | undefined;
  const hostfwd: HostForward[] = [];
  let listen: { host: string; port: number } | undefined;
  let connect: { host: string; port: number } | undefined;
  let udp: { host: string; port: number } | undefined;
  let localaddr: { host: string; port: number } | undefined;
  for (const [k, v] of pairs.slice(type === undefined ? 0 : 1)) {
    if (k === 'id') id = v;
    else if (k === 'hostfwd' && type === 'user') hostfwd.push(parseHostfwd(v, what));
    else if (k === 'listen' && type === 'socket') listen = hostPort(v, what);
    else if (k === 'connect' && type === 'socket') connect = hostPort(v, what);
    else if (k === 'udp' && type === 'socket') udp = hostPort(v, what);
    else if (k === 'localaddr' && type === 'socket') localaddr = hostPort(v, what);
    else throw new UserError(`${what}: netdev property '${k}' is not supported`);
  }
  if (id === undefined) throw new UserError(`${what}: needs id=`);
  let netdev: NetdevOptions;
  if (type === 'user') netdev = { id, kind: 'user', hostfwd };
  else if (type === 'socket' && (udp !== undefined || localaddr !== undefined)) {
    if (udp === undefined || localaddr === undefined || listen !== undefined || connect !== undefined) {
      throw new UserError(`${what}: udp= needs localaddr= (and neither goes with listen= or connect=)`);
    }
    netdev = { id, kind: 'dgram', local: localaddr, remote: udp };
  } else if (type === 'socket') {
    if ((listen === undefined) === (connect === undefined)) throw new UserError(`${what}: give exactly one of listen= and connect=`);
    netdev = { id, kind: 'socket', listen, connect };
  } else throw new UserError(`${what}: netdev type '${type ?? ''}' is not supported (user, socket, stream or dgram)`);
  o.netdevs.push(netdev);
}

/** The `PREFIX.type=inet,PREFIX.host=H,PREFIX.port=P` / `PREFIX.type=unix,PREFIX.path=P` address of -netdev stream/dgram. */
function netAddress(m: Map<string, string> | undefined, prefix: string, what: string, unix: boolean): SocketAddr | undefined {
  if (m === undefined) return undefined;
  const type = m.get('type');
  const only = (keys: string[]) => {
    for (const k of m.keys()) if (k !== 'type' && !keys.includes(k)) throw new UserError(`${what}: '${prefix}.${k}' does not go with ${prefix}.type=${type}`);
  };
  if (type === 'inet') {
    only(['host', 'port']);
    const host = m.get('host');
    const port = m.get('port');
    if (host === undefined || port === undefined) throw new UserError(`${what}: ${prefix}.type=inet needs ${prefix}.host= and ${prefix}.port=`);
    return { type: 'inet', ...hostPort(`${host.replace(/^\[(.*)\]$/, '$1')}:${port}`, what) };
  }
  if (type === 'unix') {
    if (!unix) throw new UserError(`${what}: ${prefix}.type=unix is not supported for dgram (use inet)`);
    only(['path']);
    const path = m.get('path');
    if (path === undefined) throw new UserError(`${what}: ${prefix}.type=unix needs ${prefix}.path=`);
    return { type: 'unix', path };
  }
  if (type === undefined) throw new UserError(`${what}: needs ${prefix}.type=inet${unix ? ' or unix' : ''}`);
  throw new UserError(`${what}: ${prefix}.type=${type} is not supported (inet${unix ? ' or unix' : ''})`);
}

/**
 * `-netdev stream,id=ID[,server=on|off],addr.type=inet,addr.host=H,addr.port=P` (or
 * `addr.type=unix,addr.path=P`) and `-netdev dgram,id=ID,local.type=inet,local.host=H,
 * local.port=P,remote.type=inet,remote.host=H,remote.port=P`, QEMU 7.2's spellings.
 */
function parseSocketNetdev(type: 'stream' | 'dgram', pairs: Array<[string, string]>, what: string): NetdevOptions {
  let id: string | undefined;
  let server = false;
  const prefixes = type === 'stream' ? ['addr'] : ['local', 'remote'];
  const addrs = new Map<string, Map<string, string>>();
  for (const [k, v] of pairs) {
    const dot = k.indexOf('.');
    const prefix = k.slice(0, dot);
    if (k === 'id') id = v;
    else if (k === 'server' && type === 'stream') server = onOff(v, what);
    else if (dot > 0 && prefixes.includes(prefix) && ['type', 'host', 'port', 'path'].includes(k.slice(dot + 1))) {
      if (!addrs.has(prefix)) addrs.set(prefix, new Map());
      addrs.get(prefix)!.set(k.slice(dot + 1), v);
    } else throw new UserError(`${what}: netdev property '${k}' is not supported`);
  }
  if (id === undefined) throw new UserError(`${what}: needs id=`);
  if (type === 'stream') {
    const addr = netAddress(addrs.get('addr'), 'addr', what, true);
    if (addr === undefined) throw new UserError(`${what}: needs addr.type=inet,addr.host=HOST,addr.port=PORT or addr.type=unix,addr.path=PATH`);
    return { id, kind: 'stream', server, addr };
  }
  const local = netAddress(addrs.get('local'), 'local', what, false);
  const remote = netAddress(addrs.get('remote'), 'remote', what, false);
  if (remote === undefined || remote.type !== 'inet') throw new UserError(`${what}: needs remote.type=inet,remote.host=HOST,remote.port=PORT`);
  if (/^(22[4-9]|23\d)\./.test(remote.host)) throw new UserError(`${what}: multicast remote addresses are not supported`);
  if (local === undefined || local.type !== 'inet') throw new UserError(`${what}: needs local.type=inet,local.host=HOST,local.port=PORT`);
  return { id, kind: 'dgram', local: { host: local.host, port: local.port }, remote: { host: remote.host, port: remote.port } };
}

function macAddress(v: string, what: string): number[] {
  const parts = v.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new UserError(`${what}: bad MAC address '${v}'`);
  return parts.map((p) => parseInt(p, 16));
}

/** QEMU's default max_ports of a virtio-serial device, and Vireo's largest. */
const SERIAL_DEFAULT_PORTS = 31;
const SERIAL_MAX_PORTS = 31;
const SERIAL_MAX_NAME = 255;

const isSerialPort = (driver: string): boolean => driver === 'virtconsole' || driver === 'virtserialport';

function maxPorts(v: string, what: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= SERIAL_MAX_PORTS)) throw new UserError(`${what}: max_ports must be 1 to ${SERIAL_MAX_PORTS}`);
  return n;
}

/** virtconsole/virtserialport properties: chardev=, name=, nr=, bus=. False for any other key. */
function parsePortProperty(d: VmOptions['devices'][number], k: string, v: string, what: string): boolean {
  if (k === 'chardev') d.chardev = v;
  else if (k === 'bus') d.bus = v;
  else if (k === 'name') {
    if (v.length > SERIAL_MAX_NAME || v.includes('\0')) throw new UserError(`${what}: name is longer than ${SERIAL_MAX_NAME} characters`);
    d.name = v;
  } else if (k === 'nr') {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!(n >= 0 && n < SERIAL_MAX_PORTS)) throw new UserError(`${what}: nr must be a port number, 0 to ${SERIAL_MAX_PORTS - 1}`);
    d.nr = n;
  } else return false;
  return true;
}

/**
 * Puts every virtconsole/virtserialport on a virtio-serial device (bus=ID.0, or the
 * first one) and gives it a port number as QEMU does: the first console without nr= gets
 * port 0, everything else the lowest free port from 1 up. Names are unique.
 */
function checkSerialPorts(o: VmOptions): void {
  const buses = o.devices.flatMap((d, i) => (d.driver.startsWith('virtio-serial') ? [i] : []));
  const taken = new Map<number, Set<number>>();
  const names = new Set<string>();
  for (const d of o.devices) {
    if (!isSerialPort(d.driver)) continue;
    const what = `-device ${d.driver}`;
    let bus: number | undefined = buses[0];
    if (d.bus !== undefined) {
      bus = buses.find((i) => o.devices[i]!.id !== undefined && (d.bus === `${o.devices[i]!.id}.0` || d.bus === o.devices[i]!.id));
      if (bus === undefined) throw new UserError(`${what}: bus '${d.bus}' not found (a virtio-serial device with id=ID has bus ID.0)`);
    }
    if (bus === undefined) throw new UserError(`${what}: no virtio-serial bus (add -device virtio-serial-device or -device virtio-serial-pci)`);
    const max = o.devices[bus]!.maxPorts ?? SERIAL_DEFAULT_PORTS;
    const ids = taken.get(bus) ?? new Set<number>();
    taken.set(bus, ids);
    let nr = d.nr;
    if (nr === undefined) {
      if (d.driver === 'virtconsole' && !ids.has(0)) nr = 0;
      else for (nr = 1; ids.has(nr); nr++);
      if (nr >= max) throw new UserError(`${what}: the virtio-serial bus has no free port (max_ports=${max})`);
    } else {
      if (nr === 0 && d.driver !== 'virtconsole') throw new UserError(`${what}: port 0 is reserved for a virtconsole`);
      if (nr >= max) throw new UserError(`${what}: nr=${nr} is out of range (max_ports=${max})`);
      if (ids.has(nr)) throw new UserError(`${what}: port ${nr} is already in use`);
    }
    ids.add(nr);
    d.nr = nr;
    d.serialBus = bus;
    if (d.name !== undefined) {
      if (names.has(d.name)) throw new UserError(`${what}: a port named '${d.name}' already exists`);
      names.add(d.name);
    }
  }
}

function pixels(v: string, what: string, k: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= SIMPLEFB_MAX)) throw new UserError(`${what}: ${k} must be 1 to ${SIMPLEFB_MAX} pixels`);
  return n;
}

/** virtio-blk's queue-size=: as QEMU, above 2 and a power of two, at most 1024. */
function queueSize(v: string, what: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n > 2)) throw new UserError(`${what}: invalid queue-size property (${v}), must be > 2`);
  if (n > 1024 || (n & (n - 1)) !== 0) throw new UserError(`${what}: invalid queue-size property (${v}), must be a power of 2 (max 1024)`);
  return n;
}

/** `-device DRIVER[,id=ID][,drive=ID][,queue-size=N][,netdev=ID][,mac=MAC]` (and `help`) */
export function parseDevice(o: VmOptions, value: string, opt: string): string | void {
  const what = `${opt} ${value}`;
  const pairs = keyval(value, 'driver', opt);
  let driver = pairs.find(([k]) => k === 'driver')?.[1];
  if (driver === 'help' || driver === '?') return `Devices supported in Vireo:\n${DEVICE_DRIVERS.join('\n')}`;
  if (driver === 'virtio-serial') driver = 'virtio-serial-pci'; // QEMU's alias
  if (!DEVICE_DRIVERS.includes(driver as DeviceDriver)) throw new UserError(`${what}: '${driver ?? ''}' is not a valid device model name (-device help lists them)`);
  const d: VmOptions['devices'][number] = { driver: driver as DeviceDriver };
  for (const [k, v] of pairs) {
    if (k === 'driver') continue;
    if (k === 'id') d.id = v;
    else if (k === 'drive' && driver!.startsWith('virtio-blk')) d.drive = v;
    else if (k === 'queue-size' && driver!.startsWith('virtio-blk')) d.queueSize = queueSize(v, what);
    else if (k === 'netdev' && driver!.startsWith('virtio-net')) d.netdev = v;
    else if (k === 'mac' && driver!.startsWith('virtio-net')) d.mac = macAddress(v, what);
    else if (k === 'max_ports' && driver!.startsWith('virtio-serial')) d.maxPorts = maxPorts(v, what);
    else if (isSerialPort(driver!) && parsePortProperty(d, k, v, what)) continue;
    else if (driver!.startsWith('virtio-9p') && parse9pProperty(d, k, v, what)) continue;
    else if (k === 'serial' && virtioInputKind(driver!)) d.serial = v;
    else if ((k === 'width' || k === 'height') && driver === 'simple-framebuffer') d[k] = pixels(v, what, k);
    else if (k === 'bus' || k === 'addr') continue; // placement is the board's business
    else throw new UserError(`${what}: property '${k}' not found for ${driver}`);
  }
  if (driver!.startsWith('virtio-9p')) check9pDevice(d, what);
  if (driver!.startsWith('virtio-blk') && d.drive === undefined) throw new UserError(`${what}: needs drive=`);
  if (driver!.startsWith('virtio-net') && d.netdev === undefined) throw new UserError(`${what}: needs netdev=`);
  o.devices.push(d);
}

/** Cross-checks after the whole command line is read. */
export function checkDevices(o: VmOptions): void {
  const ids = new Set<string>();
  for (const d of o.drives) {
    if (ids.has(d.id)) throw new UserError(`-drive/-blockdev: duplicate id '${d.id}'`);
    ids.add(d.id);
  }
  const netIds = new Set<string>();
  for (const n of o.netdevs) {
    if (netIds.has(n.id)) throw new UserError(`-netdev: duplicate id '${n.id}'`);
    netIds.add(n.id);
  }
  const used = new Set<string>();
  for (const d of o.devices) {
    const ref = d.drive ?? d.netdev;
    if (ref === undefined) continue;
    const known = d.drive !== undefined ? ids.has(ref) : netIds.has(ref);
    if (!known) throw new UserError(`-device ${d.driver}: ${d.drive !== undefined ? 'drive' : 'netdev'} '${ref}' not found`);
    if (used.has(ref)) throw new UserError(`-device ${d.driver}: '${ref}' is already in use by another device`);
    used.add(ref);
  }
  if (o.devices.filter((d) => d.driver === 'simple-framebuffer').length > 1) throw new UserError('-device simple-framebuffer: the machine has room for one');
  checkFsdevs(o);
  checkSerialPorts(o);
}
