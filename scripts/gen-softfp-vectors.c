// Reference test vectors for src/target/riscv/core/softfp.ts.
//
// Runs on RISC-V (cross-compiled static, executed under qemu-riscv64-static): every
// result comes from the real F/D instruction (RISC-V Unprivileged ISA 20191213 chapters 11-12),
// executed in each rounding mode set with fsrm, with the exception flags read back
// with frflags. Operands are edge values plus pseudo-random values biased toward the
// hard cases (subnormals, cancellation, halfway/rounding boundaries, overflow and
// underflow thresholds, integer-conversion limits). Deterministic for a given seed.
//
// Usage: gen-softfp-vectors [scale [seed]] > vectors.bin
// Output (little-endian), a sequence of blocks:
//   u8 nameLen, name, u8 nIn, u8 inType, u8 outType, u8 nModes, u32 count,
//   then per vector: nIn operands (inType width), then nModes x (result, u8 fflags).
// Types: 0=f32 1=f64 2=i32 3=u32 4=i64 5=u64 (width 4 or 8). nModes is 5 (RNE, RTZ,
// RDN, RUP, RMM in that order) for rounding ops, 1 for the others (run in RNE).

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F32, F64, I32, U32, I64, U64 };
static const int width[] = {4, 8, 4, 4, 8, 8};

// ---------------------------------------------------------------------------
// One wrapper per instruction. Operands/results are raw bits in integer registers;
// the instruction itself runs with the dynamic rounding mode (frm).

typedef uint64_t (*opfn)(uint64_t, uint64_t, uint64_t);

#define LDS "fmv.w.x ft0,%1\n\tfmv.w.x ft1,%2\n\tfmv.w.x ft2,%3\n\t"
#define LDD "fmv.d.x ft0,%1\n\tfmv.d.x ft1,%2\n\tfmv.d.x ft2,%3\n\t"
#define STS "\n\tfmv.x.w %0,ft3"
#define STD "\n\tfmv.x.d %0,ft3"
#define OP(name, pre, insn, post, mask)                                              \
  static uint64_t name(uint64_t a, uint64_t b, uint64_t c) {                         \
    uint64_t r;                                                                      \
    asm volatile(pre insn post : "=&r"(r) : "r"(a), "r"(b), "r"(c) : "ft0", "ft1", "ft2", "ft3"); \
    return r & (mask);                                                               \
  }
#define M32 0xffffffffull
#define M64 0xffffffffffffffffull

OP(op_f32_add, LDS, "fadd.s ft3,ft0,ft1", STS, M32)
OP(op_f32_sub, LDS, "fsub.s ft3,ft0,ft1", STS, M32)
OP(op_f32_mul, LDS, "fmul.s ft3,ft0,ft1", STS, M32)
OP(op_f32_div, LDS, "fdiv.s ft3,ft0,ft1", STS, M32)
OP(op_f32_sqrt, LDS, "fsqrt.s ft3,ft0", STS, M32)
OP(op_f32_fma, LDS, "fmadd.s ft3,ft0,ft1,ft2", STS, M32)
OP(op_f32_min, LDS, "fmin.s ft3,ft0,ft1", STS, M32)
OP(op_f32_max, LDS, "fmax.s ft3,ft0,ft1", STS, M32)
OP(op_f32_eq, LDS, "feq.s %0,ft0,ft1", "", M32)
OP(op_f32_lt, LDS, "flt.s %0,ft0,ft1", "", M32)
OP(op_f32_le, LDS, "fle.s %0,ft0,ft1", "", M32)
OP(op_f32_classify, LDS, "fclass.s %0,ft0", "", M32)
OP(op_f32_to_i32, LDS, "fcvt.w.s %0,ft0", "", M32)
OP(op_f32_to_u32, LDS, "fcvt.wu.s %0,ft0", "", M32)
OP(op_f32_to_i64, LDS, "fcvt.l.s %0,ft0", "", M64)
OP(op_f32_to_u64, LDS, "fcvt.lu.s %0,ft0", "", M64)
OP(op_i32_to_f32, "", "fcvt.s.w ft3,%1", STS, M32)
OP(op_u32_to_f32, "", "fcvt.s.wu ft3,%1", STS, M32)
OP(op_i64_to_f32, "", "fcvt.s.l ft3,%1", STS, M32)
OP(op_u64_to_f32, "", "fcvt.s.lu ft3,%1", STS, M32)
OP(op_f32_to_f64, LDS, "fcvt.d.s ft3,ft0", STD, M64)

