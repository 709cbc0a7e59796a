/**
 * The riscv64 target description (GDB manual, "Target Descriptions" and "RISC-V Features"):
 * org.gnu.gdb.riscv.cpu (x0-x31, pc), org.gnu.gdb.riscv.fpu (f0-f31, fflags, frm, fcsr),
 * org.gnu.gdb.riscv.csr (the CSRs Vireo implements) and org.gnu.gdb.riscv.virtual (`priv`,
 * the privilege level, as QEMU has). Register numbers follow gdb's own RISC-V numbering:
 * x0-x31 are 0-31, pc 32, f0-f31 33-64, CSR n is 65 + n, and priv 65 + 4096.
 */
import type { TargetDescription } from './target.js';

export const RISCV_PC = 32;
export const RISCV_F0 = 33;
export const RISCV_CSR0 = 65;
export const RISCV_PRIV = RISCV_CSR0 + 4096;

/** What a riscv64 register number names. */
export type RiscvRegister =
  | { kind: 'x'; index: number }
  | { kind: 'pc' }
  | { kind: 'f'; index: number }
  | { kind: 'csr'; csr: number }
  | { kind: 'priv' };

const X_NAMES = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 'fp', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];
const X_TYPES: Record<string, string> = { ra: 'code_ptr', sp: 'data_ptr', gp: 'data_ptr', tp: 'data_ptr' };
const F_NAMES = ['ft0', 'ft1', 'ft2', 'ft3', 'ft4', 'ft5', 'ft6', 'ft7', 'fs0', 'fs1', 'fa0', 'fa1', 'fa2', 'fa3', 'fa4', 'fa5',
  'fa6', 'fa7', 'fs2', 'fs3', 'fs4', 'fs5', 'fs6', 'fs7', 'fs8', 'fs9', 'fs10', 'fs11', 'ft8', 'ft9', 'ft10', 'ft11'];
/** The floating-point CSRs, which gdb expects in the FPU feature (32 bits wide). */
const FP_CSRS: ReadonlyArray<[string, number]> = [['fflags', 0x001], ['frm', 0x002], ['fcsr', 0x003]];
/** The other CSRs Vireo implements, by gdb's names. */
const CSRS: ReadonlyArray<[string, number]> = [
  ['cycle', 0xc00], ['time', 0xc01], ['instret', 0xc02],
  ['sstatus', 0x100], ['sie', 0x104], ['stvec', 0x105], ['scounteren', 0x106], ['senvcfg', 0x10a],
  ['sscratch', 0x140], ['sepc', 0x141], ['scause', 0x142], ['stval', 0x143], ['sip', 0x144], ['satp', 0x180],
  ['mvendorid', 0xf11], ['marchid', 0xf12], ['mimpid', 0xf13], ['mhartid', 0xf14],
  ['mstatus', 0x300], ['misa', 0x301], ['medeleg', 0x302], ['mideleg', 0x303], ['mie', 0x304], ['mtvec', 0x305],
  ['mcounteren', 0x306], ['menvcfg', 0x30a], ['mcountinhibit', 0x320],
  ['mscratch', 0x340], ['mepc', 0x341], ['mcause', 0x342], ['mtval', 0x343], ['mip', 0x344],
  ['pmpcfg0', 0x3a0], ['pmpcfg2', 0x3a2],
  ...Array.from({ length: 16 }, (_, i): [string, number] => [`pmpaddr${i}`, 0x3b0 + i]),
  ['mcycle', 0xb00], ['minstret', 0xb02],
];
const CSR_SIZE = new Map<number, number>([...FP_CSRS.map(([, n]): [number, number] => [n, 4]), ...CSRS.map(([, n]): [number, number] => [n, 8])]);

/** The register `regnum` names, or null when the description has no such register. */
export function riscvRegister(regnum: number): RiscvRegister | null {
  if (!Number.isInteger(regnum) || regnum < 0) return null;
  if (regnum < RISCV_PC) return { kind: 'x', index: regnum };
  if (regnum === RISCV_PC) return { kind: 'pc' };
  if (regnum < RISCV_CSR0) return { kind: 'f', index: regnum - RISCV_F0 };
  if (regnum === RISCV_PRIV) return { kind: 'priv' };
  return CSR_SIZE.has(regnum - RISCV_CSR0) ? { kind: 'csr', csr: regnum - RISCV_CSR0 } : null;
}

function buildXml(): string {
  const reg = (name: string, regnum: number, bits: number, type: string): string =>
    `    <reg name="${name}" bitsize="${bits}" type="${type}" regnum="${regnum}"/>`;
  return [
    '<?xml version="1.0"?>',
    '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
    '<target version="1.0">',
    '  <architecture>riscv:rv64</architecture>',
    '  <feature name="org.gnu.gdb.riscv.cpu">',
    ...X_NAMES.map((n, i) => reg(n, i, 64, X_TYPES[n] ?? 'int')),
    reg('pc', RISCV_PC, 64, 'code_ptr'),
    '  </feature>',
    '  <feature name="org.gnu.gdb.riscv.fpu">',
    '    <union id="riscv_double">',
    '      <field name="float" type="ieee_single"/>',
    '      <field name="double" type="ieee_double"/>',
    '    </union>',
    ...F_NAMES.map((n, i) => reg(n, RISCV_F0 + i, 64, 'riscv_double')),
    ...FP_CSRS.map(([n, csr]) => reg(n, RISCV_CSR0 + csr, 32, 'int')),
    '  </feature>',
    '  <feature name="org.gnu.gdb.riscv.csr">',
    ...CSRS.map(([n, csr]) => reg(n, RISCV_CSR0 + csr, 64, 'int')),
    '  </feature>',
    '  <feature name="org.gnu.gdb.riscv.virtual">',
    reg('priv', RISCV_PRIV, 64, 'int'),
    '  </feature>',
    '</target>',
    '',
  ].join('\n');
}

/** The riscv64 description: the `g` packet carries x0-x31 and pc, as QEMU's does. */
export const RISCV64_TDESC: TargetDescription = {
  xml: buildXml(),
  pcRegister: RISCV_PC,
  gRegisters: Array.from({ length: RISCV_PC + 1 }, (_, i) => i),
  registerSize(regnum: number): number {
    const r = riscvRegister(regnum);
    if (r === null) return 0;
    return r.kind === 'csr' ? CSR_SIZE.get(r.csr)! : 8;
  },
};
