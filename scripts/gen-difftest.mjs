#!/usr/bin/env node
// Generates Vireo's CPU difftest programs (tests/difftest/README.md): random RV64GC instruction
// sequences from a fixed seed, each built twice around tests/difftest/harness.S (bare metal for
// Vireo, Linux user for qemu-riscv64-static); qemu's output becomes the golden dump.
//
//   node scripts/gen-difftest.mjs [--seed N] [--count N] [--ops N]   regenerate everything
//   node scripts/gen-difftest.mjs --check                            re-verify the goldens
//   node scripts/gen-difftest.mjs --out DIR --seed N --count N --vireo [--mix rand=1,fp=2]
//       exploration: writes elsewhere, runs Vireo on each program and reports the first
//       difference; --mix replaces the operation weights (names: see Program.generate)
//   node scripts/gen-difftest.mjs --check --vireo [--out DIR] [--only p03,p07]
//       re-verify the goldens and compare Vireo with them, without regenerating
//
// Regenerating writes tests/difftest/programs/pNN.{S,elf,linux.elf,out} and needs
// riscv64-unknown-elf-gcc, riscv64-linux-gnu-gcc and qemu-riscv64-static (Debian packages
// gcc-riscv64-unknown-elf, gcc-riscv64-linux-gnu, qemu-user-static). When qemu-system-riscv64
// is installed, every bare-metal ELF is also run there and must print the same dump, which
// checks that the two harness builds are equivalent. --check only runs the committed Linux
// ELFs under qemu-riscv64-static and compares with the committed goldens.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, 'tests', 'difftest');
const PROGS = join(DIR, 'programs');

const DEFAULTS = { seed: 20250101, count: 40, ops: 260 };
const BUF_SIZE = 256;              // bytes of scratch buffer at sp
const POISON = 0xdeadbeefdeadbeefn; // initial value of every signature slot
// QEMU 7.2's default rv64 CPU also has Zba/Zbb/Zbc/Zbs, which Vireo (RV64GC) does not: the
// random encodings would run bit-manipulation instructions that must trap on RV64GC.
const QEMU_CPU = 'rv64,zba=false,zbb=false,zbc=false,zbs=false';

// ---------------------------------------------------------------------------------------------
// Random numbers: sfc32, seeded through splitmix32, so the output only depends on the seed.

class Rng {
  constructor(seed) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32() {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  /** Integer in [0, n). */
  int(n) { return Math.floor((this.u32() / 4294967296) * n); }
  /** Integer in [lo, hi]. */
  range(lo, hi) { return lo + this.int(hi - lo + 1); }
  chance(p) { return this.u32() / 4294967296 < p; }
  pick(a) { return a[this.int(a.length)]; }
  u64() { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** Picks a key of `weights` ({key: weight}) with probability proportional to its weight. */
  weighted(weights) {
    const keys = Object.keys(weights);
    let total = 0;
    for (const k of keys) total += weights[k];
    let r = (this.u32() / 4294967296) * total;
    for (const k of keys) {
      r -= weights[k];
      if (r < 0) return k;
    }
    return keys[keys.length - 1];
  }
}

// ---------------------------------------------------------------------------------------------
// Values.

const M64 = (1n << 64n) - 1n;
const hex = (v) => '0x' + (BigInt(v) & M64).toString(16);
const sext32 = (v) => BigInt.asUintN(64, BigInt.asIntN(32, BigInt(v)));

const INTS = [
  0n, 1n, 2n, 3n, M64, M64 - 1n, 1n << 63n, (1n << 63n) - 1n, (1n << 63n) + 1n,
  0x80000000n, 0x7fffffffn, 0xffffffffn, 0xffffffff80000000n, 0x100000000n, 0x80000001n,
  0xffffffff7fffffffn, 0x8000n, 0xffffn, 0xffffffffffff8000n, 0x80n, 0xffn, 31n, 32n, 63n, 64n,
  0x5555555555555555n, 0xaaaaaaaaaaaaaaaan, 0x0123456789abcdefn, 0xfffffffffffff800n, 0x7ffn,
];

function intValue(rng) {
  switch (rng.int(8)) {
    case 0: case 1: case 2: return rng.pick(INTS);
    case 3: return rng.u64();
    case 4: return sext32(rng.u32());
    case 5: return BigInt.asUintN(64, BigInt(rng.range(-100, 100)));
    case 6: { // power of two, maybe +-1
      const p = 1n << BigInt(rng.int(64));
      return BigInt.asUintN(64, p + BigInt(rng.range(-1, 1)));
    }
    default: return BigInt(rng.u32() & 0xfff) << BigInt(rng.int(52));
  }
}

const dv = new DataView(new ArrayBuffer(8));
const f64bits = (x) => { dv.setFloat64(0, x); return dv.getBigUint64(0); };
const bitsF64 = (b) => { dv.setBigUint64(0, BigInt.asUintN(64, b)); return dv.getFloat64(0); };
const f32bits = (x) => { dv.setFloat32(0, x); return BigInt(dv.getUint32(0)); };
const bitsF32 = (b) => { dv.setUint32(0, Number(b & 0xffffffffn)); return dv.getFloat32(0); };
const BOX = 0xffffffff00000000n;

const D_NUMS = [0, -0, 1, -1, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3, -3, 0.1, 1 / 3, -2 / 3,
  2 ** 31, 2 ** 31 - 1, 2 ** 31 - 0.5, 2 ** 31 + 0.5, -(2 ** 31), -(2 ** 31) - 0.5, -(2 ** 31) - 1,
  2 ** 32, 2 ** 32 - 1, 2 ** 32 - 0.5, 2 ** 32 + 0.5, 2 ** 63, -(2 ** 63), 2 ** 64, 2 ** 53,
  2 ** 53 + 2, 2 ** 24 + 1, 1e300, -1e300, 1e-300, 2 ** -1022, 2 ** -1074, 2 ** 1023,
  3.4028234663852886e38, 3.4028235677973366e38, 1.1754943508222875e-38, 1.401298464324817e-45,
  7e-46, -4.5, 12345.678, 0.9999999999999999, 4503599627370495.5];
const D_BITS = [0x000fffffffffffffn, 0x7fefffffffffffffn, 0xffefffffffffffffn, 0x7ff0000000000000n,
  0xfff0000000000000n, 0x7ff8000000000000n, 0x7ff0000000000001n, 0x7ff4000000000000n,
  0x7ff800000000deadn, 0xfff8000000000000n, 0xfff0000000000001n, 0x3fefffffffffffffn,
  0x3ff0000000000001n, 0x8000000000000001n, 0x0010000000000000n, 0x000ffffffffffffen,
  0x7fffffffffffffffn];
const S_NUMS = [0, -0, 1, -1, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3, -3, 0.1, 1 / 3, 2 ** 31,
  -(2 ** 31), 2147483520, 2 ** 32, 4294967040, 2 ** 63, -(2 ** 63), 2 ** 64, 2 ** 24, 2 ** 24 + 2,
  1e30, -1e30, 1e-30, 2 ** -126, 2 ** -149, 2 ** 127, 8388607.5, -4.5, 12345.678];
const S_BITS = [0x007fffffn, 0x7f7fffffn, 0xff7fffffn, 0x7f800000n, 0xff800000n, 0x7fc00000n,
  0x7f800001n, 0x7fa00000n, 0x7fc0deadn, 0xffc00000n, 0xff800001n, 0x3f7fffffn, 0x3f800001n,
  0x00800000n, 0x80000001n, 0x007ffffen];

const D_SPECIAL = [0n, 1n << 63n, 0x7ff0000000000000n, 0xfff0000000000000n, 0x7ff8000000000000n,
  0x7ff0000000000001n, 0xfff8000000000000n, 0x3ff0000000000000n, 0xbff0000000000000n, 1n,
  0x8000000000000001n, 0x7fefffffffffffffn, 0x0010000000000000n];
const S_SPECIAL = [0n, 1n << 31n, 0x7f800000n, 0xff800000n, 0x7fc00000n, 0x7f800001n, 0xffc00000n,
  0x3f800000n, 0xbf800000n, 1n, 0x80000001n, 0x7f7fffffn, 0x00800000n];

// OP-FP operations: funct7, the legal rs2 values where rs2 selects (else any register), the
// legal funct3 values where funct3 selects (else a rounding mode: 0-4 and 7 = dyn)
const FP_OPS = [];
for (const fmt of [0, 1]) {
  for (const f7 of [0x00, 0x04, 0x08, 0x0c]) FP_OPS.push([f7 | fmt, null, null]); // add sub mul div
  FP_OPS.push([0x2c | fmt, [0], null], [0x10 | fmt, null, [0, 1, 2]], [0x14 | fmt, null, [0, 1]],
    [0x50 | fmt, null, [0, 1, 2]], [0x60 | fmt, [0, 1, 2, 3], null], [0x68 | fmt, [0, 1, 2, 3], null],
    [0x70 | fmt, [0], [0, 1]], [0x78 | fmt, [0], [0]]);
}
FP_OPS.push([0x20, [1], null], [0x21, [0], null]); // fcvt.s.d, fcvt.d.s

/** Names an OP-FP or fused multiply-add encoding, fields included (for the comments). */
function describeFp(w) {
  const opc = w & 0x7f, rd = (w >>> 7) & 31, f3 = (w >>> 12) & 7, rs1 = (w >>> 15) & 31, rs2 = (w >>> 20) & 31;
  const fmt = 'sdhq'[(w >>> 25) & 3], op5 = w >>> 27;
  const fields = `rd=${rd} rs1=${rs1} rs2=${rs2} funct3/rm=${f3}`;
  if (opc !== 0x53) return `${['fmadd', 'fmsub', 'fnmsub', 'fnmadd'][(opc >> 2) & 3]}.${fmt} ${fields} rs3=${op5}`;
  const int = ['w', 'wu', 'l', 'lu'][rs2] ?? `?${rs2}`;
  const name = {
    0x00: 'fadd', 0x01: 'fsub', 0x02: 'fmul', 0x03: 'fdiv', 0x0b: 'fsqrt',
    0x04: ['fsgnj', 'fsgnjn', 'fsgnjx'][f3] ?? 'fsgnj?', 0x05: ['fmin', 'fmax'][f3] ?? 'fminmax?',
    0x08: `fcvt.${fmt}.${'sdhq'[rs2] ?? '?'}`, 0x14: ['fle', 'flt', 'feq'][f3] ?? 'fcmp?',
    0x18: `fcvt.${int}`, 0x1a: `fcvt.${fmt}.${int}`, 0x1c: ['fmv.x', 'fclass'][f3] ?? 'fmv.x/fclass?', 0x1e: 'fmv.fp.x',
  }[op5];
  return name === undefined ? `OP-FP funct5=${hex(op5)}.${fmt} ${fields}` : `${name}${op5 === 0x08 || op5 === 0x1a ? '' : '.' + fmt} ${fields}`;
}

/** A raw double: exponent `e` (biased), random sign and mantissa. */
const randD = (rng, e) => (BigInt(rng.int(2)) << 63n) | (BigInt(e) << 52n) | (rng.u64() & 0xfffffffffffffn);
const randS = (rng, e) => (BigInt(rng.int(2)) << 31n) | (BigInt(e) << 23n) | BigInt(rng.u32() & 0x7fffff);

/** 64-bit register contents for an operand of a double-precision operation. */
function dValue(rng) {
  switch (rng.int(9)) {
    case 0: case 1: return f64bits(rng.pick(D_NUMS));
    case 2: case 3: return rng.pick(D_BITS);
    case 4: case 5: return randD(rng, rng.range(1023 - 40, 1023 + 40));
    case 6: return randD(rng, rng.pick([0, 1, 2, rng.range(0, 60), rng.range(2046 - 60, 2046)]));
    case 7: return rng.u64();
    default: return BOX | sValue32(rng); // a NaN as a double
  }
}

/** A single's 32 bits. */
function sValue32(rng) {
  switch (rng.int(8)) {
    case 0: case 1: return f32bits(rng.pick(S_NUMS));
    case 2: case 3: return rng.pick(S_BITS);
    case 4: case 5: return randS(rng, rng.range(127 - 30, 127 + 30));
    case 6: return randS(rng, rng.pick([0, 1, 2, rng.range(0, 20), rng.range(254 - 20, 254)]));
    default: return BigInt(rng.u32());
  }
}

/** 64-bit register contents for an operand of a single-precision operation (mostly NaN-boxed). */
function sValue(rng) {
  const s = sValue32(rng);
  if (!rng.chance(0.06)) return BOX | s;
  switch (rng.int(3)) {
    case 0: return s;                            // upper half zero: not boxed
    case 1: return 0xfffffffe00000000n | s;      // almost boxed
    default: return dValue(rng);
  }
}

/** Nudges a finite double/single bit pattern by a few units in the last place. */
const nudge = (rng, bits, width = 64) => BigInt.asUintN(width, bits + BigInt(rng.range(-2, 2)));

// ---------------------------------------------------------------------------------------------
// Registers.

const X = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3',
  'a4', 'a5', 'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3',
  't4', 't5', 't6'];
// sp (buffer), gp (signature) and tp (scratch) are reserved; everything else is random.
const POOL = X.filter((r) => !['zero', 'sp', 'gp', 'tp'].includes(r));
const CPOOL = ['s0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5']; // x8..x15
const F = Array.from({ length: 32 }, (_, i) => `f${i}`);
const CF = F.slice(8, 16);
const RMS = ['rne', 'rtz', 'rdn', 'rup', 'rmm'];

// ---------------------------------------------------------------------------------------------
// One program.

class Program {
  constructor(rng, index) {
    this.rng = rng;
    this.index = index;
    this.lines = [];    // { text, size } (size in bytes, null if unknown, e.g. `li`)
    this.sigs = 0;      // signature slots used
    this.sigOff = 0;    // offset of the next slot from gp
    this.labels = 0;
    this.frm = 0;       // the dynamic rounding mode, tracked statically
    this.islands = [];  // code reached by far branches, placed out of line (flushIslands)
  }