OP(op_f64_add, LDD, "fadd.d ft3,ft0,ft1", STD, M64)
OP(op_f64_sub, LDD, "fsub.d ft3,ft0,ft1", STD, M64)
OP(op_f64_mul, LDD, "fmul.d ft3,ft0,ft1", STD, M64)
OP(op_f64_div, LDD, "fdiv.d ft3,ft0,ft1", STD, M64)
OP(op_f64_sqrt, LDD, "fsqrt.d ft3,ft0", STD, M64)
OP(op_f64_fma, LDD, "fmadd.d ft3,ft0,ft1,ft2", STD, M64)
OP(op_f64_min, LDD, "fmin.d ft3,ft0,ft1", STD, M64)
OP(op_f64_max, LDD, "fmax.d ft3,ft0,ft1", STD, M64)
OP(op_f64_eq, LDD, "feq.d %0,ft0,ft1", "", M32)
OP(op_f64_lt, LDD, "flt.d %0,ft0,ft1", "", M32)
OP(op_f64_le, LDD, "fle.d %0,ft0,ft1", "", M32)
OP(op_f64_classify, LDD, "fclass.d %0,ft0", "", M32)
OP(op_f64_to_i32, LDD, "fcvt.w.d %0,ft0", "", M32)
OP(op_f64_to_u32, LDD, "fcvt.wu.d %0,ft0", "", M32)
OP(op_f64_to_i64, LDD, "fcvt.l.d %0,ft0", "", M64)
OP(op_f64_to_u64, LDD, "fcvt.lu.d %0,ft0", "", M64)
OP(op_i32_to_f64, "", "fcvt.d.w ft3,%1", STD, M64)
OP(op_u32_to_f64, "", "fcvt.d.wu ft3,%1", STD, M64)
OP(op_i64_to_f64, "", "fcvt.d.l ft3,%1", STD, M64)
OP(op_u64_to_f64, "", "fcvt.d.lu ft3,%1", STD, M64)
OP(op_f64_to_f32, LDD, "fcvt.s.d ft3,ft0", STS, M32)

static void set_rm(unsigned rm) { asm volatile("fsrm %0" ::"r"(rm)); }
static void clear_flags(void) { asm volatile("fsflags zero"); }
static unsigned get_flags(void) {
  unsigned long f;
  asm volatile("frflags %0" : "=r"(f));
  return (unsigned)f;
}

// ---------------------------------------------------------------------------
// Pseudo-random operands

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1dull;
}
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

// A significand field of `bits` bits with a structured or random pattern.
static uint64_t rand_sig(int bits) {
  uint64_t mask = (1ull << bits) - 1;
  switch (rndn(9)) {
  case 0: return 0;
  case 1: return mask;
  case 2: return 1ull << rndn(bits);
  case 3: {
    int lo = rndn(bits), hi = lo + 1 + rndn(bits - lo);
    return (mask >> (bits - hi)) & ~((1ull << lo) - 1);
  }
  case 4: return mask ^ (1ull << rndn(bits));
  case 5: return rnd() & rnd() & rnd() & mask;
  case 6: return (rnd() | rnd() | rnd()) & mask;
  default: return rnd() & mask;
  }
}

// Format description: exponent width, fraction width.
typedef struct { int ebits, fbits; } fmt_t;
static const fmt_t FMT[2] = {{8, 23}, {11, 52}};
#define EMAX(f) ((1 << FMT[f].ebits) - 1)
#define BIAS(f) ((1 << (FMT[f].ebits - 1)) - 1)

static uint64_t pack(int f, uint64_t sign, int64_t e, uint64_t frac) {
  if (e < 0) e = 0;
  if (e > EMAX(f)) e = EMAX(f);
  return sign << (FMT[f].ebits + FMT[f].fbits) | (uint64_t)e << FMT[f].fbits | (frac & ((1ull << FMT[f].fbits) - 1));
}
static int64_t exp_of(int f, uint64_t x) { return (x >> FMT[f].fbits) & EMAX(f); }
static uint64_t sign_bit(int f) { return 1ull << (FMT[f].ebits + FMT[f].fbits); }

