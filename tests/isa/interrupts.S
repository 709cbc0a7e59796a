/*
 * interrupts.S: machine-level interrupts (privileged spec, sections 3.1.9, 3.1.7, 3.3.3) from
 * the virt board's CLINT (SiFive CLINT layout: msip at 0x2000000, mtimecmp at 0x2004000,
 * mtime at 0x200bff8, 10 MHz): mip following msip and mtime >= mtimecmp, read-only mip bits,
 * the mie/mstatus.MIE gates (and M interrupts always enabled in lower modes), taking the
 * interrupt right after the CSR write that enables it, mcause values and priority
 * (MSI before MTI), vectored mtvec, and WFI waking up with and without MIE.
 */
#include "common.h"

/* Sets mtimecmp to now + \ticks (clobbers t0, t1). */
.macro timer_in ticks
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  li t0, \ticks
  add t1, t1, t0
  li t0, CLINT_MTIMECMP
  sd t1, 0(t0)
.endm

/* Sets mtimecmp to its maximum: no timer interrupt pending. */
.macro timer_off
  li t0, CLINT_MTIMECMP
  li t1, -1
  sd t1, 0(t0)
.endm

/* Writes \val to this hart's msip. */
.macro set_msip val
  li t0, CLINT_MSIP
  li t1, \val
  sw t1, 0(t0)
.endm

main:
  set_mtvec trap_skip
  csrw mie, zero
  csrci mstatus, MSTATUS_MIE
  timer_off
  set_msip 0

  /* --- mtime counts up (give it up to ten million reads) --- */
  begin_check 1
  li t0, CLINT_MTIME
  ld a0, 0(t0)
  li a2, 10000000
1:
  addi a2, a2, -1
  beqz a2, fail
  ld a1, 0(t0)
  beq a1, a0, 1b
  bltu a1, a0, fail

  /* --- mip.MSIP follows msip; it is read-only in mip --- */
  begin_check 2
  li a0, MIP_MSIP
  call wait_mip_clear
  set_msip 1
  begin_check 3
  call wait_mip_set
  set_msip 0
  begin_check 4
  call wait_mip_clear
  csrsi mip, MIP_MSIP                        /* no effect */
  csrr a1, mip
  andi a1, a1, MIP_MSIP
  check 5, a1, 0

  /* --- pending and enabled in mie, but mstatus.MIE = 0: not taken in M-mode --- */
  expect_trap
  li a0, MIP_MSIP
  csrw mie, a0
  set_msip 1
  begin_check 6
  call wait_mip_set
  check_no_trap 7

  /* --- setting mstatus.MIE takes it before the next instruction --- */
  csrsi mstatus, MSTATUS_MIE
enabled:
  check_trap 8, (CAUSE_INTERRUPT | 3)
  la t0, enabled
  checkr 9, s11, t0                          /* mepc: the instruction after the csrs */
  andi a0, s7, MSTATUS_MIE | MSTATUS_MPIE
  check 10, a0, MSTATUS_MPIE                 /* trap entry moved MIE into MPIE */
  csrr a0, mstatus
  andi a0, a0, MSTATUS_MIE
  check 11, a0, MSTATUS_MIE                  /* restored by mret */
  csrr a0, mie
  check 12, a0, 0                            /* trap_skip disabled it */

  /* --- mstatus.MIE = 1 but the source is not enabled in mie: not taken --- */
  expect_trap
  li a0, 100
