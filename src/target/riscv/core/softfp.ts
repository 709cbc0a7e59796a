// IEEE 754-2019 binary32/binary64 soft-float with RISC-V semantics, for the F and D
// extensions (RISC-V Unprivileged ISA 20191213, chapter 11 "F" Standard Extension for
// Single-Precision Floating-Point and chapter 12 "D" Standard Extension).
//
// Integer-only: WebAssembly float ops round to nearest-even only and raise no
// exception flags, so every result is computed exactly (or with a sticky bit) in
// integers and then rounded in one of the five RISC-V rounding modes.
// RISC-V specifics implemented here: every NaN result is the canonical NaN (11.3);
// tininess is detected after rounding (11.4); fmin/fmax are minimumNumber/
// maximumNumber and fma raises NV for inf*0 even when the addend is a quiet NaN
// (11.6); float-to-integer conversions saturate and map NaN to the largest positive
// integer (11.7, table 11.4); flt/fle signal on any NaN, feq only on signaling ones
// (11.8); fclass (11.9).
//
// Values are raw bit patterns (u32 single, u64 double). `rm` is the resolved
// rounding mode: 0=RNE 1=RTZ 2=RDN 3=RUP 4=RMM. Flags accumulate in `fflags`.
//
// Internally a finite value is handled as (sign, integer R, exponent re) meaning
// R * 2^re, where R's bit 0 may be a "sticky" bit standing for any nonzero bits
// shifted out below it; round32/round64 turn that into a correctly rounded result.

/** Accumulated exception flags, fflags layout: NX=1 UF=2 OF=4 DZ=8 NV=16. The caller clears and reads it. */
export let fflags: u32 = 0;

const NX: u32 = 1;
const UF: u32 = 2;
const OF: u32 = 4;
const DZ: u32 = 8;
const NV: u32 = 16;

const RNE: u32 = 0;
const RDN: u32 = 2;
const RUP: u32 = 3;
const RMM: u32 = 4;

const F32_SIGN: u32 = 0x80000000;
const F32_INF: u32 = 0x7f800000;
const F32_QNAN: u32 = 0x7fc00000;
const F32_FRAC: u32 = 0x007fffff;
const F32_IMPL: u32 = 0x00800000;

const F64_SIGN: u64 = 0x8000000000000000;
const F64_INF: u64 = 0x7ff0000000000000;
const F64_QNAN: u64 = 0x7ff8000000000000;
const F64_FRAC: u64 = 0x000fffffffffffff;
const F64_IMPL: u64 = 0x0010000000000000;

// ---------------------------------------------------------------------------
// Helpers

/** Low half of the last mulHi product (second return value). */
let mulLo: u64 = 0;

