/**
 * Device state for snapshots (QEMU's VMState): each device with state outside guest RAM
 * and the CPUs saves it as a small JSON object and loads it back. A snapshot file is user
 * input, so loading checks every field's type and size, and a bad one is a
 * {@link SnapshotError}: never an exception from deep inside a device.
 */

/**
 * A device's saved state: numbers, strings, booleans, arrays of numbers, and the state of
 * the parts it holds (a virtio transport holds its device's).
 */
export interface DeviceState {
  [field: string]: number | string | boolean | number[] | DeviceState;
}

/** A device that can be saved into and restored from a snapshot. */
export interface VMStateDevice {
  saveState(): DeviceState;
  /** Loads what saveState() returned (by a machine of the same configuration); throws SnapshotError if malformed. */
  loadState(s: DeviceState): void;
}

/**
 * A device whose state is checked whole before any of it applies, so that a machine can
 * check all such devices before it changes one: prepareLoad() throws SnapshotError for a
 * bad state and changes nothing, or returns what applies it.
 */
export interface StagedVMStateDevice {
  saveState(): DeviceState;
  prepareLoad(s: DeviceState): () => void;
}

/** A snapshot that cannot be taken or restored: the message is one line for the user. */
export class SnapshotError extends Error {}

/** Reads field `name` of `s` as an integer in [min, max]. */
export function intField(s: DeviceState, name: string, min = 0, max = 0xffffffff): number {
  const v = s[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new SnapshotError(`snapshot: bad field '${name}'`);
  return v;
}

export function boolField(s: DeviceState, name: string): boolean {
  const v = s[name];
  if (typeof v !== 'boolean') throw new SnapshotError(`snapshot: bad field '${name}'`);
  return v;
}

/** A string of at most `maxLength` characters. */
export function stringField(s: DeviceState, name: string, maxLength = 256): string {
  const v = s[name];
  if (typeof v !== 'string' || v.length > maxLength) throw new SnapshotError(`snapshot: bad field '${name}'`);
  return v;
}

/** The state of a part (an object field). */
export function stateField(s: DeviceState, name: string): DeviceState {
  const v = s[name];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SnapshotError(`snapshot: bad field '${name}'`);
  return v;
}

/** A 64-bit unsigned value, saved as a decimal string (exact beyond 2^53). */
export function bigField(s: DeviceState, name: string): bigint {
  const v = s[name];
  if (typeof v !== 'string' || !/^-?\d{1,20}$/.test(v)) throw new SnapshotError(`snapshot: bad field '${name}'`);
  return BigInt(v);
}

/** Fills `into` from field `name`, an array of exactly into.length integers that fit its element type. */
export function arrayField(s: DeviceState, name: string, into: Uint32Array | Int32Array | Uint16Array | Uint8Array): void {
  const v = s[name];
  const max = into instanceof Uint8Array ? 0xff : into instanceof Uint16Array ? 0xffff : into instanceof Int32Array ? 0x7fffffff : 0xffffffff;
  const min = into instanceof Int32Array ? -0x80000000 : 0;
  if (!Array.isArray(v) || v.length !== into.length || !v.every((x) => Number.isInteger(x) && x >= min && x <= max)) {
    throw new SnapshotError(`snapshot: bad field '${name}'`);
  }
  into.set(v);
}
