/*
 * smp/fencei.S (run with -smp 2 or more): cross-modifying code. In each of ROUNDS rounds,
 * hart 0 rewrites the first instruction of `code_buf` to `addi a0, zero, round`, orders the
 * store with a fence and sends hart 1 an IPI (CLINT msip). Hart 1 wakes from WFI, clears its
 * msip, executes fence.i, calls `code_buf` and hands back a0, which must be the round number.
 * Hart 0 checks every answer (check 1). Harts 2.. park in WFI.
 */
#include "../common.h"

#define ROUNDS 200

  .text
  .globl main
main:
  csrr s0, mhartid
  beqz s0, writer
  li t0, 1
  bne s0, t0, park

  /* hart 1: machine software interrupts wake WFI (mstatus.MIE stays 0: no trap is taken) */
  li t0, MIP_MSIP
  csrw mie, t0
1:
  wfi
  csrr t0, mip
  andi t0, t0, MIP_MSIP
  beqz t0, 1b
  li t1, CLINT_MSIP + 4
  sw zero, 0(t1)
  fence.i
  la t2, code_buf
  jalr ra, 0(t2)
  la t1, answer
  sd a0, 0(t1)
  fence rw, rw
  la t1, acks
  li t3, 1
  amoadd.w zero, t3, (t1)
  j 1b

writer:
  li s2, 1                  /* round */
  la s3, code_buf
  la s4, acks
  la s5, answer
  li s6, 0x00008067         /* ret */
  sw s6, 4(s3)
2:
  slli t0, s2, 20
  ori t0, t0, 0x513         /* addi a0, zero, s2 */
  sw t0, 0(s3)
  fence rw, rw
  li t1, CLINT_MSIP + 4
  li t2, 1
  sw t2, 0(t1)
3:
  lw t3, 0(s4)
  bne t3, s2, 3b
  fence rw, rw
  ld t4, 0(s5)
  checkr 1, t4, s2
  addi s2, s2, 1
  li t0, ROUNDS
  ble s2, t0, 2b
  j pass

park:
  wfi
  j park

  .data
  .balign 8
answer: .dword 0
acks: .word 0
  .balign 4
code_buf:
  .word 0x00000513          /* addi a0, zero, 0 (rewritten) */
  .word 0x00008067          /* ret */