/** High 64 bits of the 128-bit product a*b; the low 64 bits go to mulLo. */
@inline function mulHi(a: u64, b: u64): u64 {
  const a0 = a & 0xffffffff, a1 = a >> 32, b0 = b & 0xffffffff, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  mulLo = (mid << 32) | (p00 & 0xffffffff);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/** a >> d with every bit shifted out ORed into bit 0 (any distance d). */
@inline function shrJam64(a: u64, d: u32): u64 {
  if (d == 0) return a;
  if (d >= 64) return <u64>(a != 0);
  return (a >> d) | <u64>((a << (64 - d)) != 0);
}

/** High half of the last shrJam128 result. */
let shrHi: u64 = 0;

/** (hi:lo) >> d with sticky bit, for any d; returns the low half, high half in shrHi. */
function shrJam128(hi: u64, lo: u64, d: u32): u64 {
  if (d == 0) {
    shrHi = hi;
    return lo;
  }
  shrHi = 0;
  if (d < 64) {
    shrHi = hi >> d;
    return (lo >> d) | (hi << (64 - d)) | <u64>((lo << (64 - d)) != 0);
  }
  if (d == 64) return hi | <u64>(lo != 0);
  if (d < 128) return (hi >> (d - 64)) | <u64>(((hi << (128 - d)) | lo) != 0);
  return <u64>((hi | lo) != 0);
}

@inline function isNaN32(a: u32): bool {
  return (a << 1) > 0xff000000;
}
@inline function isSNaN32(a: u32): bool {
  return (a & 0x7fc00000) == 0x7f800000 && (a & 0x003fffff) != 0;
}
@inline function isNaN64(a: u64): bool {
  return (a << 1) > 0xffe0000000000000;
}
@inline function isSNaN64(a: u64): bool {
  return (a & 0x7ff8000000000000) == 0x7ff0000000000000 && (a & 0x0007ffffffffffff) != 0;
}

/** Canonical NaN result of a two-operand op with a NaN input (NV if either is signaling). */
function nan2_32(a: u32, b: u32): u32 {
  if (isSNaN32(a) || isSNaN32(b)) fflags |= NV;
  return F32_QNAN;
}
function nan2_64(a: u64, b: u64): u64 {
  if (isSNaN64(a) || isSNaN64(b)) fflags |= NV;
  return F64_QNAN;
}

@inline function invalid32(): u32 {
  fflags |= NV;
  return F32_QNAN;
}
@inline function invalid64(): u64 {
  fflags |= NV;
  return F64_QNAN;
}

/** Increment added before truncating `mask`-wide round bits (half = mask/2 + 1). */
@inline function roundIncrement(negative: bool, rm: u32, half: u64, mask: u64): u64 {
  if (rm == RNE || rm == RMM) return half;
  return rm == (negative ? RDN : RUP) ? mask : 0;
}

// ---------------------------------------------------------------------------
// Rounding. roundPackNN take sig with its leading bit at bit 62 and `exp` = biased
// exponent - 1 (so the leading bit carries into the exponent field), i.e. the
// value sig * 2^(exp - 188) for binary32 and sig * 2^(exp - 1084) for binary64.

@inline function roundPack32(sign: u32, exp: i32, sig: u64, rm: u32): u32 {
  const half: u64 = 0x4000000000; // 2^38: sig keeps 24 bits above 39 round bits
  const mask: u64 = 0x7fffffffff;
  const inc = roundIncrement(sign != 0, rm, half, mask);
  let rbits = sig & mask;
  if (<u32>exp >= 0xfd) {
    if (exp < 0) {
      // Tiny after rounding = still below the smallest normal when rounded with unbounded exponent.
      const tiny = exp < -1 || sig + inc < 0x8000000000000000;
      sig = shrJam64(sig, <u32>-exp);
      exp = 0;
      rbits = sig & mask;
      if (tiny && rbits != 0) fflags |= UF;
    } else if (exp > 0xfd || sig + inc >= 0x8000000000000000) {
      fflags |= OF | NX;
      // Modes that round toward zero for this sign give the largest finite number.
      return ((sign << 31) | F32_INF) - <u32>(inc == 0);
    }
  }
  if (rbits != 0) fflags |= NX;
  let s = <u32>((sig + inc) >> 39);
  if (rbits == half && rm == RNE) s &= ~1;
  return (sign << 31) + (<u32>exp << 23) + s;
}

@inline function roundPack64(sign: u64, exp: i32, sig: u64, rm: u32): u64 {
  const half: u64 = 0x200;
  const mask: u64 = 0x3ff;
  const inc = roundIncrement(sign != 0, rm, half, mask);
  let rbits = sig & mask;
  if (<u32>exp >= 0x7fd) {
    if (exp < 0) {
      const tiny = exp < -1 || sig + inc < 0x8000000000000000;
      sig = shrJam64(sig, <u32>-exp);
      exp = 0;
      rbits = sig & mask;
      if (tiny && rbits != 0) fflags |= UF;
    } else if (exp > 0x7fd || sig + inc >= 0x8000000000000000) {
      fflags |= OF | NX;
      return ((sign << 63) | F64_INF) - <u64>(inc == 0);
    }
  }
  if (rbits != 0) fflags |= NX;
  let s = (sig + inc) >> 10;
  if (rbits == half && rm == RNE) s &= ~1;
  return (sign << 63) + (<u64>exp << 52) + s;
}

/** Rounds (-1)^sign * r * 2^re to binary32; r != 0, bit 0 of r may be sticky. */
@inline function round32(sign: u32, re: i32, r: u64, rm: u32): u32 {
  const lead = 63 - <i32>clz(r);
  const sig = lead == 63 ? (r >> 1) | (r & 1) : r << <u64>(62 - lead);
  return roundPack32(sign, re + lead + 126, sig, rm);
}

/** Rounds (-1)^sign * r * 2^re to binary64; r != 0, bit 0 of r may be sticky. */
@inline function round64(sign: u64, re: i32, r: u64, rm: u32): u64 {
  const lead = 63 - <i32>clz(r);
  const sig = lead == 63 ? (r >> 1) | (r & 1) : r << <u64>(62 - lead);
  return roundPack64(sign, re + lead + 1022, sig, rm);
}

/**
 * floor(sqrt(x)) for x in [2^62, 2^64): a quadratic seed on each half of the range
 * (relative error < 2^-10.5), two Newton steps (error < 2^-40, never below the floor
 * after the first step), then an exact fix-up of at most one.
 */
function isqrt64(x: u64): u64 {
  const u = x >> 32;
  let g: u64;
  if (x < 0x8000000000000000) {
    const z = (u - 0x40000000) << 2; // x / 2^62 - 1 as a 32-bit fraction
    g = 0x801521b2 + ((z * (0x3e120782 - ((0x09401948 * z) >> 32))) >> 32);
  } else {
    const z = (u - 0x80000000) << 1; // (x / 2^62 - 2) / 2 as a 32-bit fraction
    g = 0xb522d5ab + ((z * (0x57c7e51d - ((0x0d14ff54 * z) >> 32))) >> 32);
  }
  g = (g + x / g) >> 1;
  g = (g + x / g) >> 1;
  if (g > 0xffffffff) g = 0xffffffff;
  while (g * g > x) g--;
  return g;
}

// ---------------------------------------------------------------------------
// binary32 arithmetic

/** a + b (both binary32). */
function add32(a: u32, b: u32, rm: u32): u32 {
  const ea = <i32>(a >> 23) & 0xff;
  const eb = <i32>(b >> 23) & 0xff;
  if (ea == 0xff || eb == 0xff) {
    if (isNaN32(a) || isNaN32(b)) return nan2_32(a, b);
    if (ea == eb && ((a ^ b) >> 31) != 0) return invalid32();
    return ea == 0xff ? a : b;
  }
  // Subnormals: no implicit bit, exponent 1. Significands sit at bits 38..61.
  let x = <u64>(a & F32_FRAC), y = <u64>(b & F32_FRAC);
  let xa = ea, xb = eb;
  if (ea != 0) x |= F32_IMPL; else xa = 1;
  if (eb != 0) y |= F32_IMPL; else xb = 1;
  x <<= 38;
  y <<= 38;
  const d = xa - xb;
  let re: i32;
  if (d >= 0) {
    y = shrJam64(y, <u32>d);
    re = xa - 188;
  } else {
    x = shrJam64(x, <u32>-d);
    re = xb - 188;
  }
  let sign = a >> 31;
  let r: u64;
  if (((a ^ b) >> 31) == 0) {
    r = x + y;
    if (r == 0) return a; // (+0)+(+0) or (-0)+(-0)
  } else if (x >= y) {
    r = x - y;
    if (r == 0) return rm == RDN ? F32_SIGN : 0; // exact cancellation: +0 except in RDN
  } else {
    r = y - x;
    sign = b >> 31;
  }
  return round32(sign, re, r, rm);
}

/** binary32 a + b. */
export function f32_add(a: u32, b: u32, rm: u32): u32 {
  return add32(a, b, rm);
}

/** binary32 a - b. */
export function f32_sub(a: u32, b: u32, rm: u32): u32 {
  return add32(a, b ^ F32_SIGN, rm);
}

/** binary32 a * b. */
export function f32_mul(a: u32, b: u32, rm: u32): u32 {
  const sign = (a ^ b) >> 31;
  let ea = <i32>(a >> 23) & 0xff;
  let eb = <i32>(b >> 23) & 0xff;
  if (ea == 0xff || eb == 0xff) {
    if (isNaN32(a) || isNaN32(b)) return nan2_32(a, b);
    if ((a << 1) == 0 || (b << 1) == 0) return invalid32(); // inf * 0
    return (sign << 31) | F32_INF;
  }
  let ma = <u64>(a & F32_FRAC), mb = <u64>(b & F32_FRAC);
  if (ea != 0) ma |= F32_IMPL; else ea = 1;
  if (eb != 0) mb |= F32_IMPL; else eb = 1;
  const p = ma * mb; // exact, at most 48 bits
  if (p == 0) return sign << 31;
  return round32(sign, ea + eb - 300, p, rm);
}

/** binary32 a / b. */
export function f32_div(a: u32, b: u32, rm: u32): u32 {
  const sign = (a ^ b) >> 31;
  let ea = <i32>(a >> 23) & 0xff;
  let eb = <i32>(b >> 23) & 0xff;
  let ma = a & F32_FRAC, mb = b & F32_FRAC;
  if (ea == 0xff) {
    if (ma != 0 || isNaN32(b)) return nan2_32(a, b);
    if (eb == 0xff) return invalid32(); // inf / inf
    return (sign << 31) | F32_INF;
  }
  if (eb == 0xff) {
    if (mb != 0) return nan2_32(a, b);
    return sign << 31;
  }
  if (eb == 0) {
    if (mb == 0) {
      if ((a << 1) == 0) return invalid32(); // 0 / 0
      fflags |= DZ;
      return (sign << 31) | F32_INF;
    }
    const s = <i32>clz(mb) - 8;
    mb <<= s;
    eb = 1 - s;
  }
  if (ea == 0) {
    if (ma == 0) return sign << 31;
    const s = <i32>clz(ma) - 8;
    ma <<= s;
    ea = 1 - s;
  }
  // Normalized 24-bit significands: the 39+ bit quotient plus sticky remainder is ample.
  const n = <u64>(ma | F32_IMPL) << 39;
  const dv = <u64>(mb | F32_IMPL);
  const q = n / dv;
  return round32(sign, ea - eb - 39, q | <u64>(n - q * dv != 0), rm);
}

/** binary32 square root. */
export function f32_sqrt(a: u32, rm: u32): u32 {
  let e = <i32>(a >> 23) & 0xff;
  let m = a & F32_FRAC;
  if (e == 0xff) {
    if (m != 0) return nan2_32(a, a);
    return (a >> 31) != 0 ? invalid32() : a;
  }
  if ((a << 1) == 0) return a; // sqrt(-0) = -0
  if ((a >> 31) != 0) return invalid32();
  if (e == 0) {
    const s = <i32>clz(m) - 8;
    m <<= s;
    e = 1 - s;
  }
  // a = x * 2^(E - odd - 23) with x in [2^23, 2^25); the root of x * 2^39 has 32 bits.
  const E = e - 127;
  const x = (<u64>(m | F32_IMPL) << <u64>(E & 1)) << 39;
  const s = isqrt64(x);
  return round32(0, (E >> 1) - 31, s | <u64>(s * s != x), rm);
}

/** binary32 fused a * b + c with a single rounding. */
export function f32_fma(a: u32, b: u32, c: u32, rm: u32): u32 {
  let ea = <i32>(a >> 23) & 0xff;
  let eb = <i32>(b >> 23) & 0xff;
  let ec = <i32>(c >> 23) & 0xff;
  const sp = (a ^ b) >> 31;
  if (ea == 0xff || eb == 0xff || ec == 0xff) {
    const aInf = (a << 1) == 0xff000000, bInf = (b << 1) == 0xff000000;
    const aZero = (a << 1) == 0, bZero = (b << 1) == 0;
    if (isNaN32(a) || isNaN32(b) || isNaN32(c)) {
      if (isSNaN32(a) || isSNaN32(b) || isSNaN32(c) || (aInf && bZero) || (aZero && bInf)) fflags |= NV;
      return F32_QNAN;
    }
    if (aInf || bInf) {
      if (aZero || bZero || (ec == 0xff && (c >> 31) != sp)) return invalid32();
      return (sp << 31) | F32_INF;
    }
    return c; // c infinite, product finite
  }
  if ((a << 1) == 0 || (b << 1) == 0) {
    // Exact zero product: the sum is c, except that zeros of opposite sign cancel.
    if ((c << 1) == 0 && (c >> 31) != sp) return rm == RDN ? F32_SIGN : 0;
    return c;
  }
  let ma = a & F32_FRAC, mb = b & F32_FRAC;
  if (ea == 0) {
    const s = <i32>clz(ma) - 8;
    ma <<= s;
    ea = 1 - s;
  }
  if (eb == 0) {
    const s = <i32>clz(mb) - 8;
    mb <<= s;
    eb = 1 - s;
  }
  // Exact product in [2^46, 2^48) moved to bits 59..60; its low 13 bits stay zero, so
  // aligning by one or two places is exact and any jamming happens only far below.
  let x = (<u64>(ma | F32_IMPL) * <u64>(mb | F32_IMPL)) << 13;
  let re = ea + eb - 313;
  let sign = sp;
  if ((c << 1) != 0) {
    let mc = c & F32_FRAC;
    if (ec == 0) {
      const s = <i32>clz(mc) - 8;
      mc <<= s;
      ec = 1 - s;
    }
    let y = <u64>(mc | F32_IMPL) << 36;
    const ye = ec - 186;
    const d = re - ye;
    if (d >= 0) {
      y = shrJam64(y, <u32>d);
    } else {
      x = shrJam64(x, <u32>-d);
      re = ye;
    }
    if ((c >> 31) == sp) {
      x += y;
    } else if (x >= y) {
      x -= y;
      if (x == 0) return rm == RDN ? F32_SIGN : 0;
    } else {
      x = y - x;
      sign = c >> 31;
    }
  }
  return round32(sign, re, x, rm);
}

// ---------------------------------------------------------------------------
// binary64 arithmetic

/** a + b (both binary64). */
function add64(a: u64, b: u64, rm: u32): u64 {
  const ea = <i32>(a >> 52) & 0x7ff;
  const eb = <i32>(b >> 52) & 0x7ff;
  if (ea == 0x7ff || eb == 0x7ff) {
    if (isNaN64(a) || isNaN64(b)) return nan2_64(a, b);
    if (ea == eb && ((a ^ b) >> 63) != 0) return invalid64();
    return ea == 0x7ff ? a : b;
  }
  // Significands at bits 9..61 (bit 62 takes a carry): aligning by one place is exact,
  // and a larger shift leaves >= 7 guard bits above the sticky bit after cancellation.
  let x = a & F64_FRAC, y = b & F64_FRAC;
  let xa = ea, xb = eb;
  if (ea != 0) x |= F64_IMPL; else xa = 1;
  if (eb != 0) y |= F64_IMPL; else xb = 1;
  x <<= 9;
  y <<= 9;
  const d = xa - xb;
  let re: i32;
  if (d >= 0) {
    y = shrJam64(y, <u32>d);
    re = xa - 1084;
  } else {
    x = shrJam64(x, <u32>-d);
    re = xb - 1084;
  }
  let sign = a >> 63;
  let r: u64;
  if (((a ^ b) >> 63) == 0) {
    r = x + y;
    if (r == 0) return a;
  } else if (x >= y) {
    r = x - y;
    if (r == 0) return rm == RDN ? F64_SIGN : 0;
  } else {
    r = y - x;
    sign = b >> 63;
  }
  return round64(sign, re, r, rm);
}

/** binary64 a + b. */
export function f64_add(a: u64, b: u64, rm: u32): u64 {
  return add64(a, b, rm);
}

/** binary64 a - b. */
export function f64_sub(a: u64, b: u64, rm: u32): u64 {
  return add64(a, b ^ F64_SIGN, rm);
}

/** binary64 a * b. */
export function f64_mul(a: u64, b: u64, rm: u32): u64 {
  const sign = (a ^ b) >> 63;
  let ea = <i32>(a >> 52) & 0x7ff;
  let eb = <i32>(b >> 52) & 0x7ff;
  if (ea == 0x7ff || eb == 0x7ff) {
    if (isNaN64(a) || isNaN64(b)) return nan2_64(a, b);
    if ((a << 1) == 0 || (b << 1) == 0) return invalid64();
    return (sign << 63) | F64_INF;
  }
  let ma = a & F64_FRAC, mb = b & F64_FRAC;
  if (ea == 0) {
    if (ma == 0) return sign << 63;
    const s = <i32>clz(ma) - 11;
    ma <<= s;
    ea = 1 - s;
  }
  if (eb == 0) {
    if (mb == 0) return sign << 63;
    const s = <i32>clz(mb) - 11;
    mb <<= s;
    eb = 1 - s;
  }
  // (ma<<10)*(mb<<11) puts the 106-bit product's top at bit 125/126 of 128: the high
  // word then holds 62-63 significant bits and the low word only matters as sticky.
  const hi = mulHi((ma | F64_IMPL) << 10, (mb | F64_IMPL) << 11);
  return round64(sign, ea + eb - 2107, hi | <u64>(mulLo != 0), rm);
}

/** binary64 a / b. */
export function f64_div(a: u64, b: u64, rm: u32): u64 {
  const sign = (a ^ b) >> 63;
  let ea = <i32>(a >> 52) & 0x7ff;
  let eb = <i32>(b >> 52) & 0x7ff;
  let ma = a & F64_FRAC, mb = b & F64_FRAC;
  if (ea == 0x7ff) {
    if (ma != 0 || isNaN64(b)) return nan2_64(a, b);
    if (eb == 0x7ff) return invalid64();
    return (sign << 63) | F64_INF;
  }
  if (eb == 0x7ff) {
    if (mb != 0) return nan2_64(a, b);
    return sign << 63;
  }
  if (eb == 0) {
    if (mb == 0) {
      if ((a << 1) == 0) return invalid64();
      fflags |= DZ;
      return (sign << 63) | F64_INF;
    }
    const s = <i32>clz(mb) - 11;
    mb <<= s;
    eb = 1 - s;
  }
  if (ea == 0) {
    if (ma == 0) return sign << 63;
    const s = <i32>clz(ma) - 11;
    ma <<= s;
    ea = 1 - s;
  }
  ma |= F64_IMPL;
  mb |= F64_IMPL;
  if (ma < mb) {
    ma <<= 1;
    ea--;
  }
  // Long division, 11 quotient bits per 64-bit divide (remainder < 2^53): 1 + 55 bits.
  let r = ma - mb;
  let q: u64 = 1;
  for (let i = 0; i < 5; i++) {
    r <<= 11;
    const qd = r / mb;
    r -= qd * mb;
    q = (q << 11) | qd;
  }
  return round64(sign, ea - eb - 55, q | <u64>(r != 0), rm);
}

/** binary64 square root. */
export function f64_sqrt(a: u64, rm: u32): u64 {
  let e = <i32>(a >> 52) & 0x7ff;
  let m = a & F64_FRAC;
  if (e == 0x7ff) {
    if (m != 0) return nan2_64(a, a);
    return (a >> 63) != 0 ? invalid64() : a;
  }
  if ((a << 1) == 0) return a;
  if ((a >> 63) != 0) return invalid64();
  if (e == 0) {
    const s = <i32>clz(m) - 11;
    m <<= s;
    e = 1 - s;
  }
  // a = m' * 2^(E - odd - 52) with m' in [2^52, 2^54); x = m' << 10 is in [2^62, 2^64),
  // and sqrt(a) = q * 2^((E - odd) / 2 - 55) where q = sqrt(R), R = x * 2^48, has 56 bits.
  const E = e - 1023;
  const x = ((m | F64_IMPL) << <u64>(E & 1)) << 10;
  const s = isqrt64(x); // top 32 bits of q
  // Low 24 bits from the remainder: sqrt is concave, so this estimate is exact or one too big.
  let q = (s << 24) + (((x - s * s) << 23) / s);
  const rh = x >> 16, rl = x << 48; // R
  let qh = mulHi(q, q), ql = mulLo;
  if (qh > rh || (qh == rh && ql > rl)) {
    q--;
    qh = mulHi(q, q);
    ql = mulLo;
  }
  return round64(0, (E >> 1) - 55, q | <u64>(qh != rh || ql != rl), rm);
}

/** binary64 fused a * b + c with a single rounding. */
export function f64_fma(a: u64, b: u64, c: u64, rm: u32): u64 {
  let ea = <i32>(a >> 52) & 0x7ff;
  let eb = <i32>(b >> 52) & 0x7ff;
  let ec = <i32>(c >> 52) & 0x7ff;
  const sp = (a ^ b) >> 63;
  if (ea == 0x7ff || eb == 0x7ff || ec == 0x7ff) {
    const aInf = (a << 1) == 0xffe0000000000000, bInf = (b << 1) == 0xffe0000000000000;
    const aZero = (a << 1) == 0, bZero = (b << 1) == 0;
    if (isNaN64(a) || isNaN64(b) || isNaN64(c)) {
      if (isSNaN64(a) || isSNaN64(b) || isSNaN64(c) || (aInf && bZero) || (aZero && bInf)) fflags |= NV;
      return F64_QNAN;
    }
    if (aInf || bInf) {
      if (aZero || bZero || (ec == 0x7ff && (c >> 63) != sp)) return invalid64();
      return (sp << 63) | F64_INF;
    }
    return c;
  }
  if ((a << 1) == 0 || (b << 1) == 0) {
    if ((c << 1) == 0 && (c >> 63) != sp) return rm == RDN ? F64_SIGN : 0;
    return c;
  }
  let ma = a & F64_FRAC, mb = b & F64_FRAC;
  if (ea == 0) {
    const s = <i32>clz(ma) - 11;
    ma <<= s;
    ea = 1 - s;
  }
  if (eb == 0) {
    const s = <i32>clz(mb) - 11;
    mb <<= s;
    eb = 1 - s;
  }
  // 128-bit exact product in [2^124, 2^126) (low 20 bits zero), addend at [2^124, 2^125)
  // (low 72 bits zero): small alignments are exact, large ones only jam far below.
  const ph = mulHi(ma | F64_IMPL, mb | F64_IMPL);
  let xh = (ph << 20) | (mulLo >> 44);
  let xl = mulLo << 20;
  let re = ea + eb - 2170;
  let sign = sp;
  if ((c << 1) != 0) {
    let mc = c & F64_FRAC;
    if (ec == 0) {
      const s = <i32>clz(mc) - 11;
      mc <<= s;
      ec = 1 - s;
    }
    let yh = (mc | F64_IMPL) << 8;
    let yl: u64 = 0;
    const ye = ec - 1147;
    const d = re - ye;
    if (d >= 0) {
      yl = shrJam128(yh, yl, <u32>d);
      yh = shrHi;
    } else {
      xl = shrJam128(xh, xl, <u32>-d);
      xh = shrHi;
      re = ye;
    }
    if ((c >> 63) == sp) {
      const lo = xl + yl;
      xh = xh + yh + <u64>(lo < xl);
      xl = lo;
    } else if (xh > yh || (xh == yh && xl >= yl)) {
      const lo = xl - yl;
      xh = xh - yh - <u64>(xl < yl);
      xl = lo;
      if ((xh | xl) == 0) return rm == RDN ? F64_SIGN : 0;
    } else {
      const lo = yl - xl;
      xh = yh - xh - <u64>(yl < xl);
      xl = lo;
      sign = c >> 63;
    }
  }
  // Fold the 128-bit sum into 64 bits (sticky below) before rounding.
  if (xh != 0) {
    const s = 64 - <u32>clz(xh);
    xl = shrJam128(xh, xl, s);
    re += <i32>s;
  }
  return round64(sign, re, xl, rm);
}

// ---------------------------------------------------------------------------
// Min/max, comparisons, classification

/** RISC-V fmin.s: minimumNumber; -0 < +0; one NaN -> the other operand; two NaNs -> canonical NaN. */
export function f32_min(a: u32, b: u32): u32 {
  if (isNaN32(a) || isNaN32(b)) return minMaxNaN32(a, b);
  if (((a ^ b) >> 31) != 0) return (a >> 31) != 0 ? a : b;
  return (a < b) != ((a >> 31) != 0) ? a : b;
}

/** RISC-V fmax.s: maximumNumber; -0 < +0; one NaN -> the other operand; two NaNs -> canonical NaN. */
export function f32_max(a: u32, b: u32): u32 {
  if (isNaN32(a) || isNaN32(b)) return minMaxNaN32(a, b);
  if (((a ^ b) >> 31) != 0) return (a >> 31) != 0 ? b : a;
  return (a < b) != ((a >> 31) != 0) ? b : a;
}

function minMaxNaN32(a: u32, b: u32): u32 {
  if (isSNaN32(a) || isSNaN32(b)) fflags |= NV;
  if (!isNaN32(a)) return a;
  if (!isNaN32(b)) return b;
  return F32_QNAN;
}

/** RISC-V fmin.d (see f32_min). */
export function f64_min(a: u64, b: u64): u64 {
  if (isNaN64(a) || isNaN64(b)) return minMaxNaN64(a, b);
  if (((a ^ b) >> 63) != 0) return (a >> 63) != 0 ? a : b;
  return (a < b) != ((a >> 63) != 0) ? a : b;
}

/** RISC-V fmax.d (see f32_max). */
export function f64_max(a: u64, b: u64): u64 {
  if (isNaN64(a) || isNaN64(b)) return minMaxNaN64(a, b);
  if (((a ^ b) >> 63) != 0) return (a >> 63) != 0 ? b : a;
  return (a < b) != ((a >> 63) != 0) ? b : a;
}

function minMaxNaN64(a: u64, b: u64): u64 {
  if (isSNaN64(a) || isSNaN64(b)) fflags |= NV;
  if (!isNaN64(a)) return a;
  if (!isNaN64(b)) return b;
  return F64_QNAN;
}

/** feq.s: quiet comparison (NV only for signaling NaNs). */
export function f32_eq(a: u32, b: u32): u32 {
  if (isNaN32(a) || isNaN32(b)) {
    if (isSNaN32(a) || isSNaN32(b)) fflags |= NV;
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0);
}

/** flt.s: signaling comparison (NV for any NaN). */
export function f32_lt(a: u32, b: u32): u32 {
  if (isNaN32(a) || isNaN32(b)) {
    fflags |= NV;
    return 0;
  }
  if (((a ^ b) >> 31) != 0) return <u32>((a >> 31) != 0 && ((a | b) << 1) != 0);
  return <u32>(a != b && (a < b) != ((a >> 31) != 0));
}

/** fle.s: signaling comparison (NV for any NaN). */
export function f32_le(a: u32, b: u32): u32 {
  if (isNaN32(a) || isNaN32(b)) {
    fflags |= NV;
    return 0;
  }
  if (((a ^ b) >> 31) != 0) return <u32>((a >> 31) != 0 || ((a | b) << 1) == 0);
  return <u32>(a == b || (a < b) != ((a >> 31) != 0));
}

/** feq.d: quiet comparison (NV only for signaling NaNs). */
export function f64_eq(a: u64, b: u64): u32 {
  if (isNaN64(a) || isNaN64(b)) {
    if (isSNaN64(a) || isSNaN64(b)) fflags |= NV;
    return 0;
  }
  return <u32>(a == b || ((a | b) << 1) == 0);
}

/** flt.d: signaling comparison (NV for any NaN). */
export function f64_lt(a: u64, b: u64): u32 {
  if (isNaN64(a) || isNaN64(b)) {
    fflags |= NV;
    return 0;
  }
  if (((a ^ b) >> 63) != 0) return <u32>((a >> 63) != 0 && ((a | b) << 1) != 0);
  return <u32>(a != b && (a < b) != ((a >> 63) != 0));
}

/** fle.d: signaling comparison (NV for any NaN). */
export function f64_le(a: u64, b: u64): u32 {
  if (isNaN64(a) || isNaN64(b)) {
    fflags |= NV;
    return 0;
  }
  if (((a ^ b) >> 63) != 0) return <u32>((a >> 63) != 0 || ((a | b) << 1) == 0);
  return <u32>(a == b || (a < b) != ((a >> 63) != 0));
}

/** fclass.s mask: bit 0 -inf, 1 -normal, 2 -subnormal, 3 -0, 4 +0, 5 +subnormal, 6 +normal, 7 +inf, 8 sNaN, 9 qNaN. */
export function f32_classify(a: u32): u32 {
  const neg = (a >> 31) != 0;
  const e = (a >> 23) & 0xff;
  const m = a & F32_FRAC;
  if (e == 0xff) {
    if (m == 0) return neg ? 1 : 1 << 7;
    return (m & 0x400000) != 0 ? 1 << 9 : 1 << 8;
  }
  if (e == 0) {
    if (m == 0) return neg ? 1 << 3 : 1 << 4;
    return neg ? 1 << 2 : 1 << 5;
  }
  return neg ? 1 << 1 : 1 << 6;
}

/** fclass.d mask (see f32_classify). */
export function f64_classify(a: u64): u32 {
  const neg = (a >> 63) != 0;
  const e = <u32>(a >> 52) & 0x7ff;
  const m = a & F64_FRAC;
  if (e == 0x7ff) {
    if (m == 0) return neg ? 1 : 1 << 7;
    return (m & 0x0008000000000000) != 0 ? 1 << 9 : 1 << 8;
  }
  if (e == 0) {
    if (m == 0) return neg ? 1 << 3 : 1 << 4;
    return neg ? 1 << 2 : 1 << 5;
  }
  return neg ? 1 << 1 : 1 << 6;
}

// ---------------------------------------------------------------------------
// Conversions between formats

/** Exact binary32 -> binary64 widening without flags (NaNs stay NaNs, payload not canonicalized). */
function widen32(a: u32): u64 {
  const sign = <u64>(a >> 31) << 63;
  let e = <i32>(a >> 23) & 0xff;
  let m = a & F32_FRAC;
  if (e == 0xff) return sign | F64_INF | (<u64>m << 29);
  if (e == 0) {
    if (m == 0) return sign;
    const s = <i32>clz(m) - 8;
    m = (m << s) & F32_FRAC;
    e = 1 - s;
  }
  return sign | (<u64>(e + 896) << 52) | (<u64>m << 29);
}

/** fcvt.d.s (always exact). */
export function f32_to_f64(a: u32): u64 {
  if (isNaN32(a)) {
    if (isSNaN32(a)) fflags |= NV;
    return F64_QNAN;
  }
  return widen32(a);
}

/** fcvt.s.d. */
export function f64_to_f32(a: u64, rm: u32): u32 {
  const sign = <u32>(a >> 63);
  let e = <i32>(a >> 52) & 0x7ff;
  let m = a & F64_FRAC;
  if (e == 0x7ff) {
    if (m != 0) {
      if (isSNaN64(a)) fflags |= NV;
      return F32_QNAN;
    }
    return (sign << 31) | F32_INF;
  }
  if (e == 0) {
    if (m == 0) return sign << 31;
    e = 1;
  } else {
    m |= F64_IMPL;
  }
  return round32(sign, e - 1075, m, rm);
}

// ---------------------------------------------------------------------------
// Float -> integer. Both formats go through binary64 (widening is exact).

/** Set by toIntMag: 0 finite, 1 NaN, 2 magnitude >= 2^64 (including infinities). */
let cvtKind: u32 = 0;
/** Set by toIntMag: the rounded magnitude differs from the exact one. */
let cvtInexact: bool = false;

/** |a| rounded to an integer in mode rm (direction depends on a's sign). */
function toIntMag(a: u64, rm: u32): u64 {
  const e = <i32>(a >> 52) & 0x7ff;
  let m = a & F64_FRAC;
  cvtKind = 0;
  cvtInexact = false;
  if (e == 0x7ff) {
    cvtKind = m != 0 ? 1 : 2;
    return 0;
  }
  if (e != 0) m |= F64_IMPL;
  const sh = (e != 0 ? e : 1) - 1075;
  if (sh >= 0) {
    if (sh > 11) {
      cvtKind = 2;
      return 0;
    }
    return m << <u64>sh;
  }
  const n = <u32>-sh;
  let ip: u64 = 0;
  let frac: u64; // fraction bits, left-aligned: 2^63 is one half
  if (n >= 64) {
    if (m == 0) return 0;
    frac = 1; // below 2^-11: nonzero, less than half
  } else {
    ip = m >> n;
    frac = m << (64 - n);
    if (frac == 0) return ip;
  }
  cvtInexact = true;
  const neg = (a >> 63) != 0;
  let up: bool;
  if (rm == RNE) up = frac > F64_SIGN || (frac == F64_SIGN && (ip & 1) != 0);
  else if (rm == RMM) up = frac >= F64_SIGN;
  else up = rm == (neg ? RDN : RUP);
  return ip + <u64>up;
}

function toI32(a: u64, rm: u32): i32 {
  const neg = (a >> 63) != 0;
  const mag = toIntMag(a, rm);
  if (cvtKind == 1) {
    fflags |= NV;
    return i32.MAX_VALUE;
  }
  if (cvtKind == 2 || mag > (neg ? <u64>0x80000000 : <u64>0x7fffffff)) {
    fflags |= NV;
    return neg ? i32.MIN_VALUE : i32.MAX_VALUE;
  }
  if (cvtInexact) fflags |= NX;
  return neg ? -<i32>mag : <i32>mag;
}

function toU32(a: u64, rm: u32): u32 {
  const neg = (a >> 63) != 0;
  const mag = toIntMag(a, rm);
  if (cvtKind == 1) {
    fflags |= NV;
    return u32.MAX_VALUE;
  }
  if (neg) {
    if (cvtKind == 2 || mag != 0) {
      fflags |= NV;
      return 0;
    }
  } else if (cvtKind == 2 || mag > 0xffffffff) {
    fflags |= NV;
    return u32.MAX_VALUE;
  }
  if (cvtInexact) fflags |= NX;
  return <u32>mag;
}

function toI64(a: u64, rm: u32): i64 {
  const neg = (a >> 63) != 0;
  const mag = toIntMag(a, rm);
  if (cvtKind == 1) {
    fflags |= NV;
    return i64.MAX_VALUE;
  }
  if (cvtKind == 2 || mag > (neg ? F64_SIGN : F64_SIGN - 1)) {
    fflags |= NV;
    return neg ? i64.MIN_VALUE : i64.MAX_VALUE;
  }
  if (cvtInexact) fflags |= NX;
  return neg ? -<i64>mag : <i64>mag;
}

function toU64(a: u64, rm: u32): u64 {
  const neg = (a >> 63) != 0;
  const mag = toIntMag(a, rm);
  if (cvtKind == 1) {
    fflags |= NV;
    return u64.MAX_VALUE;
  }
  if (neg) {
    if (cvtKind == 2 || mag != 0) {
      fflags |= NV;
      return 0;
    }
  } else if (cvtKind == 2) {
    fflags |= NV;
    return u64.MAX_VALUE;
  }
  if (cvtInexact) fflags |= NX;
  return mag;
}

/** fcvt.w.s */
export function f32_to_i32(a: u32, rm: u32): i32 {
  return toI32(widen32(a), rm);
}
/** fcvt.wu.s */
export function f32_to_u32(a: u32, rm: u32): u32 {
  return toU32(widen32(a), rm);
}
/** fcvt.l.s */
export function f32_to_i64(a: u32, rm: u32): i64 {
  return toI64(widen32(a), rm);
}
/** fcvt.lu.s */
export function f32_to_u64(a: u32, rm: u32): u64 {
  return toU64(widen32(a), rm);
}
/** fcvt.w.d */
export function f64_to_i32(a: u64, rm: u32): i32 {
  return toI32(a, rm);
}
/** fcvt.wu.d */
export function f64_to_u32(a: u64, rm: u32): u32 {
  return toU32(a, rm);
}
/** fcvt.l.d */
export function f64_to_i64(a: u64, rm: u32): i64 {
  return toI64(a, rm);
}
/** fcvt.lu.d */
export function f64_to_u64(a: u64, rm: u32): u64 {
  return toU64(a, rm);
}

// ---------------------------------------------------------------------------
// Integer -> float

/** fcvt.s.w */
export function i32_to_f32(a: i32, rm: u32): u32 {
  if (a == 0) return 0;
  return a < 0 ? round32(1, 0, <u64>(-<i64>a), rm) : round32(0, 0, <u64>a, rm);
}
/** fcvt.s.wu */
export function u32_to_f32(a: u32, rm: u32): u32 {
  return a == 0 ? 0 : round32(0, 0, <u64>a, rm);
}
/** fcvt.s.l */
export function i64_to_f32(a: i64, rm: u32): u32 {
  if (a == 0) return 0;
  return a < 0 ? round32(1, 0, 0 - <u64>a, rm) : round32(0, 0, <u64>a, rm);
}
/** fcvt.s.lu */
export function u64_to_f32(a: u64, rm: u32): u32 {
  return a == 0 ? 0 : round32(0, 0, a, rm);
}
/** fcvt.d.w (always exact) */
export function i32_to_f64(a: i32, rm: u32): u64 {
  if (a == 0) return 0;
  return a < 0 ? round64(1, 0, <u64>(-<i64>a), rm) : round64(0, 0, <u64>a, rm);
}
/** fcvt.d.wu (always exact) */
export function u32_to_f64(a: u32, rm: u32): u64 {
  return a == 0 ? 0 : round64(0, 0, <u64>a, rm);
}
/** fcvt.d.l */
export function i64_to_f64(a: i64, rm: u32): u64 {
  if (a == 0) return 0;
  return a < 0 ? round64(1, 0, 0 - <u64>a, rm) : round64(0, 0, <u64>a, rm);
}
/** fcvt.d.lu */
export function u64_to_f64(a: u64, rm: u32): u64 {
  return a == 0 ? 0 : round64(0, 0, a, rm);
}