  // --- emission ---
  ins(text, size = 4) { this.lines.push({ text: '  ' + text, size }); }
  c(text) {
    this.lines.push({ text: '  .option rvc', size: 0 });
    this.ins(text, 2);
    this.lines.push({ text: '  .option norvc', size: 0 });
  }
  label() { return `.L${this.labels++}`; }
  place(l) { this.lines.push({ text: `${l}:`, size: 0 }); }
  comment(t) { this.lines.push({ text: `  /* ${t} */`, size: 0 }); }
  li(r, v) { if (r !== 'zero') this.ins(`li ${r}, ${hex(v)}`, null); }
  mark() { return this.lines.length; }
  bytesSince(m) {
    let n = 0;
    for (const l of this.lines.slice(m)) {
      if (l.size === null) throw new Error('unknown size in a measured region');
      n += l.size;
    }
    return n;
  }
  /** Stores x or f register `r` in the next signature slot. */
  sig(r) {
    if (this.sigOff > 2040) throw new Error('signature offset out of range');
    const op = r.startsWith('f') && /^f\d/.test(r) ? 'fsd' : 'sd';
    this.ins(`${op} ${r}, ${this.sigOff}(gp) /* sig ${this.sigs} */`);
    this.sigs++;
    this.sigOff += 8;
  }

  // --- operands ---
  dst(excl = []) {
    if (this.rng.chance(0.04) && !excl.includes('zero')) return 'zero';
    return this.rng.pick(POOL.filter((r) => !excl.includes(r)));
  }
  src(excl = []) {
    if (this.rng.chance(0.06) && !excl.includes('zero')) return 'zero';
    return this.rng.pick(POOL.filter((r) => !excl.includes(r)));
  }
  /** With probability p, loads r with an interesting integer first. */
  maybeSeed(r, p = 0.25, v = null) {
    if (r !== 'zero' && this.rng.chance(p)) this.li(r, v ?? intValue(this.rng));
  }
  loadF(f, bits) {
    this.li('tp', bits);
    this.ins(`fmv.d.x ${f}, tp`);
  }

