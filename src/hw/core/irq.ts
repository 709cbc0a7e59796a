/**
 * Interrupt wiring. A device holds {@link IrqLine}s handed out by an interrupt
 * controller (or by a CPU for its local interrupt bits) and never the controller itself.
 */

/** A level-triggered interrupt line. */
export interface IrqLine {
  set(level: boolean): void;
}

/** A line that does nothing, for unconnected outputs. */
export const NO_IRQ: IrqLine = { set() {} };
