// The C extension (Unprivileged ISA ch. 16, RV64C): each 16-bit instruction is
// expanded to its 32-bit equivalent. The expansion depends only on the 16 bits,
// so init() precomputes all 65536 of them into a table and the execute loop
// pays one load per compressed instruction. Reserved encodings expand to 0,
// which is an illegal instruction.

@inline function bits(c: u32, hi: u32, lo: u32): u32 { return (c >> lo) & ((1 << (hi - lo + 1)) - 1); }
@inline function sx(v: u32, width: u32): i32 { return (<i32>(v << (32 - width))) >> (32 - width); }

function iType(imm: i32, rs1: u32, f3: u32, rd: u32, op: u32): u32 {
  return ((<u32>imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
function sType(imm: i32, rs2: u32, rs1: u32, f3: u32, op: u32): u32 {
  const u = <u32>imm;
  return (((u >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((u & 0x1f) << 7) | op;
}
function rType(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, op: u32): u32 {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
function bType(imm: i32, rs2: u32, rs1: u32, f3: u32): u32 {
  const u = <u32>imm;
  return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}
function jType(imm: i32, rd: u32): u32 {
  const u = <u32>imm;
  return (((u >> 20) & 1) << 31) | (((u >> 1) & 0x3ff) << 21) | (((u >> 11) & 1) << 20) | (((u >> 12) & 0xff) << 12) |
    (rd << 7) | 0x6f;
}

const OP_LOAD: u32 = 0x03, OP_LOAD_FP: u32 = 0x07, OP_IMM: u32 = 0x13, OP_IMM32: u32 = 0x1b;
const OP_STORE: u32 = 0x23, OP_STORE_FP: u32 = 0x27, OP: u32 = 0x33, OP_LUI: u32 = 0x37, OP_32: u32 = 0x3b;
const OP_JALR: u32 = 0x67;

/** The 32-bit instruction equivalent to compressed instruction `c`, or 0 if `c` is reserved/illegal. */
export function expandCompressed(c: u32): u32 {
  const rdp = bits(c, 4, 2) + 8;   // rd'/rs2' in bits 4:2
  const rs1p = bits(c, 9, 7) + 8;  // rs1'/rd' in bits 9:7
  const rd = bits(c, 11, 7);
  const rs2 = bits(c, 6, 2);
  const f3 = bits(c, 15, 13);
  switch (c & 3) {
    case 0:
      switch (f3) {
        case 0: { // c.addi4spn
          const imm = (bits(c, 12, 11) << 4) | (bits(c, 10, 7) << 6) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 3);
          if (imm == 0) return 0;
          return iType(imm, 2, 0, rdp, OP_IMM);
        }
        case 1: return iType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rs1p, 3, rdp, OP_LOAD_FP); // c.fld
        case 2: return iType((bits(c, 12, 10) << 3) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 6), rs1p, 2, rdp, OP_LOAD); // c.lw
        case 3: return iType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rs1p, 3, rdp, OP_LOAD); // c.ld
        case 5: return sType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rdp, rs1p, 3, OP_STORE_FP); // c.fsd
        case 6: return sType((bits(c, 12, 10) << 3) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 6), rdp, rs1p, 2, OP_STORE); // c.sw
        case 7: return sType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rdp, rs1p, 3, OP_STORE); // c.sd
      }
      return 0;
    case 1: {
      const imm6 = sx((bits(c, 12, 12) << 5) | bits(c, 6, 2), 6);
      switch (f3) {
        case 0: return iType(imm6, rd, 0, rd, OP_IMM); // c.addi (c.nop)
        case 1: // c.addiw
          if (rd == 0) return 0;
          return iType(imm6, rd, 0, rd, OP_IMM32);
        case 2: return iType(imm6, 0, 0, rd, OP_IMM); // c.li
        case 3:
          if (rd == 2) { // c.addi16sp
            const imm = sx((bits(c, 12, 12) << 9) | (bits(c, 6, 6) << 4) | (bits(c, 5, 5) << 6) |
              (bits(c, 4, 3) << 7) | (bits(c, 2, 2) << 5), 10);
            if (imm == 0) return 0;
            return iType(imm, 2, 0, 2, OP_IMM);
          } else { // c.lui
            if (imm6 == 0) return 0;
            return ((<u32>imm6 & 0xfffff) << 12) | (rd << 7) | OP_LUI;
          }
        case 4: {
          const shamt = (bits(c, 12, 12) << 5) | bits(c, 6, 2);
          switch (bits(c, 11, 10)) {
            case 0: return iType(shamt, rs1p, 5, rs1p, OP_IMM); // c.srli
            case 1: return iType(shamt | 0x400, rs1p, 5, rs1p, OP_IMM); // c.srai
            case 2: return iType(imm6, rs1p, 7, rs1p, OP_IMM); // c.andi
          }
          const sub = bits(c, 6, 5);
          if (bits(c, 12, 12) == 0) {
            if (sub == 0) return rType(0x20, rdp, rs1p, 0, rs1p, OP); // c.sub
            if (sub == 1) return rType(0, rdp, rs1p, 4, rs1p, OP); // c.xor
            if (sub == 2) return rType(0, rdp, rs1p, 6, rs1p, OP); // c.or
            return rType(0, rdp, rs1p, 7, rs1p, OP); // c.and
          }
          if (sub == 0) return rType(0x20, rdp, rs1p, 0, rs1p, OP_32); // c.subw
          if (sub == 1) return rType(0, rdp, rs1p, 0, rs1p, OP_32); // c.addw
          return 0;
        }
        case 5: { // c.j
          const imm = sx((bits(c, 12, 12) << 11) | (bits(c, 11, 11) << 4) | (bits(c, 10, 9) << 8) |
            (bits(c, 8, 8) << 10) | (bits(c, 7, 7) << 6) | (bits(c, 6, 6) << 7) | (bits(c, 5, 3) << 1) |
            (bits(c, 2, 2) << 5), 12);
          return jType(imm, 0);
        }
        default: { // c.beqz, c.bnez
          const imm = sx((bits(c, 12, 12) << 8) | (bits(c, 11, 10) << 3) | (bits(c, 6, 5) << 6) |
            (bits(c, 4, 3) << 1) | (bits(c, 2, 2) << 5), 9);
          return bType(imm, 0, rs1p, f3 == 6 ? 0 : 1);
        }
      }
    }
    case 2: {
      switch (f3) {
        case 0: return iType((bits(c, 12, 12) << 5) | bits(c, 6, 2), rd, 1, rd, OP_IMM); // c.slli
        case 1: return iType((bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6), 2, 3, rd, OP_LOAD_FP); // c.fldsp
        case 2: // c.lwsp
          if (rd == 0) return 0;
          return iType((bits(c, 12, 12) << 5) | (bits(c, 6, 4) << 2) | (bits(c, 3, 2) << 6), 2, 2, rd, OP_LOAD);
        case 3: // c.ldsp
          if (rd == 0) return 0;
          return iType((bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6), 2, 3, rd, OP_LOAD);
        case 4:
          if (bits(c, 12, 12) == 0) {
            if (rs2 == 0) {
              if (rd == 0) return 0;
              return iType(0, rd, 0, 0, OP_JALR); // c.jr
            }
            return rType(0, rs2, 0, 0, rd, OP); // c.mv
          }
          if (rs2 == 0) {
            if (rd == 0) return 0x00100073; // c.ebreak
            return iType(0, rd, 0, 1, OP_JALR); // c.jalr
          }
          return rType(0, rs2, rd, 0, rd, OP); // c.add
        case 5: return sType((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6), rs2, 2, 3, OP_STORE_FP); // c.fsdsp
        case 6: return sType((bits(c, 12, 9) << 2) | (bits(c, 8, 7) << 6), rs2, 2, 2, OP_STORE); // c.swsp
        case 7: return sType((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6), rs2, 2, 3, OP_STORE); // c.sdsp
      }
      return 0;
    }
  }
  return 0;
}