  // --- integer ---
  aluR(opts = {}) {
    const { rng } = this;
    const ops = ['add', 'sub', 'sll', 'slt', 'sltu', 'xor', 'srl', 'sra', 'or', 'and', 'addw',
      'subw', 'sllw', 'srlw', 'sraw', 'mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem',
      'remu', 'mulw', 'divw', 'divuw', 'remw', 'remuw'];
    const op = rng.pick(opts.baseOnly ? ops.slice(0, 15) : ops);
    const excl = opts.excl ?? [];
    const rs1 = this.src(excl), rs2 = this.src(excl), rd = this.dst(excl);
    if (!opts.fixedSize) {
      if (/div|rem/.test(op) && rng.chance(0.35)) {
        this.maybeSeed(rs1, 0.7, rng.pick([1n << 63n, 0xffffffff80000000n, 0x80000000n, M64, intValue(rng)]));
        this.maybeSeed(rs2, 1, rng.pick([0n, M64, 1n, 0xffffffffn, 0x100000000n]));
      } else {
        this.maybeSeed(rs1);
        this.maybeSeed(rs2);
      }
    }
    this.ins(`${op} ${rd}, ${rs1}, ${rs2}`);
    if (!opts.noSig) this.sig(rd);
  }

  aluI(opts = {}) {
    const { rng } = this;
    const excl = opts.excl ?? [];
    const rs1 = this.src(excl), rd = this.dst(excl);
    if (!opts.fixedSize) this.maybeSeed(rs1);
    const imm12 = () => rng.chance(0.3) ? rng.pick([0, 1, -1, 2047, -2048, 0x7ff, -0x800, 0x555]) : rng.range(-2048, 2047);
    const shamt = (n) => rng.chance(0.3) ? rng.pick([0, 1, n - 1, n >> 1]) : rng.int(n);
    const kind = rng.int(15);
    const iops = ['addi', 'slti', 'sltiu', 'xori', 'ori', 'andi', 'addiw'];
    if (kind < 9) this.ins(`${iops[kind % 7]} ${rd}, ${rs1}, ${imm12()}`);
    else if (kind < 12) this.ins(`${['slli', 'srli', 'srai'][kind - 9]} ${rd}, ${rs1}, ${shamt(64)}`);
    else this.ins(`${['slliw', 'srliw', 'sraiw'][kind - 12]} ${rd}, ${rs1}, ${shamt(32)}`);
    if (!opts.noSig) this.sig(rd);
  }

  /** A 2-byte compressed ALU operation (for measured regions as well). */
  cAlu(opts = {}) {
    const { rng } = this;
    const excl = opts.excl ?? [];
    const full = POOL.filter((r) => !excl.includes(r));
    const cp = CPOOL.filter((r) => !excl.includes(r));
    const nz6 = () => { let v; do v = rng.range(-32, 31); while (v === 0); return v; };
    let rd;
    switch (rng.int(14)) {
      case 0: rd = rng.pick(full); this.c(`c.li ${rd}, ${rng.range(-32, 31)}`); break;
      case 1: {
        rd = rng.pick(full.filter((r) => r !== 'sp'));
        const v = rng.chance(0.5) ? rng.range(1, 31) : rng.range(0xfffe0, 0xfffff);
        this.c(`c.lui ${rd}, ${hex(v)}`);
        break;
      }
      case 2: rd = rng.pick(full); this.c(`c.addi ${rd}, ${nz6()}`); break;
      case 3: rd = rng.pick(full); this.c(`c.addiw ${rd}, ${rng.range(-32, 31)}`); break;
      case 4: rd = rng.pick(full); this.c(`c.slli ${rd}, ${rng.range(1, 63)}`); break;
      case 5: rd = rng.pick(cp); this.c(`c.srli ${rd}, ${rng.range(1, 63)}`); break;
      case 6: rd = rng.pick(cp); this.c(`c.srai ${rd}, ${rng.range(1, 63)}`); break;
      case 7: rd = rng.pick(cp); this.c(`c.andi ${rd}, ${rng.range(-32, 31)}`); break;
      case 8: case 9: {
        rd = rng.pick(cp);
        const op = rng.pick(['c.sub', 'c.xor', 'c.or', 'c.and', 'c.subw', 'c.addw']);
        this.c(`${op} ${rd}, ${rng.pick(CPOOL)}`);
        break;
      }
      case 10: case 11: rd = rng.pick(full); this.c(`c.mv ${rd}, ${rng.pick(POOL)}`); break;
      default: rd = rng.pick(full); this.c(`c.add ${rd}, ${rng.pick(POOL)}`); break;
    }
    if (!opts.noSig) this.sig(rd);
  }

  luiAuipc() {
    const { rng } = this;
    const rd = this.dst();
    const imm = rng.chance(0.3) ? rng.pick([0, 1, 0x7ffff, 0x80000, 0xfffff]) : rng.int(1 << 20);
    if (rng.chance(0.5)) {
      this.ins(`lui ${rd}, ${hex(imm)}`);
    } else {
      // auipc gives pc + imm: subtract the pc of the next instruction, so rd = imm << 12 - 4
      this.ins(`auipc ${rd}, ${hex(imm)}`);
      this.ins('auipc tp, 0');
      this.ins(`sub ${rd}, ${rd}, tp`);
    }
    this.sig(rd);
  }

  liSeed() {
    const rd = this.dst(['zero']);
    this.li(rd, intValue(this.rng));
    this.sig(rd);
  }

  /** Straight-line operations of known size, none writing a register in `excl`. */
  filler(n, excl = [], baseOnly = false) {
    const noSig = baseOnly; // between LR and SC: no stores
    for (let i = 0; i < n; i++) {
      const k = this.rng.int(baseOnly ? 2 : 3);
      if (k === 0) this.aluR({ excl, fixedSize: true, baseOnly, noSig });
      else if (k === 1) this.aluI({ excl, fixedSize: true, noSig });
      else this.cAlu({ excl });
    }
  }

  branch() {
    const { rng } = this;
    const op = rng.pick(['beq', 'bne', 'blt', 'bge', 'bltu', 'bgeu']);
    const rs1 = this.src();
    let rs2 = this.src();
    switch (rng.int(4)) {
      case 0: rs2 = rs1; break;
      case 1: {
        const v = intValue(rng);
        this.maybeSeed(rs1, 1, v);
        this.maybeSeed(rs2, 1, rng.chance(0.5) ? v : intValue(rng));
        break;
      }
      default: break;
    }
    const l = this.label();
    this.ins(`${op} ${rs1}, ${rs2}, ${l}`);
    this.filler(rng.range(1, 3));
    this.place(l);
  }

  cBranch() {
    const { rng } = this;
    const rs = rng.pick(CPOOL);
    if (rng.chance(0.4)) this.li(rs, rng.pick([0n, intValue(rng)]));
    const l = this.label();
    if (rng.chance(0.2)) this.c(`c.j ${l}`);
    else this.c(`${rng.pick(['c.beqz', 'c.bnez'])} ${rs}, ${l}`);
    this.filler(rng.range(1, 3));
    this.place(l);
  }

  loop() {
    const { rng } = this;
    const rc = rng.pick(POOL);
    const n = rng.range(1, 4);
    this.li(rc, BigInt(n));
    const l = this.label();
    this.place(l);
    this.filler(rng.range(1, 3), [rc, 'zero']);
    if (CPOOL.includes(rc) && rng.chance(0.3)) {
      this.c(`c.addi ${rc}, -1`);
      this.c(`c.bnez ${rc}, ${l}`);
    } else {
      this.ins(`addi ${rc}, ${rc}, -1`);
      this.ins(rng.pick([`bne ${rc}, zero, ${l}`, `blt zero, ${rc}, ${l}`, `bltu zero, ${rc}, ${l}`]));
    }
    this.sig(rc);
  }

  jal() {
    const { rng } = this;
    const rd = rng.chance(0.2) ? 'zero' : rng.pick(POOL);
    const l = this.label();
    this.ins(`jal ${rd}, ${l}`);
    this.filler(rng.range(0, 2));
    this.place(l);
    if (rd !== 'zero') {
      this.ins('auipc tp, 0');
      this.ins(`sub ${rd}, ${rd}, tp`);
    }
    this.sig(rd);
  }

