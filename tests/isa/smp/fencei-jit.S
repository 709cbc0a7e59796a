/*
 * smp/fencei-jit.S (run with -smp 2 or more; made for the JIT at a low hotness threshold):
 * cross-modifying code that another hart runs hot. Hart 1 calls `func` (alone in its page)
 * in a loop, so that the JIT translates it, and counts its calls. In each of ROUNDS rounds,
 * once hart 1 has made CALLS more calls, hart 0 rewrites the first instruction of func to
 * `addi a0, zero, round`, executes fence.i, publishes the round and sends hart 1 an IPI
 * (CLINT msip); hart 1's interrupt handler reads the round, executes fence.i and
 * acknowledges it.
 * Hart 0 stores the word twice: after the first store the page holds no translation, so the
 * second may enter hart 0's write TLB, from which hart 1's next translation of func must take
 * it out (else the next round's store would not invalidate it).
 * A call that hart 1 starts after an acknowledgement must return at least that round:
 * hart 1 records a stale answer in `failed`, which hart 0 checks after each round (check 1)
 * and at the end (check 2), when hart 1's last answer must be the last round (check 3).
 * Harts 2.. park in WFI.
 */
#include "../common.h"

#define ROUNDS 40
#define CALLS 1000

  .text
  .globl main
main:
  csrr s0, mhartid
  beqz s0, writer
  li t0, 1
  bne s0, t0, park

  /* hart 1: machine software interrupts are taken by ipi (which uses s7 and s8 only) */
  la t0, ipi
  csrw mtvec, t0
  li t0, MIP_MSIP
  csrw mie, t0
  csrsi mstatus, MSTATUS_MIE
  la s1, func
  la s2, acked
  la s3, calls
  la s4, failed
  la s9, last
  li s5, 0
1:
  ld t1, 0(s2)              /* the round acknowledged before this call */
  jalr ra, 0(s1)
  bgeu a0, t1, 2f
  sd a0, 0(s4)              /* stale code ran after fence.i: record what it returned, plus one */
  addi t2, a0, 1
  sd t2, 0(s4)
2:
  sd a0, 0(s9)
  addi s5, s5, 1
  sd s5, 0(s3)
  j 1b

  .balign 4
ipi:
  li s7, CLINT_MSIP + 4
  sw zero, 0(s7)
  la s7, epoch              /* read before fence.i: the code of that round is visible then */
  ld s8, 0(s7)
  fence rw, rw
  fence.i
  la s7, acked
  sd s8, 0(s7)
  mret

writer:
  la s1, func
  la s2, acked
  la s3, calls
  la s4, failed
  la s5, epoch
  li s0, 1                  /* round */
3:
  jal ra, wait_calls
  slli t0, s0, 20
  ori t0, t0, 0x513         /* addi a0, zero, round */
  sw t0, 0(s1)
  /* Once more: the page holds no translation now, so this store may put it in hart 0's write
     TLB; when hart 1 translates func again, the next round's store must still be seen. */
  sw t0, 0(s1)
  fence.i
  fence rw, rw
  sd s0, 0(s5)
  fence iorw, iorw          /* the IPI (a device write) after the round */
  li t1, CLINT_MSIP + 4
  li t2, 1
  sw t2, 0(t1)
4:
  ld t3, 0(s2)
  bne t3, s0, 4b
  ld t4, 0(s4)
  check 1, t4, 0
  addi s0, s0, 1
  li t0, ROUNDS
  ble s0, t0, 3b
  jal ra, wait_calls
  ld t4, 0(s4)
  check 2, t4, 0
  la t0, last
  ld t4, 0(t0)
  check 3, t4, ROUNDS
  j pass

/* Returns once hart 1 has made CALLS more calls. */
wait_calls:
  ld t0, 0(s3)
  addi t0, t0, CALLS
5:
  ld t1, 0(s3)
  blt t1, t0, 5b
  ret

park:
  wfi
  j park

/* The code hart 0 rewrites, in a page of its own (only code writes invalidate it). */
  .section .text.func, "ax", @progbits
  .balign 4096
  .option push
  .option norvc             /* the word hart 0 writes replaces exactly the first instruction */
func:
  addi a0, zero, 0          /* rewritten */
  ret
  .option pop
  .balign 4096

  .data
  .balign 8
epoch: .dword 0
acked: .dword 0
calls: .dword 0
failed: .dword 0
last: .dword 0
