/*
 * rv64f.S: the F extension on RV64 (unprivileged spec, chapter 11) with exactly known results:
 * arithmetic and fused multiply-add, the static rounding-mode field and the dynamic frm,
 * exception flags in fflags, fcsr/frm/fflags as CSRs, min/max and comparisons with NaNs,
 * conversions (rounding, saturation, sign extension of 32-bit results), fmv, fclass,
 * sign injection, NaN-boxing of single values in the 64-bit f registers, and mstatus.FS.
 */
#include "common.h"

/* fflags bits */
#define NV 0x10
#define DZ 0x08
#define OF 0x04
#define UF 0x02
#define NX 0x01

/* Loads \freg with the single whose bit pattern is \bits (NaN-boxed by fmv.w.x). */
.macro lfs freg, bits
  li t0, \bits
  fmv.w.x \freg, t0
.endm

/* Check \n: \freg holds the single \bits, properly NaN-boxed (upper 32 bits all ones). */
.macro check_s n, freg, bits
  fmv.x.d t0, \freg
  check \n, t0, (0xffffffff00000000 | \bits)
.endm

/* Check \n: the accrued flags are \val; clears them. */
.macro check_flags n, val
  csrrw t0, fflags, zero
  check \n, t0, \val
.endm

main:
  csrwi fcsr, 0

  /* --- arithmetic --- */
  lfs fa0, 0x3fc00000                        /* 1.5 */
  lfs fa1, 0x40100000                        /* 2.25 */
  fadd.s fa2, fa0, fa1
  check_s 1, fa2, 0x40700000                 /* 3.75 */
  fsub.s fa2, fa0, fa1
  check_s 2, fa2, 0xbf400000                 /* -0.75 */
  fmul.s fa2, fa0, fa1
  check_s 3, fa2, 0x40580000                 /* 3.375 */
  fdiv.s fa2, fa1, fa0
  check_s 4, fa2, 0x3fc00000                 /* 1.5 */
  check_flags 5, 0                           /* all exact */

  /* --- 1/3 in every static rounding mode --- */
  lfs fa0, 0x3f800000                        /* 1 */
  lfs fa1, 0x40400000                        /* 3 */
  lfs fa3, 0xbf800000                        /* -1 */
  fdiv.s fa2, fa0, fa1, rne
  check_s 6, fa2, 0x3eaaaaab
  fdiv.s fa2, fa0, fa1, rtz
  check_s 7, fa2, 0x3eaaaaaa
  fdiv.s fa2, fa0, fa1, rdn
  check_s 8, fa2, 0x3eaaaaaa
  fdiv.s fa2, fa0, fa1, rup
  check_s 9, fa2, 0x3eaaaaab
  fdiv.s fa2, fa0, fa1, rmm
  check_s 10, fa2, 0x3eaaaaab
  fdiv.s fa2, fa3, fa1, rdn
  check_s 11, fa2, 0xbeaaaaab
  fdiv.s fa2, fa3, fa1, rup
  check_s 12, fa2, 0xbeaaaaaa
  fdiv.s fa2, fa3, fa1, rtz
  check_s 13, fa2, 0xbeaaaaaa
  check_flags 14, NX

  /* --- the dynamic rounding mode comes from frm --- */
  csrwi frm, 1                               /* RTZ */
  fdiv.s fa2, fa0, fa1, dyn
  check_s 15, fa2, 0x3eaaaaaa
  csrwi frm, 3                               /* RUP */
  fdiv.s fa2, fa0, fa1
  check_s 16, fa2, 0x3eaaaaab
  fdiv.s fa2, fa0, fa1, rtz                  /* a static mode overrides frm */
  check_s 17, fa2, 0x3eaaaaaa
  csrwi frm, 0
  check_flags 18, NX

  /* --- square root --- */
  lfs fa0, 0x40800000                        /* 4 */
  fsqrt.s fa2, fa0
  check_s 19, fa2, 0x40000000
  check_flags 20, 0
  lfs fa0, 0x40000000                        /* 2 */
  fsqrt.s fa2, fa0
  check_s 21, fa2, 0x3fb504f3
  check_flags 22, NX
  lfs fa0, 0xbf800000
  fsqrt.s fa2, fa0
  check_s 23, fa2, 0x7fc00000                /* canonical NaN */
  check_flags 24, NV
  lfs fa0, 0x80000000
  fsqrt.s fa2, fa0                           /* sqrt(-0) = -0 */
  check_s 25, fa2, 0x80000000
  check_flags 26, 0

  /* --- fused multiply-add: one rounding --- */
  lfs fa0, 0x40000000                        /* 2 */
  lfs fa1, 0x40400000                        /* 3 */
  lfs fa2, 0x3f800000                        /* 1 */
  fmadd.s fa3, fa0, fa1, fa2
  check_s 27, fa3, 0x40e00000                /* 7 */
  fmsub.s fa3, fa0, fa1, fa2
  check_s 28, fa3, 0x40a00000                /* 5 */
  fnmsub.s fa3, fa0, fa1, fa2
  check_s 29, fa3, 0xc0a00000                /* -5 */
  fnmadd.s fa3, fa0, fa1, fa2
  check_s 30, fa3, 0xc0e00000                /* -7 */
  lfs fa0, 0x3f800001                        /* 1 + 2^-23 */
  lfs fa1, 0x3f7ffffe                        /* 1 - 2^-23 */
  fmsub.s fa3, fa0, fa1, fa2                 /* exactly -2^-46; unfused would give 0 */
  check_s 31, fa3, 0xa8800000
  check_flags 32, 0

  /* --- exception flags --- */
  lfs fa0, 0x3f800000
  fmv.w.x fa1, zero
  fdiv.s fa2, fa0, fa1
  check_s 33, fa2, 0x7f800000                /* +inf */
  check_flags 34, DZ
  fdiv.s fa2, fa1, fa1
  check_s 35, fa2, 0x7fc00000                /* 0/0 */
  check_flags 36, NV
  lfs fa0, 0x7f7fffff                        /* largest finite */
  lfs fa1, 0x40000000
  fmul.s fa2, fa0, fa1
  check_s 37, fa2, 0x7f800000
  check_flags 38, (OF | NX)
  fmul.s fa2, fa0, fa1, rtz                  /* overflow toward zero gives the largest finite */
  check_s 39, fa2, 0x7f7fffff
  check_flags 40, (OF | NX)
  lfs fa0, 0x00800000                        /* smallest normal */
  fmul.s fa2, fa0, fa0
  check_s 41, fa2, 0x00000000
  check_flags 42, (UF | NX)
  lfs fa0, 0x7f800000
  fsub.s fa2, fa0, fa0                       /* inf - inf */
  check_s 43, fa2, 0x7fc00000
  check_flags 44, NV
  fmv.w.x fa1, zero
  fdiv.s fa2, fa0, fa1                       /* inf/0 is exact */
  check_flags 45, 0

  /* --- min/max --- */
  lfs fa0, 0x80000000                        /* -0 */
  fmv.w.x fa1, zero                          /* +0 */
  fmin.s fa2, fa0, fa1
  check_s 46, fa2, 0x80000000
  fmax.s fa2, fa0, fa1
  check_s 47, fa2, 0x00000000
  fmin.s fa2, fa1, fa0
  check_s 48, fa2, 0x80000000
  lfs fa0, 0x7fc00000                        /* qNaN */
  lfs fa1, 0x3f800000
  fmin.s fa2, fa0, fa1
  check_s 49, fa2, 0x3f800000
  check_flags 50, 0
  lfs fa0, 0x7f800001                        /* sNaN */
  fmax.s fa2, fa1, fa0
  check_s 51, fa2, 0x3f800000
  check_flags 52, NV
  lfs fa1, 0x7fc12345                        /* both NaN: canonical NaN */
  fmax.s fa2, fa1, fa1
  check_s 53, fa2, 0x7fc00000

  /* --- comparisons --- */
  csrwi fflags, 0
  lfs fa0, 0x3f800000
  lfs fa1, 0x40000000
  feq.s a0, fa0, fa0
  check 54, a0, 1
  flt.s a0, fa0, fa1
  check 55, a0, 1
  fle.s a0, fa1, fa0
  check 56, a0, 0
  fle.s a0, fa0, fa0
  check 57, a0, 1
  lfs fa2, 0x80000000
  fmv.w.x fa3, zero
  feq.s a0, fa2, fa3                         /* -0 == +0 */
  check 58, a0, 1
  flt.s a0, fa2, fa3
  check 59, a0, 0
  check_flags 60, 0
  lfs fa2, 0x7fc00000
  feq.s a0, fa2, fa0                         /* quiet comparison: no flag for a qNaN */
  check 61, a0, 0
  check_flags 62, 0
  flt.s a0, fa2, fa0                         /* signaling comparison */
  check 63, a0, 0
  check_flags 64, NV
  fle.s a0, fa0, fa2
  check 65, a0, 0
  check_flags 66, NV
  lfs fa2, 0x7f800001
  feq.s a0, fa2, fa0                         /* sNaN signals even in feq */
  check 67, a0, 0
  check_flags 68, NV

  /* --- float to integer --- */
  lfs fa0, 0x3fc00000                        /* 1.5 */
  fcvt.w.s a0, fa0, rne
  check 69, a0, 2
  lfs fa0, 0x40200000                        /* 2.5 */
  fcvt.w.s a0, fa0, rne
  check 70, a0, 2
  fcvt.w.s a0, fa0, rmm
  check 71, a0, 3
  lfs fa0, 0xbfc00000                        /* -1.5 */
  fcvt.w.s a0, fa0, rtz
  check 72, a0, -1
  fcvt.w.s a0, fa0, rdn
  check 73, a0, -2
  fcvt.w.s a0, fa0, rup
  check 74, a0, -1
  fcvt.l.s a0, fa0, rne
  check 75, a0, -2
  check_flags 76, NX
  lfs fa0, 0x4f32d05e                        /* 3e9 */
  fcvt.w.s a0, fa0, rtz
  check 77, a0, 0x7fffffff                   /* saturates */
  check_flags 78, NV
  fcvt.l.s a0, fa0, rtz
  check 79, a0, 3000000000
  fcvt.wu.s a0, fa0, rtz                     /* 32-bit result, sign-extended */
  check 80, a0, 0xffffffffb2d05e00
  check_flags 81, 0
  lfs fa0, 0xff800000                        /* -inf */
  fcvt.w.s a0, fa0
  check 82, a0, 0xffffffff80000000
  check_flags 83, NV
  lfs fa0, 0x7fc00000                        /* NaN converts like +inf */
  fcvt.w.s a0, fa0
  check 84, a0, 0x7fffffff
  fcvt.lu.s a0, fa0
  check 85, a0, -1
  check_flags 86, NV
  lfs fa0, 0xbf800000
  fcvt.wu.s a0, fa0
  check 87, a0, 0
  check_flags 88, NV
  lfs fa0, 0x5f000000                        /* 2^63 */
  fcvt.l.s a0, fa0
  check 89, a0, 0x7fffffffffffffff
  check_flags 90, NV
  fcvt.lu.s a0, fa0
  check 91, a0, 0x8000000000000000
  check_flags 92, 0

  /* --- integer to float --- */
  li a0, -1
  fcvt.s.w fa0, a0
  check_s 93, fa0, 0xbf800000
  fcvt.s.wu fa0, a0                          /* 2^32 - 1 rounds to 2^32 */
  check_s 94, fa0, 0x4f800000
  check_flags 95, NX
  fcvt.s.lu fa0, a0                          /* 2^64 - 1 rounds to 2^64 */
  check_s 96, fa0, 0x5f800000
  fcvt.s.lu fa0, a0, rtz
  check_s 97, fa0, 0x5f7fffff
  check_flags 98, NX
  li a0, 0x1234567800000005                  /* W forms read only the low 32 bits */
  fcvt.s.w fa0, a0
  check_s 99, fa0, 0x40a00000
  li a0, 0x8000000000000000
  fcvt.s.l fa0, a0
  check_s 100, fa0, 0xdf000000               /* -2^63 */
  check_flags 101, 0

  /* --- moves: fmv.x.w sign-extends; moves and sign injection never touch NaN payloads --- */
  lfs fa0, 0x80000000
  fmv.x.w a0, fa0
  check 102, a0, 0xffffffff80000000
  lfs fa0, 0x7f800001
  fmv.x.w a0, fa0
  check 103, a0, 0x7f800001
  fsgnjn.s fa1, fa0, fa0
  check_s 104, fa1, 0xff800001
  check_flags 105, 0

  /* --- sign injection --- */
  lfs fa0, 0x3f800000                        /* 1 */
  lfs fa1, 0xc0000000                        /* -2 */
  fsgnj.s fa2, fa0, fa1
  check_s 106, fa2, 0xbf800000
  fsgnjn.s fa2, fa0, fa1
  check_s 107, fa2, 0x3f800000
  fsgnjx.s fa2, fa1, fa1
  check_s 108, fa2, 0x40000000
  fsgnjx.s fa2, fa0, fa1
  check_s 109, fa2, 0xbf800000
  fneg.s fa2, fa0
  check_s 110, fa2, 0xbf800000
  fabs.s fa2, fa1
  check_s 111, fa2, 0x40000000

  /* --- fclass.s: one bit per class --- */
  .irp bits, 0xff800000, 0xbf800000, 0x80000001, 0x80000000, 0x00000000, 0x00000001, 0x3f800000, 0x7f800000, 0x7f800001, 0x7fc00000
  lfs fa0, \bits
  fclass.s a0, fa0
  addi sp, sp, -8
  sd a0, 0(sp)
  .endr
  ld a0, 0(sp)
  check 112, a0, 0x200                       /* quiet NaN */
  ld a0, 8(sp)
  check 113, a0, 0x100                       /* signaling NaN */
  ld a0, 16(sp)
  check 114, a0, 0x80                        /* +inf */
  ld a0, 24(sp)
  check 115, a0, 0x40                        /* +normal */
  ld a0, 32(sp)
  check 116, a0, 0x20                        /* +subnormal */
  ld a0, 40(sp)
  check 117, a0, 0x10                        /* +0 */
  ld a0, 48(sp)
  check 118, a0, 0x08                        /* -0 */
  ld a0, 56(sp)
  check 119, a0, 0x04                        /* -subnormal */
  ld a0, 64(sp)
  check 120, a0, 0x02                        /* -normal */
  ld a0, 72(sp)
  check 121, a0, 0x01                        /* -inf */
  addi sp, sp, 80

  /* --- NaN-boxing --- */
  la a1, buf
  li a0, 0x0123456789abcdef
  sd a0, 0(a1)
  flw fa0, 0(a1)                             /* loads box */
  fmv.x.d a0, fa0
  check 122, a0, 0xffffffff89abcdef
  li a0, 0x000000003f800000                  /* not boxed: reads as the canonical NaN */
  fmv.d.x fa0, a0
  fadd.s fa1, fa0, fa0
  check_s 123, fa1, 0x7fc00000
  check_flags 124, 0                         /* a quiet NaN, so no NV */
  lfs fa2, 0xbf800000
  fsgnj.s fa1, fa0, fa2                      /* the canonical NaN with fa2's sign */
  check_s 125, fa1, 0xffc00000
  fclass.s a0, fa0
  check 126, a0, 0x200
  fmv.x.w a0, fa0                            /* transfers move the low bits unchecked */
  check 127, a0, 0x3f800000
  fsw fa0, 4(a1)
  lw a0, 4(a1)
  check 128, a0, 0x3f800000
  li a0, 0xfffffffe3f800000                  /* one upper bit clear is still not boxed */
  fmv.d.x fa0, a0
  fmul.s fa1, fa0, fa2
  check_s 129, fa1, 0x7fc00000

  /* --- loads and stores keep every bit --- */
  li a0, 0x7f800001
  sw a0, 0(a1)
  flw fa0, 0(a1)
  fsw fa0, 8(a1)
  lwu a0, 8(a1)
  check 130, a0, 0x7f800001

  /* --- fcsr, frm, fflags --- */
  csrwi fcsr, 0
  csrwi frm, 3
  csrr a0, frm
  check 131, a0, 3
  csrwi fflags, 0x15
  csrr a0, fcsr
  check 132, a0, 0x75                        /* frm << 5 | fflags */
  li a0, 0xfff
  csrw fcsr, a0                              /* bits above 7 are ignored */
  csrr a0, fcsr
  check 133, a0, 0xff
  csrr a0, frm
  check 134, a0, 7
  csrr a0, fflags
  check 135, a0, 0x1f
  li a0, 0xff
  csrrw a2, fflags, a0
  check 136, a2, 0x1f
  csrr a0, fflags
  check 137, a0, 0x1f
  csrr a0, fcsr
  check 138, a0, 0xff
  csrrci a0, fflags, NV
  csrr a0, fflags
  check 139, a0, 0x0f
  csrrsi a0, frm, 0
  check 140, a0, 7

  /* --- invalid rounding modes are illegal instructions --- */
  set_mtvec trap_skip
  expect_trap
  csrwi fcsr, 0
  lfs fa0, 0x3f800000
  lfs fa1, 0x3f800000
  csrwi frm, 5                               /* reserved */
  fadd.s fa2, fa0, fa1, rne                  /* a static mode does not look at frm */
  check_no_trap 141
  fadd.s fa2, fa0, fa1, dyn
  check_trap 142, CAUSE_ILLEGAL_INSTR
  csrwi frm, 7                               /* DYN is invalid in frm */
  expect_trap
  fmul.s fa2, fa0, fa1
  check_trap 143, CAUSE_ILLEGAL_INSTR
  csrwi frm, 0
  expect_trap
