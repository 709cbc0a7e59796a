/*
 * misaligned.S: loads and stores at addresses that are not a multiple of their width
 * (unprivileged spec, section 2.6; privileged spec, section 3.1.15). The spec lets an
 * implementation either perform them or raise an address-misaligned (or access-fault)
 * exception with mtval = the address; both are accepted here, and when the access is
 * performed (as Vireo and QEMU do in M-mode) its value must be exact: every width, sign and
 * zero extension, within a doubleword, across doublewords and across a page boundary,
 * including FP loads and stores.
 */
#include "common.h"

/* Check \n: `\op a0, \off(a1)` loads \val, or traps as a misaligned load at a1 + \off. */
.macro mis_load n, op, off, val
  expect_trap
  li a0, 0x5a5a5a5a
  \op a0, \off(a1)
  begin_check \n
  bnez s8, .Ltrapped\@
  li t6, \val
  beq a0, t6, .Lok\@
  j fail
.Ltrapped\@:
  check_fault \off, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS
.Lok\@:
.endm

/* Check \n: the FP load `\op fa0, \off(a1)` gives the 64-bit register \val, or traps. */
.macro mis_fload n, op, off, val
  expect_trap
  fmv.d.x fa0, zero
  \op fa0, \off(a1)
  begin_check \n
  bnez s8, .Ltrapped\@
  fmv.x.d a0, fa0
  li t6, \val
  beq a0, t6, .Lok\@
  j fail
.Ltrapped\@:
  check_fault \off, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS
.Lok\@:
.endm

/* Check \n: on zeroed memory at a1, `\op a0, \off(a1)` with a0 = \val leaves \d0, \d1, or traps. */
.macro mis_store n, op, off, val, d0, d1
  sd zero, 0(a1)
  sd zero, 8(a1)
  expect_trap
  li a0, \val
  \op a0, \off(a1)
  begin_check \n
  bnez s8, .Ltrapped\@
  ld a0, 0(a1)
  li t6, \d0
  bne a0, t6, .Lbad\@
  ld a0, 8(a1)
  li t6, \d1
  beq a0, t6, .Lok\@
.Lbad\@:
  j fail
.Ltrapped\@:
  check_fault \off, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS
.Lok\@:
.endm

/* Same as mis_store for the FP store `\op fa0, \off(a1)`. */
.macro mis_fstore n, op, off, val, d0, d1
  li a0, \val
  fmv.d.x fa0, a0
  sd zero, 0(a1)
  sd zero, 8(a1)
  expect_trap
  \op fa0, \off(a1)
  begin_check \n
  bnez s8, .Ltrapped\@
  ld a0, 0(a1)
  li t6, \d0
  bne a0, t6, .Lbad\@
  ld a0, 8(a1)
  li t6, \d1
  beq a0, t6, .Lok\@
.Lbad\@:
  j fail
.Ltrapped\@:
  check_fault \off, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS
.Lok\@:
.endm

/* The trap taken instead must be one of \misaligned or \access with mtval = a1 + \off. */
.macro check_fault off, misaligned, access
  li t6, \misaligned
  beq s9, t6, .Lcause_ok\@
  li t6, \access
  beq s9, t6, .Lcause_ok\@
  j fail
.Lcause_ok\@:
  addi t6, a1, \off
  beq s10, t6, .Ltval_ok\@
  j fail
.Ltval_ok\@:
.endm

main:
  set_mtvec trap_skip

  /* --- loads; bytes at `pattern` are 0x80, 0x81, ... --- */
  la a1, pattern
  mis_load 1, lh, 1, 0xffffffffffff8281
  mis_load 2, lhu, 1, 0x8281
  mis_load 3, lh, 7, 0xffffffffffff8887       /* across a doubleword */
  mis_load 4, lhu, 15, 0x908f
  mis_load 5, lw, 1, 0xffffffff84838281
  mis_load 6, lw, 2, 0xffffffff85848382
  mis_load 7, lw, 3, 0xffffffff86858483
  mis_load 8, lwu, 5, 0x88878685
  mis_load 9, lw, 6, 0xffffffff89888786
  mis_load 10, ld, 1, 0x8887868584838281
  mis_load 11, ld, 2, 0x8988878685848382
  mis_load 12, ld, 3, 0x8a89888786858483
  mis_load 13, ld, 4, 0x8b8a898887868584
  mis_load 14, ld, 5, 0x8c8b8a8988878685
  mis_load 15, ld, 6, 0x8d8c8b8a89888786
  mis_load 16, ld, 7, 0x8e8d8c8b8a898887
  mis_load 17, ld, 9, 0x908f8e8d8c8b8a89
  mis_fload 18, flw, 1, 0xffffffff84838281    /* NaN-boxed */
  mis_fload 19, fld, 3, 0x8a89888786858483

  /* --- loads across a page boundary (the page ends at cross + 8) --- */
  la a1, cross
  mis_load 20, ld, 5, 0x8c8b8a8988878685
  mis_load 21, lw, 6, 0xffffffff89888786
  mis_load 22, lhu, 7, 0x8887
  mis_fload 23, fld, 1, 0x8887868584838281

  /* --- stores --- */
  la a1, scratch
  mis_store 30, sh, 1, 0x1122, 0x0000000000112200, 0
  mis_store 31, sh, 7, 0x1122, 0x2200000000000000, 0x11
  mis_store 32, sw, 3, 0x11223344, 0x0011223344000000, 0
  mis_store 33, sw, 6, 0x11223344, 0x3344000000000000, 0x1122
  mis_store 34, sd, 5, 0x1122334455667788, 0x6677880000000000, 0x0000001122334455
  mis_store 35, sd, 1, 0x1122334455667788, 0x2233445566778800, 0x11
  mis_fstore 36, fsd, 2, 0x0123456789abcdef, 0x456789abcdef0000, 0x0123
  mis_fstore 37, fsw, 3, 0xffffffff89abcdef, 0x0089abcdef000000, 0

  /* --- stores across a page boundary --- */
  la a1, cross
  mis_store 40, sd, 4, 0x1122334455667788, 0x5566778800000000, 0x11223344
  mis_store 41, sw, 7, 0x11223344, 0x4400000000000000, 0x112233

  set_mtvec trap_fail
  j pass

  .data
  .balign 8
pattern:
  .dword 0x8786858483828180, 0x8f8e8d8c8b8a8988, 0x9796959493929190, 0x9f9e9d9c9b9a9998
scratch:
  .dword 0, 0
  .balign 4096
  .skip 4096 - 8
cross:                                       /* the last doubleword of a page, then the next */
  .dword 0x8786858483828180, 0x8f8e8d8c8b8a8988