static uint64_t rand_float(int f) {
  int emax = EMAX(f), bias = BIAS(f);
  int64_t e;
  switch (rndn(10)) {
  case 0: e = rndn(emax + 1); break;                   // anywhere, incl. inf/NaN
  case 1: e = rndn(4); break;                          // subnormal and smallest normals
  case 2: e = emax - 4 + rndn(5); break;               // largest finite and inf/NaN
  case 3: e = bias - 2 + rndn(5); break;               // around 1.0
  default: e = bias - 40 + rndn(81); break;            // moderate
  }
  return pack(f, rnd() & 1, e, rand_sig(FMT[f].fbits));
}

// Odd significand with exactly `len` significant bits, returned as a fraction field
// (leading bit becomes the implicit one): products/quotients of such values hit
// exact and halfway cases often.
static uint64_t short_frac(int f, int len) {
  int p = FMT[f].fbits + 1;
  if (len < 1) len = 1;
  if (len > p) len = p;
  uint64_t m = (rnd() & ((1ull << (len - 1)) - 1)) | (1ull << (len - 1)) | 1;
  return (m << (p - len)) & ((1ull << FMT[f].fbits) - 1);
}

// Edge values (positive; callers add the negated ones).
static const uint32_t EDGE32[] = {
  0x00000000, 0x00000001, 0x00000002, 0x003fffff, 0x00400000, 0x007fffff, 0x00800000,
  0x00800001, 0x00ffffff, 0x01000000, 0x33800000, 0x34000000, 0x3effffff, 0x3f000000,
  0x3f000001, 0x3f7fffff, 0x3f800000, 0x3f800001, 0x3fc00000, 0x3fffffff, 0x40000000,
  0x40200000, 0x40400000, 0x4b000000, 0x4b7fffff, 0x4b800000, 0x4effffff, 0x4f000000,
  0x4f800000, 0x5effffff, 0x5f000000, 0x5f800000, 0x7effffff, 0x7f000000, 0x7f7ffffe,
  0x7f7fffff, 0x7f800000, 0x7f800001, 0x7fbfffff, 0x7fc00000, 0x7fc00001, 0x7fffffff,
};
static const uint64_t EDGE64[] = {
  0x0000000000000000, 0x0000000000000001, 0x0000000000000002, 0x0007ffffffffffff,
  0x0008000000000000, 0x000fffffffffffff, 0x0010000000000000, 0x0010000000000001,
  0x001fffffffffffff, 0x0020000000000000, 0x3ca0000000000000, 0x3cb0000000000000,
  0x3fdfffffffffffff, 0x3fe0000000000000, 0x3fe0000000000001, 0x3fefffffffffffff,
  0x3ff0000000000000, 0x3ff0000000000001, 0x3ff8000000000000, 0x3fffffffffffffff,
  0x4000000000000000, 0x4004000000000000, 0x4008000000000000, 0x4330000000000000,
  0x433fffffffffffff, 0x4340000000000000, 0x41dfffffffc00000, 0x41dfffffffffffff,
  0x41e0000000000000, 0x41efffffffe00000, 0x41f0000000000000, 0x43dfffffffffffff,
  0x43e0000000000000, 0x43f0000000000000, 0x47efffffe0000000, 0x47effffff0000000,
  0x36a0000000000000, 0x3690000000000000, 0x3810000000000000, 0x380fffffffffffff,
  0x7fdfffffffffffff, 0x7fe0000000000000, 0x7feffffffffffffe, 0x7fefffffffffffff,
  0x7ff0000000000000, 0x7ff0000000000001, 0x7ff7ffffffffffff, 0x7ff8000000000000,
  0x7ff8000000000001, 0x7fffffffffffffff,
};
#define NEDGE32 (sizeof EDGE32 / sizeof EDGE32[0])
#define NEDGE64 (sizeof EDGE64 / sizeof EDGE64[0])

