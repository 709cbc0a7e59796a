/**
 * savevm / loadvm / delvm / info snapshots (QEMU's migration/savevm.c) over a Vireo
 * snapshot file: the monitors call {@link Snapshots}, the board supplies its machine state
 * and a way to run code while its vCPUs are stopped.
 */
import { checkSnapshotName, packPayload, readSnapshotFile, unpackPayload, writeSnapshotFile } from './snapshot-file.js';
import { SnapshotError } from './vmstate.js';

/** A board's machine state, taken and restored while the vCPUs are stopped and the devices drained. */
export interface MachineState {
  /** Resolves once no device request is in flight (the vCPUs stopped, none comes). */
  drain(): Promise<void>;
  save(): Uint8Array;
  /** Restores `data` (from snapshot `name`); throws SnapshotError when it does not fit this machine. */
  load(name: string, data: Uint8Array): void;
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
   */
  constructor(private readonly file: string | undefined, private readonly state: () => MachineState,
    private readonly stopped: (fn: () => void | Promise<void>) => Promise<void>) {}

  private path(): string {
    if (this.file === undefined) throw new SnapshotError('no snapshot file: start Vireo with -snapshot-file PATH');
    return this.file;
  }

  /** Saves the machine as `name`, replacing a snapshot of that name. */
  async save(name: string): Promise<void> {
    checkSnapshotName(name);
    const path = this.path();
    const others = readSnapshotFile(path).filter((e) => e.name !== name);
    // The state is copied while the vCPUs are stopped, once the requests in flight are
    // over (as QEMU's vm_stop drains the disks); they run on while it is compressed.
    let state: Uint8Array | undefined;
    await this.stopped(async () => {
      const m = this.state();
      await m.drain();
      state = m.save();
    });
    writeSnapshotFile(path, [...others, { name, date: Date.now(), payload: await packPayload(state!) }]);
  }

  /**
   * Restores snapshot `name`; the machine is left as it was when the snapshot is missing
   * or does not fit (its requests in flight are over, though: no completion of the
   * abandoned run may land in the restored memory).
   */
  async load(name: string): Promise<void> {
    const data = this.read(name);
    await this.stopped(async () => {
      const m = this.state();
      await m.drain();
      m.load(name, data);
    });
  }

  /** Restores snapshot `name` now (the vCPUs have not started: -loadvm). */
  loadNow(name: string): void {
    this.state().load(name, this.read(name));
  }

  delete(name: string): void {
    const path = this.path();
    const all = readSnapshotFile(path);
    if (!all.some((e) => e.name === name)) throw new SnapshotError(`snapshot '${name}' not found`);
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
