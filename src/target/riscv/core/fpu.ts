// The F and D extensions (Unprivileged ISA ch. 11-13): decoding of OP-FP and the
// fused multiply-add opcodes, NaN-boxing of singles in the 64-bit f registers,
// rounding-mode selection, mstatus.FS tracking and fflags accumulation. The
// arithmetic itself is the integer soft-float in softfp.ts, because WebAssembly
// only rounds to nearest-even and has no exception flags.
import * as S from './state';
import * as F from './softfp';

const BOX: u64 = 0xffffffff00000000;
const CANONICAL_NAN_S: u32 = 0x7fc00000;

/** F/D instructions are illegal while mstatus.FS is Off. */
@inline export function fpLoadAllowed(): bool {
  return (S.mstatus & S.MSTATUS_FS) != 0;
}

/** A single operand: the low half of a properly NaN-boxed register, else the canonical NaN. */
@inline function getS(r: u32): u32 {
  const v = S.getF(r);
  return (v & BOX) == BOX ? <u32>v : CANONICAL_NAN_S;
}
@inline function setS(r: u32, v: u32): void { S.setF(r, BOX | <u64>v); }

@inline function sext32(v: u32): u64 { return <u64><i64><i32>v; }

/** Executes one F/D arithmetic instruction (opcodes 0x43-0x53). Returns false if it is illegal. */
export function fpOp(insn: u32): bool {
  if (!fpLoadAllowed()) return false;
  const rd = (insn >> 7) & 31;
  const rs1 = (insn >> 15) & 31;
  const rs2 = (insn >> 20) & 31;
  const f3 = (insn >> 12) & 7;
  const fmt = (insn >> 25) & 3;
  if (fmt > 1) return false;
  const dbl = fmt == 1;
  const rm: u32 = f3 == 7 ? (S.fcsr >> 5) & 7 : f3;
  const opcode = insn & 0x7f;
  if (opcode != 0x53) {
    // Fused multiply-add: the negations are sign flips of the operands.
    if (rm > 4) return false;
    const rs3 = insn >> 27;
    const negProduct = opcode == 0x4b || opcode == 0x4f; // FNMSUB, FNMADD
    const negAddend = opcode == 0x47 || opcode == 0x4f;  // FMSUB, FNMADD
    if (dbl) {
      const sign: u64 = <u64>1 << 63;
      const a = S.getF(rs1) ^ (negProduct ? sign : 0);
      const c = S.getF(rs3) ^ (negAddend ? sign : 0);
      S.setF(rd, F.f64_fma(a, S.getF(rs2), c, rm));
    } else {
      const sign: u32 = 0x80000000;
      const a = getS(rs1) ^ (negProduct ? sign : 0);
      const c = getS(rs3) ^ (negAddend ? sign : 0);
      setS(rd, F.f32_fma(a, getS(rs2), c, rm));
    }
    return finish();
  }
  switch (insn >> 27) {
    case 0x00: case 0x01: case 0x02: case 0x03: { // FADD, FSUB, FMUL, FDIV
      if (rm > 4) return false;
      const op = insn >> 27;
      if (dbl) {
        const a = S.getF(rs1), b = S.getF(rs2);
        S.setF(rd, op == 0 ? F.f64_add(a, b, rm) : op == 1 ? F.f64_sub(a, b, rm) : op == 2 ? F.f64_mul(a, b, rm) : F.f64_div(a, b, rm));
      } else {
        const a = getS(rs1), b = getS(rs2);
        setS(rd, op == 0 ? F.f32_add(a, b, rm) : op == 1 ? F.f32_sub(a, b, rm) : op == 2 ? F.f32_mul(a, b, rm) : F.f32_div(a, b, rm));
      }
      return finish();
    }
    case 0x0b: // FSQRT
      if (rm > 4 || rs2 != 0) return false;
      if (dbl) S.setF(rd, F.f64_sqrt(S.getF(rs1), rm));
      else setS(rd, F.f32_sqrt(getS(rs1), rm));
      return finish();
    case 0x04: { // FSGNJ, FSGNJN, FSGNJX
      if (f3 > 2) return false;
      if (dbl) {
        const a = S.getF(rs1), b = S.getF(rs2);
        const sign: u64 = <u64>1 << 63;
        const s = f3 == 0 ? b & sign : f3 == 1 ? ~b & sign : (a ^ b) & sign;
        S.setF(rd, (a & ~sign) | s);
      } else {
        const a = getS(rs1), b = getS(rs2);
        const sign: u32 = 0x80000000;
        const s = f3 == 0 ? b & sign : f3 == 1 ? ~b & sign : (a ^ b) & sign;
        setS(rd, (a & ~sign) | s);
      }
      return finish();
    }
    case 0x05: // FMIN, FMAX
      if (f3 > 1) return false;
      if (dbl) S.setF(rd, f3 == 0 ? F.f64_min(S.getF(rs1), S.getF(rs2)) : F.f64_max(S.getF(rs1), S.getF(rs2)));
      else setS(rd, f3 == 0 ? F.f32_min(getS(rs1), getS(rs2)) : F.f32_max(getS(rs1), getS(rs2)));
      return finish();
    case 0x08: // FCVT.S.D, FCVT.D.S
      if (dbl) {
        // Widening is exact, but a reserved rounding mode is still illegal.
        if (rs2 != 0 || rm > 4) return false;
        S.setF(rd, F.f32_to_f64(getS(rs1)));
      } else {
        if (rs2 != 1 || rm > 4) return false;
        setS(rd, F.f64_to_f32(S.getF(rs1), rm));
      }
      return finish();
    case 0x14: { // FLE, FLT, FEQ
      if (f3 > 2) return false;
      let r: u32;
      if (dbl) {
        const a = S.getF(rs1), b = S.getF(rs2);
        r = f3 == 0 ? F.f64_le(a, b) : f3 == 1 ? F.f64_lt(a, b) : F.f64_eq(a, b);
      } else {
        const a = getS(rs1), b = getS(rs2);
        r = f3 == 0 ? F.f32_le(a, b) : f3 == 1 ? F.f32_lt(a, b) : F.f32_eq(a, b);
      }
      S.setX(rd, r);
      return finish();
    }
    case 0x18: { // FCVT.{W,WU,L,LU}.{S,D}
      if (rm > 4 || rs2 > 3) return false;
      let v: u64;
      if (dbl) {
        const a = S.getF(rs1);
        v = rs2 == 0 ? sext32(<u32>F.f64_to_i32(a, rm)) : rs2 == 1 ? sext32(F.f64_to_u32(a, rm))
          : rs2 == 2 ? <u64>F.f64_to_i64(a, rm) : F.f64_to_u64(a, rm);
      } else {
        const a = getS(rs1);
        v = rs2 == 0 ? sext32(<u32>F.f32_to_i32(a, rm)) : rs2 == 1 ? sext32(F.f32_to_u32(a, rm))
          : rs2 == 2 ? <u64>F.f32_to_i64(a, rm) : F.f32_to_u64(a, rm);
      }
      S.setX(rd, v);
      return finish();
    }
    case 0x1a: { // FCVT.{S,D}.{W,WU,L,LU}
      if (rm > 4 || rs2 > 3) return false;
      const x = S.getX(rs1);
      if (dbl) {
        S.setF(rd, rs2 == 0 ? F.i32_to_f64(<i32>x, rm) : rs2 == 1 ? F.u32_to_f64(<u32>x, rm)
          : rs2 == 2 ? F.i64_to_f64(<i64>x, rm) : F.u64_to_f64(x, rm));
      } else {
        setS(rd, rs2 == 0 ? F.i32_to_f32(<i32>x, rm) : rs2 == 1 ? F.u32_to_f32(<u32>x, rm)
          : rs2 == 2 ? F.i64_to_f32(<i64>x, rm) : F.u64_to_f32(x, rm));
      }
      return finish();
    }
    case 0x1c: // FMV.X.{W,D}, FCLASS
      if (rs2 != 0) return false;
      if (f3 == 0) S.setX(rd, dbl ? S.getF(rs1) : sext32(<u32>S.getF(rs1)));
      else if (f3 == 1) S.setX(rd, dbl ? F.f64_classify(S.getF(rs1)) : F.f32_classify(getS(rs1)));
      else return false;
      return finish();
    case 0x1e: // FMV.{W,D}.X
      if (rs2 != 0 || f3 != 0) return false;
      if (dbl) S.setF(rd, S.getX(rs1));
      else setS(rd, <u32>S.getX(rs1));
      return finish();
  }
  return false;
}

/** Accumulates the operation's exception flags into fcsr and marks the FP state dirty. */
@inline function finish(): bool {
  if (F.fflags != 0) {
    S.fcsr |= F.fflags;
    F.fflags = 0;
  }
  S.mstatus |= S.MSTATUS_FS;
  return true;
}