  jalr() {
    const { rng } = this;
    const rb = rng.pick(POOL);
    const rd = rng.chance(0.15) ? 'zero' : rng.chance(0.15) ? rb : rng.pick(POOL);
    const k = rng.chance(0.5) ? 0 : rng.range(-200, 200);
    const start = this.mark();
    this.ins(`auipc ${rb}, 0`);
    if (k) this.ins(`addi ${rb}, ${rb}, ${k}`);
    const jalrAt = this.mark();
    this.ins('jalr PLACEHOLDER');
    this.filler(rng.range(0, 2), [rb]);
    const d = this.bytesSince(start);
    const odd = rng.chance(0.3) ? 1 : 0;
    this.lines[jalrAt].text = `  jalr ${rd}, ${d - k + odd}(${rb})`;
    this.ins('auipc tp, 0');
    if (rd !== 'zero') this.ins(`sub ${rd}, ${rd}, tp`);
    if (rb !== rd) this.ins(`sub ${rb}, ${rb}, tp`);
    this.sig(rd);
    if (rb !== rd) this.sig(rb);
  }

  cJump() {
    const { rng } = this;
    const link = rng.chance(0.5);
    const rb = link && rng.chance(0.15) ? 'ra' : rng.pick(POOL);
    const start = this.mark();
    this.ins(`auipc ${rb}, 0`);
    const addiAt = this.mark();
    this.ins('addi PLACEHOLDER');
    this.c(`${link ? 'c.jalr' : 'c.jr'} ${rb}`);
    this.filler(rng.range(0, 2), [rb]);
    this.lines[addiAt].text = `  addi ${rb}, ${rb}, ${this.bytesSince(start)}`;
    this.ins('auipc tp, 0');
    if (link) this.ins('sub ra, ra, tp');
    if (!(link && rb === 'ra')) this.ins(`sub ${rb}, ${rb}, tp`);
    if (link) this.sig('ra');
    if (rb !== 'ra' || !link) this.sig(rb);
  }

  /**
   * A branch or jal to an island placed out of line (kilobytes away, see flushIslands),
   * which runs a few operations and jumps back: large forward and backward offsets.
   */
  far() {
    const { rng } = this;
    const island = this.label(), back = this.label();
    const jal = rng.chance(0.35);
    const rd = rng.chance(0.2) ? 'zero' : rng.pick(POOL);
    if (jal) {
      this.ins(`jal ${rd}, ${island}`);
    } else {
      const rs1 = this.src();
      const rs2 = rng.chance(0.3) ? rs1 : this.src();
      this.ins(`${rng.pick(['beq', 'bne', 'blt', 'bge', 'bltu', 'bgeu'])} ${rs1}, ${rs2}, ${island}`);
    }
    this.place(back);
    // the island is generated now, so that its signature slots are relative to this gp
    const saved = this.lines;
    this.lines = [];
    this.place(island);
    if (jal && rd !== 'zero') {
      this.ins('auipc tp, 0');
      this.ins(`sub ${rd}, ${rd}, tp`);
    }
    if (jal) this.sig(rd);
    this.filler(rng.range(1, 3));
    this.ins(rng.pick([`j ${back}`, `beq zero, zero, ${back}`, `bge zero, zero, ${back}`, `jal tp, ${back}`]));
    this.islands.push(...this.lines);
    this.lines = saved;
  }

  flushIslands() {
    if (!this.islands.length) return;
    const over = this.label();
    this.ins(`j ${over}`);
    this.lines.push(...this.islands);
    this.islands = [];
    this.place(over);
  }

  /**
   * Self-modifying code: stores an I-type ALU instruction over a nop, fence.i, executes it;
   * in a loop that changes the immediate each time.
   */
  smc() {
    const { rng } = this;
    const rb = rng.pick(POOL);
    const rv = rng.pick(POOL.filter((r) => r !== rb));
    const rc = rng.pick(POOL.filter((r) => r !== rb && r !== rv));
    const free = POOL.filter((r) => ![rb, rv, rc].includes(r));
    const rd = rng.pick(free);
    const rs1 = rng.chance(0.5) ? rd : rng.pick(free);
    const [op, f3, opc] = rng.pick([['addi', 0, 0x13], ['slti', 2, 0x13], ['sltiu', 3, 0x13], ['xori', 4, 0x13],
      ['ori', 6, 0x13], ['andi', 7, 0x13], ['addiw', 0, 0x1b]]);
    const imm = rng.range(-2048, 2047);
    const enc = ((imm & 0xfff) << 20 | X.indexOf(rs1) << 15 | f3 << 12 | X.indexOf(rd) << 7 | opc) >>> 0;
    this.comment(`patches in ${op} ${rd}, ${rs1}, ${imm} (then imm + 1, ...)`);
    this.li(rv, BigInt(enc));
    this.li(rc, BigInt(rng.range(1, 3)));
    const l = this.label();
    this.place(l);
    this.ins(`auipc ${rb}, 0`);
    this.ins(`sw ${rv}, 12(${rb})`);
    this.ins('fence.i');
    this.ins('nop /* patched */');
    this.ins('lui tp, 0x100');
    this.ins(`add ${rv}, ${rv}, tp`);
    this.ins(`addi ${rc}, ${rc}, -1`);
    this.ins(`bne ${rc}, zero, ${l}`);
    this.ins('auipc tp, 0');
    this.ins(`sub ${rb}, ${rb}, tp`);
    this.sig(rd);
    this.sig(rb);
  }

  // --- memory ---
  /** An address in the buffer for an access of `w` bytes; aligned with probability pAlign. */
  addr(w, pAlign = 0.7) {
    if (this.rng.chance(pAlign)) return this.rng.int(BUF_SIZE / w) * w;
    return this.rng.int(BUF_SIZE - w + 1);
  }
  /** A base register and offset reaching buffer address a: sp or rb = sp + k. */
  base(a, excl) {
    const { rng } = this;
    if (rng.chance(0.55)) return { reg: 'sp', off: a, rb: null };
    const rb = rng.pick(POOL.filter((r) => !excl.includes(r)));
    const k = rng.range(-300, 600);
    this.ins(`addi ${rb}, sp, ${k}`);
    return { reg: rb, off: a - k, rb };
  }

  mem() {
    const { rng } = this;
    const ld = rng.chance(0.55);
    const [op, w] = ld
      ? rng.pick([['lb', 1], ['lbu', 1], ['lh', 2], ['lhu', 2], ['lw', 4], ['lwu', 4], ['ld', 8]])
      : rng.pick([['sb', 1], ['sh', 2], ['sw', 4], ['sd', 8]]);
    const a = this.addr(w);
    if (ld) {
      const rd = this.dst();
      const b = this.base(a, []);
      this.ins(`${op} ${rd}, ${b.off}(${b.reg})`);
      this.sig(rd);
      if (b.rb && b.rb !== rd) this.ins(`sub ${b.rb}, ${b.rb}, sp`);
    } else {
      const rs = this.src();
      this.maybeSeed(rs, 0.2);
      const b = this.base(a, [rs]);
      this.ins(`${op} ${rs}, ${b.off}(${b.reg})`);
      if (b.rb) this.ins(`sub ${b.rb}, ${b.rb}, sp`);
      if (rng.chance(0.4)) {
        const rd = this.dst();
        this.ins(`ld ${rd}, ${a & ~7}(sp)`);
        this.sig(rd);
      }
    }
  }

  fmem() {
    const { rng } = this;
    const d = rng.chance(0.5);
    const w = d ? 8 : 4;
    const a = this.addr(w);
    const f = rng.pick(F);
    const b = this.base(a, []);
    if (rng.chance(0.5)) {
      this.ins(`${d ? 'fld' : 'flw'} ${f}, ${b.off}(${b.reg})`);
      this.sig(f);
    } else {
      if (rng.chance(0.3)) this.loadF(f, d ? dValue(rng) : sValue(rng));
      this.ins(`${d ? 'fsd' : 'fsw'} ${f}, ${b.off}(${b.reg})`);
    }
    if (b.rb) this.ins(`sub ${b.rb}, ${b.rb}, sp`);
  }

