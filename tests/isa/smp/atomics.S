/*
 * smp/atomics.S: NHARTS harts (a build-time constant, -DNHARTS=N; run with -smp N) hammer
 * shared counters at the same time, then hart 0 checks the exact totals:
 *   1. amoadd.d on one doubleword, ITERS times per hart;
 *   2. lr.d/sc.d increments of another doubleword (an SC that lost its reservation retries);
 *   3. a spinlock made of amoswap.w.aq / amoswap.w.rl guarding a plain ld/addi/sd increment;
 *   4. the store-buffering litmus test between harts 0 and 1 with `fence rw,rw` between each
 *      hart's store and load: in no round may both loads see the initial 0 (RVWMO forbids it).
 * The harts wait for each other before starting. Harts beyond NHARTS (and harts 1.. when they are done) park in WFI. Results as for every
 * ISA program (common.h): exit status 0, or the number of the failed check.
 */
#include "../common.h"

#ifndef NHARTS
#define NHARTS 2
#endif
#define ITERS 200000
#define ROUNDS 2000

  .text
  .globl main
main:
  csrr s0, mhartid
  li t0, NHARTS
  bgeu s0, t0, park

  /* start together: every hart counts itself in, then waits for the others */
  la t0, arrived
  li t1, 1
  amoadd.w zero, t1, (t0)
  li t2, NHARTS
0:
  lw t1, 0(t0)
  bne t1, t2, 0b

  /* 1. amoadd.d */
  la s1, counter_amo
  li s2, ITERS
1:
  li t0, 1
  amoadd.d zero, t0, (s1)
  addi s2, s2, -1
  bnez s2, 1b

  /* 2. LR/SC */
  la s1, counter_lrsc
  li s2, ITERS
2:
  lr.d t0, (s1)
  addi t0, t0, 1
  sc.d t1, t0, (s1)
  bnez t1, 2b
  addi s2, s2, -1
  bnez s2, 2b

  /* 3. spinlock around a non-atomic increment */
  la s1, lock
  la s3, counter_lock
  li s2, ITERS
3:
  li t0, 1
  amoswap.w.aq t0, t0, (s1)
  bnez t0, 3b
  ld t1, 0(s3)
  addi t1, t1, 1
  sd t1, 0(s3)
  amoswap.w.rl zero, zero, (s1)
  addi s2, s2, -1
  bnez s2, 3b

  /* 4. store buffering, harts 0 and 1 only: round r uses x[r], y[r] and saves the loads in rx[r], ry[r]. */
  li t0, 2
  bgeu s0, t0, 6f
  li s2, 0                  /* round */
  la s4, sb_barrier
4:
  /* barrier: both harts arrive before round s2 starts (sb_barrier reaches 2 * (round + 1)) */
  li t0, 1
  amoadd.w zero, t0, (s4)
  addi t1, s2, 1
  slli t1, t1, 1
5:
  lw t0, 0(s4)
  blt t0, t1, 5b
  slli t2, s2, 2            /* word offset of this round */
  la t3, sb_x
  la t4, sb_y
  add t3, t3, t2
  add t4, t4, t2
  li t0, 1
  bnez s0, 51f
  sw t0, 0(t3)              /* hart 0: x = 1; fence; read y */
  fence rw, rw
  lw t5, 0(t4)
  la t3, sb_rx
  j 52f
51:
  sw t0, 0(t4)              /* hart 1: y = 1; fence; read x */
  fence rw, rw
  lw t5, 0(t3)
  la t3, sb_ry
52:
  add t3, t3, t2
  sw t5, 0(t3)
  addi s2, s2, 1
  li t0, ROUNDS
  blt s2, t0, 4b
6:
  /* done */
  la t0, done
  li t1, 1
  amoadd.w zero, t1, (t0)
  bnez s0, park

  /* hart 0: wait for every hart, then check */
  li t2, NHARTS
7:
  lw t1, 0(t0)
  bne t1, t2, 7b
  fence rw, rw
  li t3, NHARTS * ITERS
  la t0, counter_amo
  ld t1, 0(t0)
  checkr 1, t1, t3
  la t0, counter_lrsc
  ld t1, 0(t0)
  checkr 2, t1, t3
  la t0, counter_lock
  ld t1, 0(t0)
  checkr 3, t1, t3
#if NHARTS >= 2
  /* 4: no round where rx and ry are both 0 */
  la t0, sb_rx
  la t1, sb_ry
  li t2, ROUNDS
  li s5, 0                  /* rounds where both loads saw 0 */
8:
  lw t3, 0(t0)
  lw t4, 0(t1)
  or t3, t3, t4
  bnez t3, 9f
  addi s5, s5, 1
9:
  addi t0, t0, 4
  addi t1, t1, 4
  addi t2, t2, -1
  bnez t2, 8b
  check 4, s5, 0
#endif
  j pass

park:
  wfi
  j park

  .data
  .balign 8
counter_amo: .dword 0
counter_lrsc: .dword 0
counter_lock: .dword 0
lock: .word 0
arrived: .word 0
done: .word 0
sb_barrier: .word 0

  .bss
  .balign 8
sb_x: .skip 4 * ROUNDS
sb_y: .skip 4 * ROUNDS
sb_rx: .skip 4 * ROUNDS
sb_ry: .skip 4 * ROUNDS
