/**
 * Flattened device tree writer: builds a DTB (version 17, last compatible 16) as
 * specified by the Devicetree Specification v0.4, chapter 5 "Flattened Devicetree
 * (DTB) Format". Nodes are written in order (beginNode/prop.../endNode), like
 * libfdt's sequential-write mode.
 *
 * Layout: 40-byte header, memory reservation map (8-byte aligned, empty but for its
 * terminating entry), structure block (4-byte tokens), strings block (deduplicated).
 */

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 0x1;
const FDT_END_NODE = 0x2;
const FDT_PROP = 0x3;
const FDT_END = 0x9;
const HEADER_SIZE = 40;
const RSVMAP_SIZE = 16; // just the terminating {address 0, size 0} entry

/** Splits a non-negative integer below 2^53 into [high, low] 32-bit cells. */
export function cells64(v: number): [number, number] {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`fdt: bad 64-bit cell value ${v}`);
  return [Math.floor(v / 2 ** 32), v >>> 0];
}

/** Sequential writer for one device tree blob. */
export class FdtBuilder {
  private buf = new Uint8Array(4096);
  private len = 0;
  private depth = 0;
  private done = false;
  private readonly strings: number[] = [];
  private readonly stringOffsets = new Map<string, number>();
  private nextPhandle = 1;

  /** @param bootCpuidPhys physical id of the boot CPU, stored in the header. */
  constructor(private readonly bootCpuidPhys = 0) {}

  /** Returns a fresh phandle (1, 2, ...), to be stored with propU32('phandle', ...). */
  allocPhandle(): number {
    return this.nextPhandle++;
  }

  /** Opens a node; the root node has the empty name. */
  beginNode(name: string): void {
    if (this.done || (this.depth === 0 && this.len > 0)) throw new Error('fdt: only one root node');
    this.token(FDT_BEGIN_NODE);
    this.raw(new TextEncoder().encode(name + '\0'));
    this.depth++;
  }

  /** Closes the node opened last. */
  endNode(): void {
    if (this.depth === 0) throw new Error('fdt: endNode without beginNode');
    this.token(FDT_END_NODE);
    this.depth--;
  }

  /** A property with no value (e.g. "interrupt-controller"). */
  propEmpty(name: string): void {
    this.propBytes(name, new Uint8Array(0));
  }

  /** A single 32-bit cell. */
  propU32(name: string, v: number): void {
    this.propCells(name, [v]);
  }

  /** A 64-bit value as two cells (high first). */
  propU64(name: string, v: number): void {
    this.propCells(name, cells64(v));
  }

  /** A list of 32-bit cells, big-endian. */
  propCells(name: string, cells: readonly number[]): void {
    const bytes = new Uint8Array(cells.length * 4);
    const dv = new DataView(bytes.buffer);
    cells.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c > 0xffffffff) throw new RangeError(`fdt: bad cell ${c} in ${name}`);
      dv.setUint32(i * 4, c);
    });
    this.propBytes(name, bytes);
  }

  /**
   * A list of 64-bit values, each written as two cells: for "reg" and "ranges" with
   * #address-cells = #size-cells = 2, e.g. propCells64('reg', [base, size]).
   */
  propCells64(name: string, values: readonly number[]): void {
    this.propCells(name, values.flatMap(cells64));
  }

  /** A NUL-terminated string. */
  propString(name: string, s: string): void {
    this.propStrings(name, [s]);
  }

  /** A stringlist: NUL-terminated strings back to back. */
  propStrings(name: string, list: readonly string[]): void {
    this.propBytes(name, new TextEncoder().encode(list.map((s) => s + '\0').join('')));
  }

  /** A property with raw bytes as its value. */
  propBytes(name: string, value: Uint8Array): void {
    if (this.depth === 0) throw new Error(`fdt: property ${name} outside a node`);
    this.token(FDT_PROP);
    this.token(value.length);
    this.token(this.stringOffset(name));
    this.raw(value);
  }

  /** Ends the tree and returns the complete blob. The builder cannot be used afterwards. */
  finish(): Uint8Array {
    if (this.done || this.len === 0 || this.depth !== 0) throw new Error('fdt: unbalanced or empty tree');
    this.token(FDT_END);
    this.done = true;
    const structOff = HEADER_SIZE + RSVMAP_SIZE;
    const stringsOff = structOff + this.len;
    const total = stringsOff + this.strings.length;
    const out = new Uint8Array(total);
    const dv = new DataView(out.buffer);
    const header = [
      FDT_MAGIC, total, structOff, stringsOff, HEADER_SIZE, 17, 16,
      this.bootCpuidPhys, this.strings.length, this.len,
    ];
    header.forEach((v, i) => dv.setUint32(i * 4, v));
    // The reservation map is already zero: only its terminating entry.
    out.set(this.buf.subarray(0, this.len), structOff);
    out.set(this.strings, stringsOff);
    return out;
  }

  private stringOffset(name: string): number {
    let off = this.stringOffsets.get(name);
    if (off === undefined) {
      off = this.strings.length;
      for (const b of new TextEncoder().encode(name)) this.strings.push(b);
      this.strings.push(0);
      this.stringOffsets.set(name, off);
    }
    return off;
  }

  private token(v: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer).setUint32(this.len, v);
    this.len += 4;
  }

  /** Appends bytes, zero-padded to the next 4-byte boundary. */
  private raw(bytes: Uint8Array): void {
    const padded = (bytes.length + 3) & ~3;
    this.reserve(padded);
    this.buf.set(bytes, this.len);
    this.buf.fill(0, this.len + bytes.length, this.len + padded);
    this.len += padded;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }
}