  /** Compressed loads and stores, through sp or through rb' = sp + k. */
  cMem() {
    const { rng } = this;
    const [kind, w] = rng.pick([['w', 4], ['d', 8], ['fd', 8]]);
    const store = rng.chance(0.45);
    if (rng.chance(0.4)) {
      const a = rng.int(BUF_SIZE / w) * w;
      if (kind === 'fd') {
        const f = rng.pick(F);
        if (store) this.c(`c.fsdsp ${f}, ${a}(sp)`);
        else { this.c(`c.fldsp ${f}, ${a}(sp)`); this.sig(f); }
      } else if (store) {
        this.c(`c.s${kind}sp ${rng.pick(POOL)}, ${a}(sp)`);
      } else {
        const rd = rng.pick(POOL);
        this.c(`c.l${kind}sp ${rd}, ${a}(sp)`);
        this.sig(rd);
      }
      return;
    }
    // base rb' = sp + k (k may be odd: misaligned), offset a multiple of w in [0, 31 * w]
    const a = this.addr(w, 0.6);
    const maxOff = Math.min(31 * w, a - (a % w));
    const off = rng.int(Math.floor(maxOff / w) + 1) * w;
    const k = a - off;
    const rb = rng.pick(CPOOL);
    this.ins(`addi ${rb}, sp, ${k}`);
    let loadedRb = false;
    if (kind === 'fd') {
      const f = rng.pick(CF);
      if (store) this.c(`c.fsd ${f}, ${off}(${rb})`);
      else { this.c(`c.fld ${f}, ${off}(${rb})`); this.sig(f); }
    } else if (store) {
      this.c(`c.s${kind} ${rng.pick(CPOOL.filter((r) => r !== rb))}, ${off}(${rb})`);
    } else {
      const rd = rng.pick(CPOOL);
      this.c(`c.l${kind} ${rd}, ${off}(${rb})`);
      this.sig(rd);
      loadedRb = rd === rb;
    }
    if (!loadedRb) this.ins(`sub ${rb}, ${rb}, sp`);
  }

  /** c.addi16sp there and back (with an access in between), c.addi4spn. */
  cSp() {
    const { rng } = this;
    if (rng.chance(0.5)) {
      let imm;
      do imm = rng.range(-31, 31) * 16; while (imm === 0);
      this.c(`c.addi16sp sp, ${imm}`);
      const a = this.addr(8, 1);
      const rd = this.dst();
      this.ins(`ld ${rd}, ${a - imm}(sp)`);
      this.sig(rd);
      this.c(`c.addi16sp sp, ${-imm}`);
    } else {
      const rd = rng.pick(CPOOL);
      this.c(`c.addi4spn ${rd}, sp, ${rng.range(1, 255) * 4}`);
      this.ins(`sub ${rd}, ${rd}, sp`);
      this.sig(rd);
    }
  }

  amo() {
    const { rng } = this;
    const w = rng.pick(['w', 'd']);
    const op = rng.pick(['swap', 'add', 'xor', 'and', 'or', 'min', 'max', 'minu', 'maxu']);
    const ord = rng.pick(['', '.aq', '.rl', '.aqrl']);
    const a = rng.int(BUF_SIZE / (w === 'w' ? 4 : 8)) * (w === 'w' ? 4 : 8);
    const rb = rng.pick(POOL);
    const rd = this.dst([rb]);
    const rs2 = this.src([rb]);
    this.maybeSeed(rs2, 0.3);
    this.ins(`addi ${rb}, sp, ${a}`);
    this.ins(`amo${op}.${w}${ord} ${rd}, ${rs2}, (${rb})`);
    this.ins(`sub ${rb}, ${rb}, sp`);
    this.sig(rd);
    if (rng.chance(0.5)) {
      const rt = this.dst();
      this.ins(`l${w} ${rt}, ${a}(sp)`);
      this.sig(rt);
    }
  }

  lrsc() {
    const { rng } = this;
    const w = rng.pick(['w', 'd']);
    const sz = w === 'w' ? 4 : 8;
    const a = rng.int(BUF_SIZE / sz) * sz;
    const ord = () => rng.pick(['', '.aq', '.rl', '.aqrl']);
    const rb = rng.pick(POOL);
    const rd = this.dst([rb]);
    const rs2 = this.src([rb]);
    const rr = this.dst([rb, rd]);
    this.ins(`addi ${rb}, sp, ${a}`);
    const kind = rng.int(10);
    if (kind < 7) {
      // LR then SC of the same address, only base ALU operations in between: must succeed
      this.ins(`lr.${w}${ord()} ${rd}, (${rb})`);
      this.filler(rng.range(0, 2), [rb, rd, rr], true);
      this.ins(`sc.${w}${ord()} ${rr}, ${rs2}, (${rb})`);
      this.sig(rd);
      this.sig(rr);
      if (rng.chance(0.3)) {
        // a second SC: the reservation is gone, must fail and not store
        this.ins(`sc.${w}${ord()} ${rr}, zero, (${rb})`);
        this.sig(rr);
      }
    } else {
      // SC without a reservation (the last LR was consumed by its SC): must fail
      this.ins(`sc.${w}${ord()} ${rr}, ${rs2}, (${rb})`);
      this.sig(rr);
    }
    this.ins(`sub ${rb}, ${rb}, sp`);
    const rt = this.dst();
    this.ins(`l${w} ${rt}, ${a}(sp)`);
    this.sig(rt);
  }

  fence() {
    this.ins(this.rng.pick(['fence', 'fence rw, rw', 'fence r, w', 'fence.i', 'fence iorw, iorw', 'nop']));
  }

  // --- floating point ---
  rm() {
    const { rng } = this;
    if (this.frm <= 4 && rng.chance(0.25)) return rng.chance(0.5) ? ', dyn' : '';
    return ', ' + rng.pick(RMS);
  }

  /** Reads fflags (or fcsr) into a random register after an FP operation, then logs it. */
  flags() {
    const { rng } = this;
    const rd = rng.pick(POOL);
    const k = rng.int(20);
    if (k < 11) this.ins(`fsflags ${rd}, zero`);           // read and clear
    else if (k < 14) this.ins(`frflags ${rd}`);             // read, flags accumulate
    else if (k < 16) this.ins(`frcsr ${rd}`);
    else if (k < 18) this.ins(`csrrci ${rd}, fflags, 0x1f`);
    else this.ins(`csrrc ${rd}, fcsr, ${this.seedReg(0x1fn)}`);
    this.sig(rd);
  }

  seedReg(v) {
    const r = this.rng.pick(POOL);
    this.li(r, v);
    return r;
  }

  /** An FP source register of precision p ('s' or 'd'), freshly loaded with probability q. */
  fsrc(p, q = 0.5) {
    const f = this.rng.pick(F);
    if (this.special) this.loadF(f, p === 'd' ? this.rng.pick(D_SPECIAL) : BOX | this.rng.pick(S_SPECIAL));
    else if (this.rng.chance(q)) this.loadF(f, p === 'd' ? dValue(this.rng) : sValue(this.rng));
    return f;
  }

  fp() {
    const { rng } = this;
    const p = rng.chance(0.5) ? 'd' : 's';
    const fd = rng.pick(F);
    const kind = rng.weighted({ arith: 8, sqrt: 2, fma: 6, minmax: 3, sgnj: 3, cmp: 3, class: 2, f2i: 5, i2f: 4, f2f: 2, mv: 2, special: 5 });
    let intResult = null;
    // all operands from the special values (zeros, infinities, NaNs...), which are otherwise
    // rarely combined: inf * 0 + qNaN, fmin(-0, +0), feq with a signalling NaN, ...
    this.special = rng.chance(0.25);
    switch (kind) {
      case 'arith': {
        const op = rng.pick(['fadd', 'fsub', 'fmul', 'fdiv']);
        const a = this.fsrc(p), b = this.fsrc(p);
        this.ins(`${op}.${p} ${fd}, ${a}, ${b}${this.rm()}`);
        break;
      }
      case 'sqrt': this.ins(`fsqrt.${p} ${fd}, ${this.fsrc(p, 0.7)}${this.rm()}`); break;
      case 'fma': {
        const op = rng.pick(['fmadd', 'fmsub', 'fnmadd', 'fnmsub']);
        const a = this.fsrc(p), b = this.fsrc(p), c = this.fsrc(p);
        this.ins(`${op}.${p} ${fd}, ${a}, ${b}, ${c}${this.rm()}`);
        break;
      }
      case 'minmax': this.ins(`${rng.pick(['fmin', 'fmax'])}.${p} ${fd}, ${this.fsrc(p, 0.7)}, ${this.fsrc(p, 0.7)}`); break;
      case 'sgnj': this.ins(`${rng.pick(['fsgnj', 'fsgnjn', 'fsgnjx'])}.${p} ${fd}, ${this.fsrc(p)}, ${this.fsrc(p)}`); break;
      case 'cmp': {
        intResult = this.dst();
        const a = this.fsrc(p, 0.7);
        const b = rng.chance(0.2) ? a : this.fsrc(p, 0.7);
        this.ins(`${rng.pick(['feq', 'flt', 'fle'])}.${p} ${intResult}, ${a}, ${b}`);
        break;
      }
      case 'class': intResult = this.dst(); this.ins(`fclass.${p} ${intResult}, ${this.fsrc(p, 0.8)}`); break;
      case 'f2i': {
        intResult = this.dst();
        const t = rng.pick(['w', 'wu', 'l', 'lu']);
        this.ins(`fcvt.${t}.${p} ${intResult}, ${this.fsrc(p, 0.8)}${this.rm()}`);
        break;
      }
      case 'i2f': {
        const t = rng.pick(['w', 'wu', 'l', 'lu']);
        const rs = this.src();
        this.maybeSeed(rs, 0.6);
        const exact = p === 'd' && (t === 'w' || t === 'wu');
        this.ins(`fcvt.${p}.${t} ${fd}, ${rs}${exact ? '' : this.rm()}`);
        break;
      }
      case 'f2f':
        if (p === 's') this.ins(`fcvt.s.d ${fd}, ${this.fsrc('d', 0.8)}${this.rm()}`);
        else this.ins(`fcvt.d.s ${fd}, ${this.fsrc('s', 0.8)}`);
        break;
      case 'mv':
        if (rng.chance(0.5)) {
          intResult = this.dst();
          this.ins(`fmv.x.${p === 'd' ? 'd' : 'w'} ${intResult}, ${this.fsrc(p, 0.3)}`);
        } else {
          const rs = this.src();
          this.maybeSeed(rs, 0.4);
          this.ins(`fmv.${p === 'd' ? 'd' : 'w'}.x ${fd}, ${rs}`);
        }
        break;
      default: this.fpSpecial(p, fd); break;
    }
    this.special = false;
    this.sig(intResult ?? fd);
    this.flags();
  }

