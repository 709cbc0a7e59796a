/*
 * rv64c.S: the C extension on RV64 (unprivileged spec, chapter 16). Every instruction under
 * test is written with its c. mnemonic, so the assembler must emit the 16-bit form:
 * immediates at the ends of their ranges (c.li, c.lui, c.addi16sp, c.addi4spn, c.addiw,
 * shifts, c.andi), register forms, loads/stores including the sp-based and FP ones, jumps and
 * branches with their 2-byte link, and a 4-byte instruction that straddles a page boundary.
 */
#include "common.h"

main:
  /* --- constants --- */
  c.li a0, -32
  check 1, a0, -32
  c.li a0, 31
  check 2, a0, 31
  c.lui a0, 1
  check 3, a0, 0x1000
  c.lui a0, 31
  check 4, a0, 0x1f000
  c.lui a0, 0xfffe0                          /* nzimm = -32: sign-extended to 64 bits */
  check 5, a0, 0xfffffffffffe0000
  c.lui a0, 0xfffff
  check 6, a0, 0xfffffffffffff000

  /* --- c.addi, c.addiw --- */
  li a0, 100
  c.addi a0, -32
  check 7, a0, 68
  c.addi a0, 31
  check 8, a0, 99
  li a0, 0x7fffffff
  c.addiw a0, 1
  check 9, a0, 0xffffffff80000000
  li a0, 0x0000000080000000
  c.addiw a0, -1
  check 10, a0, 0x7fffffff
  li a0, 0x12345678ffffffff
  c.addiw a0, 0                              /* sext.w */
  check 11, a0, -1

  /* --- stack-pointer forms --- */
  mv s0, sp
  c.addi16sp sp, -512
  sub a0, s0, sp
  check 12, a0, 512
  c.addi16sp sp, 496
  sub a0, s0, sp
  check 13, a0, 16
  c.addi16sp sp, 16
  checkr 14, sp, s0
  c.addi4spn a0, sp, 1020
  sub a0, a0, sp
  check 15, a0, 1020
  c.addi4spn a0, sp, 4
  sub a0, a0, sp
  check 16, a0, 4

  /* --- shifts and c.andi --- */
  li a0, 1
  c.slli a0, 63
  check 17, a0, 0x8000000000000000
  c.srai a0, 1
  check 18, a0, 0xc000000000000000
  c.srai a0, 63
  check 19, a0, -1
  c.srli a0, 1
  check 20, a0, 0x7fffffffffffffff
  c.srli a0, 62
  check 21, a0, 1
  li a0, 0xff
  c.andi a0, -2                              /* sign-extended immediate */
  check 22, a0, 0xfe
  li a0, -1
  c.andi a0, 31
  check 23, a0, 31
  li a0, 0x8000000000000055
  c.andi a0, -32
  check 24, a0, 0x8000000000000040

  /* --- register-register forms --- */
  li a1, 0x0ff0
  c.mv a0, a1
  check 25, a0, 0x0ff0
  li a1, 0x00ff
  c.add a0, a1
  check 26, a0, 0x10ef
  c.sub a0, a1
  check 27, a0, 0x0ff0
  c.xor a0, a1
  check 28, a0, 0x0f0f
  c.or a0, a1
  check 29, a0, 0x0fff
  li a1, 0x0f0
  c.and a0, a1
  check 30, a0, 0x0f0
  li a0, 0x7fffffff
  li a1, 1
  c.addw a0, a1
  check 31, a0, 0xffffffff80000000
  li a0, 0x100000000
  c.subw a0, a1
  check 32, a0, -1

  /* --- loads and stores (x8..x15 forms) --- */
  la a1, data
  c.lw a0, 0(a1)
  check 34, a0, 0xffffffff80000001           /* sign-extended */
  c.lw a0, 124(a1)
  check 35, a0, 0x7eadbeef
  c.ld a0, 8(a1)
  check 36, a0, 0x0123456789abcdef
  c.ld a0, 248(a1)
  check 37, a0, 0x1122334455667788
  la a1, scratch
  li a0, -1
  c.sd a0, 0(a1)
  li a0, 0x12345678
  c.sw a0, 4(a1)
  ld a2, 0(a1)
  check 38, a2, 0x12345678ffffffff
  c.sd a0, 8(a1)
  ld a2, 8(a1)
  check 39, a2, 0x12345678

  /* --- sp-based loads and stores --- */
  addi sp, sp, -512
  li a0, 0xcafef00d
  c.swsp a0, 252(sp)
  c.lwsp a2, 252(sp)
  check 40, a2, 0xffffffffcafef00d
  li a0, 0x0123456789abcdef
  c.sdsp a0, 504(sp)
  c.ldsp a2, 504(sp)
  check 41, a2, 0x0123456789abcdef
  c.sdsp a0, 248(sp)
  c.lwsp a2, 248(sp)
  check 42, a2, 0xffffffff89abcdef

  /* --- FP loads and stores --- */
  la a1, data
  c.fld fa0, 8(a1)
  fmv.x.d a0, fa0
  check 43, a0, 0x0123456789abcdef
  la a1, scratch
  c.fsd fa0, 8(a1)
  ld a0, 8(a1)
  check 44, a0, 0x0123456789abcdef
  c.fsdsp fa0, 496(sp)
  c.fldsp fa1, 496(sp)
  fmv.x.d a0, fa1
  check 45, a0, 0x0123456789abcdef
  addi sp, sp, 512

  /* --- jumps and branches --- */
  li a0, 0
  c.j 1f
  c.li a0, 1                                 /* skipped */
1:
  check 46, a0, 0
  la a1, 2f
  c.jr a1
  c.li a0, 2
2:
  check 47, a0, 0
  la a1, 4f
3:
  c.jalr a1                                  /* link = pc + 2 */
  c.li a0, 3
4:
  check 48, a0, 0
  la a2, 3b
  addi a2, a2, 2
  checkr 49, ra, a2
  li a0, 0
  c.beqz a0, 1f
  c.li a0, 4
1:
  check 50, a0, 0
  c.bnez a0, 1f                              /* not taken */
  c.li a0, 5
1:
  check 51, a0, 5
  c.bnez a0, 1f
  c.li a0, 6
1:
  check 52, a0, 5
  c.beqz a0, 1f                              /* not taken */
  c.li a0, 7
1:
  check 53, a0, 7
  c.nop
  /* a backward c.bnez loop */
  li a0, 5
  li a1, 0
1:
  c.addi a1, 2
  c.addi a0, -1
  c.bnez a0, 1b
  check 54, a1, 10

  /* --- a 32-bit instruction at a 2-byte offset, crossing into the next page --- */
  li a0, 0
  call page_end_insn
  check 55, a0, 0x123

  j pass

  /* The addi sits at page offset 0xffe: its upper half is on the next page. */
  .balign 4096
  .skip 4094
page_end_insn:
  .option push
  .option norvc
  addi a0, a0, 0x123
  .option pop
  ret

  .data
  .balign 8
data:
  .word 0x80000001, 0
  .dword 0x0123456789abcdef
  .skip 108
  .word 0x7eadbeef                           /* data + 124 */
  .skip 120
  .dword 0x1122334455667788                  /* data + 248 */
scratch:
  .dword 0, 0
