/**
 * Character device backends (QEMU's -chardev / -serial): a byte pipe between a
 * guest-facing device (a UART, a virtio console) and the host (stdio, a file).
 *
 * Input is held, never dropped: the backend queues what the host sends and the
 * device pulls it with {@link Chardev.read} when it has room, after being told by
 * {@link Chardev.onInput} that bytes are waiting.
 */
export abstract class Chardev {
  private queue: Buffer[] = [];
  private queued = 0;
  /** Set by the frontend device: called whenever new input is queued. */
  onInput: (() => void) | null = null;

  /** Guest output towards the host. */
  abstract write(data: Uint8Array): void;

  /** Number of input bytes waiting. */
  get pending(): number {
    return this.queued;
  }

  /** Takes up to `max` bytes of waiting input. */
  read(max: number): Uint8Array {
    const out: Buffer[] = [];
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const head = this.queue[0]!;
      const take = Math.min(head.length, max - n);
      out.push(head.subarray(0, take));
      n += take;
      if (take === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(take);
    }
    this.queued -= n;
    return Buffer.concat(out, n);
  }

  /** Host input towards the guest (called by subclasses). */
  protected receive(data: Buffer): void {
    if (data.length === 0) return;
    this.queue.push(data);
    this.queued += data.length;
    this.onInput?.();
  }

  /** Releases host resources (raw mode, file handles). */
  close(): void {}
}
