/**
 * A streaming splitter for the JSON messages of QMP (QEMU's json-streamer): bytes arrive
 * in arbitrary pieces, a message may span reads and one read may hold several. Only the
 * structure is followed here (brackets, strings and their escapes); each complete
 * top-level value is then handed to JSON.parse.
 *
 * Bad input never stops the stream: a message that does not parse is reported with
 * {@link JsonStreamHandler.error} and the next one is read normally, as QEMU answers
 * "JSON parse error" and goes on. A byte 0xFF (never valid in UTF-8) resets the splitter,
 * as in QEMU. Memory stays bounded: a message larger than `maxBytes` or nested deeper than
 * `maxDepth` is reported once and then skipped, byte by byte, without being stored, until
 * its brackets close.
 */

/** Where {@link JsonStream} delivers what it read. */
export interface JsonStreamHandler {
  value(v: unknown): void;
  /** A message that could not be read; `message` is QEMU's wording ("JSON parse error, ..."). */
  error(message: string): void;
}

export interface JsonStreamLimits {
  /** Largest message, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Deepest nesting of objects and arrays (default 64). */
  maxDepth?: number;
}

const OPEN_OBJ = 0x7b; // {
const CLOSE_OBJ = 0x7d; // }
const OPEN_ARR = 0x5b; // [
const CLOSE_ARR = 0x5d; // ]
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const RESET_BYTE = 0xff;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

export class JsonStream {
  private readonly maxBytes: number;
  private readonly maxDepth: number;
  /** Pieces of the message being read (only while not skipping). */
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** A bare top-level token (a number, `true`, garbage) is being read. */
  private inBare = false;
  /** The current message broke a limit: follow its brackets without storing it. */
  private skipping = false;

  constructor(private readonly handler: JsonStreamHandler, limits: JsonStreamLimits = {}) {
    this.maxBytes = limits.maxBytes ?? 1 << 20;
    this.maxDepth = limits.maxDepth ?? 64;
  }

  /** True while part of a message has been read. */
  get busy(): boolean {
    return this.depth > 0 || this.inString || this.inBare || this.skipping;
  }

  /** Forgets any partial message. */
  reset(): void {
    this.parts = [];
    this.size = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.inBare = false;
    this.skipping = false;
  }

  feed(chunk: Uint8Array | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0; // first byte of `buf` that belongs to the current message and is not yet stored
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i]!;
      if (b === RESET_BYTE) {
        this.reset();
        start = i + 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) {
          this.inString = false;
          if (this.depth === 0) start = this.complete(buf, start, i + 1);
        }
      } else if (this.inBare) {
        if (isSpace(b) || b === OPEN_OBJ || b === OPEN_ARR || b === CLOSE_OBJ || b === CLOSE_ARR || b === QUOTE) {
          start = this.complete(buf, start, i);
          i--; // this byte starts (or is) the next thing
          continue;
        }
      } else if (b === QUOTE) {
        if (this.depth === 0) start = this.begin(i);
        this.inString = true;
      } else if (b === OPEN_OBJ || b === OPEN_ARR) {
        if (this.depth === 0) start = this.begin(i);
        this.depth++;
        if (this.depth > this.maxDepth && !this.skipping) this.overflow('too deeply nested');
      } else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
        if (this.depth === 0) {
          this.handler.error('JSON parse error, expecting value');
          start = i + 1;
          continue;
        }
        this.depth--;
        if (this.depth === 0) start = this.complete(buf, start, i + 1);
      } else if (this.depth === 0 && !isSpace(b)) {
        start = this.begin(i);
        this.inBare = true;
      } else if (this.depth === 0) {
        start = i + 1; // white space between messages
      }
      if (this.busy && !this.skipping && this.size + (i + 1 - start) > this.maxBytes) {
        this.overflow('message too large');
      }
      if (this.skipping) start = i + 1;
    }
    if (this.busy && !this.skipping && start < buf.length) {
      // Copy: the caller may reuse its buffer.
      const rest = Buffer.from(buf.subarray(start));
      this.parts.push(rest);
      this.size += rest.length;
    }
  }

  private begin(i: number): number {
    this.parts = [];
    this.size = 0;
    return i;
  }

  private overflow(what: string): void {
    this.handler.error(`JSON parse error, ${what}`);
    this.skipping = true;
    this.parts = [];
    this.size = 0;
  }

  /** The message ends at `end` (exclusive) in `buf`; returns where the next one may start. */
  private complete(buf: Buffer, start: number, end: number): number {
    const wasSkipping = this.skipping;
    const text = wasSkipping ? '' : Buffer.concat([...this.parts, buf.subarray(start, end)]).toString('utf8');
    const bare = this.inBare;
    this.reset();
    if (wasSkipping) return end;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      this.handler.error(bare ? `JSON parse error, invalid keyword '${text.length > 32 ? `${text.slice(0, 32)}...` : text}'` : 'JSON parse error');
      return end;
    }
    this.handler.value(v);
    return end;
  }
}
