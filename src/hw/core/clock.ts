/**
 * Virtual clock and timers (QEMU's QEMU_CLOCK_VIRTUAL): nanoseconds that follow host
 * time while the machine runs. Devices arm {@link Timer}s; the main loop fires them
 * between CPU time slices and sleeps until the earliest deadline when every CPU idles.
 */

/** A one-shot timer on a {@link Clock}. */
export class Timer {
  /** Absolute deadline in clock nanoseconds, or Infinity when not armed. */
  deadline = Infinity;
  constructor(private readonly clock: Clock, readonly callback: () => void) {}
  /** Arms (or re-arms) the timer to fire once at `deadlineNs`. */
  mod(deadlineNs: number): void {
    this.deadline = deadlineNs;
    this.clock.changed();
  }
  del(): void {
    this.deadline = Infinity;
  }
}

/** Nanoseconds of host monotonic time since this call. */
function hostClockFromNow(): () => number {
  const origin = performance.now();
  return () => Math.floor((performance.now() - origin) * 1e6);
}

export class Clock {
  private readonly timers: Timer[] = [];
  /** Called when a timer is re-armed, so a sleeping loop can wake early. */
  onChange: (() => void) | null = null;

  /**
   * `source` gives the clock's nanoseconds; by default they count host monotonic time from
   * the clock's creation. A vCPU thread passes its own reading of the machine clock.
   */
  constructor(private readonly source: () => number = hostClockFromNow()) {}

  /** Added to the source's time: moved by {@link warp}. */
  private offset = 0;

  /** Nanoseconds of machine time. */
  now(): number {
    return this.source() + this.offset;
  }

  /**
   * Makes the clock read `ns` now and go on from there (a restored snapshot's time).
   * Armed timers keep their deadlines: re-arm them after.
   */
  warp(ns: number): void {
    this.offset += ns - this.now();
  }

  newTimer(callback: () => void): Timer {
    const t = new Timer(this, callback);
    this.timers.push(t);
    return t;
  }

  /** @internal */
  changed(): void {
    this.onChange?.();
  }

  /** The earliest armed deadline, or Infinity. */
  nextDeadline(): number {
    let d = Infinity;
    for (const t of this.timers) if (t.deadline < d) d = t.deadline;
    return d;
  }

  /** Milliseconds until the earliest armed deadline (0 if it has passed), but at most `max`. */
  msUntilNext(max: number): number {
    const deadline = this.nextDeadline();
    return deadline === Infinity ? max : Math.min(max, Math.max(0, (deadline - this.now()) / 1e6));
  }

  /** Fires every timer whose deadline has passed. */
  runExpired(now = this.now()): void {
    for (const t of this.timers) {
      if (t.deadline <= now) {
        t.deadline = Infinity;
        t.callback();
      }
    }
  }
}