  /** Operands chosen to hit exact cancellation, fused-ness and the under/overflow boundaries. */
  fpSpecial(p, fd) {
    const { rng } = this;
    const a = rng.pick(F), b = rng.pick(F.filter((f) => f !== a)), c = rng.pick(F.filter((f) => f !== a && f !== b));
    const box = (v) => (p === 's' ? BOX | v : v);
    const bits = (x) => (p === 'd' ? f64bits(x) : f32bits(x));
    const num = (v) => (p === 'd' ? bitsF64(v) : bitsF32(v));
    const round = (x) => (p === 'd' ? x : Math.fround(x));
    const ng = (v) => nudge(rng, v, p === 'd' ? 64 : 32);
    const mant = () => (p === 'd' ? randD(rng, 1023) : randS(rng, 127)) & ~(p === 'd' ? 1n << 63n : 1n << 31n);
    const x = num(mant()) * (rng.chance(0.5) ? -1 : 1);
    const minNormal = p === 'd' ? 2 ** -1022 : 2 ** -126;
    const maxFinite = p === 'd' ? bitsF64(0x7fefffffffffffffn) : bitsF32(0x7f7fffffn);
    switch (rng.int(5)) {
      case 0: { // product close to the smallest normal: tininess is detected after rounding
        const y = round(minNormal / Math.abs(x)) * (rng.chance(0.5) ? -1 : 1);
        this.loadF(a, box(bits(x)));
        this.loadF(b, box(ng(bits(y))));
        if (rng.chance(0.5)) this.ins(`fmul.${p} ${fd}, ${a}, ${b}${this.rm()}`);
        else {
          this.loadF(c, box(bits(rng.pick([0, -0, minNormal * 2 ** -(p === 'd' ? 52 : 23), -minNormal]))));
          this.ins(`${rng.pick(['fmadd', 'fnmsub'])}.${p} ${fd}, ${a}, ${b}, ${c}${this.rm()}`);
        }
        break;
      }
      case 1: { // product close to the largest finite value
        const y = round(maxFinite / Math.abs(x));
        this.loadF(a, box(bits(x)));
        this.loadF(b, box(ng(bits(y))));
        this.ins(`fmul.${p} ${fd}, ${a}, ${b}${this.rm()}`);
        break;
      }
      case 2: { // fma with c = -(a * b) rounded: the result is the exact rounding error
        const y = num(mant()) * 2 ** rng.range(-10, 10);
        this.loadF(a, box(bits(x)));
        this.loadF(b, box(bits(round(y))));
        this.loadF(c, box(ng(bits(-round(x * round(y))))));
        this.ins(`${rng.pick(['fmadd', 'fmsub', 'fnmadd', 'fnmsub'])}.${p} ${fd}, ${a}, ${b}, ${c}${this.rm()}`);
        break;
      }
      case 3: { // near-cancelling addition, or a sum right at a rounding tie
        this.loadF(a, box(bits(x)));
        this.loadF(b, box(ng(bits(-x))));
        this.ins(`${rng.pick(['fadd', 'fsub'])}.${p} ${fd}, ${a}, ${rng.chance(0.5) ? b : a}${this.rm()}`);
        break;
      }
      default: { // division or sqrt of values near the subnormal range
        this.loadF(a, box(bits(x * minNormal * rng.pick([1, 0.5, 2 ** -10]))));
        this.loadF(b, box(bits(round(x * rng.pick([1, 3, 2 ** 20, 2 ** -20])))));
        if (rng.chance(0.6)) this.ins(`fdiv.${p} ${fd}, ${a}, ${b}${this.rm()}`);
        else this.ins(`fsqrt.${p} ${fd}, ${a}${this.rm()}`);
        break;
      }
    }
  }

  /** fcsr, frm and fflags through every Zicsr form, tracking frm. */
  fcsr() {
    const { rng } = this;
    const rd = rng.chance(0.2) ? 'zero' : rng.pick(POOL);
    const csr = rng.pick(['fflags', 'frm', 'fcsr']);
    const imm = rng.chance(0.5);
    const op = rng.pick(['w', 's', 'c']);
    let v;
    if (imm) {
      v = csr === 'frm' && op === 'w' ? (rng.chance(0.85) ? rng.range(0, 4) : rng.range(0, 31)) : rng.range(0, 31);
      this.ins(`csrr${op}i ${rd}, ${csr}, ${v}`);
    } else {
      v = BigInt(rng.chance(0.7) ? rng.range(0, 0xff) : 0) | (rng.chance(0.3) ? rng.u64() & ~0xffn : 0n);
      if (csr === 'frm' && op === 'w' && rng.chance(0.85)) v = (v & ~7n) | BigInt(rng.range(0, 4));
      if (csr === 'fcsr' && op === 'w' && rng.chance(0.85)) v = (v & ~0xe0n) | (BigInt(rng.range(0, 4)) << 5n);
      const rs = rng.chance(0.1) ? 'zero' : this.seedReg(v);
      if (rs === 'zero') v = 0n;
      this.ins(`csrr${op} ${rd}, ${csr}, ${rs}`);
      v = Number(BigInt(v) & 0xffn);
    }
    const field = csr === 'frm' ? v & 7 : csr === 'fcsr' ? (v >> 5) & 7 : 0;
    if (csr !== 'fflags') {
      if (op === 'w') this.frm = field;
      else if (op === 's') this.frm |= field;
      else this.frm &= ~field & 7;
    }
    this.sig(rd);
    if (this.frm > 4 && rng.chance(0.5)) {
      this.frm = rng.range(0, 4);
      this.ins(`fsrmi ${rng.pick(POOL)}, ${this.frm}`);
    }
  }

  // --- random encodings ---
  /**
   * One to three random encodings from the opcodes that touch registers only (or sp-relative
   * compressed loads and stores, which stay in the buffer and signature log): legal ones must
   * execute as on qemu, reserved ones must trap (the harness records and skips them). Register
   * fields that would name sp, gp or tp are redirected.
   */
  rand() {
    const n = this.rng.range(1, 3);
    for (let i = 0; i < n; i++) {
      if (this.rng.chance(0.3)) this.randC();
      else this.rand32();
    }
  }

  /** A random register number for a field that must not name sp, gp or tp. */
  fixReg(r) { return r >= 2 && r <= 4 ? X.indexOf(this.rng.pick(POOL)) : r; }

