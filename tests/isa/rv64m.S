/*
 * rv64m.S: the M extension on RV64 (unprivileged spec, chapter 7): MUL/MULH/MULHSU/MULHU,
 * DIV/DIVU/REM/REMU and their W forms, including division by zero and signed overflow,
 * which never trap and give the results of the spec's table 7.1.
 */
#include "common.h"

main:
  /* --- multiplication: low half --- */
  li a0, 3
  li a1, -7
  mul a2, a0, a1
  check 1, a2, -21
  li a0, 0x8000000000000000
  li a1, -1
  mul a2, a0, a1
  check 2, a2, 0x8000000000000000
  li a0, 0x123456789
  li a1, 0x100000000
  mul a2, a0, a1
  check 3, a2, 0x2345678900000000

  /* --- high halves: signed x signed --- */
  li a0, -1
  mulh a2, a0, a0
  check 4, a2, 0
  li a0, 0x8000000000000000
  mulh a2, a0, a0                            /* 2^126 */
  check 5, a2, 0x4000000000000000
  li a1, 1
  mulh a2, a0, a1                            /* -2^63: high half is all ones */
  check 6, a2, -1
  li a0, 0x7fffffffffffffff
  mulh a2, a0, a0                            /* (2^63-1)^2 = 2^126 - 2^64 + 1 */
  check 7, a2, 0x3fffffffffffffff

  /* --- unsigned x unsigned --- */
  li a0, -1
  mulhu a2, a0, a0                           /* (2^64-1)^2 = 2^128 - 2^65 + 1 */
  check 8, a2, 0xfffffffffffffffe
  li a1, 2
  mulhu a2, a0, a1
  check 9, a2, 1
  mulhu a2, a0, zero
  check 10, a2, 0

  /* --- signed rs1 x unsigned rs2 --- */
  li a0, -1
  li a1, -1                                  /* 2^64 - 1 as unsigned */
  mulhsu a2, a0, a1                          /* -(2^64 - 1) */
  check 11, a2, -1
  mul a2, a0, a1
  check 12, a2, 1
  li a0, 2
  mulhsu a2, a0, a1                          /* 2^65 - 2 */
  check 13, a2, 1
  li a0, -2
  li a1, 1
  mulhsu a2, a0, a1
  check 14, a2, -1
  li a0, 0x8000000000000000
  mulhsu a2, a0, a0                          /* -2^63 * 2^63 = -2^126 */
  check 15, a2, 0xc000000000000000
  mulhsu a2, a1, a0                          /* 1 * 2^63 */
  check 16, a2, 0

  /* --- MULW: low 32 bits of the operands, sign-extended result --- */
  li a0, 0x7fffffff
  li a1, 2
  mulw a2, a0, a1
  check 17, a2, -2
  li a0, 0x100000003
  li a1, 0xffffffff00000005
  mulw a2, a0, a1
  check 18, a2, 15
  li a0, 0x10000
  mulw a2, a0, a0                            /* 2^32 truncates to 0 */
  check 19, a2, 0

  /* --- division rounds toward zero; the remainder takes the dividend's sign --- */
  li a0, -7
  li a1, 2
  div a2, a0, a1
  check 20, a2, -3
  rem a2, a0, a1
  check 21, a2, -1
  li a0, 7
  li a1, -2
  div a2, a0, a1
  check 22, a2, -3
  rem a2, a0, a1
  check 23, a2, 1
  li a0, -1
  li a1, 2
  divu a2, a0, a1
  check 24, a2, 0x7fffffffffffffff
  remu a2, a0, a1
  check 25, a2, 1
  li a0, 100
  li a1, 7
  divu a2, a0, a1
  check 26, a2, 14
  remu a2, a0, a1
  check 27, a2, 2

  /* --- division by zero: quotient all ones, remainder = dividend --- */
  li a0, 1234
  div a2, a0, zero
  check 28, a2, -1
  divu a2, a0, zero
  check 29, a2, 0xffffffffffffffff
  rem a2, a0, zero
  check 30, a2, 1234
  li a0, -1234
  remu a2, a0, zero
  check 31, a2, -1234
  rem a2, a0, zero
  check 32, a2, -1234

  /* --- signed overflow: -2^63 / -1 = -2^63, remainder 0 --- */
  li a0, 0x8000000000000000
  li a1, -1
  div a2, a0, a1
  check 33, a2, 0x8000000000000000
  rem a2, a0, a1
  check 34, a2, 0

  /* --- W forms --- */
  li a0, 0xffffffff80000000
  li a1, -1
  divw a2, a0, a1                            /* overflow */
  check 35, a2, 0xffffffff80000000
  remw a2, a0, a1
  check 36, a2, 0
  li a0, 0x0000000080000000                  /* upper bits ignored: still -2^31 */
  divw a2, a0, a1
  check 37, a2, 0xffffffff80000000
  li a0, 0x1234567800000064
  divw a2, a0, zero
  check 38, a2, -1
  remw a2, a0, zero
  check 39, a2, 100
  divuw a2, a0, zero                         /* 2^32 - 1, sign-extended */
  check 40, a2, -1
  li a0, 0x80000000
  remuw a2, a0, zero                         /* the dividend, sign-extended from bit 31 */
  check 41, a2, 0xffffffff80000000
  li a0, 0xffffffff
  li a1, 2
  divuw a2, a0, a1
  check 42, a2, 0x7fffffff
  remuw a2, a0, a1
  check 43, a2, 1
  li a0, -7
  li a1, 2
  divw a2, a0, a1
  check 44, a2, -3
  remw a2, a0, a1
  check 45, a2, -1
  li a0, 0x100000008
  divw a2, a0, a1                            /* 8 / 2 */
  check 46, a2, 4
  li a0, 0xfffffffe                          /* unsigned: 2^32 - 2 */
  li a1, 0x100000003                         /* low word 3 */
  divuw a2, a0, a1
  check 47, a2, 0x55555554
  remuw a2, a0, a1
  check 48, a2, 2

  /* --- rd equal to a source --- */
  li a0, 6
  li a1, 7
  mul a0, a0, a1
  check 49, a0, 42
  div a1, a0, a1
  check 50, a1, 6

  j pass
