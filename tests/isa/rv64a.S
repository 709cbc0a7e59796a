/*
 * rv64a.S: the A extension on RV64 (unprivileged spec, chapter 8): LR/SC reservations
 * (success, failure without a reservation, failure on another address, SC always clearing
 * the reservation), every AMO in .W and .D form with the old value in rd (.W results
 * sign-extended), and the trap for a misaligned AMO.
 */
#include "common.h"

/* Runs `\op rd, rs2, (mem)` with mem = \old, rs2 = \src; check \n: rd = \rd, check \m: mem = \new. */
.macro amo n, m, op, old, src, rd, new
  la a0, word
  li a1, \old
  sd a1, 0(a0)
  li a1, \src
  \op a2, a1, (a0)
  check \n, a2, \rd
  ld a3, 0(a0)
  check \m, a3, \new
.endm

main:
  /* --- LR/SC --- */
  la a0, word
  la a1, other
  li t0, 5
  sd t0, 0(a0)
  sd t0, 0(a1)
  sc.d t1, t0, (a1)                          /* clears any reservation left by reset */
  li t0, 77
  sc.d t1, t0, (a0)                          /* no reservation: must fail */
  bnez t1, 1f
  begin_check 1
  j fail
1:
  ld t2, 0(a0)
  check 2, t2, 5
  lr.d t2, (a0)
  check 3, t2, 5
  sc.d t1, t0, (a0)
  check 4, t1, 0                             /* success writes 0 */
  ld t2, 0(a0)
  check 5, t2, 77
  sc.d t1, zero, (a0)                        /* the reservation went with the first SC */
  bnez t1, 1f
  begin_check 6
  j fail
1:
  ld t2, 0(a0)
  check 7, t2, 77
  lr.d t2, (a0)
  sc.d t1, zero, (a1)                        /* another address than the LR's: must fail */
  bnez t1, 1f
  begin_check 8
  j fail
1:
  ld t2, 0(a1)
  check 9, t2, 5

  /* LR.W sign-extends; SC.W writes only 32 bits */
  li t0, 0x1111111180000000
  sd t0, 0(a0)
  lr.w t2, (a0)
  check 10, t2, 0xffffffff80000000
  li t0, 0x7fffffff
  sc.w.rl t1, t0, (a0)
  check 11, t1, 0
  ld t2, 0(a0)
  check 12, t2, 0x111111117fffffff
  lr.w.aq t2, (a0)
  sc.w.aqrl t1, zero, (a0)
  check 13, t1, 0
  ld t2, 0(a0)
  check 14, t2, 0x1111111100000000

  /* --- AMO .D: old value to rd, new value to memory --- */
  amo 20, 21, amoswap.d, 0x1122334455667788, -1, 0x1122334455667788, -1
  amo 22, 23, amoadd.d, 0x7fffffffffffffff, 1, 0x7fffffffffffffff, 0x8000000000000000
  amo 24, 25, amoxor.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0
  amo 26, 27, amoand.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0x0f000f000f000f00
  amo 28, 29, amoor.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xfff0fff0fff0fff0
  amo 30, 31, amomin.d, -5, 3, -5, -5
  amo 32, 33, amomin.d, 3, -5, 3, -5
  amo 34, 35, amomax.d, -5, 3, -5, 3
  amo 36, 37, amominu.d, -5, 3, -5, 3            /* -5 is huge unsigned */
  amo 38, 39, amomaxu.d, -5, 3, -5, -5
  amo 40, 41, amomaxu.d.aqrl, 1, 0x8000000000000000, 1, 0x8000000000000000

  /* --- AMO .W: 32-bit memory operand, sign-extended old value, upper word untouched --- */
  amo 50, 51, amoswap.w, 0x0123456780000000, 0x55, 0xffffffff80000000, 0x0123456700000055
  amo 52, 53, amoadd.w, 0x012345677fffffff, 1, 0x7fffffff, 0x0123456780000000
  amo 54, 55, amoadd.w, 0x01234567ffffffff, 1, -1, 0x0123456700000000  /* no carry out */
  amo 56, 57, amoxor.w, 0x01234567f0f0f0f0, 0xffffffffffffffff, 0xfffffffff0f0f0f0, 0x012345670f0f0f0f
  amo 58, 59, amoand.w, 0x01234567f0f0f0f0, 0x0ff00ff0, 0xfffffffff0f0f0f0, 0x0123456700f000f0
  amo 60, 61, amoor.w, 0x0123456700000001, 0x80000000, 1, 0x0123456780000001
  amo 62, 63, amomin.w, 0x0123456780000000, 1, 0xffffffff80000000, 0x0123456780000000
  amo 64, 65, amomax.w, 0x0123456780000000, 1, 0xffffffff80000000, 0x0123456700000001
  amo 66, 67, amominu.w, 0x0123456780000000, 1, 0xffffffff80000000, 0x0123456700000001
  amo 68, 69, amomaxu.w, 0x0123456780000000, 1, 0xffffffff80000000, 0x0123456780000000
  /* only the low 32 bits of rs2 take part in the comparison */
  amo 70, 71, amomin.w.aq, 0x0123456700000005, 0x7fffffff00000003, 5, 0x0123456700000003

  /* --- rd = rs2 and rd = x0 --- */
  la a0, word
  li a1, 10
  sd a1, 0(a0)
  li a2, 20
  amoswap.d a2, a2, (a0)
  check 80, a2, 10
  ld a3, 0(a0)
  check 81, a3, 20
  li a1, 5
  amoadd.d zero, a1, (a0)
  ld a3, 0(a0)
  check 82, a3, 25
  check 83, zero, 0

  /* --- the upper word of a doubleword through the .W forms --- */
  li a1, 0x0000000100000002
  sd a1, 0(a0)
  addi a4, a0, 4
  li a1, 3
  amoadd.w a2, a1, (a4)
  check 84, a2, 1
  ld a3, 0(a0)
  check 85, a3, 0x0000000400000002

  /* --- a misaligned AMO traps (address-misaligned or access fault), memory untouched --- */
  set_mtvec trap_skip
  expect_trap
  li a1, 0x1111111111111111
  sd a1, 0(a0)
  sd a1, 8(a0)
  addi a4, a0, 4
  amoadd.d a2, a1, (a4)
  check 90, s8, 1
  /* The spec's causes are 6 and 7; QEMU 7.2 reports 4 (load address misaligned). */
  begin_check 91
  li t0, CAUSE_MISALIGNED_STORE
  beq s9, t0, 1f
  li t0, CAUSE_STORE_ACCESS
  beq s9, t0, 1f
  li t0, CAUSE_MISALIGNED_LOAD
  beq s9, t0, 1f
  j fail
1:
  checkr 92, s10, a4                         /* mtval = the address */
  ld a3, 0(a0)
  check 93, a3, 0x1111111111111111
  ld a3, 8(a0)
  check 94, a3, 0x1111111111111111
  set_mtvec trap_fail

  j pass

  .data
  .balign 16
word: .dword 0, 0
other: .dword 0
