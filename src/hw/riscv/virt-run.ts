/**
 * Runs the RISC-V `virt` board under Node: opens the host back ends named on the
 * command line (disks, networks, chardevs, monitors, gdbstub), then builds, boots and
 * rebuilds the machine on guest resets until it powers off or is quit.
 */
import { writeFileSync } from 'node:fs';
import { openBackends, closeBackends, createVirtioDevices, flushDrives, reopenDrives } from '../../system/backends.js';
import { Htif } from './htif.js';
import { planBoot, readImage } from './boot.js';
import { NullChardev } from '../../chardev/null.js';
import { openSerial } from '../../chardev/open.js';
import { runRoundRobin, type StopReason } from '../../accel/tcg/rr.js';
import { runMultiThreaded } from '../../accel/tcg/mttcg.js';
import { UserError, type VmOptions } from '../../system/options.js';
import { VirtControl } from './virt-control.js';
import { startMonitors } from '../../monitor/monitor-server.js';
import { GdbServer } from '../../gdbstub/server.js';
import { VirtGdb } from './virt-gdb.js';
import { VirtMachine, VIRT_MEMMAP } from './virt.js';
import { SnapshotError } from '../../migration/vmstate.js';
import { enableHugePages } from '../../system/host-memory.js';
import { quitOnSignals } from '../../system/signals.js';

/** With VIREO_STATS set (used by bench/), prints guest instructions retired and the rate. */
function reportStats(machine: VirtMachine): void {
  const seconds = machine.clock.now() / 1e9;
  const instret = machine.cpus.harts.reduce((sum, h) => sum + h.instret, 0);
  process.stderr.write(`vireo-stats: instret=${instret} seconds=${seconds.toFixed(3)} mips=${(instret / seconds / 1e6).toFixed(1)}\n`);
  const j = machine.cpus.jit?.totals();
  if (j) {
    const c = machine.cpus.jit!.counters();
    process.stderr.write(`vireo-stats: jit regions=${j.regions} blocks=${j.blocks} modules=${j.modules} insns=${j.insns} wasm-bytes=${j.wasmBytes} ` +
      `compile-ms=${j.compileMs.toFixed(0)} compile-share=${(j.compileMs / 10 / seconds).toFixed(1)}% ` +
      `invalidations=${j.invalidations} code-writes=${j.codeWrites} reused=${j.reused} flushes=${j.flushes} ` +
      `region-calls=${c.calls} region-insns=${c.insns} interpreter-runs=${c.runs}\n`);
  }
}

/** Builds the board described by `opts`, runs it, and returns the process exit status. */
export async function runMachine(opts: VmOptions): Promise<number> {
  if (!opts.accel.names.includes('tcg')) throw new UserError('-accel kvm: KVM cannot run the riscv64 virt machine on this host (use -accel tcg)');
  if (opts.gdb !== undefined && (opts.accel.thread === 'multi' || opts.accel.jit === true)) {
    throw new UserError(`${opts.gdb.what}: the gdbstub needs -accel tcg,thread=single,jit=off`);
  }
  const m = VIRT_MEMMAP;
  const planned = planBoot(opts, m.dram.base, opts.memBytes);
  planned.catch(() => {}); // awaited below
  const userDtb = opts.dtb !== undefined ? readImage(opts.dtb) : null;
  if (opts.dumpdtb !== undefined) {
    const machine = new VirtMachine(opts, new NullChardev());
    const plan = await planned;
    writeFileSync(opts.dumpdtb, machine.fdt(plan.bootargs, plan.initrd));
    return 0;
  }
  // After -machine dumpdtb, which never touches guest RAM; while the images decompress.
  await enableHugePages();
  const plan = await planned;
  const backends = await openBackends(opts);
  let quit = false;
  let current: VirtMachine | null = null;
  const stopLoop = (): void => {
    quit = true;
    current?.cpus.harts.forEach((h) => h.requestExit());
    control.runState.wake();
  };
  const control = new VirtControl(opts.startPaused === true, stopLoop, opts.snapshotFile, opts.incoming !== undefined,
    {
      list: () => [...backends.drives].map(([id, b]) => ({ id, readOnly: b.readOnly, snapshots: b.snapshots })),
      flush: () => flushDrives(backends),
      reopen: () => reopenDrives(backends),
    });
  // As QEMU, a destination whose incoming migration failed exits with an error.
  let incomingFailure: string | null = null;
  control.migration.onIncomingFailed = (why) => {
    incomingFailure = why;
    stopLoop();
  };
  let loadvm = opts.loadvm;
  const chr = openSerial(opts, stopLoop);
  const stopSignals = quitOnSignals(stopLoop);
  const monitors = startMonitors({ opts, machine: control, runState: control.runState, drives: backends.drives, chardevs: backends.chardevs, serial: chr });
  const gdb = opts.gdb !== undefined ? new VirtGdb(control) : null;
  let gdbServer: GdbServer | null = null;
  let status = 1;
  try {
    if (gdb !== null && opts.gdb !== undefined) gdbServer = await GdbServer.listen(gdb, opts.gdb.addr, opts.gdb.what);
    for (;;) {
      const machine = new VirtMachine(opts, chr, createVirtioDevices(opts.devices, backends));
      current = machine;
      control.attach(machine);
      // A machine waiting for an incoming migration gets RAM and harts from the source (its RAM stays zero until then).
      if (control.status() !== 'inmigrate') machine.load(plan, userDtb ?? machine.fdt(plan.bootargs, plan.initrd));
      if (loadvm !== undefined) {
        // -loadvm: the first machine starts where the snapshot left off (a reset boots afresh).
        try {
          await control.snapshots.loadNow(loadvm);
        } catch (e) {
          throw e instanceof SnapshotError ? new UserError(`-loadvm ${loadvm}: ${e.message}`) : e;
        }
        loadvm = undefined;
      }
      if (opts.incoming !== undefined && opts.incoming !== 'defer' && control.status() === 'inmigrate') {
        try {
          await control.migration.incoming(opts.incoming);
        } catch (e) {
          throw new UserError(`-incoming ${opts.incoming}: ${(e as Error).message}`);
        }
      }
      gdb?.attach(machine);
      const htif = plan.htif
        ? new Htif(machine.cpus.ram, plan.htif.tohost - m.dram.base,
          plan.htif.fromhost === null ? null : plan.htif.fromhost - m.dram.base, chr)
        : null;
      const check = (): StopReason | null => {
        if (quit) return { kind: 'quit' };
        if (machine.shutdown) return machine.shutdown;
        const exit = htif?.poll();
        return exit ? { kind: 'poweroff', code: exit.code } : control.check();
      };
      // One host thread per hart (src/accel/tcg/mttcg.ts) with thread=multi; devices stay on this thread.
      const reason = await control.run(opts.accel.thread === 'multi'
        ? () => runMultiThreaded(machine.clock, machine.cpus, machine.bus, { ...m.clint, device: machine.clint }, check)
        : () => runRoundRobin(machine.clock, machine.cpus.harts, check), check);
      if (process.env.VIREO_STATS) reportStats(machine);
      control.ended(reason, opts.noReboot);
      if (reason.kind === 'reset' && !opts.noReboot) continue;
      if (incomingFailure !== null) throw new UserError(`load of migration failed: ${incomingFailure}`);
      status = reason.kind === 'poweroff' ? reason.code : 0;
      return status;
    }
  } finally {
    stopSignals();
    await gdbServer?.close(status);
    await monitors.close();
    chr.close();
    await closeBackends(backends);
  }
}
