/*
 * rv64d.S: the D extension on RV64 (unprivileged spec, chapter 12) with exactly known results:
 * arithmetic, fused multiply-add, rounding modes, flags, min/max and comparisons with NaNs,
 * conversions between double, single and integers (rounding, saturation, canonical NaNs,
 * singles that are not NaN-boxed), fmv.x.d/fmv.d.x, fclass.d, sign injection, fld/fsd.
 */
#include "common.h"

#define NV 0x10
#define DZ 0x08
#define OF 0x04
#define UF 0x02
#define NX 0x01

/* Loads \freg with the double whose bit pattern is \bits. */
.macro lfd freg, bits
  li t0, \bits
  fmv.d.x \freg, t0
.endm

/* Check \n: \freg holds the double \bits. */
.macro check_d n, freg, bits
  fmv.x.d t0, \freg
  check \n, t0, \bits
.endm

/* Check \n: \freg holds the single \bits, NaN-boxed. */
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
  lfd fa0, 0x3ff8000000000000                /* 1.5 */
  lfd fa1, 0x4002000000000000                /* 2.25 */
  fadd.d fa2, fa0, fa1
  check_d 1, fa2, 0x400e000000000000         /* 3.75 */
  fsub.d fa2, fa0, fa1
  check_d 2, fa2, 0xbfe8000000000000         /* -0.75 */
  fmul.d fa2, fa0, fa1
  check_d 3, fa2, 0x400b000000000000         /* 3.375 */
  fdiv.d fa2, fa1, fa0
  check_d 4, fa2, 0x3ff8000000000000
  check_flags 5, 0

  /* --- 1/3 with static and dynamic rounding modes --- */
  lfd fa0, 0x3ff0000000000000                /* 1 */
  lfd fa1, 0x4008000000000000                /* 3 */
  lfd fa3, 0xbff0000000000000                /* -1 */
  fdiv.d fa2, fa0, fa1, rne
  check_d 6, fa2, 0x3fd5555555555555
  fdiv.d fa2, fa0, fa1, rup
  check_d 7, fa2, 0x3fd5555555555556
  fdiv.d fa2, fa0, fa1, rtz
  check_d 8, fa2, 0x3fd5555555555555
  fdiv.d fa2, fa3, fa1, rdn
  check_d 9, fa2, 0xbfd5555555555556
  fdiv.d fa2, fa3, fa1, rmm
  check_d 10, fa2, 0xbfd5555555555555
  csrwi frm, 3                               /* RUP */
  fdiv.d fa2, fa0, fa1
  check_d 11, fa2, 0x3fd5555555555556
  csrwi frm, 0
  check_flags 12, NX

  /* --- square root --- */
  lfd fa0, 0x4000000000000000                /* 2 */
  fsqrt.d fa2, fa0
  check_d 13, fa2, 0x3ff6a09e667f3bcd
  check_flags 14, NX
  lfd fa0, 0x4022000000000000                /* 9 */
  fsqrt.d fa2, fa0
  check_d 15, fa2, 0x4008000000000000
  lfd fa0, 0x8000000000000000                /* -0 */
  fsqrt.d fa2, fa0
  check_d 16, fa2, 0x8000000000000000
  check_flags 17, 0
  lfd fa0, 0xc000000000000000
  fsqrt.d fa2, fa0
  check_d 18, fa2, 0x7ff8000000000000        /* canonical NaN */
  check_flags 19, NV

  /* --- fused multiply-add --- */
  lfd fa0, 0x4000000000000000                /* 2 */
  lfd fa1, 0x4008000000000000                /* 3 */
  lfd fa2, 0x3ff0000000000000                /* 1 */
  fmadd.d fa3, fa0, fa1, fa2
  check_d 20, fa3, 0x401c000000000000        /* 7 */
  fmsub.d fa3, fa0, fa1, fa2
  check_d 21, fa3, 0x4014000000000000        /* 5 */
  fnmsub.d fa3, fa0, fa1, fa2
  check_d 22, fa3, 0xc014000000000000        /* -5 */
  fnmadd.d fa3, fa0, fa1, fa2
  check_d 23, fa3, 0xc01c000000000000        /* -7 */
  lfd fa0, 0x3ff0000000000001                /* 1 + 2^-52 */
  lfd fa1, 0x3feffffffffffffe                /* 1 - 2^-52 */
  fmsub.d fa3, fa0, fa1, fa2                 /* exactly -2^-104 */
  check_d 24, fa3, 0xb970000000000000
  check_flags 25, 0

  /* --- flags --- */
  lfd fa0, 0x3ff0000000000000
  fmv.d.x fa1, zero
  fdiv.d fa2, fa0, fa1
  check_d 26, fa2, 0x7ff0000000000000
  check_flags 27, DZ
  lfd fa0, 0x7fefffffffffffff                /* largest finite */
  fadd.d fa2, fa0, fa0
  check_d 28, fa2, 0x7ff0000000000000
  check_flags 29, (OF | NX)
  lfd fa0, 0x0010000000000000                /* smallest normal */
  fmul.d fa2, fa0, fa0
  check_d 30, fa2, 0
  check_flags 31, (UF | NX)

  /* --- min/max and comparisons --- */
  lfd fa0, 0x8000000000000000
  fmv.d.x fa1, zero
  fmin.d fa2, fa1, fa0
  check_d 32, fa2, 0x8000000000000000
  fmax.d fa2, fa0, fa1
  check_d 33, fa2, 0
  lfd fa0, 0x7ff0000000000001                /* sNaN */
  lfd fa1, 0xc000000000000000
  fmin.d fa2, fa0, fa1
  check_d 34, fa2, 0xc000000000000000
  check_flags 35, NV
  lfd fa0, 0x7ff8000000000123
  fmax.d fa2, fa0, fa0
  check_d 36, fa2, 0x7ff8000000000000
  check_flags 37, 0
  feq.d a0, fa1, fa1
  check 38, a0, 1
  flt.d a0, fa1, fa0                         /* qNaN in a signaling comparison */
  check 39, a0, 0
  check_flags 40, NV
  feq.d a0, fa1, fa0
  check 41, a0, 0
  check_flags 42, 0
  lfd fa2, 0x4000000000000000
  fle.d a0, fa1, fa2
  check 43, a0, 1
  flt.d a0, fa2, fa1
  check 44, a0, 0

  /* --- double <-> single --- */
  lfd fa0, 0x3fd5555555555555                /* 1/3 */
  fcvt.s.d fa1, fa0
  check_s 45, fa1, 0x3eaaaaab
  fcvt.s.d fa1, fa0, rtz
  check_s 46, fa1, 0x3eaaaaaa
  check_flags 47, NX
  lfd fa0, 0x7e37e43c8800759c                /* 1e300 */
  fcvt.s.d fa1, fa0
  check_s 48, fa1, 0x7f800000
  check_flags 49, (OF | NX)
  lfd fa0, 0x7ff8000000012345                /* NaN payloads are not kept */
  fcvt.s.d fa1, fa0
  check_s 50, fa1, 0x7fc00000
  check_flags 51, 0
  lfd fa0, 0x7ff0000000000001
  fcvt.s.d fa1, fa0
  check_s 52, fa1, 0x7fc00000
  check_flags 53, NV
  li a0, 0x3fc00000                          /* 1.5f */
  fmv.w.x fa0, a0
  fcvt.d.s fa1, fa0
  check_d 54, fa1, 0x3ff8000000000000
  li a0, 0x7f800001                          /* sNaN */
  fmv.w.x fa0, a0
  fcvt.d.s fa1, fa0
  check_d 55, fa1, 0x7ff8000000000000
  check_flags 56, NV
  lfd fa0, 0x000000003fc00000                /* a single that is not NaN-boxed */
  fcvt.d.s fa1, fa0
  check_d 57, fa1, 0x7ff8000000000000
  check_flags 58, 0

  /* --- double to integer --- */
  lfd fa0, 0x4004000000000000                /* 2.5 */
  fcvt.w.d a0, fa0, rne
  check 59, a0, 2
  fcvt.w.d a0, fa0, rmm
  check 60, a0, 3
  fcvt.l.d a0, fa0, rup
  check 61, a0, 3
  lfd fa0, 0xc004000000000000                /* -2.5 */
  fcvt.l.d a0, fa0, rdn
  check 62, a0, -3
  fcvt.l.d a0, fa0, rtz
  check 63, a0, -2
  check_flags 64, NX
  lfd fa0, 0x43e0000000000000                /* 2^63 */
  fcvt.l.d a0, fa0
  check 65, a0, 0x7fffffffffffffff
  check_flags 66, NV
  fcvt.lu.d a0, fa0
  check 67, a0, 0x8000000000000000
  check_flags 68, 0
  lfd fa0, 0xc3e0000000000000                /* -2^63 fits exactly */
  fcvt.l.d a0, fa0
  check 69, a0, 0x8000000000000000
  check_flags 70, 0
  lfd fa0, 0xfff0000000000000                /* -inf */
  fcvt.l.d a0, fa0
  check 71, a0, 0x8000000000000000
  check_flags 72, NV
  lfd fa0, 0x7ff8000000000000
  fcvt.l.d a0, fa0
  check 73, a0, 0x7fffffffffffffff
  check_flags 74, NV
  lfd fa0, 0xbff0000000000000
  fcvt.lu.d a0, fa0
  check 75, a0, 0
  check_flags 76, NV
  lfd fa0, 0x43f0000000000000                /* 2^64 */
  fcvt.lu.d a0, fa0
  check 77, a0, -1
  check_flags 78, NV
  lfd fa0, 0xc1e65a0bc0000000                /* -3e9 */
  fcvt.w.d a0, fa0
  check 79, a0, 0xffffffff80000000
  check_flags 80, NV
  lfd fa0, 0x41e65a0bc0000000                /* 3e9 */
  fcvt.wu.d a0, fa0
  check 81, a0, 0xffffffffb2d05e00           /* sign-extended 32-bit result */
  check_flags 82, 0

  /* --- integer to double --- */
  li a0, -1
  fcvt.d.l fa0, a0
  check_d 83, fa0, 0xbff0000000000000
  fcvt.d.lu fa0, a0                          /* 2^64 - 1 rounds to 2^64 */
  check_d 84, fa0, 0x43f0000000000000
  check_flags 85, NX
  fcvt.d.wu fa0, a0                          /* 2^32 - 1 is exact */
  check_d 86, fa0, 0x41efffffffe00000
  li a0, 0x12345678fffffffb
  fcvt.d.w fa0, a0
  check_d 87, fa0, 0xc014000000000000        /* -5 */
  check_flags 88, 0
  li a0, 0x20000000000001                    /* 2^53 + 1 */
  fcvt.d.l fa0, a0
  check_d 89, fa0, 0x4340000000000000        /* ties to even: 2^53 */
  fcvt.d.l fa0, a0, rup
  check_d 90, fa0, 0x4340000000000001        /* 2^53 + 2 */
  check_flags 91, NX

  /* --- moves, sign injection, NaN payloads --- */
  li a0, 0x7ff0000000000001
  fmv.d.x fa0, a0
  fmv.x.d a1, fa0
  checkr 92, a0, a1
  fsgnjn.d fa1, fa0, fa0
  check_d 93, fa1, 0xfff0000000000001
  lfd fa2, 0x3ff0000000000000
  lfd fa3, 0xc000000000000000
  fsgnj.d fa1, fa2, fa3
  check_d 94, fa1, 0xbff0000000000000
  fsgnjx.d fa1, fa3, fa3
  check_d 95, fa1, 0x4000000000000000
  fabs.d fa1, fa3
  check_d 96, fa1, 0x4000000000000000
  fneg.d fa1, fa2
  check_d 97, fa1, 0xbff0000000000000
  check_flags 98, 0

  /* --- fclass.d --- */
  .irp bits, 0xfff0000000000000, 0xbff0000000000000, 0x800fffffffffffff, 0x8000000000000000, 0, 1, 0x3ff0000000000000, 0x7ff0000000000000, 0x7ff4000000000000, 0x7ff8000000000000
  lfd fa0, \bits
  fclass.d a0, fa0
  addi sp, sp, -8
  sd a0, 0(sp)
  .endr
  ld a0, 0(sp)
  check 99, a0, 0x200
  ld a0, 8(sp)
  check 100, a0, 0x100
  ld a0, 16(sp)
  check 101, a0, 0x80
  ld a0, 24(sp)
  check 102, a0, 0x40
  ld a0, 32(sp)
  check 103, a0, 0x20
  ld a0, 40(sp)
  check 104, a0, 0x10
  ld a0, 48(sp)
  check 105, a0, 0x08
  ld a0, 56(sp)
  check 106, a0, 0x04
  ld a0, 64(sp)
  check 107, a0, 0x02
  ld a0, 72(sp)
  check 108, a0, 0x01
  addi sp, sp, 80

  /* --- fld/fsd --- */
  la a1, buf
  li a0, 0xfff123456789abcd
  sd a0, 0(a1)
  fld fa0, 0(a1)
  fsd fa0, 8(a1)
  ld a2, 8(a1)
  check 109, a2, 0xfff123456789abcd
  fld fa1, 8(a1)
  fmv.x.d a2, fa1
  check 110, a2, 0xfff123456789abcd

  j pass

  .data
  .balign 8
buf: .dword 0, 0
