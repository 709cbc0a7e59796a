/**
 * QEMU's `key=value,...` option syntax (`-machine virt,dumpdtb=x`, `-drive file=a,,b.img`):
 * the first element may leave out its key, and a doubled comma is a literal comma.
 */
import { UserError } from './options.js';

/**
 * Splits QEMU's `key=value,key=value` list; the first element may omit `key=`, meaning
 * `implied`. `,,` is a literal comma inside a value. Keys in `shortBools` may also appear
 * bare (`server` for server=on) or with a `no` prefix (`nowait` for wait=off).
 */
export function keyval(value: string, implied: string, opt: string, shortBools: readonly string[] = []): Array<[string, string]> {
  if (value === '') throw new UserError(`${opt}: empty value`);
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c !== ',') cur += c;
    else if (value[i + 1] === ',') cur += value[++i];
    else {
      parts.push(cur);
      cur = '';
    }
  }
  parts.push(cur);
  return parts.map((part, i) => {
    const eq = part.indexOf('=');
    if (part === '') throw new UserError(`${opt} ${value}: empty element in the list`);
    if (eq < 0) {
      if (i === 0) return [implied, part];
      // QEMU's deprecated short-form booleans, still common in scripts: `server` is server=on, `nowait` wait=off.
      if (shortBools.includes(part)) return [part, 'on'];
      if (part.startsWith('no') && shortBools.includes(part.slice(2))) return [part.slice(2), 'off'];
      throw new UserError(`${opt} ${value}: expected '=' after '${part}'`);
    }
    const key = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (v === '') throw new UserError(`${opt} ${value}: '${key}' needs a value`);
    return [key, v];
  });
}
