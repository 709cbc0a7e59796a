/**
 * savevm / loadvm / delvm / info snapshots (QEMU's migration/savevm.c): the machine state
 * goes to a Vireo snapshot file, and, as in QEMU, every writable disk takes an internal
 * snapshot of the same name at the same instant (so a writable disk must be qcow2). The
 * monitors call {@link Snapshots}; the board supplies its machine state, its disks and a way
 * to run code while its vCPUs are stopped.
 */
import { BlockSnapshotError, type BlockSnapshots } from '../block/block.js';
import { checkSnapshotName, packPayload, readSnapshotFile, unpackPayload, writeSnapshotFile } from './snapshot-file.js';
import { SnapshotError } from './vmstate.js';

/** A board's machine state, taken and restored while the vCPUs are stopped and the devices drained. */
export interface MachineState {
  /** Resolves once no device request is in flight (the vCPUs stopped, none comes). */
  drain(): Promise<void>;
  save(): Uint8Array;
  /** Restores `data` (from snapshot `name`); throws SnapshotError when it does not fit this machine. */
  load(name: string, data: Uint8Array): void;
  /** The machine clock (ns), recorded in the disks' snapshot tables. */
  clockNs(): number;
}

/** A disk of the machine (a -drive), with its internal snapshots where its format has them. */
export interface SnapshotDisk {
  id: string;
  readOnly: boolean;
  snapshots?: BlockSnapshots;
}

/** Runs a disk's snapshot operation, its failure as a SnapshotError naming the disk. */
async function onDisk<T>(disk: SnapshotDisk, op: (s: BlockSnapshots) => Promise<T>): Promise<T> {
  try {
    return await op(disk.snapshots!);
  } catch (e) {
    throw e instanceof BlockSnapshotError ? new SnapshotError(`Device '${disk.id}': ${e.message}`) : e;
  }
}

/** One snapshot, as `info snapshots` lists it. */
export interface SnapshotInfo {
  name: string;
  /** Compressed size in bytes. */
  size: number;
  date: Date;
}

export class Snapshots {
  /**
   * @param file the snapshot file (-snapshot-file), if any
   * @param state the machine now running
   * @param stopped runs `fn` with the vCPUs stopped until it settles (stopping and resuming them if they ran)
   * @param disks the machine's disks
   */
  constructor(private readonly file: string | undefined, private readonly state: () => MachineState,
    private readonly stopped: (fn: () => void | Promise<void>) => Promise<void>,
    private readonly disks: () => readonly SnapshotDisk[]) {}

  /**
   * The writable disks a snapshot covers (all, or those named in `devices`, as QMP's
   * snapshot-save lists them); QEMU refuses a writable disk without internal snapshots.
   */
  private writableDisks(devices?: readonly string[]): SnapshotDisk[] {
    const disks = this.disks().filter((d) => !d.readOnly && (devices === undefined || devices.includes(d.id)));
    for (const d of disks) if (d.snapshots === undefined) throw new SnapshotError(`Device '${d.id}' is writable but does not support snapshots`);
    return disks;
  }

  private path(): string {
    if (this.file === undefined) throw new SnapshotError('no snapshot file: start Vireo with -snapshot-file PATH');
    return this.file;
  }

  /** Saves the machine (and its writable disks, or those in `devices`) as `name`, replacing a snapshot of that name. */
  async save(name: string, devices?: readonly string[]): Promise<void> {
    checkSnapshotName(name);
    const path = this.path();
    const disks = this.writableDisks(devices);
    const others = readSnapshotFile(path).filter((e) => e.name !== name);
    // The state is copied and the disks snapshotted while the vCPUs are stopped, once the
    // requests in flight are over (as QEMU's vm_stop drains the disks); they run on while
    // the state is compressed.
    let state: Uint8Array | undefined;
    const date = new Date();
    await this.stopped(async () => {
      const m = this.state();
      await m.drain();
      state = m.save();
      for (const d of disks) {
        await onDisk(d, async (s) => {
          for (const old of s.list().filter((i) => i.name === name)) await s.delete(old.id);
          await s.create(name, { date, vmClockNs: m.clockNs() });
        });
      }
    });
    writeSnapshotFile(path, [...others, { name, date: date.getTime(), payload: await packPayload(state!) }]);
  }

  /**
   * Restores snapshot `name` (and reverts the writable disks, or those in `devices`, to it);
   * the machine is left as it was when the snapshot is missing, on a disk too, or does not
   * fit (its requests in flight are over, though: no completion of the abandoned run may
   * land in the restored memory).
   */
  async load(name: string, devices?: readonly string[]): Promise<void> {
    const data = this.read(name);
    const disks = this.disksWith(name, devices);
    await this.stopped(async () => {
      const m = this.state();
      await m.drain();
      await this.restore(m, name, data, disks);
    });
  }

  /** Restores snapshot `name` now (the vCPUs have not started: -loadvm). */
  async loadNow(name: string): Promise<void> {
    await this.restore(this.state(), name, this.read(name), this.disksWith(name));
  }

  /** The machine first: a state that does not fit is refused before anything changes. */
  private async restore(m: MachineState, name: string, data: Uint8Array, disks: readonly SnapshotDisk[]): Promise<void> {
    m.load(name, data);
    for (const d of disks) await onDisk(d, (s) => s.apply(name));
  }

  /** The writable disks, each checked to hold snapshot `name`. */
  private disksWith(name: string, devices?: readonly string[]): SnapshotDisk[] {
    const disks = this.writableDisks(devices);
    for (const d of disks) {
      if (!d.snapshots!.list().some((i) => i.name === name)) throw new SnapshotError(`Device '${d.id}' does not have the requested snapshot '${name}'`);
    }
    return disks;
  }

  /** Deletes snapshot `name` from the file and from the disks (all, or those in `devices`) that have it. */
  async delete(name: string, devices?: readonly string[]): Promise<void> {
    const path = this.path();
    const all = readSnapshotFile(path);
    const disks = this.disks().filter((d) => d.snapshots?.list().some((i) => i.name === name) && (devices === undefined || devices.includes(d.id)));
    if (!all.some((e) => e.name === name) && disks.length === 0) throw new SnapshotError(`snapshot '${name}' not found`);
    for (const d of disks) {
      await onDisk(d, async (s) => {
        for (const old of s.list().filter((i) => i.name === name)) await s.delete(old.id);
      });
    }
    writeSnapshotFile(path, all.filter((e) => e.name !== name));
  }

  list(): SnapshotInfo[] {
    return readSnapshotFile(this.path()).map((e) => ({ name: e.name, size: e.payload.length, date: new Date(e.date) }));
  }

  private read(name: string): Uint8Array {
    const entry = readSnapshotFile(this.path()).find((e) => e.name === name);
    if (!entry) throw new SnapshotError(`snapshot '${name}' not found in ${this.path()}`);
    return unpackPayload(name, entry.payload);
  }
}