static uint64_t edge(int f) {
  uint64_t v = f == F32 ? EDGE32[rndn(NEDGE32)] : EDGE64[rndn(NEDGE64)];
  return v | (rnd() & 1 ? sign_bit(f) : 0);
}
// Edge value i/2, negated when i is odd.
static uint64_t edge_value(int f, int i) {
  return (f == F32 ? EDGE32[i >> 1] : EDGE64[i >> 1]) | (i & 1 ? sign_bit(f) : 0);
}
// Operand: mostly random, sometimes an edge value.
static uint64_t operand(int f) { return rndn(4) == 0 ? edge(f) : rand_float(f); }
// Small set crossed exhaustively for binary ops.
static uint64_t core_value(int f, int i) {
  static const uint32_t c32[] = {0x00000000, 0x00000001, 0x007fffff, 0x00800000, 0x3f800000,
                                 0x3f800001, 0x3fc00000, 0x3fffffff, 0x7f7fffff, 0x7f800000,
                                 0x7fc00000, 0x7f800001, 0x4b800001, 0x34000000};
  static const uint64_t c64[] = {0x0000000000000000, 0x0000000000000001, 0x000fffffffffffff,
                                 0x0010000000000000, 0x3ff0000000000000, 0x3ff0000000000001,
                                 0x3ff8000000000000, 0x3fffffffffffffff, 0x7fefffffffffffff,
                                 0x7ff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001,
                                 0x4340000000000001, 0x3cb0000000000000};
  uint64_t v = f == F32 ? c32[i >> 1] : c64[i >> 1];
  return v | (i & 1 ? sign_bit(f) : 0);
}
#define NCORE 28

static double d_of(uint64_t x) { double d; memcpy(&d, &x, 8); return d; }
static uint64_t bits_d(double d) { uint64_t x; memcpy(&x, &d, 8); return x; }
static float f_of(uint64_t x) { uint32_t u = (uint32_t)x; float v; memcpy(&v, &u, 4); return v; }
static uint64_t bits_f(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }

// Pairs for the binary arithmetic ops, mixing strategies for the hard cases.
static void gen_pair(int f, uint64_t *a, uint64_t *b) {
  int emax = EMAX(f), bias = BIAS(f), p = FMT[f].fbits + 1;
  *a = operand(f);
  switch (rndn(7)) {
  case 0: // independent
    *b = operand(f);
    break;
  case 1: // nearby exponents: alignment, rounding at every shift distance
    *b = pack(f, rnd() & 1, exp_of(f, *a) - (int)rndn(p + 8) + 2, rand_sig(FMT[f].fbits));
    break;
  case 2: // (nearly) equal magnitudes: cancellation
    *b = (*a ^ (rnd() & 1 ? sign_bit(f) : 0)) + (int)rndn(9) - 4;
    break;
  case 3: { // exponent sums/differences near the underflow and overflow thresholds
    int64_t ea = 1 + rndn(emax - 1), d = (int)rndn(2 * p + 8) - p - 4;
    int64_t t = rndn(2) ? 0 : emax - 1;
    *a = pack(f, rnd() & 1, ea, rand_sig(FMT[f].fbits));
    *b = pack(f, rnd() & 1, rndn(2) ? t + bias - ea + d : ea - t + bias + d, rand_sig(FMT[f].fbits));
    break;
  }
  case 4: { // short odd significands: exact and halfway products
    int la = 1 + rndn(p);
    *a = pack(f, rnd() & 1, exp_of(f, *a) | 1, short_frac(f, la));
    *b = pack(f, rnd() & 1, bias - 20 + rndn(41), short_frac(f, p + 1 - la + rndn(3)));
    break;
  }
  case 5: { // exact quotients: a = b * q with short b, q
    int lb = 1 + rndn(p), lq = 1 + rndn(p + 1 - lb);
    uint64_t bb = pack(f, rnd() & 1, bias - 10 + rndn(21), short_frac(f, lb));
    uint64_t q = pack(f, rnd() & 1, bias - 10 + rndn(21), short_frac(f, lq));
    *a = f == F32 ? bits_f(f_of(bb) * f_of(q)) : bits_d(d_of(bb) * d_of(q));
    *b = bb;
    if (rndn(2)) *a += (int)rndn(3) - 1;
    break;
  }
  default: // subnormal / tiny operands
    *b = pack(f, rnd() & 1, rndn(3), rand_sig(FMT[f].fbits));
    if (rndn(2)) *a = pack(f, rnd() & 1, rndn(3) + (rndn(2) ? bias : 0), rand_sig(FMT[f].fbits));
    break;
  }
}