illegal_rm:
  .word (11 << 20) | (10 << 15) | (6 << 12) | (12 << 7) | 0x53   /* fadd.s fa2, fa0, fa1 with rm = 6 */
  check_trap 144, CAUSE_ILLEGAL_INSTR
  check 145, s10, (11 << 20) | (10 << 15) | (6 << 12) | (12 << 7) | 0x53

  /* --- mstatus.FS: writes make it Dirty (and set SD); Off disables the FPU --- */
  li a0, MSTATUS_FS
  csrc mstatus, a0
  li a0, (1 << 13)                           /* Initial */
  csrs mstatus, a0
  fadd.s fa2, fa0, fa1
  csrr a0, mstatus
  srli a1, a0, 13
  andi a1, a1, 3
  check 146, a1, 3
  srli a1, a0, 63
  check 147, a1, 1
  li a0, MSTATUS_FS
  csrc mstatus, a0                           /* Off */
  expect_trap
  fadd.s fa2, fa0, fa1
  check_trap 148, CAUSE_ILLEGAL_INSTR
  expect_trap
  csrr a0, fflags
  check_trap 149, CAUSE_ILLEGAL_INSTR
  expect_trap
  fmv.x.w a0, fa0
  check_trap 150, CAUSE_ILLEGAL_INSTR
  csrr a0, mstatus
  srli a1, a0, 63
  check 151, a1, 0                           /* SD follows FS */
  li a0, (1 << 13)
  csrs mstatus, a0
  set_mtvec trap_fail

  j pass

  .data
  .balign 8
buf: .dword 0, 0
