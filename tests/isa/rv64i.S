/*
 * rv64i.S: the RV64I base integer instruction set (unprivileged spec, chapters 2 and 5):
 * register and immediate ALU operations, LUI/AUIPC, the 32-bit W forms, branches, JAL/JALR,
 * loads with sign/zero extension at every width, and partial stores.
 */
#include "common.h"

main:
  /* --- register-register ALU --- */
  li a0, 0x7fffffffffffffff
  li a1, 1
  add a2, a0, a1
  check 1, a2, 0x8000000000000000           /* wraps, no trap */
  sub a2, zero, a1
  check 2, a2, -1
  li a0, 0x8000000000000000
  sub a2, a0, a1
  check 3, a2, 0x7fffffffffffffff
  li a0, 0x0123456789abcdef
  li a1, 4
  sll a2, a0, a1
  check 4, a2, 0x123456789abcdef0
  li a1, 68                                  /* only the low 6 bits count: shift by 4 */
  sll a2, a0, a1
  check 5, a2, 0x123456789abcdef0
  li a0, 0x8000000000000000
  li a1, 63
  srl a2, a0, a1
  check 6, a2, 1
  sra a2, a0, a1
  check 7, a2, -1
  li a1, 4
  sra a2, a0, a1
  check 8, a2, 0xf800000000000000
  li a0, -1
  li a1, 1
  slt a2, a0, a1
  check 9, a2, 1                             /* -1 < 1 signed */
  sltu a2, a0, a1
  check 10, a2, 0                            /* 0xffff... > 1 unsigned */
  slt a2, a1, a1
  check 11, a2, 0
  li a0, 0xff00ff00ff00ff00
  li a1, 0x0ff00ff00ff00ff0
  xor a2, a0, a1
  check 12, a2, 0xf0f0f0f0f0f0f0f0
  or a2, a0, a1
  check 13, a2, 0xfff0fff0fff0fff0
  and a2, a0, a1
  check 14, a2, 0x0f000f000f000f00

  /* --- register-immediate ALU (12-bit immediates are sign-extended) --- */
  li a0, 100
  addi a2, a0, -2048
  check 15, a2, -1948
  addi a2, a0, 2047
  check 16, a2, 2147
  li a0, -5
  slti a2, a0, -4
  check 17, a2, 1
  slti a2, a0, -5
  check 18, a2, 0
  sltiu a2, a0, -1                           /* -1 as unsigned is the largest value */
  check 19, a2, 1
  sltiu a2, zero, 1                          /* seqz */
  check 20, a2, 1
  li a0, 0x00000000ffff0000
  xori a2, a0, -1                            /* not */
  check 21, a2, 0xffffffff0000ffff
  ori a2, a0, -2048
  check 22, a2, 0xfffffffffffff800
  li a0, 0x123456789abcdef0
  andi a2, a0, -16
  check 23, a2, 0x123456789abcdef0
  andi a2, a0, 0x7ff
  check 24, a2, 0x6f0
  li a0, 1
  slli a2, a0, 63
  check 25, a2, 0x8000000000000000
  srli a2, a2, 63
  check 26, a2, 1
  li a0, 0x8000000000000000
  srai a2, a0, 63
  check 27, a2, -1
  srli a2, a0, 1
  check 28, a2, 0x4000000000000000

  /* --- LUI and AUIPC --- */
  lui a2, 0x80000                            /* bit 31 sign-extends into 63..32 */
  check 29, a2, 0xffffffff80000000
  lui a2, 0x7ffff
  check 30, a2, 0x7ffff000
1:
  auipc a2, 0
  la a3, 1b
  checkr 31, a2, a3
2:
  auipc a2, 0xfffff                          /* negative offset: pc - 4096 */
  la a3, 2b
  li a4, -4096
  add a3, a3, a4
  checkr 32, a2, a3

  /* --- 32-bit W operations: operate on the low 32 bits, sign-extend the result --- */
  li a0, 0x7fffffff
  li a1, 1
  addw a2, a0, a1
  check 33, a2, 0xffffffff80000000
  li a0, 0xaaaaaaaa00000005
  li a1, 0x5555555500000007
  addw a2, a0, a1                            /* upper halves are ignored */
  check 34, a2, 12
  subw a2, a0, a1
  check 35, a2, -2
  li a0, 0x80000000
  subw a2, zero, a0
  check 36, a2, 0xffffffff80000000
  li a0, 1
  li a1, 31
  sllw a2, a0, a1
  check 37, a2, 0xffffffff80000000
  li a1, 33                                  /* only the low 5 bits count: shift by 1 */
  sllw a2, a0, a1
  check 38, a2, 2
  li a0, 0xffffffff80000000
  srlw a2, a0, zero                          /* shift by 0 still sign-extends bit 31 */
  check 39, a2, 0xffffffff80000000
  li a1, 1
  srlw a2, a0, a1
  check 40, a2, 0x40000000
  li a0, 0x0000000080000000                  /* upper bits clear: still treated as negative */
  sraw a2, a0, a1
  check 41, a2, 0xffffffffc0000000
  li a1, 63                                  /* shift by 31 */
  sraw a2, a0, a1
  check 42, a2, -1
  li a0, 0x12345678fffffff0
  addiw a2, a0, 0x10
  check 43, a2, 0
  addiw a2, a0, 0                            /* sext.w */
  check 44, a2, -16
  li a0, 0x0000000000000003
  slliw a2, a0, 30
  check 45, a2, 0xffffffffc0000000
  li a0, 0xffffffff80000000
  srliw a2, a0, 31
  check 46, a2, 1
  srliw a2, a0, 0
  check 47, a2, 0xffffffff80000000
  sraiw a2, a0, 4
  check 48, a2, 0xfffffffff8000000
  li a0, 0x7fffffff00000000
  sraiw a2, a0, 1
  check 49, a2, 0

  /* --- x0 is hardwired to zero --- */
  li a0, 5
  addi zero, a0, 1
  add zero, a0, a0
  check 50, zero, 0

  /* --- branches: taken and not taken, signed and unsigned --- */
  li a0, -1
  li a1, 1
  li a2, 0
  beq a0, a0, 1f
  j fail_51