  rand32() {
    const { rng } = this;
    const opc = Number(rng.weighted({ 0x13: 3, 0x1b: 3, 0x33: 4, 0x3b: 4, 0x53: 9, 0x43: 1, 0x47: 1, 0x4b: 1, 0x4f: 1, 0x37: 1 }));
    let w = (rng.u32() & ~0x7f) | opc;
    const set = (lo, width, v) => { const m = ((1 << width) - 1) << lo; w = (w & ~m) | ((v << lo) & m); };
    const f3 = (w >> 12) & 7;
    if ((opc === 0x33 || opc === 0x3b) && rng.chance(0.6)) set(25, 7, rng.pick([0, 1, 0x20]));
    if (opc === 0x13 && (f3 === 1 || f3 === 5) && rng.chance(0.6)) set(26, 6, rng.pick([0, 0x10]));
    if (opc === 0x1b && (f3 === 1 || f3 === 5) && rng.chance(0.6)) set(25, 7, rng.pick([0, 0x20]));
    if (opc === 0x53 && rng.chance(0.8)) {
      // a defined operation with each field legal (rs2 where it selects, rm/funct3) with
      // probability 3/4, so that most reserved encodings are one field away from a legal one
      const [f7, rs2s, f3s] = rng.pick(FP_OPS);
      set(25, 7, f7);
      if (rs2s && rng.chance(0.75)) set(20, 5, rng.pick(rs2s));
      if (rng.chance(0.75)) set(12, 3, rng.pick(f3s ?? [0, 1, 2, 3, 4, 7]));
    }
    if ([0x43, 0x47, 0x4b, 0x4f].includes(opc) && rng.chance(0.8)) set(25, 2, rng.range(0, 1)); // FMA fmt: s or d
    const rd = this.fixReg((w >> 7) & 31);
    set(7, 5, rd);
    set(15, 5, this.fixReg((w >> 15) & 31));
    if (opc === 0x33 || opc === 0x3b) set(20, 5, this.fixReg((w >> 20) & 31));
    w >>>= 0;
    const fp = opc !== 0x13 && opc !== 0x1b && opc !== 0x33 && opc !== 0x3b && opc !== 0x37;
    this.ins(`.4byte ${hex(w)} /* random${fp ? ': ' + describeFp(w) : ''} */`);
    this.sig(X[rd]);
    if (fp) {
      this.sig(F[rd]);
      this.flags();
    }
  }

  randC() {
    const { rng } = this;
    const q = Number(rng.weighted({ 1: 5, 2: 4, 0: 1 }));
    let h = (rng.u32() & 0xfffc) | q;
    const set = (lo, width, v) => { const m = ((1 << width) - 1) << lo; h = (h & ~m) | ((v << lo) & m); };
    let logX = null, logF = null;
    if (q === 1) {
      const f3 = rng.range(0, 4);        // not c.j, c.beqz, c.bnez
      set(13, 3, f3);
      if (f3 < 4) {
        set(7, 5, this.fixReg((h >> 7) & 31)); // (rd = sp would be c.addi16sp)
        logX = (h >> 7) & 31;
      } else {
        logX = 8 + ((h >> 7) & 7);
      }
    } else if (q === 2) {
      const f3 = rng.pick([0, 1, 2, 3, 4, 4, 5, 6, 7]);
      set(13, 3, f3);
      set(7, 5, this.fixReg((h >> 7) & 31));
      if (f3 === 4) {
        // c.mv / c.add only: rs2 = 0 would be c.jr, c.jalr or c.ebreak
        const rs2 = (h >> 2) & 31;
        set(2, 5, rs2 === 0 ? X.indexOf(rng.pick(POOL)) : this.fixReg(rs2));
      }
      if (f3 >= 5) set(2, 5, this.fixReg((h >> 2) & 31)); // stored register
      if (f3 === 1) logF = (h >> 7) & 31;
      else if (f3 < 5) logX = (h >> 7) & 31;
      // sp-relative offsets reach at most 504 + 8: the buffer and the signature log beyond it
    } else {
      // quadrant 0 without the loads and stores: c.addi4spn with a zero immediate (reserved,
      // including the all-zero halfword) or the reserved funct3 100
      if (rng.chance(0.5)) set(5, 8, 0), set(13, 3, 0);
      else set(13, 3, 4);
    }
    this.ins(`.2byte ${hex(h)} /* random */`, 2);
    if (logX !== null) this.sig(X[logX]);
    if (logF !== null) this.sig(F[logF]);
  }

