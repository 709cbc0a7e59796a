/**
 * The device part of the command line, in QEMU's spellings: `-drive`, `-blockdev`,
 * `-netdev` and `-device`, and the cross-checks between them (every device names an
 * existing back end, no back end is used twice, no id is given twice).
 */
import { keyval } from './keyval.js';
import { UserError, DEVICE_DRIVERS, type DeviceDriver, type DriveOptions, type HostForward, type NetdevOptions, type VmOptions } from './options.js';

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
  let id: string | undefined;
  const hostfwd: HostForward[] = [];
  let listen: { host: string; port: number } | undefined;
  let connect: { host: string; port: number } | undefined;
  for (const [k, v] of pairs.slice(type === undefined ? 0 : 1)) {
    if (k === 'id') id = v;
    else if (k === 'hostfwd' && type === 'user') hostfwd.push(parseHostfwd(v, what));
    else if (k === 'listen' && type === 'socket') listen = hostPort(v, what);
    else if (k === 'connect' && type === 'socket') connect = hostPort(v, what);
    else throw new UserError(`${what}: netdev property '${k}' is not supported`);
  }
  if (id === undefined) throw new UserError(`${what}: needs id=`);
  let netdev: NetdevOptions;
  if (type === 'user') netdev = { id, kind: 'user', hostfwd };
  else if (type === 'socket') {
    if ((listen === undefined) === (connect === undefined)) throw new UserError(`${what}: give exactly one of listen= and connect=`);
    netdev = { id, kind: 'socket', listen, connect };
  } else throw new UserError(`${what}: netdev type '${type ?? ''}' is not supported (user or socket)`);
  o.netdevs.push(netdev);
}

function macAddress(v: string, what: string): number[] {
  const parts = v.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new UserError(`${what}: bad MAC address '${v}'`);
  return parts.map((p) => parseInt(p, 16));
}

/** `-device DRIVER[,id=ID][,drive=ID][,netdev=ID][,mac=MAC]` (and `help`) */
export function parseDevice(o: VmOptions, value: string, opt: string): string | void {
  const what = `${opt} ${value}`;
  const pairs = keyval(value, 'driver', opt);
  const driver = pairs.find(([k]) => k === 'driver')?.[1];
  if (driver === 'help' || driver === '?') return `Devices supported in Vireo:\n${DEVICE_DRIVERS.join('\n')}`;
  if (!DEVICE_DRIVERS.includes(driver as DeviceDriver)) throw new UserError(`${what}: '${driver ?? ''}' is not a valid device model name (-device help lists them)`);
  const d: VmOptions['devices'][number] = { driver: driver as DeviceDriver };
  for (const [k, v] of pairs) {
    if (k === 'driver') continue;
    if (k === 'id') d.id = v;
    else if (k === 'drive' && driver!.startsWith('virtio-blk')) d.drive = v;
    else if (k === 'netdev' && driver!.startsWith('virtio-net')) d.netdev = v;
    else if (k === 'mac' && driver!.startsWith('virtio-net')) d.mac = macAddress(v, what);
    else if (k === 'bus' || k === 'addr') continue; // placement is the board's business
    else throw new UserError(`${what}: property '${k}' not found for ${driver}`);
  }
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
}