static void gen_triple(int f, uint64_t *a, uint64_t *b, uint64_t *c) {
  int bias = BIAS(f), p = FMT[f].fbits + 1;
  *a = operand(f);
  *b = operand(f);
  switch (rndn(6)) {
  case 0:
    *c = operand(f);
    break;
  case 1: { // c = -(a*b) perturbed: massive cancellation, sign of exact zero
    *a = rand_float(f);
    *b = pack(f, rnd() & 1, exp_of(f, *a) > bias + 100 ? bias - 50 : bias + (int)rndn(20) - 10,
              rand_sig(FMT[f].fbits));
    uint64_t prod = f == F32 ? bits_f(f_of(*a) * f_of(*b)) : bits_d(d_of(*a) * d_of(*b));
    *c = (prod ^ sign_bit(f)) + (int)rndn(5) - 2;
    break;
  }
  case 2: { // short significands: exact products, halfway sums
    int la = 1 + rndn(p);
    *a = pack(f, rnd() & 1, bias - 5 + rndn(11), short_frac(f, la));
    *b = pack(f, rnd() & 1, bias - 5 + rndn(11), short_frac(f, p + 1 - la));
    *c = pack(f, rnd() & 1, bias - 2 * p + rndn(4 * p), short_frac(f, 1 + rndn(p)));
    break;
  }
  case 3: { // addend far above or below the product: sticky-only contributions
    int64_t ep = exp_of(f, *a) + exp_of(f, *b) - bias;
    *c = pack(f, rnd() & 1, ep + (int)rndn(6 * p) - 3 * p, rand_sig(FMT[f].fbits));
    break;
  }
  case 4: // tiny products and addends: underflow, subnormal results
    *a = pack(f, rnd() & 1, bias - (int)rndn(bias), rand_sig(FMT[f].fbits));
    *b = pack(f, rnd() & 1, rndn(bias + 2), rand_sig(FMT[f].fbits));
    *c = pack(f, rnd() & 1, rndn(4), rand_sig(FMT[f].fbits));
    break;
  default:
    *a = edge(f);
    *b = edge(f);
    *c = rndn(2) ? edge(f) : operand(f);
    break;
  }
}

// Floats near integer-conversion boundaries and halfway points.
static uint64_t gen_cvt_operand(int f) {
  int bias = BIAS(f);
  switch (rndn(6)) {
  case 0: return operand(f);
  case 1: { // near ±2^k for the integer limits, a few ulps either side
    static const int ks[] = {31, 32, 63, 64, 0, 1};
    uint64_t v = pack(f, rnd() & 1, bias + ks[rndn(6)], 0) + (int)rndn(7) - 3;
    return v;
  }
  case 2: { // integer plus a fraction (0, 1/4, 1/2, 3/4 or tiny)
    int k = rndn(66);
    double n = (double)(rnd() >> (64 - (k ? k : 1)));
    if (k > 63) n *= 2.0 * (k - 62);
    static const double fr[] = {0, 0.25, 0.5, 0.75, 1e-9};
    double v = (n + fr[rndn(5)]) * (rnd() & 1 ? -1 : 1);
    return f == F32 ? bits_f((float)v) : bits_d(v);
  }
  case 3: // exactly halfway at integer precision: odd multiple of 1/2
    return pack(f, rnd() & 1, bias - 1 + rndn(FMT[f].fbits), rand_sig(FMT[f].fbits));
  case 4: // magnitudes below one
    return pack(f, rnd() & 1, bias - 1 - rndn(70), rand_sig(FMT[f].fbits));
  default:
    return pack(f, rnd() & 1, bias + rndn(70), rand_sig(FMT[f].fbits));
  }
}