1:
  addi a0, a0, -1
  bnez a0, 1b
  check_no_trap 13
  csrci mstatus, MSTATUS_MIE
  set_msip 0
  begin_check 14
  li a0, MIP_MSIP
  call wait_mip_clear

  /* --- M interrupts are always enabled in S- and U-mode, whatever mstatus.MIE --- */
  li a0, MIP_MSIP
  csrw mie, a0
  set_msip 1
  begin_check 15
  call wait_mip_set
  expect_trap
  to_mode PRV_U
  to_m
  check_trap 16, (CAUSE_INTERRUPT | 3)
  srli a0, s7, 11
  andi a0, a0, 3
  check 17, a0, PRV_U
  set_msip 0
  begin_check 18
  li a0, MIP_MSIP
  call wait_mip_clear

  /* --- the timer: mip.MTIP = (mtime >= mtimecmp), read-only in mip --- */
  li a0, MIP_MTIP
  begin_check 19
  call wait_mip_clear
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  li t0, CLINT_MTIMECMP
  sd t1, 0(t0)                               /* already reached */
  begin_check 20
  call wait_mip_set
  li a1, MIP_MTIP
  csrc mip, a1                               /* no effect */
  csrr a1, mip
  andi a1, a1, MIP_MTIP
  check 21, a1, MIP_MTIP
  timer_off
  begin_check 22
  call wait_mip_clear

  /* --- a timer interrupt --- */
  expect_trap
  li a0, MIP_MTIP
  csrw mie, a0
  csrsi mstatus, MSTATUS_MIE
  timer_in 1000                              /* 100 us */
  begin_check 23
  call wait_trap
  check_trap 24, (CAUSE_INTERRUPT | 7)
  csrci mstatus, MSTATUS_MIE
  timer_off

  /* --- priority: software before timer --- */
  timer_in 0
  set_msip 1
  li a0, MIP_MSIP | MIP_MTIP
  begin_check 25
  call wait_mip_set
  expect_trap
  csrw mie, a0
  csrsi mstatus, MSTATUS_MIE
  check_trap 26, (CAUSE_INTERRUPT | 3)         /* one trap: trap_skip cleared mie */
  csrci mstatus, MSTATUS_MIE
  timer_off
  set_msip 0

  /* --- an S-level interrupt that is not delegated goes to M --- */
  expect_trap
  li a0, MIP_SSIP
  csrw mie, a0
  csrs mip, a0                               /* SSIP is writable in mip */
  csrr a1, mip
  andi a1, a1, MIP_SSIP
  check 27, a1, MIP_SSIP
  csrsi mstatus, MSTATUS_MIE
  check_trap 28, (CAUSE_INTERRUPT | 1)
  csrci mstatus, MSTATUS_MIE
  csrc mip, a0
  csrr a1, mip
  andi a1, a1, MIP_SSIP
  check 29, a1, 0

  /* --- vectored mtvec: interrupt i goes to BASE + 4 * i --- */
  la a0, vectors
  ori a0, a0, 1
  csrw mtvec, a0
  li a5, 0
  expect_trap
  li a0, MIP_MSIP
  csrw mie, a0
  set_msip 1
  csrsi mstatus, MSTATUS_MIE
  begin_check 30
  call wait_trap
  check 31, a5, 3                            /* came through vector 3 */
  check_trap 32, (CAUSE_INTERRUPT | 3)
  csrci mstatus, MSTATUS_MIE
  set_msip 0
  set_mtvec trap_skip

  /* --- WFI wakes up on a pending enabled interrupt even with MIE = 0, with no trap --- */
  expect_trap
  li a0, MIP_MTIP
  csrw mie, a0
  timer_in 10000                             /* 1 ms */
1:
  wfi                                        /* may also return early: loop */
  csrr a1, mip
  andi a1, a1, MIP_MTIP
  beqz a1, 1b
  check_no_trap 33
  timer_off

  /* --- WFI with MIE = 1: the interrupt is taken --- */
  expect_trap
  li a0, MIP_MTIP
  csrw mie, a0
  csrsi mstatus, MSTATUS_MIE
  timer_in 10000
1:
  wfi
  beqz s8, 1b
  check_trap 34, (CAUSE_INTERRUPT | 7)
  csrci mstatus, MSTATUS_MIE
  timer_off

  set_mtvec trap_fail
  j pass

/* Waits (at most about a second of mtime) until mip & a0 != 0, else fails the current check. */
wait_mip_set:
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  li t2, 10000000
  add t1, t1, t2
1:
  csrr t2, mip
  and t2, t2, a0
  bnez t2, 2f
  ld t2, 0(t0)
  bltu t2, t1, 1b
  j fail
2:
  ret

/* Waits until mip & a0 == 0, else fails the current check. */
wait_mip_clear:
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  li t2, 10000000
  add t1, t1, t2
1:
  csrr t2, mip
  and t2, t2, a0
  beqz t2, 2f
  ld t2, 0(t0)
  bltu t2, t1, 1b
  j fail
2:
  ret

/* Waits until trap_skip has recorded a trap, else fails the current check. */
wait_trap:
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  li t2, 10000000
  add t1, t1, t2
1:
  bnez s8, 2f
  ld t2, 0(t0)
  bltu t2, t1, 1b
  j fail
2:
  ret

  .balign 64
  .option push
  .option norvc                              /* every entry must be 4 bytes */
vectors:
  j trap_skip                                /* 0: exceptions (and to_m) */
  j fail
  j fail
  j vector_msi                               /* 3: machine software interrupt */
  j fail
  j fail
  j fail
  j fail                                     /* 7: machine timer interrupt */
  j fail
  j fail
  j fail
  j fail
  .option pop
vector_msi:
  li a5, 3
  j trap_skip
