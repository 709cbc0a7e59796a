/**
 * Character device backends (QEMU's -chardev / -serial): a byte pipe between a
 * guest-facing device (a UART, a virtio console) and the host (stdio, a file).
 *
 * Input is held, never dropped: the backend queues what the host sends and the
 * device pulls it with {@link Chardev.read} when it has room, after being told by
 * {@link Chardev.onInput} that bytes are waiting.
 *
 * A backend with a peer that comes and goes (a socket) reports it through
 * {@link Chardev.connected} and {@link Chardev.onOpen}; one whose peer reads slowly
 * reports {@link Chardev.writeBlocked} and calls {@link Chardev.onWritable} when it may
 * be written again, so that a device able to wait (virtio-serial) holds the guest's
 * output instead of losing it.
 */
/** Input waiting past this many bytes pauses the host stream (the sender then waits, e.g. in TCP) until half is read. */
const HIGH_WATER = 64 * 1024;

/** A host stream that input flow control can hold back. */
interface PausableSource {
  pause(): unknown;
  resume(): unknown;
}

export abstract class Chardev {
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** The host stream paused because too much input waits, or null. */
  private pausedSource: PausableSource | null = null;
  /** Set by the frontend device: called whenever new input is queued. */
  onInput: (() => void) | null = null;
  /** Set by the frontend device: called when the host side connects (true) or goes away (false). */
  onOpen: ((open: boolean) => void) | null = null;
  /** Set by the frontend device: called when writing is possible again after {@link writeBlocked}. */
  onWritable: (() => void) | null = null;

  /** Guest output towards the host. */
  abstract write(data: Uint8Array): void;

  /** Whether something is there on the host side (a socket client); output is discarded while not. */
  get connected(): boolean {
    return true;
  }

  /** True while the host side is not keeping up: a frontend that can wait should hold its output. */
  get writeBlocked(): boolean {
    return false;
  }

  /** Number of input bytes waiting. */
  get pending(): number {
    return this.queued;
  }

  /** Takes up to `max` bytes of waiting input. */
  read(max: number): Uint8Array {
    const out = new Uint8Array(Math.min(max, this.queued));
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const head = this.queue[0]!;
      const take = Math.min(head.length, max - n);
      out.set(head.subarray(0, take), n);
      n += take;
      if (take === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(take);
    }
    this.queued -= n;
    const source = this.pausedSource;
    if (source && this.queued < HIGH_WATER / 2) {
      this.pausedSource = null;
      source.resume();
    }
    return out;
  }

  /** Gives back input taken by {@link read} that the frontend could not deliver: it is read again first. */
  unread(data: Uint8Array): void {
    if (data.length === 0) return;
    this.queue.unshift(data);
    this.queued += data.length;
  }

  /** Host input towards the guest (called by subclasses). */
  protected receive(data: Uint8Array): void {
    if (data.length === 0) return;
    this.queue.push(data);
    this.queued += data.length;
    this.onInput?.();
  }

  /** Host input from `source`, which is paused while more than HIGH_WATER bytes wait (called by subclasses). */
  protected receiveFrom(source: PausableSource, data: Uint8Array): void {
    this.receive(data);
    if (this.pausedSource === null && this.queued > HIGH_WATER) {
      this.pausedSource = source;
      source.pause();
    }
  }

  /** The paused stream went away or was closed: never resume it. */
  protected forgetPausedSource(): void {
    this.pausedSource = null;
  }

  /** Subclasses report the host side connecting or leaving. */
  protected setOpen(open: boolean): void {
    this.onOpen?.(open);
  }

  /** Subclasses report that {@link writeBlocked} has cleared. */
  protected writable(): void {
    this.onWritable?.();
  }

  /** Releases host resources (raw mode, file handles, sockets); closing twice does nothing. */
  close(): void {}
}