// Integers for int->float conversions: every bit length, patterns, rounding ties.
static uint64_t gen_int(int bits) {
  uint64_t v;
  switch (rndn(5)) {
  case 0: v = rnd() >> rndn(64); break;
  case 1: v = rand_sig(63) | (rnd() & 1 ? 1ull << 63 : 0); v >>= rndn(64); break;
  case 2: { // a tie or near-tie at 24/53-bit precision
    int len = 25 + rndn(30);
    v = ((rnd() | 1) & ((1ull << len) - 1)) | (1ull << (len - 1));
    v <<= rndn(64 - len + 1);
    break;
  }
  case 3: v = (1ull << rndn(64)) + (int)rndn(5) - 2; break;
  default: v = -(uint64_t)(rnd() >> rndn(64)); break;
  }
  return bits == 32 ? (uint32_t)v : v;
}

// ---------------------------------------------------------------------------
// Output

static void put(uint64_t v, int w) { fwrite(&v, w, 1, stdout); }

typedef struct {
  const char *name;
  opfn fn;
  int nin, tin, tout, modes;
} op_t;

static void emit_header(const op_t *op, uint32_t count) {
  size_t n = strlen(op->name);
  putchar((int)n);
  fwrite(op->name, 1, n, stdout);
  putchar(op->nin);
  putchar(op->tin);
  putchar(op->tout);
  putchar(op->modes);
  fwrite(&count, 4, 1, stdout);
}

static void emit(const op_t *op, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t in[3] = {a, b, c};
  for (int i = 0; i < op->nin; i++) put(in[i], width[op->tin]);
  for (int rm = 0; rm < op->modes; rm++) {
    set_rm(rm);
    clear_flags();
    uint64_t r = op->fn(a, b, c);
    unsigned fl = get_flags();
    put(r, width[op->tout]);
    putchar(fl);
  }
  set_rm(0);
}