  /**
   * An FP instruction with a reserved rounding mode: rm = 5 or 6, or dyn while frm holds 5-7
   * (frm is restored after). It must raise illegal instruction, whatever the operation
   * (the spec: even those that cannot round, like fcvt.d.s, decode rm as usual).
   */
  reservedRm() {
    const { rng } = this;
    const dynamic = rng.chance(0.4);
    if (dynamic) this.ins(`csrwi frm, ${rng.range(5, 7)}`);
    const rm = dynamic ? 7 : rng.pick([5, 6]);
    let w;
    const rd = this.fixReg(rng.int(32)), rs1 = this.fixReg(rng.int(32)), any = rng.int(32);
    if (rng.chance(0.2)) { // fused multiply-add
      w = (rng.int(32) << 27) | (rng.int(2) << 25) | (any << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | rng.pick([0x43, 0x47, 0x4b, 0x4f]);
    } else {
      const [f7, rs2s] = rng.pick(FP_OPS.filter(([, , f3s]) => !f3s));
      w = (f7 << 25) | ((rs2s ? rng.pick(rs2s) : any) << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | 0x53;
    }
    this.ins(`.4byte ${hex(w >>> 0)} /* reserved rounding mode: ${describeFp(w >>> 0)} */`);
    if (dynamic) this.ins(`csrwi frm, ${this.frm}`);
    this.sig(X[rd]);
    this.sig(F[rd]);
  }

  // --- the program ---
  generate(nOps, mix = null) {
    const { rng } = this;
    const base = { aluR: 14, aluI: 12, luiAuipc: 3, liSeed: 3, branch: 6, cBranch: 3, loop: 2,
      jal: 2, jalr: 2, cJump: 2, far: 2, smc: 1, mem: 10, fmem: 4, cMem: 5, cSp: 2, cAlu: 10,
      amo: 5, lrsc: 3, fp: 34, fcsr: 4, fence: 1, rand: 8, reservedRm: 2 };
    const weights = {};
    for (const [k, w] of Object.entries(base)) weights[k] = w * (0.3 + 1.4 * (rng.u32() / 4294967296));
    if (mix) for (const k of Object.keys(weights)) weights[k] = mix[k] ?? 0;

    this.comment('initial registers');
    for (const r of POOL) this.li(r, intValue(rng));
    for (const f of F) this.loadF(f, rng.chance(0.5) ? dValue(rng) : sValue(rng));
    this.frm = rng.range(0, 4);
    this.ins(`csrwi frm, ${this.frm}`);
    for (let i = 0; i < nOps; i++) {
      // advance gp here, never inside a region that may be skipped or repeated
      if (this.sigOff > 2040 - 8 * 16) {
        this.ins(`addi gp, gp, ${this.sigOff}`);
        this.sigOff = 0;
      }
      const kind = rng.weighted(weights);
      this.comment(`${i}: ${kind}`);
      this[kind]();
      if (i % 100 === 99) this.flushIslands();
    }
    this.flushIslands();
    // leave no address in any register: tp is not dumped, sp and gp are dumped as offsets
    this.ins('li tp, 0');

    const data = ['  .pushsection .data', '  .balign 16', 'difftest_buf:'];
    for (let i = 0; i < BUF_SIZE / 8; i++) {
      const v = rng.pick([intValue, dValue, sValue, (r) => r.u64()])(rng);
      data.push(`  .dword ${hex(v)}`);
    }
    data.push('difftest_sig:', `  .rept ${this.sigs}`, `  .dword ${hex(POISON)}`, '  .endr', '  .popsection');

    return [
      '/*',
      ` * Difftest program p${String(this.index).padStart(2, '0')}: generated by scripts/gen-difftest.mjs, do not edit.`,
      ' * Included by tests/difftest/harness.S: sp = scratch buffer, gp = signature log, tp = scratch.',
      ' * "sig N" marks the store of signature slot N (line 97 + N of the dump, see the README).',
      ' */',
      ...this.lines.map((l) => l.text),
      ...data,
      '',
    ].join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Building and running.

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'latin1', timeout: 60_000, input: '', maxBuffer: 1 << 24, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return r;
}

function mustRun(cmd, args) {
  const r = run(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r;
}

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function build(dir, name) {
  const common = ['-march=rv64gc', '-mabi=lp64d', '-mno-relax', '-nostdlib', '-static', '-Wl,--build-id=none',
    '-Wl,--discard-all', `-DBODY="${join(dir, name)}.S"`, 'tests/difftest/harness.S'];
  mustRun('riscv64-unknown-elf-gcc', ['-T', 'tests/difftest/link.ld', '-Wl,-n', '-o', join(dir, `${name}.elf`), ...common]);
  mustRun('riscv64-linux-gnu-gcc', ['-DDIFFTEST_LINUX', '-Wl,--no-warn-rwx-segments', '-o', join(dir, `${name}.linux.elf`), ...common]);
}

function qemuUser(dir, name) {
  const r = run('qemu-riscv64-static', ['-cpu', QEMU_CPU, join(dir, `${name}.linux.elf`)]);
  if (r.status !== 0 || !r.stdout.endsWith('end\n')) {
    throw new Error(`qemu-riscv64-static ${name}.linux.elf: status ${r.status} signal ${r.signal}\n${r.stdout.slice(-300)}${r.stderr}`);
  }
  return r.stdout;
}

function qemuSystem(dir, name) {
  const r = run('qemu-system-riscv64', ['-M', 'virt', '-cpu', QEMU_CPU, '-m', '128M', '-bios', 'none', '-nographic', '-monitor', 'none',
    '-kernel', join(dir, `${name}.elf`)], { timeout: 30_000 });
  return { status: r.status, out: r.stdout };
}

function vireo(dir, name) {
  const r = run(process.execPath, [join(ROOT, 'bin', 'vireo.js'), '-M', 'virt', '-bios', 'none', '-nographic',
    '-kernel', join(dir, `${name}.elf`)], { timeout: 60_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** The name of dump line i (see harness.S): a register, a buffer doubleword or a signature slot. */
function lineName(i, total) {
  if (i < 31) return `x${i + 1} (${X[i + 1]})`;
  if (i < 63) return `f${i - 31}`;
  if (i === 63) return 'fcsr';
  if (i < 64 + BUF_SIZE / 8) return `buf+${(i - 64) * 8}`;
  if (i < total - 64) return `sig ${i - 64 - BUF_SIZE / 8}`;
  if (i === total - 64) return 'number of illegal-instruction traps';
  return `offset from difftest_body of illegal-instruction trap ${i - total + 64}`;
}

/**
 * The first difference between a golden dump and Vireo's, described: the earliest signature
 * slot if one differs (the log is in execution order; registers only show the end state),
 * else the first differing illegal-instruction record, else the first differing line.
 */
function firstDiff(golden, got, src) {
  const g = golden.split('\n'), v = got.split('\n');
  if (g.length !== v.length) return `the dump has ${v.length} lines, expected ${g.length}:\n${got.slice(0, 300)}`;
  const total = g.length - 2; // the dump lines, without 'end' and ''
  const diffs = [];
  for (let i = 0; i < total; i++) if (g[i] !== v[i]) diffs.push(i);
  if (!diffs.length) return null;
  const sigEnd = total - 64, sigStart = 64 + BUF_SIZE / 8;
  const i = diffs.find((d) => d >= sigStart && d < sigEnd) ?? diffs.find((d) => d > sigEnd) ?? diffs[0];
  let where = lineName(i, total);
  const m = /^sig (\d+)$/.exec(where);
  if (m && src) {
    const lines = src.split('\n');
    const at = lines.findIndex((l) => l.includes(`/* sig ${m[1]} */`));
    if (at >= 0) {
      let from = at;
      while (from > 0 && !/^\s*\/\* \d+: /.test(lines[from])) from--;
      where += ` (line ${at + 1}), from:\n${lines.slice(from, at + 1).join('\n')}`;
    }
  }
  return `${diffs.length} lines differ; line ${i + 1}: ${where}\n  expected ${g[i]}\n  got      ${v[i]}`;
}

function parseArgs(argv) {
  const o = { ...DEFAULTS, check: false, vireo: false, out: PROGS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') o.check = true;
    else if (a === '--vireo') o.vireo = true;
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--only') o.only = argv[++i].split(',');
    else if (a === '--mix') o.mix = Object.fromEntries(argv[++i].split(',').map((kv) => [kv.split('=')[0], Number(kv.split('=')[1] ?? 1)]));
    else if (a === '--seed' || a === '--count' || a === '--ops') o[a.slice(2)] = Number(argv[++i]);
    else throw new Error(`unknown argument ${a} (see the header of scripts/gen-difftest.mjs)`);
  }
  return o;
}

function check(dir, withVireo, only) {
  const names = readdirSync(dir).filter((f) => f.endsWith('.linux.elf')).map((f) => f.slice(0, -'.linux.elf'.length))
    .filter((n) => !only || only.includes(n)).sort();
  let bad = 0;
  for (const name of names) {
    const golden = readFileSync(join(dir, `${name}.out`), 'latin1');
    if (qemuUser(dir, name) !== golden) { console.log(`${name}: golden dump is stale`); bad++; }
    if (withVireo) {
      const v = vireo(dir, name);
      const d = v.status !== 0 ? `exit status ${v.status}\n${v.out.slice(-400)}${v.err}` : firstDiff(golden, v.out, readFileSync(join(dir, `${name}.S`), 'utf8'));
      if (d) { console.log(`${name}: VIREO DIFFERS: ${d}`); bad++; }
    }
  }
  console.log(`${names.length} programs checked, ${bad} problems`);
  process.exit(bad ? 1 : 0);
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = resolve(o.out);
  if (o.check) return check(dir, o.vireo, o.only);
  for (const t of ['riscv64-unknown-elf-gcc', 'riscv64-linux-gnu-gcc', 'qemu-riscv64-static']) {
    if (!have(t)) throw new Error(`${t} not found (see the header of scripts/gen-difftest.mjs)`);
  }
  const sys = have('qemu-system-riscv64');
  if (dir === PROGS && existsSync(dir)) rmSync(dir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  let sigs = 0, failed = 0;
  for (let i = 0; i < o.count; i++) {
    const name = `p${String(i).padStart(2, '0')}`;
    const prog = new Program(new Rng(o.seed * 1000 + i), i);
    const src = prog.generate(o.ops, o.mix);
    writeFileSync(join(dir, `${name}.S`), src);
    sigs += prog.sigs;
    build(dir, name);
    const out = qemuUser(dir, name);
    writeFileSync(join(dir, `${name}.out`), out, 'latin1');
    let note = '';
    if (sys) {
      // (retried: under heavy load its console output was once seen cut short)
      let s;
      for (let k = 0; k < 3; k++) if ((s = qemuSystem(dir, name)).status === 0 && s.out === out) break;
      if (s.status !== 0 || s.out !== out) {
        writeFileSync(join(dir, `${name}.system.out`), s.out, 'latin1');
        throw new Error(`${name}: qemu-system-riscv64 (bare metal, status ${s.status}) disagrees with qemu-riscv64-static: ${firstDiff(out, s.out, src)}`);
      }
      note += ', qemu-system agrees';
    }
    if (o.vireo) {
      const v = vireo(dir, name);
      const d = v.status !== 0 ? `exit status ${v.status}\n${v.out.slice(-400)}${v.err}` : firstDiff(out, v.out, src);
      if (d) { failed++; note += `, VIREO DIFFERS: ${d}`; } else note += ', Vireo agrees';
    }
    console.log(`${name}: ${prog.sigs} signature slots${note}`);
  }
  // the test re-verifies the goldens only with this QEMU version: another one may run
  // encodings of newer extensions that the random words can hit
  const qv = /version (\d+\.\d+)/.exec(run('qemu-riscv64-static', ['--version']).stdout)?.[1];
  writeFileSync(join(dir, 'SEED'), `seed ${o.seed} count ${o.count} ops ${o.ops}\nqemu ${qv}\n`);
  console.log(`${o.count} programs, ${sigs} signature slots in all (seed ${o.seed})${o.vireo ? `, ${failed} differ under Vireo` : ''}`);
}

main();
