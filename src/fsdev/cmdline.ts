/**
 * The command line of shared directories, in QEMU's spellings:
 *
 *     -fsdev local,id=ID,path=DIR,security_model=passthrough|mapped-xattr|mapped-file|none[,readonly=on]
 *     -device virtio-9p-pci|virtio-9p-device,fsdev=ID,mount_tag=TAG
 *     -virtfs local,path=DIR,mount_tag=TAG,security_model=...[,readonly=on][,id=ID]
 *
 * -virtfs is both at once: an fsdev named ID (default: the mount tag) and a
 * virtio-9p-device (on virtio-mmio, as `-drive if=virtio` does) exporting it.
 */
import { keyval } from '../system/keyval.js';
import { UserError, SECURITY_MODELS, type DeviceOptions, type FsdevOptions, type SecurityModel, type VmOptions } from '../system/options.js';
import { MAX_TAG_LEN } from './9p-proto.js';

const MODELS = 'passthrough, mapped-xattr, mapped-file or none';

function onOff(v: string, what: string): boolean {
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw new UserError(`${what}: '${v}' is not on or off`);
}

function mountTag(v: string, what: string): string {
  if (Buffer.byteLength(v) > MAX_TAG_LEN) throw new UserError(`${what}: mount_tag '${v}' is longer than ${MAX_TAG_LEN} bytes`);
  return v;
}

/** The keys -fsdev and -virtfs share; `tag` collects mount_tag= (for -virtfs only). */
function parseLocal(value: string, opt: string, virtfs: boolean): { fs: FsdevOptions; tag?: string } {
  const what = `${opt} ${value}`;
  const pairs = keyval(value, 'fsdriver', opt);
  let driver: string | undefined;
  let id: string | undefined;
  let path: string | undefined;
  let model: SecurityModel | undefined;
  let readOnly = false;
  let tag: string | undefined;
  for (const [k, v] of pairs) {
    if (k === 'fsdriver') driver = v;
    else if (k === 'id') id = v;
    else if (k === 'path') path = v;
    else if (k === 'readonly') readOnly = onOff(v, what);
    else if (k === 'security_model') {
      if (!(SECURITY_MODELS as readonly string[]).includes(v)) throw new UserError(`${what}: unknown security_model '${v}' (${MODELS})`);
      model = v as SecurityModel;
    } else if (k === 'mount_tag' && virtfs) tag = mountTag(v, what);
    else throw new UserError(`${what}: ${virtfs ? 'virtfs' : 'fsdev'} property '${k}' is not supported`);
  }
  if (driver !== 'local') throw new UserError(`${what}: fsdev driver '${driver ?? ''}' is not supported (local)`);
  if (path === undefined) throw new UserError(`${what}: needs path=`);
  if (model === undefined) throw new UserError(`${what}: needs security_model= (${MODELS})`);
  if (virtfs && tag === undefined) throw new UserError(`${what}: needs mount_tag=`);
  id ??= tag;
  if (id === undefined) throw new UserError(`${what}: needs id=`);
  return { fs: { id, path, securityModel: model, readOnly }, tag };
}

/** `-fsdev local,id=ID,path=DIR,security_model=M[,readonly=on]` */
export function parseFsdev(o: VmOptions, value: string, opt: string): void {
  (o.fsdevs ??= []).push(parseLocal(value, opt, false).fs);
}

/** `-virtfs local,path=DIR,mount_tag=TAG,security_model=M[,readonly=on][,id=ID]` */
export function parseVirtfs(o: VmOptions, value: string, opt: string): void {
  const { fs, tag } = parseLocal(value, opt, true);
  (o.fsdevs ??= []).push(fs);
  o.devices.push({ driver: 'virtio-9p-device', fsdev: fs.id, mountTag: tag });
}

/** A -device property of virtio-9p-*; false if `k` is not one. */
export function parse9pProperty(d: DeviceOptions, k: string, v: string, what: string): boolean {
  if (k === 'fsdev') d.fsdev = v;
  else if (k === 'mount_tag') d.mountTag = mountTag(v, what);
  else return false;
  return true;
}

/** After the properties of a -device virtio-9p-*: both are needed. */
export function check9pDevice(d: DeviceOptions, what: string): void {
  if (d.fsdev === undefined) throw new UserError(`${what}: needs fsdev=`);
  if (d.mountTag === undefined) throw new UserError(`${what}: needs mount_tag=`);
}

/** Cross-checks: fsdev ids are unique, every virtio-9p names one, and no fsdev has two devices. */
export function checkFsdevs(o: VmOptions): void {
  const ids = new Set<string>();
  for (const f of o.fsdevs ?? []) {
    if (ids.has(f.id)) throw new UserError(`-fsdev: duplicate id '${f.id}'`);
    ids.add(f.id);
  }
  const used = new Set<string>();
  for (const d of o.devices) {
    if (d.fsdev === undefined) continue;
    if (!ids.has(d.fsdev)) throw new UserError(`-device ${d.driver}: fsdev '${d.fsdev}' not found`);
    if (used.has(d.fsdev)) throw new UserError(`-device ${d.driver}: fsdev '${d.fsdev}' is already in use by another device`);
    used.add(d.fsdev);
  }
}