1:
  bne a0, a1, 1f
  j fail_51
1:
  blt a0, a1, 1f
  j fail_51
1:
  bge a1, a0, 1f
  j fail_51
1:
  bge a0, a0, 1f                             /* equal counts as greater or equal */
  j fail_51
1:
  bltu a1, a0, 1f
  j fail_51
1:
  bgeu a0, a1, 1f
  j fail_51
1:
  bgeu a0, a0, 1f
  j fail_51
1:
  /* each branch below must fall through; a2 counts the ones that do */
  beq a0, a1, fail_52
  addi a2, a2, 1
  bne a0, a0, fail_52
  addi a2, a2, 1
  blt a1, a0, fail_52
  addi a2, a2, 1
  blt a0, a0, fail_52
  addi a2, a2, 1
  bge a0, a1, fail_52
  addi a2, a2, 1
  bltu a0, a1, fail_52
  addi a2, a2, 1
  bltu a0, a0, fail_52
  addi a2, a2, 1
  bgeu a1, a0, fail_52
  addi a2, a2, 1
  check 53, a2, 8
  /* a backward branch */
  li a2, 3
1:
  addi a2, a2, -1
  bnez a2, 1b
  check 54, a2, 0

  /* --- JAL and JALR --- */
  jal a2, 1f
2:
  j fail_55
1:
  la a3, 2b
  checkr 56, a2, a3                          /* link = pc + 4 */
  la a0, 3f
  addi a0, a0, -8
  jalr a2, 8(a0)                             /* offset added to rs1 */
4:
  j fail_57
3:
  la a3, 4b
  checkr 58, a2, a3
  la a0, 5f
  addi a0, a0, 1
  jalr zero, 0(a0)                           /* bit 0 of the target is cleared */
  j fail_59
5:
  la a0, 6f
  jalr a0, 0(a0)                             /* rd = rs1: the target uses the old value */
7:
  j fail_60
6:
  la a3, 7b
  checkr 61, a0, a3
  jal ra, func
  check 62, a0, 42

  /* --- loads: every width, sign and zero extension, negative offsets --- */
  la a0, data
  lb a2, 0(a0)
  check 63, a2, 0xfffffffffffffff0
  lbu a2, 0(a0)
  check 64, a2, 0xf0
  lb a2, 1(a0)
  check 65, a2, 0x7e
  lh a2, 2(a0)
  check 66, a2, 0xffffffffffff8182
  lhu a2, 2(a0)
  check 67, a2, 0x8182
  lh a2, 0(a0)
  check 68, a2, 0x7ef0
  lw a2, 4(a0)
  check 69, a2, 0xffffffff83848586
  lwu a2, 4(a0)
  check 70, a2, 0x83848586
  lw a2, 0(a0)
  check 71, a2, 0xffffffff81827ef0
  ld a2, 0(a0)
  check 72, a2, 0x8384858681827ef0
  addi a1, a0, 16
  ld a2, -8(a1)
  check 73, a2, 0x0102030405060708
  lw a2, -4(a1)
  check 74, a2, 0x01020304

  /* --- stores write exactly their width --- */
  la a0, scratch
  li a1, -1
  sd a1, 0(a0)
  sd a1, 8(a0)
  li a1, 0x1122334455667788
  sb a1, 1(a0)
  ld a2, 0(a0)
  check 75, a2, 0xffffffffffff88ff
  sh a1, 2(a0)
  ld a2, 0(a0)
  check 76, a2, 0xffffffff778888ff
  sw a1, 4(a0)
  ld a2, 0(a0)
  check 77, a2, 0x55667788778888ff
  sd a1, 8(a0)
  ld a2, 8(a0)
  check 78, a2, 0x1122334455667788
  ld a2, 0(a0)
  check 79, a2, 0x55667788778888ff
  addi a3, a0, 16
  sw zero, -8(a3)
  ld a2, 8(a0)
  check 80, a2, 0x1122334400000000

  j pass

func:
  li a0, 42
  ret

/* Failures of the control-flow checks, where no register comparison is involved. */
fail_51: begin_check 51
  j fail
fail_52: begin_check 52
  j fail
fail_55: begin_check 55
  j fail
fail_57: begin_check 57
  j fail
fail_59: begin_check 59
  j fail
fail_60: begin_check 60
  j fail

  .data
  .balign 8
data:
  .byte 0xf0, 0x7e, 0x82, 0x81, 0x86, 0x85, 0x84, 0x83
  .dword 0x0102030405060708
scratch:
  .dword 0, 0