static int fmt_of(int t) { return t == F64 ? F64 : F32; }

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2) rng ^= strtoull(argv[2], 0, 0) * 0x9e3779b97f4a7c15ull;
  const op_t ops[] = {
    {"f32_add", op_f32_add, 2, F32, F32, 5}, {"f32_sub", op_f32_sub, 2, F32, F32, 5},
    {"f32_mul", op_f32_mul, 2, F32, F32, 5}, {"f32_div", op_f32_div, 2, F32, F32, 5},
    {"f32_sqrt", op_f32_sqrt, 1, F32, F32, 5}, {"f32_fma", op_f32_fma, 3, F32, F32, 5},
    {"f32_min", op_f32_min, 2, F32, F32, 1}, {"f32_max", op_f32_max, 2, F32, F32, 1},
    {"f32_eq", op_f32_eq, 2, F32, U32, 1}, {"f32_lt", op_f32_lt, 2, F32, U32, 1},
    {"f32_le", op_f32_le, 2, F32, U32, 1}, {"f32_classify", op_f32_classify, 1, F32, U32, 1},
    {"f32_to_i32", op_f32_to_i32, 1, F32, I32, 5}, {"f32_to_u32", op_f32_to_u32, 1, F32, U32, 5},
    {"f32_to_i64", op_f32_to_i64, 1, F32, I64, 5}, {"f32_to_u64", op_f32_to_u64, 1, F32, U64, 5},
    {"i32_to_f32", op_i32_to_f32, 1, I32, F32, 5}, {"u32_to_f32", op_u32_to_f32, 1, U32, F32, 5},
    {"i64_to_f32", op_i64_to_f32, 1, I64, F32, 5}, {"u64_to_f32", op_u64_to_f32, 1, U64, F32, 5},
    {"f32_to_f64", op_f32_to_f64, 1, F32, F64, 1}, {"f64_to_f32", op_f64_to_f32, 1, F64, F32, 5},
    {"f64_add", op_f64_add, 2, F64, F64, 5}, {"f64_sub", op_f64_sub, 2, F64, F64, 5},
    {"f64_mul", op_f64_mul, 2, F64, F64, 5}, {"f64_div", op_f64_div, 2, F64, F64, 5},
    {"f64_sqrt", op_f64_sqrt, 1, F64, F64, 5}, {"f64_fma", op_f64_fma, 3, F64, F64, 5},
    {"f64_min", op_f64_min, 2, F64, F64, 1}, {"f64_max", op_f64_max, 2, F64, F64, 1},
    {"f64_eq", op_f64_eq, 2, F64, U32, 1}, {"f64_lt", op_f64_lt, 2, F64, U32, 1},
    {"f64_le", op_f64_le, 2, F64, U32, 1}, {"f64_classify", op_f64_classify, 1, F64, U32, 1},
    {"f64_to_i32", op_f64_to_i32, 1, F64, I32, 5}, {"f64_to_u32", op_f64_to_u32, 1, F64, U32, 5},
    {"f64_to_i64", op_f64_to_i64, 1, F64, I64, 5}, {"f64_to_u64", op_f64_to_u64, 1, F64, U64, 5},
    {"i32_to_f64", op_i32_to_f64, 1, I32, F64, 5}, {"u32_to_f64", op_u32_to_f64, 1, U32, F64, 5},
    {"i64_to_f64", op_i64_to_f64, 1, I64, F64, 5}, {"u64_to_f64", op_u64_to_f64, 1, U64, F64, 5},
  };
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    const op_t *op = &ops[k];
    int f = fmt_of(op->tin);
    uint32_t nedge = f == F32 ? NEDGE32 : NEDGE64;
    if (op->tin >= I32) { // int -> float
      int bits = op->tin == I32 || op->tin == U32 ? 32 : 64;
      uint32_t n = 1500 * scale;
      emit_header(op, n + 64);
      for (int i = 0; i < 64; i++) { // 0, ±1, 2^i±1 style edges
        uint64_t v = i < 32 ? (1ull << (i * 2 % 64)) - (i & 1) : -(1ull << (i % 64)) + (i & 2);
        emit(op, bits == 32 ? (uint32_t)v : v, 0, 0);
      }
      for (uint32_t i = 0; i < n; i++) emit(op, gen_int(bits), 0, 0);
    } else if (op->nin == 1) {
      int cvt = strstr(op->name, "_to_") != 0;
      uint32_t n = (op->modes == 1 ? 600 : cvt ? 1500 : 2000) * scale;
      emit_header(op, n + 2 * nedge);
      for (uint32_t i = 0; i < 2 * nedge; i++) emit(op, edge_value(f, i), 0, 0);
      for (uint32_t i = 0; i < n; i++) {
        uint64_t a;
        if (cvt && op->tout != F32 && op->tout != F64) a = gen_cvt_operand(f);
        else if (op->fn == op_f64_to_f32) // around the binary32 range and precision
          a = rndn(2) ? operand(F64)
                      : pack(F64, rnd() & 1, 1023 - 155 + rndn(290),
                             (rand_sig(23) << 29) | (rndn(2) ? rand_sig(29) : (1ull << 28) + (int)rndn(3) - 1));
        else if (op->fn == op_f32_sqrt || op->fn == op_f64_sqrt) {
          a = operand(f) & ~sign_bit(f);
          if (rndn(3) == 0) { // exact squares and neighbors
            int p = FMT[f].fbits + 1;
            uint64_t r = pack(f, 0, BIAS(f) - 30 + rndn(61), short_frac(f, 1 + rndn((p + 1) / 2)));
            a = (f == F32 ? bits_f(f_of(r) * f_of(r)) : bits_d(d_of(r) * d_of(r))) + (int)rndn(3) - 1;
          }
          if (rndn(8) == 0) a |= sign_bit(f);
        } else a = operand(f);
        emit(op, a, 0, 0);
      }
    } else if (op->nin == 2) {
      uint32_t n = (op->modes == 1 ? 1200 : 2500) * scale;
      emit_header(op, n + NCORE * NCORE);
      for (int i = 0; i < NCORE; i++)
        for (int j = 0; j < NCORE; j++) emit(op, core_value(f, i), core_value(f, j), 0);
      for (uint32_t i = 0; i < n; i++) {
        uint64_t a, b;
        gen_pair(f, &a, &b);
        if (op->modes == 1 && rndn(4) == 0) b = rndn(2) ? a : a ^ sign_bit(f); // equal / ±0 pairs
        if (rndn(2)) { uint64_t t = a; a = b; b = t; }
        emit(op, a, b, 0);
      }
    } else {
      uint32_t n = 5000 * scale;
      emit_header(op, n);
      for (uint32_t i = 0; i < n; i++) {
        uint64_t a, b, c;
        gen_triple(f, &a, &b, &c);
        emit(op, a, b, c);
      }
    }
  }
  return 0;
}
