/*
 * counters.S: the Zicntr counters and their machine-level controls (unprivileged spec,
 * chapter 10; privileged spec, sections 3.1.10-3.1.12): cycle, instret and time increase,
 * time agrees with the CLINT's mtime, mcycle/minstret are writable, the mhpmcounters exist,
 * and mcounteren/scounteren gate S- and U-mode reads (illegal instruction otherwise).
 */
#include "common.h"

/* Check \n: reading counter \csr in mode \prv traps (\trap = 1) or works (\trap = 0). */
.macro check_access n, prv, csr, trap
  expect_trap
  to_mode \prv
  csrr a0, \csr
  to_m
  .if \trap
    check_trap \n, CAUSE_ILLEGAL_INSTR
  .else
    check_no_trap \n
  .endif
.endm

/* Spins for a while (clobbers t0). */
.macro spin
  li t0, 1000
.Lspin\@:
  addi t0, t0, -1
  bnez t0, .Lspin\@
.endm

main:
  li a7, 0

  /* --- the counters count --- */
  rdcycle a0
  rdinstret a1
  spin
  rdcycle a3
  rdinstret a4
  bltu a0, a3, 1f
  begin_check 1
  j fail
1:
  sub a4, a4, a1
  li t0, 2000                                /* the loop retired over 2000 instructions */
  bgeu a4, t0, 1f
  begin_check 2
  j fail
1:
  /* time follows a clock, not instructions: give it up to ten million reads */
  begin_check 3
  rdtime a2
  li a1, 10000000
1:
  addi a1, a1, -1
  beqz a1, fail
  rdtime a5
  beq a5, a2, 1b
  bltu a5, a2, fail                          /* went backwards */

  /* --- time is mtime --- */
  li t0, CLINT_MTIME
  ld a0, 0(t0)
  rdtime a1
  ld a2, 0(t0)
  bgeu a1, a0, 1f
  begin_check 4
  j fail
1:
  bgeu a2, a1, 1f
  begin_check 5
  j fail
1:

  /* --- mcycle and minstret are writable; cycle and instret shadow them --- */
  li a0, 0x100000000000
  csrw minstret, a0
  rdinstret a1
  sub a1, a1, a0
  li t0, 1000000
  bltu a1, t0, 1f                            /* a few instructions later, not a wrap */
  begin_check 6
  j fail
1:
  csrw mcycle, a0
  rdcycle a1
  sub a1, a1, a0
  li t0, 0x100000000
  bltu a1, t0, 1f
  begin_check 7
  j fail
1:

  set_mtvec trap_skip

  /* --- hardware performance monitor CSRs exist (possibly hardwired to zero) --- */
  expect_trap
  csrr a0, mhpmcounter3
  csrr a0, mhpmevent3
  check_no_trap 8

  /* --- mcounteren and scounteren --- */
  csrw mcounteren, zero
  csrw scounteren, zero
  check_access 9, PRV_S, cycle, 1
  check_access 10, PRV_S, time, 1
  check_access 11, PRV_S, instret, 1
  check_access 12, PRV_U, cycle, 1
  li a0, 7                                   /* CY, TM, IR */
  csrw mcounteren, a0
  check_access 13, PRV_S, cycle, 0
  check_access 14, PRV_S, time, 0
  check_access 15, PRV_S, instret, 0
  check_access 16, PRV_U, cycle, 1           /* U also needs scounteren */
  check_access 17, PRV_U, instret, 1
  li a0, 2                                   /* TM only */
  csrw scounteren, a0
  check_access 18, PRV_U, time, 0
  check_access 19, PRV_U, cycle, 1
  li a0, 5                                   /* CY and IR */
  csrw mcounteren, a0
  li a0, 7
  csrw scounteren, a0
  check_access 20, PRV_U, cycle, 0
  check_access 21, PRV_U, time, 1            /* mcounteren.TM is clear */
  check_access 22, PRV_S, time, 1
  check_access 23, PRV_S, mcycle, 1          /* M-level CSR */
  expect_trap
  csrr a0, time                              /* M-mode is never gated */
  csrr a0, cycle
  check_no_trap 24

  set_mtvec trap_fail
  j pass
