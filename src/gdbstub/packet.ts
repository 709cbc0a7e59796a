/**
 * The GDB remote serial protocol's framing (GDB manual, "Remote Protocol: Overview"):
 * packets `$data#cs` with a two-digit hex checksum (the sum of the data bytes modulo 256),
 * the `+`/`-` acknowledgements, the out-of-band interrupt byte 0x03 (Ctrl-C), run-length
 * encoding (`c*n`: n - 29 more copies of c) and the `}` escape of binary data (`X`
 * packets, qXfer replies). The decoder takes bytes in any chunking and never throws:
 * anything malformed becomes one `bad` input, which the stub answers with `-`.
 */

/** The byte gdb sends between packets to interrupt a running target. */
export const INTERRUPT_BYTE = 0x03;

/** One thing read from gdb. */
export type GdbInput =
  /** A packet whose checksum matched, run-length encoding expanded (escapes are left to the command). */
  | { kind: 'packet'; data: Buffer }
  /** A packet with a wrong checksum, a malformed repeat or more than the size limit. */
  | { kind: 'bad' }
  | { kind: 'ack' }
  | { kind: 'nack' }
  | { kind: 'interrupt' };

const DOLLAR = 0x24;
const HASH = 0x23;
const STAR = 0x2a;
const BRACE = 0x7d;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The modulo-256 sum of `data`. */
export function checksum(data: Uint8Array): number {
  let sum = 0;
  for (const b of data) sum = (sum + b) & 0xff;
  return sum;
}

/**
 * Expands run-length encoding: `c*n` stands for c followed by n - 29 more copies
 * (n printable, 3 to 97 repeats). Null when a `*` has no character before it or no
 * valid count after it.
 */
export function decodeRle(raw: Uint8Array): Buffer | null {
  if (!raw.includes(STAR)) return Buffer.from(raw);
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b !== STAR) {
      out.push(b);
      continue;
    }
    const n = raw[i + 1];
    if (out.length === 0 || n === undefined || n < 32 || n > 126) return null;
    const c = out[out.length - 1]!;
    for (let k = 0; k < n - 29; k++) out.push(c);
    i++;
  }
  return Buffer.from(out);
}

/** Frames `payload` as `$payload#cs`. The payload must already be escaped where it is binary. */
export function encodePacket(payload: string | Uint8Array): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const out = Buffer.alloc(data.length + 4);
  out[0] = DOLLAR;
  out.set(data, 1);
  out[data.length + 1] = HASH;
  out.write(checksum(data).toString(16).padStart(2, '0'), data.length + 2, 'latin1');
  return out;
}

/** Escapes binary data for a packet: `#`, `$`, `}` and `*` become `}` and the byte XOR 0x20. */
export function escapeBinary(data: Uint8Array): Buffer {
  const out: number[] = [];
  for (const b of data) {
    if (b === HASH || b === DOLLAR || b === BRACE || b === STAR) out.push(BRACE, b ^ 0x20);
    else out.push(b);
  }
  return Buffer.from(out);
}

/** Undoes {@link escapeBinary}; null when the data ends inside an escape. */
export function unescapeBinary(data: Uint8Array): Buffer | null {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b !== BRACE) {
      out.push(b);
      continue;
    }
    if (i + 1 >= data.length) return null;
    out.push(data[++i]! ^ 0x20);
  }
  return Buffer.from(out);
}

/** Bytes as lower-case hex. */
export function toHex(data: Uint8Array): string {
  return Buffer.from(data).toString('hex');
}

/** Hex text as bytes; null unless it is an even number of hex digits. */
export function fromHex(text: string): Buffer | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  return Buffer.from(text, 'hex');
}

/**
 * Splits gdb's byte stream into {@link GdbInput}s. Between packets only `$`, `+`, `-` and
 * 0x03 mean anything (other bytes are skipped, as gdb's own reader does); a `$` inside a
 * packet starts a new one; a packet longer than `maxLen` is read to its end and reported bad.
 */
export class PacketDecoder {
  private state: 'idle' | 'data' | 'cs1' | 'cs2' = 'idle';
  private readonly buf: Buffer;
  private len = 0;
  private overflow = false;
  private cs = 0;

  constructor(readonly maxLen: number) {
    this.buf = Buffer.alloc(maxLen);
  }

  push(chunk: Uint8Array): GdbInput[] {
    const out: GdbInput[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case 'idle':
          if (b === DOLLAR) this.start();
          else if (b === 0x2b) out.push({ kind: 'ack' });
          else if (b === 0x2d) out.push({ kind: 'nack' });
          else if (b === INTERRUPT_BYTE) out.push({ kind: 'interrupt' });
          break;
        case 'data':
          if (b === HASH) this.state = 'cs1';
          else if (b === DOLLAR) this.start();
          else if (this.len < this.maxLen) this.buf[this.len++] = b;
          else this.overflow = true;
          break;
        case 'cs1':
          this.cs = hexValue(b) << 4;
          this.state = hexValue(b) < 0 ? 'idle' : 'cs2';
          if (this.state === 'idle') out.push({ kind: 'bad' });
          break;
        case 'cs2': {
          this.state = 'idle';
          const raw = this.buf.subarray(0, this.len);
          const data = hexValue(b) < 0 || this.overflow || (this.cs | hexValue(b)) !== checksum(raw) ? null : decodeRle(raw);
          out.push(data === null ? { kind: 'bad' } : { kind: 'packet', data });
          break;
        }
      }
    }
    return out;
  }

  private start(): void {
    this.state = 'data';
    this.len = 0;
    this.overflow = false;
  }
}
